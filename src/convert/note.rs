//! A located remark about a translation: something that could not be carried over, or (in
//! an import summary) something that was.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::manifest::{Location, ManifestDoc};

/// One remark about a translation, at the source field it concerns.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Note {
    /// The source file.
    pub file: PathBuf,
    /// Where the field is in the file.
    pub location: Location,
    /// JSON pointer of the field in its document (`""` for the whole document).
    pub pointer: String,
    /// What happened to it, a lowercase sentence fragment. Never holds a secret value.
    pub message: String,
}

impl Note {
    /// A note at `location` of `file`.
    pub fn new(
        file: &Path,
        location: Location,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.to_path_buf(),
            location,
            pointer: pointer.into(),
            message: message.into(),
        }
    }

    /// A note at the field `pointer` of a manifest: at its key when the field is written,
    /// else at the nearest enclosing field that is.
    pub fn at_field(doc: &ManifestDoc, pointer: &str, message: impl Into<String>) -> Self {
        Self::new(&doc.file, doc.spans.key(pointer), pointer, message)
    }
}

impl Note {
    /// `file:line:col: <label>: message [pointer]`, the form compilers use.
    pub fn summary(&self, label: &str) -> String {
        let mut line = format!(
            "{}:{}:{}: {label}: {}",
            self.file.display(),
            self.location.line,
            self.location.column,
            self.message
        );
        if !self.pointer.is_empty() {
            line.push_str(&format!(" [{}]", self.pointer));
        }
        line
    }
}

/// `file:line:col: message [pointer]`.
impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.location.line,
            self.location.column,
            self.message
        )?;
        if !self.pointer.is_empty() {
            write!(f, " [{}]", self.pointer)?;
        }
        Ok(())
    }
}
