//! `herder import procfile`: a Procfile (foreman, honcho) as herder manifests.
//!
//! Each `name: command` line is a service run by `/bin/sh -c` in the Procfile's folder,
//! with the variables of a `.env` beside it and `PORT` assigned as foreman does (the base
//! port, default 5000 or `PORT` from `.env`, plus 100 per process type in file order). A
//! `release` entry becomes a oneshot that every other entry waits for. Other lines
//! (comments, blank lines, anything that is not `name: command`) are ignored, as by foreman.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::draft::{child_names, environment};
use super::{Import, ImportError, Imported, Target, dotenv};
use crate::convert::note::Note;
use crate::manifest::Location;

/// foreman's and honcho's first port.
pub const DEFAULT_BASE_PORT: u16 = 5000;

/// Most entries a Procfile may have.
pub const MAX_ENTRIES: usize = 500;

/// Imports the Procfile `file` with contents `text`; `base_port` unless `.env` sets `PORT`.
pub fn import(
    file: &Path,
    text: &str,
    base_port: u16,
    target: &Target,
) -> Result<Import, ImportError> {
    let fail = |notes: Vec<Note>| ImportError {
        file: file.to_path_buf(),
        notes,
    };
    let at = |line: usize, column: usize, length: usize| Location {
        line: u32::try_from(line + 1).unwrap_or(u32::MAX),
        column: u32::try_from(column + 1).unwrap_or(u32::MAX),
        length: u32::try_from(length.max(1)).unwrap_or(u32::MAX),
    };
    let mut import = Import::default();
    let mut entries: Vec<(String, String, Note)> = Vec::new();
    let mut errors = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let entry = line.split_once(':').and_then(|(name, command)| {
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            let command = command.trim();
            (valid && !command.is_empty()).then(|| (name.to_owned(), command.to_owned()))
        });
        let Some((name, command)) = entry else {
            import.unmapped.push(Note::new(
                file,
                at(index, 0, line.chars().count()),
                "",
                "not a `name: command` line: ignored (as by foreman)",
            ));
            continue;
        };
        let note = Note::new(
            file,
            at(index, 0, name.len()),
            "",
            format!("process type `{name}`"),
        );
        if entries.iter().any(|(other, _, _)| *other == name) {
            errors.push(Note {
                message: format!("process type `{name}` is declared twice"),
                ..note
            });
            continue;
        }
        if entries.len() == MAX_ENTRIES {
            errors.push(Note {
                message: format!("more than {MAX_ENTRIES} entries"),
                ..note
            });
            break;
        }
        entries.push((name, command, note));
    }
    if !errors.is_empty() {
        return Err(fail(errors));
    }
    if entries.is_empty() {
        return Err(fail(vec![Note::new(
            file,
            Location::START,
            "",
            "no `name: command` line: nothing to import",
        )]));
    }
    let services: Vec<(String, Note)> = entries
        .iter()
        .map(|(name, _, note)| (name.clone(), note.clone()))
        .collect();
    let names = child_names(&services, &mut import.mapped).map_err(fail)?;
    let dir = file
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let env_file = dir.join(".env");
    let dot_env = dotenv::read(&env_file)?.unwrap_or_default();
    let base = match dot_env.iter().rev().find(|(k, _)| k == "PORT") {
        Some((_, port)) => match port.parse::<u16>() {
            Ok(port) => port,
            Err(_) => {
                return Err(fail(vec![Note::new(
                    &env_file,
                    Location::START,
                    "",
                    "PORT is not a port number",
                )]));
            }
        },
        None => base_port,
    };
    if !dot_env.is_empty() {
        import.mapped.push(Note::new(
            &env_file,
            Location::START,
            "",
            format!(
                "{} variable{} from .env → environment of every process",
                dot_env.len(),
                if dot_env.len() == 1 { "" } else { "s" }
            ),
        ));
    }
    let working_dir = target.relative(&super::absolute(&dir));
    let release = names.get("release").cloned();
    for (index, (original, command, note)) in entries.iter().enumerate() {
        let name = names
            .get(original)
            .cloned()
            .unwrap_or_else(|| original.clone());
        let port = u32::from(base) + 100 * u32::try_from(index).unwrap_or(u32::MAX);
        let mut vars: Vec<(String, String)> = dot_env
            .iter()
            .filter(|(k, _)| k != "PORT")
            .cloned()
            .collect();
        if let Ok(port) = u16::try_from(port) {
            vars.push(("PORT".into(), port.to_string()));
            import.mapped.push(Note {
                message: format!(
                    "`{original}`: PORT={port} (foreman: base port + 100 per process type)"
                ),
                ..note.clone()
            });
        } else {
            import.unmapped.push(Note {
                message: format!("`{original}`: PORT would be {port}, above 65535: not set"),
                ..note.clone()
            });
        }
        let mut manifest = json!({
            "name": name,
            "command": command,
            "working_dir": working_dir.display().to_string(),
        });
        if let Some(env) = environment(&vars, &[]) {
            manifest["environment"] = env;
        }
        if Some(&name) == release.as_ref() {
            manifest["kind"] = Value::from("oneshot");
            import.mapped.push(Note {
                message: "`release` → a oneshot every other process waits for".into(),
                ..note.clone()
            });
        } else {
            manifest["restart"] = Value::from("always");
            import.mapped.push(Note { message: format!("`{original}` → a service restarted whenever it exits (foreman stops everything instead)"), ..note.clone() });
            if let Some(release) = &release {
                manifest["dependencies"] = json!([{"name": release, "condition": "completed"}]);
            }
        }
        import.manifests.push(Imported {
            name,
            manifest,
            origin: note.clone(),
        });
    }
    import.manifests.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(import)
}
