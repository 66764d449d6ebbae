//! `<state_dir>/children.json`: the live children, so that a herder killed with SIGKILL can clean up next time.
//!
//! Children get `PR_SET_PDEATHSIG(SIGKILL)`, but their descendants do not, and a child may reset it. So every live
//! child is recorded with its pid, its process group and its start time (`/proc/PID/stat` field 22); on start-up,
//! [`kill_leftovers`] kills each recorded group whose leader still has the recorded start time (a recycled pid
//! has another start time), and members of a group whose leader is gone if they started after it.
//!
//! Writes are coalesced by a writer thread, which gathers changes for [`GATHER`] after the first one before it
//! writes, and atomic (write a temporary file, then rename), so a burst of 500 spawns costs a handful of writes
//! and a crash never leaves a torn file. The file is not fsynced: it guards against herder being killed, which
//! leaves the page cache intact, not against power loss, which ends the children too.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use super::{os, proc};

/// One recorded child process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The child's name.
    pub name: String,
    /// Its pid.
    pub pid: i32,
    /// Its process group (equal to the pid).
    pub pgid: i32,
    /// `/proc/PID/stat` field 22.
    pub start_time: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FileContent {
    children: Vec<Entry>,
}

#[derive(Debug, Default)]
struct State {
    entries: BTreeMap<i32, Entry>,
    version: u64,
    written: u64,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    flushed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Single map operations cannot leave the state inconsistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The writer of the state file. Cheap to clone.
#[derive(Debug, Clone)]
pub struct StateFile {
    shared: Arc<Shared>,
}

impl StateFile {
    /// Starts the writer for `path` (usually `<state_dir>/children.json`) with an empty record.
    pub fn open(path: PathBuf) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            flushed: Condvar::new(),
        });
        let writer = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("herder-statefile".into())
            .spawn(move || write_loop(&path, &writer))?;
        let file = Self { shared };
        file.touch();
        Ok(file)
    }

    /// Records a live child.
    pub fn record(&self, name: &str, pid: i32, start_time: u64) {
        self.shared.lock().entries.insert(
            pid,
            Entry {
                name: name.into(),
                pid,
                pgid: pid,
                start_time,
            },
        );
        self.touch();
    }

    /// Forgets a child whose process group is gone.
    pub fn forget(&self, pid: i32) {
        if self.shared.lock().entries.remove(&pid).is_some() {
            self.touch();
        }
    }

    /// Blocks until every change made so far is on disk (or failed to be written). For shutdown and tests.
    pub fn flush(&self) {
        let mut st = self.shared.lock();
        let target = st.version;
        while st.written < target {
            st = self
                .shared
                .flushed
                .wait(st)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    fn touch(&self) {
        self.shared.lock().version += 1;
        self.shared.changed.notify_one();
    }
}

/// How long the writer gathers further changes after the first one.
pub const GATHER: std::time::Duration = std::time::Duration::from_millis(20);

fn write_loop(path: &Path, shared: &Shared) {
    let mut written = 0u64;
    loop {
        {
            let mut st = shared.lock();
            while st.version == written {
                st = shared.changed.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        }
        std::thread::sleep(GATHER);
        let content = {
            let st = shared.lock();
            written = st.version;
            FileContent {
                children: st.entries.values().cloned().collect(),
            }
        };
        if let Err(e) = write_atomically(path, &content) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the state file");
        }
        shared.lock().written = written;
        shared.flushed.notify_all();
    }
}

fn write_atomically(path: &Path, content: &FileContent) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let json = serde_json::to_vec(content).map_err(io::Error::other)?;
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&json)?;
    std::fs::rename(&tmp, path)
}

/// A process group found alive from a previous run and killed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// The recorded entry.
    pub entry: Entry,
    /// How many processes were signalled.
    pub killed: usize,
}

/// Kills whatever a previous herder left running according to the state file at `path`, then removes the file.
/// A missing file means nothing was left.
pub fn kill_leftovers(path: &Path) -> io::Result<Vec<Leftover>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let content: FileContent =
        serde_json::from_str(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let mut found = Vec::new();
    let mut stats: Option<Vec<(i32, proc::ProcStat)>> = None;
    for entry in content.children {
        let leader_matches = proc::start_time(entry.pid) == Some(entry.start_time);
        let killed = if leader_matches {
            usize::from(os::signal_group(entry.pgid, Signal::SIGKILL).unwrap_or(false))
        } else {
            // The leader is gone (or its pid recycled): kill the members of its session that started after it.
            let all = stats.get_or_insert_with(proc::all_stats);
            let mut n = 0;
            for (pid, st) in all.iter() {
                if st.pgrp == entry.pgid
                    && st.session == entry.pgid
                    && st.start_time >= entry.start_time
                {
                    // The process may have exited meanwhile; nothing else to do.
                    let _ =
                        nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), Signal::SIGKILL);
                    n += 1;
                }
            }
            n
        };
        if killed > 0 {
            tracing::warn!(child = %entry.name, pid = entry.pid, "killed a process group left by a previous herder");
            found.push(Leftover { entry, killed });
        }
    }
    std::fs::remove_file(path).or_else(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            Ok(())
        } else {
            Err(e)
        }
    })?;
    Ok(found)
}
