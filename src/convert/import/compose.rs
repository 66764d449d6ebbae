//! `herder import compose`: the services of a Compose file (the Compose Specification, the
//! format `docker compose` reads) as herder manifests.
//!
//! Variables are interpolated first (`${VAR}`, `${VAR:-default}`, `${VAR:?error}`, …, from
//! the environment, then a `.env` beside the file), YAML merge keys (`<<: *anchor`) are
//! resolved, services are filtered by profile, named as DNS labels, and mapped one by one
//! ([`super::compose_service`]). A service waited for with `service_completed_successfully`
//! becomes a oneshot.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::compose_service::{self, Context, Service};
use super::draft::{child_names, find_cycle};
use super::interpolate::interpolate;
use super::source::{Source, pointer};
use super::{Import, ImportError, Imported, Target, dotenv};
use crate::convert::note::Note;
use crate::manifest::suggest::did_you_mean;

/// Top-level keys of the Compose Specification.
const TOP_LEVEL: [&str; 9] = [
    "version", "name", "services", "networks", "volumes", "configs", "secrets", "include", "models",
];

/// What an import of a Compose file takes besides the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Profiles to enable (`--profile`); services without profiles are always imported.
    pub profiles: Vec<String>,
    /// The environment variables are interpolated from (before the `.env` file).
    pub environment: BTreeMap<String, String>,
}

