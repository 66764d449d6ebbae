//! Leftovers: the cgroups of a herder of the same instance that was killed with SIGKILL.
//!
//! Its children die with it (`PR_SET_PDEATHSIG`), but what they forked, and anything that reset the death
//! signal, may live on, and their cgroups stay behind. Every child cgroup is named after its child and
//! incarnation under `herder-<instance>/`, so the next start lists that directory in each hierarchy, kills what
//! is inside (the surest way to find leftovers: a process cannot leave its cgroup by forking or `setsid`) and
//! removes the directories.
//!
//! At a clean exit herder removes its `herder-<instance>` directories too ([`remove_bases`]): an instance that
//! never starts again (a test, a temporary directory) would otherwise leave them behind for good, and every
//! cgroup on the machine makes some kernel walks slower (`cpu` bandwidth updates visit them all).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::incarnation::Dirs;
use super::layout::{Tree, Unified};

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

/// Removes herder's own directories at a clean exit. The actors remove their children's cgroups as they end
/// (off the async threads), so the bases empty within moments: each is tried again every 5 ms for up to
/// `within`; what is still there then is killed and removed as [`remove_leftovers`] does at the next start.
pub fn remove_bases(tree: &Tree, within: Duration) -> Removed {
    let bases = tree.bases();
    let deadline = Instant::now() + within;
    let mut removed = Removed::default();
    loop {
        if bases.iter().all(|base| remove_dir(base).is_ok()) {
            return removed;
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    removed.merge(remove_leftovers(&bases, tree.unified.as_ref()));
    for base in &bases {
        if let Err(e) = remove_dir(base) {
            removed.failed.push(format!("{}: {e}", base.display()));
        }
    }
    removed
}

/// Removes `dir`; one already gone counts as removed.
fn remove_dir(dir: &Path) -> io::Result<()> {
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
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
