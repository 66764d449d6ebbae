//! One child incarnation's cgroups: `herder-<instance>/<child>-<incarnation>` in every hierarchy herder uses.
//!
//! The directories are made before the first spawn; the spawner opens each one's `cgroup.procs` and the new
//! process writes `0` to every descriptor before it executes (see [`crate::supervise::os`]), so nothing it forks
//! can start outside. Every run of the incarnation (restarts) reuses them; the actor removes them once the
//! incarnation ends and they are empty.
//!
//! Killing the whole tree: `cgroup.kill` where the kernel has it (Linux ≥ 5.14); otherwise freeze, SIGKILL every
//! member, thaw. Freezing first stops a fork bomb from outrunning the list of pids.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::detect::V1;
use super::layout::{Tree, Unified};
use crate::supervise::os;

/// Why a child's cgroup could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot create cgroup `{}`", .path.display())]
pub struct CreateError {
    /// The directory.
    pub path: PathBuf,
    /// The OS error (`EACCES`, `EROFS`, `EAGAIN` past `cgroup.max.descendants`, ...).
    #[source]
    pub source: io::Error,
}

/// A cgroup that would not empty in time.
#[derive(Debug, thiserror::Error)]
#[error("cgroup `{}` did not empty: {source}", .path.display())]
pub struct RemoveError {
    /// The directory.
    pub path: PathBuf,
    /// The last `rmdir` error.
    #[source]
    pub source: io::Error,
}

/// How long [`Dirs::remove_when_empty`] waits for the members of a killed cgroup to exit.
pub const REMOVE_WAIT: Duration = Duration::from_secs(2);

/// The directories of one cgroup across hierarchies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dirs {
    /// The cgroup2 directory.
    pub unified: Option<PathBuf>,
    /// `cgroup.kill` is available in the cgroup2 directory.
    pub kill_file: bool,
    /// `cgroup.freeze` is available in the cgroup2 directory.
    pub freeze_file: bool,
    /// The v1 directory per controller (`cpu` and `cpuacct` may share one).
    pub v1: BTreeMap<V1, PathBuf>,
}

impl Dirs {
    /// Recognises directories found on disk: the one under the v2 base is the v2 one, the others are told apart
    /// by their controller files.
    pub fn from_paths(paths: Vec<PathBuf>, unified: Option<&Unified>) -> Self {
        let mut dirs = Dirs::default();
        for path in paths {
            if let Some(u) = unified
                && path.starts_with(&u.base)
            {
                dirs.kill_file = u.kill;
                dirs.freeze_file = u.freeze;
                dirs.unified = Some(path);
                continue;
            }
            for (controller, file) in [
                (V1::Memory, "memory.limit_in_bytes"),
                (V1::Cpu, "cpu.cfs_quota_us"),
                (V1::Cpuacct, "cpuacct.usage"),
                (V1::Pids, "pids.max"),
                (V1::Freezer, "freezer.state"),
            ] {
                if path.join(file).exists() {
                    dirs.v1.insert(controller, path.clone());
                }
            }
        }
        dirs
    }

    /// Every distinct directory.
    pub fn all(&self) -> Vec<&Path> {
        let mut all: Vec<&Path> = self.unified.iter().map(PathBuf::as_path).collect();
        for dir in self.v1.values() {
            if !all.contains(&dir.as_path()) {
                all.push(dir);
            }
        }
        all
    }

    /// The directory that lists the members: the v2 one, else any v1 one.
    fn members_dir(&self) -> Option<&Path> {
        self.unified
            .as_deref()
            .or_else(|| self.v1.values().next().map(PathBuf::as_path))
    }

