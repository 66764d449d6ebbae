//! Writing an import: each manifest rendered with the schema modeline and a comment naming
//! its source, checked by herder's own validation as one directory, then written — all or
//! nothing, and never over an existing file unless forced.

use std::path::{Path, PathBuf};

use super::{Import, KEY_ORDER};
use crate::convert::yaml;
use crate::manifest::{Code, Diagnostic, ManifestDoc, check_set, parse_file, schema_text};

/// The schema file written beside the manifests, which their modeline names.
pub const SCHEMA_FILE: &str = "herder.schema.json";

/// Why nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Files that exist already (and `--force` was not given).
    #[error("{} already exist{} (--force overwrites): {}", .0.len(), if .0.len() == 1 { "s" } else { "" }, list(.0))]
    Exists(Vec<PathBuf>),
    /// herder rejects what the import produced: a bug in the importer.
    #[error("the imported manifests do not pass validation (a bug in herder): {}", .0.iter().map(Diagnostic::summary).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Diagnostic>),
    /// The directory or a file could not be written.
    #[error("cannot write {}", .path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One rendered manifest file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// Where it goes.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
}

/// The files of `import` in `dir`: one `<name>.yaml` per manifest, each starting with the
/// schema modeline and the `file:line` it was imported from by `command`.
pub fn render(import: &Import, dir: &Path, command: &str) -> Vec<Rendered> {
    import
        .manifests
        .iter()
        .map(|imported| {
            let origin = &imported.origin;
            let mut text = format!(
                "# yaml-language-server: $schema={SCHEMA_FILE}\n# Imported by `{command}` from {}:{}{}.\n",
                origin.file.display(),
                origin.location.line,
                if origin.message.is_empty() { String::new() } else { format!(" ({})", origin.message) },
            );
            text.push_str(&yaml::document(&imported.manifest, KEY_ORDER));
            Rendered { path: dir.join(format!("{}.yaml", imported.name)), text }
        })
        .collect()
}

/// Checks the rendered files as herder would load them. Errors are a bug in the importer,
/// except a secret that cannot be read now (it may be set where herder runs): those come
/// back as warnings.
pub fn check(files: &[Rendered]) -> Result<Vec<Diagnostic>, WriteError> {
    let mut diagnostics = Vec::new();
    let mut docs: Vec<ManifestDoc> = Vec::new();
    for file in files {
        let parsed = parse_file(&file.path, file.text.as_bytes());
        diagnostics.extend(parsed.diagnostics);
        docs.extend(parsed.docs);
    }
    diagnostics.extend(check_set(&docs));
    let (secrets, errors): (Vec<Diagnostic>, Vec<Diagnostic>) = diagnostics
        .into_iter()
        .partition(|d| d.code == Code::Secret || !d.is_error());
    if !errors.is_empty() {
        return Err(WriteError::Invalid(errors));
    }
    Ok(secrets.into_iter().map(Diagnostic::warning).collect())
}

/// Writes the files and the schema beside them into `dir` (created if needed). Nothing is
/// written when any file exists already, unless `force`.
pub fn write(files: &[Rendered], dir: &Path, force: bool) -> Result<(), WriteError> {
    let schema = dir.join(SCHEMA_FILE);
    let schema_text = schema_text();
    if !force {
        let mut existing: Vec<PathBuf> = files
            .iter()
            .map(|f| f.path.clone())
            .filter(|p| p.exists())
            .collect();
        // The schema may stay when it is the same one.
        if schema.exists()
            && std::fs::read_to_string(&schema).ok().as_deref() != Some(schema_text.as_str())
        {
            existing.push(schema.clone());
        }
        if !existing.is_empty() {
            return Err(WriteError::Exists(existing));
        }
    }
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
        move |source| WriteError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    for (path, text) in files
        .iter()
        .map(|f| (&f.path, f.text.as_str()))
        .chain([(&schema, schema_text.as_str())])
    {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temporary = dir.join(format!(".{name}.tmp"));
        std::fs::write(&temporary, text).map_err(io(&temporary))?;
        std::fs::rename(&temporary, path).map_err(io(path))?;
    }
    Ok(())
}
