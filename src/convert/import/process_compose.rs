//! `herder import process-compose`: the processes of a process-compose file as herder
//! manifests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::draft::{child_names, environment, find_cycle};
use super::source::{Source, pointer};
use super::{Import, ImportError, Imported, Target, dotenv};
use crate::convert::note::Note;
use crate::manifest::suggest::did_you_mean;

/// Top-level keys process-compose reads.
const TOP_LEVEL: &[&str] = &[
    "version",
    "name",
    "processes",
    "environment",
    "shell",
    "vars",
    "env_cmds",
    "extends",
    "is_strict",
    "disable_env_expansion",
    "is_tui_disabled",
    "ordered_shutdown",
    "log_location",
    "log_level",
    "log_length",
    "log_configuration",
    "log_format",
    "mcp_server",
];

/// Process keys the mapping reads.
const MAPPED: &[&str] = &[
    "command",
    "entrypoint",
    "executable",
    "args",
    "working_dir",
    "environment",
    "env_file",
    "depends_on",
    "readiness_probe",
    "liveness_probe",
    "availability",
    "shutdown",
    "replicas",
    "disabled",
    "is_disabled",
    "ready_log_line",
    "is_daemon",
    "description",
    "namespace",
    "is_dotenv_disabled",
];

/// Process keys that have no herder counterpart.
const UNMAPPED: &[&str] = &[
    "schedule",
    "watch",
    "success_exit_codes",
    "launch_timeout_seconds",
    "is_tty",
    "is_interactive",
    "is_foreground",
    "is_elevated",
    "log_location",
    "log_configuration",
    "extends",
    "vars",
    "disable_ansi_colors",
    "name",
    "is_windows_terminal",
];

/// One dependency before every process is known.
/// A mapped process: its fields (without `name`, `kind`, `dependencies`), its dependencies,
/// where it is declared and its name in the file.
type Draft = (Map<String, Value>, Vec<Dependency>, String, String);

/// The result of mapping one process.
type Mapped = Result<(Map<String, Value>, Vec<Dependency>), Vec<Note>>;

struct Dependency {
    name: String,
    condition: &'static str,
    pointer: String,
}

