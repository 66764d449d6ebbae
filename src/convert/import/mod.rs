//! Imports into herder manifests: docker compose ([`compose`]), process-compose
//! ([`process_compose`]) and Procfiles ([`procfile`]).
//!
//! An importer reads one source file (with the same YAML parser herder uses, so every
//! problem has a `file:line:col`) and returns one manifest document per service as JSON,
//! with a [`Note`] for every field it mapped and every one it could not. Bad input — a
//! syntax error, an unknown top-level key, names that collide once they are DNS labels, a
//! dependency cycle, an interpolation error — is an [`ImportError`] and nothing is written.
//! [`write`] renders the documents, checks them with herder's own validation and writes
//! them.

pub mod compose;
mod compose_fields;
mod compose_service;
pub mod dotenv;
mod draft;
pub mod interpolate;
pub mod process_compose;
mod process_compose_fields;
pub mod procfile;
pub mod source;
pub mod units;
pub mod write;

use std::path::PathBuf;

use serde_json::Value;

use super::note::Note;

pub use draft::KEY_ORDER;

/// One manifest an import produces.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    /// The child name (a DNS label), also the file name: `<name>.yaml`.
    pub name: String,
    /// The manifest document.
    pub manifest: Value,
    /// Where the service is declared in the source: the `file:line` comment of the file.
    pub origin: Note,
}

/// The result of an import.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Import {
    /// The manifests, sorted by name.
    pub manifests: Vec<Imported>,
    /// What was carried over, by source location.
    pub mapped: Vec<Note>,
    /// What was not (or not exactly), by source location.
    pub unmapped: Vec<Note>,
}

/// Why an import produced nothing: every problem found, by source location.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{} in {}", problems(.notes.len()), .file.display())]
pub struct ImportError {
    /// The source file.
    pub file: PathBuf,
    /// Each problem.
    pub notes: Vec<Note>,
}

fn problems(count: usize) -> String {
    if count == 1 {
        "1 problem".to_owned()
    } else {
        format!("{count} problems")
    }
}

/// Where the written manifests will live, for paths in them (working directories, secret
/// files), which are relative to the manifest's folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The output directory, absolute and lexically normal.
    pub dir: PathBuf,
}

impl Target {
    /// `path` (absolute) as written in a manifest in the output directory: relative when
    /// both share a root, else absolute.
    pub fn relative(&self, path: &std::path::Path) -> PathBuf {
        relative_path(&self.dir, path)
    }
}

/// `to` relative to `from` (both absolute and lexically normal).
pub fn relative_path(from: &std::path::Path, to: &std::path::Path) -> PathBuf {
    let from: Vec<_> = from.components().collect();
    let to_parts: Vec<_> = to.components().collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    if common == 0 {
        return to.to_path_buf();
    }
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for part in &to_parts[common..] {
        out.push(part);
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// `path` made absolute against the current directory, with `.` and `..` resolved
/// lexically (the output directory may not exist yet).
pub fn absolute(path: &std::path::Path) -> PathBuf {
    use std::path::Component;
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_path(Path::new("/p/herder.d"), Path::new("/p")),
            Path::new("..")
        );
        assert_eq!(
            relative_path(Path::new("/p/herder.d"), Path::new("/p/herder.d")),
            Path::new(".")
        );
        assert_eq!(
            relative_path(Path::new("/p/out"), Path::new("/p/secrets/a")),
            Path::new("../secrets/a")
        );
        assert_eq!(absolute(Path::new("/a/./b/../c")), Path::new("/a/c"));
    }
}
