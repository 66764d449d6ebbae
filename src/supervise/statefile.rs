//! `<state_dir>/children.json`: the live children, so that a herder killed with SIGKILL can clean up next time.
//!
//! Children get `PR_SET_PDEATHSIG(SIGKILL)`, but their descendants do not, and a child may reset it. So every live
//! child is recorded with its pid, its process group and its start time (`/proc/PID/stat` field 22); on start-up,
//! [`kill_leftovers`] kills each recorded group whose leader still has the recorded start time (a recycled pid
//! has another start time), and members of a group whose leader is gone if they started after it.
//!
//! The file is a journal, one JSON object per line: `{"name":…,"pid":…,"pgid":…,"start_time":…}` records a live
//! child, `{"gone":PID}` forgets one. A writer thread gathers changes for [`GATHER`] after the first one and
//! appends them in one write, so a burst of 500 spawns costs a handful of small appends. Rewriting the whole
//! record atomically each time (a temporary file, then rename) cost a new inode and O(children) bytes per write,
//! which at start-up competed with the spawns for the CPU. Once the journal holds more than twice the live entries
//! (plus a margin), it is rewritten atomically with only those. A reader replays the lines and skips one that does
//! not parse: the last one, torn, when herder was killed during an append. The file is not fsynced: it guards
//! against herder being killed, which leaves the page cache intact, not against power loss, which ends the
//! children too.

use std::collections::BTreeMap;
use std::fs::File;
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

/// One line of the journal.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    /// A live child.
    Live(Entry),
    /// A child whose process group is gone, by pid.
    Gone {
        /// Its pid.
        gone: i32,
    },
    /// Every live child at once (what earlier versions wrote).
    All {
        /// The children.
        children: Vec<Entry>,
    },
}

#[derive(Debug, Default)]
struct State {
    entries: BTreeMap<i32, Entry>,
    /// Changes not yet appended, in order.
    pending: Vec<Line>,
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
        let entry = Entry {
            name: name.into(),
            pid,
            pgid: pid,
            start_time,
        };
        let mut st = self.shared.lock();
        st.entries.insert(pid, entry.clone());
        st.pending.push(Line::Live(entry));
        drop(st);
        self.touch();
    }

    /// Forgets a child whose process group is gone.
    pub fn forget(&self, pid: i32) {
        let mut st = self.shared.lock();
        if st.entries.remove(&pid).is_some() {
            st.pending.push(Line::Gone { gone: pid });
            drop(st);
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

/// Journal lines allowed beyond twice the live entries before the file is rewritten.
const SLACK_LINES: usize = 64;

/// The journal as the writer sees it.
struct Journal<'a> {
    path: &'a Path,
    /// Open for appending, once the file has been (re)written.
    file: Option<File>,
    /// Lines in the file.
    lines: usize,
}

impl Journal<'_> {
    /// Appends `changes`, or rewrites the file with the live entries only when appending would leave more than
    /// twice `live` lines (plus [`SLACK_LINES`]), when the file has not been written yet, or when appending failed.
    fn write(
        &mut self,
        changes: &[Line],
        live: usize,
        entries: impl FnOnce() -> Vec<Entry>,
    ) -> io::Result<()> {
        if let Some(file) = &mut self.file
            && self.lines + changes.len() <= 2 * live + SLACK_LINES
        {
            let mut text = Vec::new();
            for change in changes {
                serde_json::to_writer(&mut text, change).map_err(io::Error::other)?;
                text.push(b'\n');
            }
            match file.write_all(&text) {
                Ok(()) => {
                    self.lines += changes.len();
                    return Ok(());
                }
                // A partial append leaves a line that does not parse; the rewrite below replaces it.
                Err(e) => {
                    tracing::debug!(error = %e, "appending to the state file failed; rewriting it")
                }
            }
        }
        self.file = None;
        let entries = entries();
        self.file = Some(rewrite(self.path, &entries)?);
        self.lines = entries.len();
        Ok(())
    }
}

fn write_loop(path: &Path, shared: &Shared) {
    let mut journal = Journal {
        path,
        file: None,
        lines: 0,
    };
    let mut written = 0u64;
    loop {
        {
            let mut st = shared.lock();
            while st.version == written {
                st = shared.changed.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        }
        std::thread::sleep(GATHER);
        let (changes, live) = {
            let mut st = shared.lock();
            written = st.version;
            (std::mem::take(&mut st.pending), st.entries.len())
        };
        // Changes made meanwhile are in the entries and appended again next time: replaying is idempotent.
        let entries = || shared.lock().entries.values().cloned().collect();
        if let Err(e) = journal.write(&changes, live, entries) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the state file");
        }
        shared.lock().written = written;
        shared.flushed.notify_all();
    }
}

/// Writes `live` to a temporary file and renames it over `path`; returns it, open for appending.
fn rewrite(path: &Path, live: &[Entry]) -> io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut text = Vec::new();
    for entry in live {
        serde_json::to_writer(&mut text, entry).map_err(io::Error::other)?;
        text.push(b'\n');
    }
    let mut file = File::create(&tmp)?;
    file.write_all(&text)?;
    std::fs::rename(&tmp, path)?;
    Ok(file)
}

/// The live children recorded in the state file at `path`, by pid; an empty record when there is no file.
pub fn read(path: &Path) -> io::Result<Vec<Entry>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut live = BTreeMap::new();
    for line in text.lines() {
        // A line that does not parse was torn by a herder killed while appending it.
        match serde_json::from_str(line) {
            Ok(Line::Live(entry)) => {
                live.insert(entry.pid, entry);
            }
            Ok(Line::Gone { gone }) => {
                live.remove(&gone);
            }
            Ok(Line::All { children }) => {
                live.extend(children.into_iter().map(|entry| (entry.pid, entry)));
            }
            Err(_) => {}
        }
    }
    Ok(live.into_values().collect())
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
    let mut found = Vec::new();
    let mut stats: Option<Vec<(i32, proc::ProcStat)>> = None;
    for entry in read(path)? {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(path: &Path) -> Vec<(String, i32)> {
        read(path)
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.pid))
            .collect()
    }

    #[test]
    fn the_journal_replays_records_and_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("children.json");
        let file = StateFile::open(path.clone()).unwrap();
        file.record("a", 101, 1);
        file.record("b", 102, 2);
        file.flush();
        file.forget(101);
        file.record("c", 103, 3);
        file.flush();
        assert_eq!(
            entries(&path),
            [("b".to_owned(), 102), ("c".to_owned(), 103)]
        );
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_the_old_format_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("children.json");
        std::fs::write(
            &path,
            "{\"children\":[{\"name\":\"a\",\"pid\":7,\"pgid\":7,\"start_time\":1}]}\n\
             {\"name\":\"b\",\"pid\":8,\"pgid\":8,\"start_time\":2}\n{\"gone\":7}\n{\"name\":\"c\",\"pi",
        )
        .unwrap();
        assert_eq!(entries(&path), [("b".to_owned(), 8)]);
        assert!(read(&dir.path().join("absent.json")).unwrap().is_empty());
    }

    #[test]
    fn the_journal_is_rewritten_before_it_grows_past_twice_the_live_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("children.json");
        let file = StateFile::open(path.clone()).unwrap();
        file.record("keep", 1, 1);
        for pid in 2..400 {
            file.record("churn", pid, 1);
            file.forget(pid);
            if pid % 50 == 0 {
                file.flush();
            }
        }
        file.flush();
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(
            lines <= 2 + SLACK_LINES + 100,
            "{lines} lines for one live entry"
        );
        assert_eq!(entries(&path), [("keep".to_owned(), 1)]);
    }
}