/// Imports the process-compose file `file` with contents `text`.
pub fn import(file: &Path, text: &str, target: &Target) -> Result<Import, ImportError> {
    let source = Source::parse(file, text)?;
    let fail = |notes: Vec<Note>| ImportError {
        file: file.to_path_buf(),
        notes,
    };
    let mut import = Import::default();
    let root = source.value.as_object().cloned().unwrap_or_default();
    let mut errors = Vec::new();
    for key in root.keys() {
        let at = pointer(&[key]);
        match key.as_str() {
            "processes" | "environment" => {}
            "shell" => import
                .unmapped
                .push(source.note(&at, "`shell`: herder runs a string command with /bin/sh -c")),
            _ if TOP_LEVEL.contains(&key.as_str()) => import
                .unmapped
                .push(source.note(&at, format!("`{key}`: no herder equivalent: ignored"))),
            _ => {
                let hint = did_you_mean(key, TOP_LEVEL.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                errors.push(source.note(&at, format!("unknown top-level key `{key}`{hint}")));
            }
        }
    }
    if !errors.is_empty() {
        return Err(fail(errors));
    }
    let Some(processes) = root.get("processes").and_then(Value::as_object) else {
        return Err(fail(vec![
            source.note("/processes", "no `processes` mapping: nothing to import"),
        ]));
    };
    let dir = file
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let dot_env = dotenv::read(&dir.join(".env"))?.unwrap_or_default();
    let global = env_list(
        &source,
        root.get("environment"),
        "/environment",
        &mut errors,
    );
    let services: Vec<(String, Note)> = processes
        .keys()
        .map(|name| {
            (
                name.clone(),
                source.note(&pointer(&["processes", name]), ""),
            )
        })
        .collect();
    let names = child_names(&services, &mut import.mapped).map_err(fail)?;
    let mut drafts: BTreeMap<String, Draft> = BTreeMap::new();
    for (original, process) in processes {
        let base = pointer(&["processes", original]);
        let Some(process) = process.as_object() else {
            errors.push(source.value_note(&base, format!("process `{original}` is not a mapping")));
            continue;
        };
        let name = names
            .get(original)
            .cloned()
            .unwrap_or_else(|| original.clone());
        let cx = Process {
            source: &source,
            base: &base,
            process,
            dir: &dir,
            target,
        };
        let mut vars = if process.get("is_dotenv_disabled").and_then(Value::as_bool) == Some(true) {
            Vec::new()
        } else {
            dot_env.clone()
        };
        vars.extend(global.iter().cloned());
        match cx.map(&names, vars, &mut import) {
            Ok((fields, deps)) => {
                drafts.insert(name, (fields, deps, base.clone(), original.clone()));
            }
            Err(mut notes) => errors.append(&mut notes),
        }
    }
    if !errors.is_empty() {
        return Err(fail(errors));
    }
    // Waited-for conditions shape the dependency: completed → oneshot, log_ready → log_line.
    let mut completed = BTreeSet::new();
    for (_, deps, _, _) in drafts.values() {
        for dep in deps {
            if !drafts.contains_key(&dep.name) {
                errors.push(source.note(
                    &dep.pointer,
                    format!(
                        "depends on `{}`, which is not a process in this file",
                        dep.name
                    ),
                ));
            } else if dep.condition == "completed" {
                completed.insert(dep.name.clone());
            }
        }
    }
    if !errors.is_empty() {
        return Err(fail(errors));
    }
    let graph: BTreeMap<String, Vec<String>> = drafts
        .iter()
        .map(|(n, (_, deps, _, _))| (n.clone(), deps.iter().map(|d| d.name.clone()).collect()))
        .collect();
    if let Some(cycle) = find_cycle(&graph) {
        let at = drafts
            .get(&cycle[0])
            .map_or_else(|| "/processes".to_owned(), |d| d.2.clone());
        return Err(fail(vec![
            source.note(&at, format!("dependency cycle: {}", cycle.join(" → "))),
        ]));
    }
    for (name, (mut fields, deps, base, original)) in drafts {
        if completed.contains(&name) {
            fields.insert("kind".into(), Value::from("oneshot"));
            import.mapped.push(source.note(
                &base,
                format!("`{original}` is waited for to complete: kind oneshot"),
            ));
        }
        if !deps.is_empty() {
            let list: Vec<Value> = deps
                .iter()
                .map(|d| json!({"name": d.name, "condition": d.condition}))
                .collect();
            fields.insert("dependencies".into(), Value::Array(list));
        }
        fields.insert("name".into(), Value::from(name.as_str()));
        import.manifests.push(Imported {
            name,
            manifest: Value::Object(fields),
            origin: source.note(&base, format!("process `{original}`")),
        });
    }
    Ok(import)
}

/// `["K=V", …]` (or a `{K: V}` map) as pairs.
fn env_list(
    source: &Source,
    value: Option<&Value>,
    at: &str,
    errors: &mut Vec<Note>,
) -> Vec<(String, String)> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let text = item.as_str().unwrap_or_default();
                match text.split_once('=') {
                    Some((k, v)) => Some((k.to_owned(), v.to_owned())),
                    None => {
                        errors.push(source.value_note(
                            &format!("{at}/{i}"),
                            "an environment entry is `KEY=value`",
                        ));
                        None
                    }
                }
            })
            .collect(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                )
            })
            .collect(),
        Some(_) => {
            errors.push(source.value_note(at, "`environment` must be a list of `KEY=value`"));
            Vec::new()
        }
    }
}

/// One process being mapped.
pub(super) struct Process<'a> {
    pub(super) source: &'a Source,
    pub(super) base: &'a str,
    pub(super) process: &'a Map<String, Value>,
    pub(super) dir: &'a Path,
    pub(super) target: &'a Target,
}