    /// The pids of every member process.
    pub fn pids(&self) -> Vec<i32> {
        self.members_dir()
            .and_then(|dir| std::fs::read_to_string(dir.join("cgroup.procs")).ok())
            .map(|text| text.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Whether any process is inside (`populated 1` in v2's `cgroup.events`, else a non-empty member list).
    pub fn is_populated(&self) -> bool {
        if let Some(dir) = &self.unified
            && let Ok(events) = std::fs::read_to_string(dir.join("cgroup.events"))
        {
            return super::usage::keyed(&events, "populated") == Some(1);
        }
        !self.pids().is_empty()
    }

    /// Whether the tree can be frozen.
    pub fn can_freeze(&self) -> bool {
        (self.unified.is_some() && self.freeze_file) || self.v1.contains_key(&V1::Freezer)
    }

    /// Freezes (`true`) or thaws every member, escapees of the process group included.
    pub fn set_frozen(&self, frozen: bool) -> io::Result<()> {
        if let Some(dir) = &self.unified
            && self.freeze_file
        {
            return std::fs::write(dir.join("cgroup.freeze"), if frozen { "1" } else { "0" });
        }
        match self.v1.get(&V1::Freezer) {
            Some(dir) => std::fs::write(
                dir.join("freezer.state"),
                if frozen { "FROZEN" } else { "THAWED" },
            ),
            None => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "no freezer for this cgroup",
            )),
        }
    }

    /// Sends `signal` to every member process. Returns how many were signalled.
    pub fn signal_all(&self, signal: Signal) -> usize {
        self.pids()
            .into_iter()
            .filter(|&pid| os::signal_process(pid, signal).unwrap_or(false))
            .count()
    }

    /// Kills every member at once: `cgroup.kill`, else freeze, SIGKILL each member, thaw.
    pub fn kill(&self) {
        if let Some(dir) = &self.unified
            && self.kill_file
            && std::fs::write(dir.join("cgroup.kill"), "1").is_ok()
        {
            return;
        }
        let frozen = self.can_freeze() && self.set_frozen(true).is_ok();
        // Frozen, the list cannot grow; without a freezer, a few rounds catch what forked meanwhile.
        for _ in 0..if frozen { 1 } else { 8 } {
            if self.signal_all(Signal::SIGKILL) == 0 {
                break;
            }
        }
        if frozen {
            // Thawed, the killed members act on their pending SIGKILL and exit.
            let _ = self.set_frozen(false);
        }
    }

    /// Removes every directory, waiting up to [`REMOVE_WAIT`] for members that are still exiting.
    pub fn remove_when_empty(&self) -> Result<(), RemoveError> {
        let deadline = Instant::now() + REMOVE_WAIT;
        for dir in self.all() {
            loop {
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e)
                        if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline =>
                    {
                        // Killed members leave within microseconds; this is bounded by REMOVE_WAIT.
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(source) => {
                        return Err(RemoveError {
                            path: dir.to_path_buf(),
                            source,
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

/// The cgroups of one child incarnation.
#[derive(Debug)]
pub struct ChildCgroup {
    /// Its directories.
    pub dirs: Dirs,
    /// The v2 controllers enabled for it.
    pub v2_controllers: Vec<String>,
}

impl ChildCgroup {
    /// Creates `<child>-<incarnation>` in every hierarchy of `tree`. On failure nothing is left behind.
    pub fn create(tree: &Tree, child: &str, incarnation: u64) -> Result<Self, CreateError> {
        let name = format!("{child}-{incarnation}");
        let mut dirs = Dirs::default();
        let mut made: Vec<PathBuf> = Vec::new();
        let mut make = |path: PathBuf| -> Result<PathBuf, CreateError> {
            if made.contains(&path) {
                return Ok(path);
            }
            match std::fs::create_dir(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(source) => {
                    for dir in made.iter().rev() {
                        // Empty and just made: removal fails only if someone else removed it first.
                        let _ = std::fs::remove_dir(dir);
                    }
                    return Err(CreateError { path, source });
                }
            }
            made.push(path.clone());
            Ok(path)
        };
        if let Some(u) = &tree.unified {
            dirs.unified = Some(make(u.base.join(&name))?);
            dirs.kill_file = u.kill;
            dirs.freeze_file = u.freeze;
        }
        for (controller, base) in &tree.v1 {
            if tree.unified.is_some() && matches!(controller, V1::Freezer | V1::Cpuacct) {
                // cgroup2 freezes and counts CPU time; these would only cost a directory per child.
                continue;
            }
            dirs.v1.insert(*controller, make(base.join(&name))?);
        }
        Ok(Self {
            dirs,
            v2_controllers: tree
                .unified
                .as_ref()
                .map(|u| u.controllers.clone())
                .unwrap_or_default(),
        })
    }

    /// Whether the v2 `controller` applies to this cgroup.
    pub fn v2_has(&self, controller: &str) -> bool {
        self.v2_controllers.iter().any(|c| c == controller)
    }

    /// One open `cgroup.procs` per directory, for the spawner: the new process writes `0` to each before it
    /// executes.
    pub fn procs_files(&self) -> io::Result<Vec<OwnedFd>> {
        self.dirs
            .all()
            .into_iter()
            .map(|dir| {
                let file = OpenOptions::new()
                    .write(true)
                    .open(dir.join("cgroup.procs"))?;
                os::above_stdio(OwnedFd::from(file))
            })
            .collect()
    }
}
