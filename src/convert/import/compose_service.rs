//! One Compose service as a herder manifest, field by field, with a note for each field
//! mapped and each one that is not.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value, json};

use super::draft::environment;
use super::source::{Source, pointer};
use super::{Import, Target, dotenv};
use crate::convert::note::Note;
use crate::manifest::suggest::did_you_mean;

/// Service keys of the Compose Specification that herder has no use for (containers,
/// networking, devices, …): each is reported, none is an error.
const UNMAPPED: &[&str] = &[
    "annotations",
    "attach",
    "blkio_config",
    "cap_add",
    "cap_drop",
    "cgroup",
    "cgroup_parent",
    "configs",
    "container_name",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpuset",
    "credential_spec",
    "develop",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "driver_opts",
    "expose",
    "extends",
    "external_links",
    "extra_hosts",
    "gpus",
    "group_add",
    "hostname",
    "init",
    "ipc",
    "isolation",
    "label_file",
    "links",
    "logging",
    "mac_address",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "models",
    "network_mode",
    "networks",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "platform",
    "ports",
    "post_start",
    "pre_stop",
    "privileged",
    "provider",
    "pull_policy",
    "read_only",
    "runtime",
    "security_opt",
    "shm_size",
    "stdin_open",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "use_api_socket",
    "userns_mode",
    "uts",
    "volumes",
    "volumes_from",
];

/// Service keys the mapping reads.
const MAPPED: &[&str] = &[
    "build",
    "command",
    "cpus",
    "depends_on",
    "deploy",
    "entrypoint",
    "env_file",
    "environment",
    "healthcheck",
    "image",
    "labels",
    "mem_limit",
    "pids_limit",
    "profiles",
    "restart",
    "scale",
    "secrets",
    "stop_grace_period",
    "stop_signal",
    "ulimits",
    "user",
    "working_dir",
];

/// What the service mapping needs from the file around it.
pub(super) struct Context<'a> {
    pub(super) source: &'a Source,
    /// Compose service name → child name, for the imported services.
    pub(super) names: &'a BTreeMap<String, String>,
    /// Services left out by profile, with their profiles.
    pub(super) inactive: &'a BTreeMap<String, String>,
    pub(super) top_secrets: &'a Map<String, Value>,
    /// The Compose file's folder (the project directory).
    pub(super) dir: &'a Path,
    pub(super) target: &'a Target,
}

/// A dependency of a mapped service, resolved once every service is known.
#[derive(Clone, Debug)]
pub(super) struct Dependency {
    /// The child name (or, for a service that was not imported, its Compose name).
    pub(super) name: String,
    pub(super) original: String,
    pub(super) condition: &'static str,
    pub(super) restart: bool,
    pub(super) required: bool,
    pub(super) pointer: String,
}

impl Dependency {
    /// The manifest form: the short form for `ready`, else `{name, condition, restart}`.
    pub(super) fn to_value(&self) -> Value {
        let mut value = json!({"name": self.name, "condition": self.condition});
        if self.restart {
            value["restart"] = Value::Bool(true);
        }
        value
    }
}

/// A mapped service: its manifest fields (without `name` and `dependencies`) and its
/// dependencies.
pub(super) struct Service {
    pub(super) name: String,
    pub(super) original: String,
    pub(super) pointer: String,
    pub(super) fields: Map<String, Value>,
    pub(super) dependencies: Vec<Dependency>,
}