/// Imports the Compose file `file` with contents `text`.
pub fn import(
    file: &Path,
    text: &str,
    options: &Options,
    target: &Target,
) -> Result<Import, ImportError> {
    let mut source = Source::parse(file, text)?;
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
            _ if key.starts_with("x-") => {}
            "services" | "secrets" => {}
            "version" => import.unmapped.push(source.note(&at, "`version` is obsolete in the Compose Specification: ignored")),
            "name" => import.unmapped.push(source.note(&at, "the project name has no herder equivalent (the directory names the instance): ignored")),
            "networks" | "volumes" | "configs" | "models" => import.unmapped.push(source.note(&at, format!("top-level `{key}`: herder runs processes on this host, without container {key}: not imported"))),
            "include" => import.unmapped.push(source.note(&at, "`include`: the included files are not imported (import each one)")),
            _ => {
                let hint = did_you_mean(key, TOP_LEVEL).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
                errors.push(source.note(&at, format!("unknown top-level key `{key}`{hint}")));
            }
        }
    }
    if !errors.is_empty() {
        return Err(fail(errors));
    }
    // Interpolation: the environment wins over `.env`, as in docker compose.
    let dir = file
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let dot_env = dotenv::read(&dir.join(".env"))?.unwrap_or_default();
    let lookup = |name: &str| {
        options.environment.get(name).cloned().or_else(|| {
            dot_env
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    };
    resolve_merges(&mut source.value);
    let mut errors = Vec::new();
    let mut value = std::mem::take(&mut source.value);
    interpolate_all(
        &mut value,
        &mut String::new(),
        &lookup,
        &source,
        &mut errors,
    );
    source.value = value;
    if !errors.is_empty() {
        return Err(fail(errors));
    }
    let Some(services) = source
        .value
        .get("services")
        .and_then(Value::as_object)
        .cloned()
    else {
        return Err(fail(vec![
            source.note("/services", "no `services` mapping: nothing to import"),
        ]));
    };
    let top_secrets = source
        .value
        .get("secrets")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    // Profiles.
    let mut active = Vec::new();
    let mut inactive = BTreeMap::new();
    for (name, service) in &services {
        let at = pointer(&["services", name]);
        if !service.is_object() {
            return Err(fail(vec![
                source.value_note(&at, format!("service `{name}` is not a mapping")),
            ]));
        }
        let profiles: Vec<&str> = service
            .get("profiles")
            .and_then(Value::as_array)
            .map(|p| p.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if profiles.is_empty()
            || profiles
                .iter()
                .any(|p| options.profiles.iter().any(|o| o == p))
        {
            active.push((name.clone(), source.note(&at, "")));
        } else {
            import.unmapped.push(source.note(&at, format!("service `{name}` is in profile {} only, which is not selected (--profile): not imported", profiles.join(", "))));
            inactive.insert(name.clone(), profiles.join(", "));
        }
    }
    if active.is_empty() {
        return Err(fail(vec![
            source.note("/services", "no service to import (check --profile)"),
        ]));
    }
    let names = child_names(&active, &mut import.mapped).map_err(fail)?;
    let context = Context {
        source: &source,
        names: &names,
        inactive: &inactive,
        top_secrets: &top_secrets,
        dir: &dir,
        target,
    };
    let mut drafts: BTreeMap<String, Service> = BTreeMap::new();
    let mut errors = Vec::new();
    for (original, _) in &active {
        match compose_service::map(&context, original, &mut import) {
            Ok(Some(service)) => {
                drafts.insert(service.name.clone(), service);
            }
            Ok(None) => {}
            Err(mut notes) => errors.append(&mut notes),
        }
    }
    if !errors.is_empty() {
        return Err(fail(errors));
    }
    finish(drafts, &source, &mut import).map_err(fail)?;
    Ok(import)
}

/// Dependencies on services that were not imported are dropped (with a note, or an error
/// when required); services others wait to complete become oneshots; cycles are errors.
fn finish(
    mut drafts: BTreeMap<String, Service>,
    source: &Source,
    import: &mut Import,
) -> Result<(), Vec<Note>> {
    let present: BTreeSet<String> = drafts.keys().cloned().collect();
    let mut completed: BTreeSet<String> = BTreeSet::new();
    let mut errors = Vec::new();
    for service in drafts.values_mut() {
        service.dependencies.retain(|dep| {
            if present.contains(&dep.name) {
                if dep.condition == "completed" {
                    completed.insert(dep.name.clone());
                }
                return true;
            }
            if dep.required {
                errors.push(source.note(&dep.pointer, format!("depends on `{}`, which is not imported (it has no command, or its profile is not selected); remove the dependency or mark it `required: false`", dep.original)));
            } else {
                import.unmapped.push(source.note(&dep.pointer, format!("optional dependency on `{}`, which is not imported: dropped", dep.original)));
            }
            false
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let graph: BTreeMap<String, Vec<String>> = drafts
        .iter()
        .map(|(name, s)| {
            (
                name.clone(),
                s.dependencies.iter().map(|d| d.name.clone()).collect(),
            )
        })
        .collect();
    if let Some(cycle) = find_cycle(&graph) {
        let first = drafts
            .get(&cycle[0])
            .map_or_else(|| "/services".to_owned(), |s| s.pointer.clone());
        return Err(vec![
            source.note(&first, format!("dependency cycle: {}", cycle.join(" → "))),
        ]);
    }
    for name in completed {
        if let Some(service) = drafts.get_mut(&name) {
            service.fields.insert("kind".into(), Value::from("oneshot"));
            import.mapped.push(source.note(
                &service.pointer,
                format!("`{name}` is waited for with service_completed_successfully: kind oneshot"),
            ));
        }
    }
    for (name, service) in drafts {
        let mut fields = service.fields;
        if !service.dependencies.is_empty() {
            let deps: Vec<Value> = service
                .dependencies
                .iter()
                .map(compose_service::Dependency::to_value)
                .collect();
            fields.insert("dependencies".into(), Value::Array(deps));
        }
        fields.insert("name".into(), Value::from(name.as_str()));
        import.manifests.push(Imported {
            name,
            manifest: Value::Object(fields),
            origin: source.note(&service.pointer, format!("service `{}`", service.original)),
        });
    }
    Ok(())
}

/// Resolves YAML merge keys (`<<: *base` or `<<: [*a, *b]`): keys of the merged maps that
/// the map does not set itself, earlier maps first.
fn resolve_merges(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(merged) = map.remove("<<") {
                let sources: Vec<Value> = match merged {
                    Value::Array(items) => items,
                    other => vec![other],
                };
                for source in sources {
                    if let Value::Object(source) = source {
                        for (key, item) in source {
                            map.entry(key).or_insert(item);
                        }
                    }
                }
            }
            for item in map.values_mut() {
                resolve_merges(item);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(resolve_merges),
        _ => {}
    }
}

/// Interpolates every string value (not keys) in place; errors at the value's location.
fn interpolate_all(
    value: &mut Value,
    at: &mut String,
    lookup: &dyn Fn(&str) -> Option<String>,
    source: &Source,
    errors: &mut Vec<Note>,
) {
    match value {
        Value::String(text) if text.contains('$') => match interpolate(text, lookup) {
            Ok(done) => *text = done,
            Err(message) => errors.push(source.value_note(at, format!("interpolation: {message}"))),
        },
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let len = at.len();
                at.push_str(&pointer(&[&key]));
                if let Some(item) = map.get_mut(&key) {
                    interpolate_all(item, at, lookup, source, errors);
                }
                at.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = at.len();
                at.push_str(&format!("/{i}"));
                interpolate_all(item, at, lookup, source, errors);
                at.truncate(len);
            }
        }
        _ => {}
    }
}

/// Shared with the service mapping: a `Map` from pairs.
pub(super) fn object(pairs: Vec<(&str, Value)>) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}
