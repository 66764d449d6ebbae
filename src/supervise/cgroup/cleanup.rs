//! Leftovers: the cgroups of a herder of the same instance that was killed with SIGKILL.
//!
//! Its children die with it (`PR_SET_PDEATHSIG`), but what they forked, and anything that reset the death
//! signal, may live on, and their cgroups stay behind. Every child cgroup is named after its child and
//! incarnation under `herder-<instance>/`, so the next start lists that directory in each hierarchy, kills what
//! is inside (the surest way to find leftovers: a process cannot leave its cgroup by forking or `setsid`) and
//! removes the directories.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::incarnation::Dirs;
use super::layout::Unified;

/// What [`remove_leftovers`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// Child cgroups removed.
    pub cgroups: usize,
    /// Processes killed in them.
    pub processes: usize,
    /// Directories that could not be removed, with why.
    pub failed: Vec<String>,
}

impl Removed {
    /// Adds `other`'s counts.
    pub fn merge(&mut self, other: Removed) {
        self.cgroups += other.cgroups;
        self.processes += other.processes;
        self.failed.extend(other.failed);
    }
}

/// Kills and removes every child cgroup under `bases` (herder's `herder-<instance>` directories, one per
/// hierarchy), grouping the directories of one child across hierarchies.
pub fn remove_leftovers(bases: &[PathBuf], unified: Option<&Unified>) -> Removed {
    let mut by_name: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for base in bases {
        for dir in subdirectories(base) {
            if let Some(name) = dir.file_name().and_then(|n| n.to_str()) {
                by_name
                    .entry(name.to_owned())
                    .or_default()
                    .push(dir.clone());
            }
        }
    }
    let mut removed = Removed::default();
    for dirs in by_name.into_values() {
        let dirs = Dirs::from_paths(dirs, unified);
        removed.processes += dirs.pids().len();
        dirs.kill();
        match dirs.remove_when_empty() {
            Ok(()) => removed.cgroups += 1,
            Err(e) => removed.failed.push(e.to_string()),
        }
    }
    removed
}

fn subdirectories(base: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(base) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}
