//! What the watcher publishes: one [`Generation`] per change of the desired set or of the
//! diagnostics.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::manifest::{DesiredSet, Diagnostic};

/// Where one manifest file stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status")]
pub enum FileStatus {
    /// Its current content is in force.
    Good,
    /// It has errors (its own, or cross-file errors its latest edit introduced): its current
    /// content is not applied, and its last good version stays in force if it ever had one.
    Invalid {
        /// A previous good version of the file is still in force.
        last_good_in_force: bool,
    },
    /// It is gone, or no longer declares some of its children, but that has not held long
    /// enough to be trusted (a save in progress): its last good version stays in force until
    /// a settled rescan confirms the removal.
    Settling,
    /// It is gone; its children leave the desired set in this generation. Reported once.
    Removed,
}

/// One published state of the manifest directory.
///
/// Each generation is built whole from a full rescan and replaces the previous one, so a
/// reader never sees a half-loaded directory. The reconciler only needs `desired` (it is
/// level-triggered); the rest is for status, events and logs.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    /// Increases by one with every published generation, from 1. Equal to `desired.generation`.
    pub number: u64,
    /// The children to run: every good file's manifests, and the last good version of files
    /// that are invalid or settling.
    pub desired: DesiredSet,
    /// Every current problem (errors and warnings), of files and of the watcher itself, sorted.
    pub diagnostics: Vec<Diagnostic>,
    /// The files whose content in force or status changed since the previous generation
    /// (every file in the first one), with their status.
    pub files: BTreeMap<PathBuf, FileStatus>,
}

impl Generation {
    /// The diagnostics that are errors (as opposed to warnings).
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }
}