impl Process<'_> {
    pub(super) fn at(&self, key: &str) -> String {
        format!("{}{}", self.base, pointer(&[key]))
    }

    fn map(
        &self,
        names: &BTreeMap<String, String>,
        mut vars: Vec<(String, String)>,
        import: &mut Import,
    ) -> Mapped {
        let (source, process) = (self.source, self.process);
        let mut errors = Vec::new();
        let mut fields = Map::new();
        let mapped = |import: &mut Import, key: &str, what: &str| {
            import.mapped.push(source.note(&self.at(key), what))
        };
        let unmapped = |import: &mut Import, key: &str, what: String| {
            import.unmapped.push(source.note(&self.at(key), what))
        };
        for key in process.keys() {
            if UNMAPPED.contains(&key.as_str()) {
                unmapped(
                    import,
                    key,
                    format!("`{key}`: no herder equivalent: not mapped"),
                );
            } else if !MAPPED.contains(&key.as_str()) {
                let hint = did_you_mean(key, MAPPED.iter().chain(UNMAPPED).copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                errors.push(source.note(&self.at(key), format!("unknown key `{key}`{hint}")));
            }
        }
        // Command: a shell string, an entrypoint list, or executable + args.
        if let Some(command) = process.get("command").and_then(Value::as_str) {
            fields.insert("command".into(), Value::from(command));
            mapped(
                import,
                "command",
                "command (run by /bin/sh -c; process-compose's default shell is bash)",
            );
        } else if let Some(argv) = process.get("entrypoint").and_then(Value::as_array) {
            fields.insert("command".into(), Value::Array(argv.clone()));
            mapped(import, "entrypoint", "command");
        } else if let Some(executable) = process.get("executable").and_then(Value::as_str) {
            let mut argv = vec![Value::from(executable)];
            argv.extend(
                process
                    .get("args")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
            fields.insert("command".into(), Value::Array(argv));
            mapped(import, "executable", "command");
        } else {
            errors.push(source.note(self.base, "no `command`, `entrypoint` or `executable`"));
        }
        let dir = match process.get("working_dir").and_then(Value::as_str) {
            Some(dir) => {
                mapped(import, "working_dir", "working_dir");
                super::absolute(&self.dir.join(dir))
            }
            None => super::absolute(self.dir),
        };
        fields.insert(
            "working_dir".into(),
            Value::from(self.target.relative(&dir).display().to_string()),
        );
        if let Some(file) = process.get("env_file").and_then(Value::as_str) {
            match dotenv::read(&self.dir.join(file)) {
                Ok(Some(read)) => vars.extend(read),
                Ok(None) => errors.push(source.value_note(
                    &self.at("env_file"),
                    format!("env_file `{file}` does not exist"),
                )),
                Err(err) => errors.extend(err.notes),
            }
            mapped(
                import,
                "env_file",
                "environment (the file's values are copied)",
            );
        }
        if process.contains_key("environment") {
            vars.extend(env_list(
                source,
                process.get("environment"),
                &self.at("environment"),
                &mut errors,
            ));
            mapped(import, "environment", "environment");
        }
        if let Some(env) = environment(&vars, &[]) {
            fields.insert("environment".into(), env);
        }
        if let Some(text) = process.get("description").and_then(Value::as_str) {
            fields.insert("description".into(), Value::from(text));
            mapped(import, "description", "description");
        }
        if let Some(namespace) = process.get("namespace").and_then(Value::as_str) {
            fields.insert("labels".into(), json!({"namespace": namespace}));
            mapped(import, "namespace", "label `namespace`");
        }
        if let Some(replicas) = process.get("replicas").and_then(Value::as_u64)
            && (1..=1000).contains(&replicas)
        {
            fields.insert("replicas".into(), Value::from(replicas));
            mapped(
                import,
                "replicas",
                "replicas (HERDER_REPLICA instead of PC_REPLICA_NUM)",
            );
        }
        for key in ["disabled", "is_disabled"] {
            if process.get(key).and_then(Value::as_bool) == Some(true) {
                fields.insert("enabled".into(), Value::Bool(false));
                mapped(import, key, "enabled: false");
            }
        }
        if process.get("is_daemon").and_then(Value::as_bool) == Some(true) {
            unmapped(import, "is_daemon", "`is_daemon`: herder supervises a process in the foreground; one that forks and exits looks finished: run it in the foreground".into());
        }
        self.probes(&mut fields, import, &mut errors);
        self.availability(&mut fields, import, &mut errors);
        self.shutdown(&mut fields, import);
        let deps = self.dependencies(names, import, &mut errors);
        if errors.is_empty() {
            Ok((fields, deps))
        } else {
            Err(errors)
        }
    }

    fn dependencies(
        &self,
        names: &BTreeMap<String, String>,
        import: &mut Import,
        errors: &mut Vec<Note>,
    ) -> Vec<Dependency> {
        let Some(deps) = self.process.get("depends_on").and_then(Value::as_object) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (dep, spec) in deps {
            let at = format!("{}{}", self.at("depends_on"), pointer(&[dep]));
            let condition = match spec
                .get("condition")
                .and_then(Value::as_str)
                .unwrap_or("process_started")
            {
                "process_started" => "started",
                "process_healthy" | "process_log_ready" => "ready",
                "process_completed_successfully" => "completed",
                "process_completed" => {
                    import.unmapped.push(self.source.note(
                        &at,
                        "process_completed (any exit code): herder's `completed` needs exit code 0",
                    ));
                    "completed"
                }
                other => {
                    errors.push(self.source.value_note(
                        &format!("{at}/condition"),
                        format!("unknown condition `{other}`"),
                    ));
                    continue;
                }
            };
            let name = names.get(dep).cloned().unwrap_or_else(|| dep.clone());
            import.mapped.push(self.source.note(
                &at,
                format!("depends_on `{dep}` → dependency `{name}` ({condition})"),
            ));
            out.push(Dependency {
                name,
                condition,
                pointer: at,
            });
        }
        out
    }
}