/// Maps the service `original`; `None` when it has no command herder can run.
pub(super) fn map(
    cx: &Context<'_>,
    original: &str,
    import: &mut Import,
) -> Result<Option<Service>, Vec<Note>> {
    let base = pointer(&["services", original]);
    let at = |key: &str| format!("{base}{}", pointer(&[key]));
    let service = cx.source.value["services"][original]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let name = cx
        .names
        .get(original)
        .cloned()
        .unwrap_or_else(|| original.to_owned());
    let mut errors = Vec::new();
    let mut fields = Map::new();
    let mapped = |import: &mut Import, key: &str, what: String| {
        import.mapped.push(cx.source.note(&at(key), what))
    };
    let unmapped = |import: &mut Import, key: &str, what: String| {
        import.unmapped.push(cx.source.note(&at(key), what))
    };
    for key in service.keys() {
        if key.starts_with("x-") {
            unmapped(import, key, format!("extension `{key}`: ignored"));
        } else if UNMAPPED.contains(&key.as_str()) {
            unmapped(
                import,
                key,
                format!(
                    "`{key}`: herder runs the command as a process on this host, without containers: not mapped"
                ),
            );
        } else if !MAPPED.contains(&key.as_str()) {
            let hint = did_you_mean(key, MAPPED.iter().chain(UNMAPPED).copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            errors.push(cx.source.note(
                &at(key),
                format!("unknown key `{key}` in service `{original}`{hint}"),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // The command: entrypoint, then command.
    let mut argv = Vec::new();
    for key in ["entrypoint", "command"] {
        match service.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(line)) => match shlex::split(line) {
                Some(words) => argv.extend(words),
                None => errors.push(
                    cx.source
                        .value_note(&at(key), format!("`{key}` has an unclosed quote")),
                ),
            },
            Some(Value::Array(items)) => argv.extend(items.iter().map(scalar)),
            Some(_) => errors.push(
                cx.source
                    .value_note(&at(key), format!("`{key}` must be a string or a list")),
            ),
        }
    }
    for key in ["image", "build"] {
        if service.contains_key(key) {
            let what = if argv.is_empty() {
                "and no `command`/`entrypoint` says what it runs: the service is not imported (write its manifest by hand with the program the image runs)"
            } else {
                "is not used: herder runs the command on this host"
            };
            unmapped(import, key, format!("`{key}` {what}"));
        }
    }
    if argv.is_empty() {
        if !service.contains_key("image") && !service.contains_key("build") {
            unmapped(
                import,
                "command",
                "no `command` or `entrypoint`: the service is not imported".into(),
            );
        }
        return if errors.is_empty() {
            Ok(None)
        } else {
            Err(errors)
        };
    }
    fields.insert("command".into(), json!(argv));
    mapped(
        import,
        if service.contains_key("entrypoint") {
            "entrypoint"
        } else {
            "command"
        },
        "command".into(),
    );
    // Working directory: the project directory unless the service names one.
    let working_dir = match service.get("working_dir").and_then(Value::as_str) {
        Some(dir) if Path::new(dir).is_absolute() => {
            unmapped(
                import,
                "working_dir",
                format!(
                    "working_dir `{dir}` is a path inside the container: kept, check that it exists on this host"
                ),
            );
            Path::new(dir).to_path_buf()
        }
        Some(dir) => {
            mapped(import, "working_dir", "working_dir".into());
            cx.target.relative(&super::absolute(&cx.dir.join(dir)))
        }
        None => cx.target.relative(&super::absolute(cx.dir)),
    };
    fields.insert(
        "working_dir".into(),
        Value::from(working_dir.display().to_string()),
    );
    // Environment: env_file first, then environment (which wins).
    let mut vars: Vec<(String, String)> = Vec::new();
    if let Some(files) = service.get("env_file") {
        let entries: Vec<Value> = match files {
            Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        };
        for (i, entry) in entries.iter().enumerate() {
            let (path, required) = match entry {
                Value::String(path) => (path.clone(), true),
                Value::Object(long) => (
                    long.get("path").map(scalar).unwrap_or_default(),
                    long.get("required")
                        .and_then(Value::as_bool)
                        .unwrap_or(true),
                ),
                _ => (String::new(), true),
            };
            let entry_at = if files.is_array() {
                format!("{}/{i}", at("env_file"))
            } else {
                at("env_file")
            };
            let file = cx.dir.join(&path);
            match dotenv::read(&file) {
                Ok(Some(read)) => vars.extend(read),
                Ok(None) if !required => import.unmapped.push(cx.source.note(
                    &entry_at,
                    format!("env_file `{path}` does not exist (optional): skipped"),
                )),
                Ok(None) => errors.push(
                    cx.source
                        .value_note(&entry_at, format!("env_file `{path}` does not exist")),
                ),
                Err(err) => errors.extend(err.notes),
            }
        }
        mapped(
            import,
            "env_file",
            "environment (the file's values are copied into the manifest)".into(),
        );
    }
    match service.get("environment") {
        None => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                if value.is_null() {
                    import.mapped.push(cx.source.note(
                        &format!("{}{}", at("environment"), pointer(&[key])),
                        format!("`{key}` is passed through from herder's environment"),
                    ));
                } else {
                    vars.push((key.clone(), scalar(value)));
                }
            }
            mapped(import, "environment", "environment".into());
        }
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let text = scalar(item);
                match text.split_once('=') {
                    Some((key, value)) => vars.push((key.to_owned(), value.to_owned())),
                    None => import.mapped.push(cx.source.note(
                        &format!("{}/{i}", at("environment")),
                        format!("`{text}` is passed through from herder's environment"),
                    )),
                }
            }
            mapped(import, "environment", "environment".into());
        }
        Some(_) => errors.push(cx.source.value_note(
            &at("environment"),
            "`environment` must be a list or a mapping",
        )),
    }
    let secrets = map_secrets(cx, &service, &base, import, &mut errors);
    let secret_refs: Vec<(String, String)> = secrets
        .iter()
        .map(|(var, secret)| {
            (
                var.clone(),
                secret["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    if let Some(env) = environment(&vars, &secret_refs) {
        fields.insert("environment".into(), env);
    }
    if !secrets.is_empty() {
        fields.insert(
            "secrets".into(),
            Value::Array(secrets.into_iter().map(|(_, s)| s).collect()),
        );
    }
    let dependencies = map_dependencies(cx, &service, &base, import, &mut errors);
    super::compose_fields::map(cx, &service, &base, &mut fields, import, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Some(Service {
        name,
        original: original.to_owned(),
        pointer: base,
        fields,
        dependencies,
    }))
}

/// A scalar as text (numbers and booleans as written).
pub(super) fn scalar(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn map_dependencies(
    cx: &Context<'_>,
    service: &Map<String, Value>,
    base: &str,
    import: &mut Import,
    errors: &mut Vec<Note>,
) -> Vec<Dependency> {
    let at = format!("{base}/depends_on");
    let mut out = Vec::new();
    let mut push = |original: &str,
                    long: Option<&Map<String, Value>>,
                    pointer: String,
                    import: &mut Import| {
        let condition = match long
            .and_then(|l| l.get("condition"))
            .and_then(Value::as_str)
            .unwrap_or("service_started")
        {
            "service_started" => "started",
            "service_healthy" => "ready",
            "service_completed_successfully" => "completed",
            other => {
                errors.push(cx.source.value_note(&format!("{pointer}/condition"), format!("unknown condition `{other}` (service_started, service_healthy or service_completed_successfully)")));
                return;
            }
        };
        let restart = long
            .and_then(|l| l.get("restart"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let required = long
            .and_then(|l| l.get("required"))
            .and_then(Value::as_bool)
            .unwrap_or(true);
        if let Some(profiles) = cx.inactive.get(original)
            && required
        {
            errors.push(cx.source.note(&pointer, format!("depends on `{original}`, which is in profile {profiles}: select it with --profile")));
            return;
        }
        let name = cx
            .names
            .get(original)
            .cloned()
            .unwrap_or_else(|| original.to_owned());
        import.mapped.push(cx.source.note(
            &pointer,
            format!("depends_on `{original}` → dependency `{name}` ({condition})"),
        ));
        out.push(Dependency {
            name,
            original: original.to_owned(),
            condition,
            restart,
            required,
            pointer,
        });
    };
    match service.get("depends_on") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                push(&scalar(item), None, format!("{at}/{i}"), import);
            }
        }
        Some(Value::Object(map)) => {
            for (dep, long) in map {
                push(
                    dep,
                    long.as_object(),
                    format!("{at}{}", pointer(&[dep])),
                    import,
                );
            }
        }
        Some(_) => errors.push(
            cx.source
                .value_note(&at, "`depends_on` must be a list or a mapping"),
        ),
    }
    out
}

/// `(variable, herder secret)` per secret the service uses: the value reaches the child as
/// the variable named after the secret's target, where compose would mount a file.
fn map_secrets(
    cx: &Context<'_>,
    service: &Map<String, Value>,
    base: &str,
    import: &mut Import,
    errors: &mut Vec<Note>,
) -> Vec<(String, Value)> {
    let Some(items) = service.get("secrets").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{base}/secrets/{i}");
        let (source_name, target) = match item {
            Value::Object(long) => (
                long.get("source").map(scalar).unwrap_or_default(),
                long.get("target").map(scalar),
            ),
            other => (scalar(other), None),
        };
        let Some(declared) = cx.top_secrets.get(&source_name).and_then(Value::as_object) else {
            errors.push(cx.source.value_note(
                &at,
                format!("secret `{source_name}` is not declared under the top-level `secrets`"),
            ));
            continue;
        };
        let target = target.unwrap_or_else(|| source_name.clone());
        let target_name = Path::new(&target)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or(target.clone());
        let variable: String = target_name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        let secret = if let Some(file) = declared.get("file").and_then(Value::as_str) {
            let path = cx.target.relative(&super::absolute(&cx.dir.join(file)));
            json!({"name": source_name, "file": path.display().to_string()})
        } else if let Some(var) = declared.get("environment").and_then(Value::as_str) {
            json!({"name": source_name, "env": var})
        } else {
            import.unmapped.push(cx.source.note(
                &at,
                format!(
                    "secret `{source_name}` is external or has no `file`/`environment`: not mapped"
                ),
            ));
            continue;
        };
        import.mapped.push(cx.source.note(&at, format!("secret `{source_name}` → variable `{variable}` (compose mounts it as the file /run/secrets/{target_name}; herder passes the value in the environment)")));
        out.push((variable, secret));
    }
    out
}
