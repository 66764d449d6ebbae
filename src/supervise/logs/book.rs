//! The log book: every child's captured output, queryable by name.
//!
//! Each child has one [`ChildLog`] that outlives its incarnations. Every captured line gets the next
//! per-child sequence number and goes, under one short lock, to (a) a bounded in-memory ring for `herder logs`,
//! (b) the rotated file `<state_dir>/logs/<name>.log`, (c) the foreground sink if `herder up` prints output, and
//! (d) a broadcast channel for followers (`logs -f`). The ring and the broadcast channel are allocated lazily, so
//! an idle child costs a few hundred bytes. File and ring receive every line; only a follower that lags can miss
//! lines, and it is told how many ([`LogItem::Dropped`]).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::sync::broadcast;

use super::foreground::ForegroundSink;
use super::rotate::{RotatingFile, Rotation};

/// Lines kept in memory per child.
pub const RING_LINES: usize = 1000;
/// Bytes of text kept in memory per child (the ring drops its oldest lines beyond either bound).
pub const RING_BYTES: usize = 1 << 20;
/// Lines a follower may fall behind before it misses some.
pub const FOLLOW_BUFFER: usize = 1024;

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// One captured line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    /// Monotonic per child, across incarnations, starting at 1.
    pub seq: u64,
    /// The incarnation that printed it.
    pub incarnation: u64,
    /// Its pipe.
    pub stream: Stream,
    /// When it was read.
    pub at: SystemTime,
    /// The text, without the newline (invalid UTF-8 replaced).
    pub text: Arc<str>,
}

/// What a follower receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogItem {
    /// The next line.
    Line(LogLine),
    /// The follower fell behind and this many lines were skipped (they are in the file and, if recent, the ring).
    Dropped(u64),
}

/// A live subscription to one child's output.
#[derive(Debug)]
pub struct LogFollower {
    rx: broadcast::Receiver<LogLine>,
}

impl LogFollower {
    /// The next item; `None` once the child's log is removed from the book.
    pub async fn recv(&mut self) -> Option<LogItem> {
        match self.rx.recv().await {
            Ok(line) => Some(LogItem::Line(line)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(LogItem::Dropped(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

#[derive(Debug)]
struct Inner {
    next_seq: u64,
    ring: VecDeque<LogLine>,
    ring_bytes: usize,
    followers: Option<broadcast::Sender<LogLine>>,
    file: Option<RotatingFile>,
    file_failed: bool,
}

/// The captured output of one child.
#[derive(Debug)]
pub struct ChildLog {
    name: String,
    foreground: Option<ForegroundSink>,
    inner: Mutex<Inner>,
}

impl ChildLog {
    fn new(name: String, file: Option<RotatingFile>, foreground: Option<ForegroundSink>) -> Self {
        Self {
            name,
            foreground,
            inner: Mutex::new(Inner {
                next_seq: 1,
                ring: VecDeque::new(),
                ring_bytes: 0,
                followers: None,
                file,
                file_failed: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves `Inner` consistent even if a write panics midway.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The child's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Changes the rotation of the log file (in-place update of `logs`).
    pub fn set_rotation(&self, rotation: Rotation) {
        if let Some(f) = self.lock().file.as_mut() {
            f.set_rotation(rotation);
        }
    }

    /// Records a batch of lines from one pipe.
    pub fn append(&self, incarnation: u64, stream: Stream, lines: Vec<String>) {
        if lines.is_empty() {
            return;
        }
        if let Some(fg) = &self.foreground {
            fg.print(&self.name, lines.iter().map(String::as_str));
        }
        let at = SystemTime::now();
        let mut inner = self.lock();
        let mut file_buf = String::new();
        let stamp = humantime::format_rfc3339_millis(at).to_string();
        for text in lines {
            if inner.file.is_some() {
                file_buf.push_str(&stamp);
                file_buf.push(' ');
                file_buf.push_str(stream.as_str());
                file_buf.push(' ');
                file_buf.push_str(&text);
                file_buf.push('\n');
            }
            let line = LogLine {
                seq: inner.next_seq,
                incarnation,
                stream,
                at,
                text: Arc::from(text),
            };
            inner.next_seq += 1;
            if let Some(tx) = &inner.followers {
                // No receiver left is fine: the sender is dropped below.
                let _ = tx.send(line.clone());
            }
            inner.ring_bytes += line.text.len();
            inner.ring.push_back(line);
            while inner.ring.len() > RING_LINES || inner.ring_bytes > RING_BYTES {
                match inner.ring.pop_front() {
                    Some(old) => inner.ring_bytes -= old.text.len(),
                    None => break,
                }
            }
        }
        if inner
            .followers
            .as_ref()
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            inner.followers = None;
        }
        let inner = &mut *inner;
        if let Some(file) = inner.file.as_mut() {
            match file.write(file_buf.as_bytes()) {
                Ok(()) => inner.file_failed = false,
                Err(e) => {
                    if !inner.file_failed {
                        tracing::warn!(child = %self.name, path = %file.path().display(), error = %e,
                            "cannot write the log file");
                    }
                    inner.file_failed = true;
                }
            }
        }
    }

    /// The last `n` lines in memory, oldest first.
    pub fn tail(&self, n: usize) -> Vec<LogLine> {
        let inner = self.lock();
        let skip = inner.ring.len().saturating_sub(n);
        inner.ring.iter().skip(skip).cloned().collect()
    }

    /// The lines in memory after `seq` (for a resuming follower), then a subscription to every later line, with
    /// no gap and no duplicate between the two.
    pub fn follow(&self, after_seq: Option<u64>) -> (Vec<LogLine>, LogFollower) {
        let mut inner = self.lock();
        let backlog = match after_seq {
            Some(seq) => inner.ring.iter().filter(|l| l.seq > seq).cloned().collect(),
            None => Vec::new(),
        };
        let rx = match &inner.followers {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(FOLLOW_BUFFER);
                inner.followers = Some(tx);
                rx
            }
        };
        (backlog, LogFollower { rx })
    }

    /// The sequence number the next line will get.
    pub fn next_seq(&self) -> u64 {
        self.lock().next_seq
    }
}

/// Every child's log, by name. Cheap to share (`Arc<LogBook>`); the API queries it, actors write to it.
#[derive(Debug, Default)]
pub struct LogBook {
    dir: Option<PathBuf>,
    foreground: Option<ForegroundSink>,
    children: Mutex<HashMap<String, Arc<ChildLog>>>,
}

impl LogBook {
    /// A book writing files under `logs_dir` (e.g. `<state_dir>/logs`), or only to memory with `None`.
    pub fn new(logs_dir: Option<PathBuf>) -> Self {
        Self {
            dir: logs_dir,
            foreground: None,
            children: Mutex::new(HashMap::new()),
        }
    }

    /// Also prints every line to herder's standard output.
    pub fn with_foreground(mut self, sink: ForegroundSink) -> Self {
        self.foreground = Some(sink);
        self
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<ChildLog>>> {
        // Single insert/remove/get calls cannot leave the map inconsistent.
        self.children.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The log of `name`, created on first use with `rotation`.
    pub fn child(&self, name: &str, rotation: Rotation) -> Arc<ChildLog> {
        let mut map = self.map();
        if let Some(log) = map.get(name) {
            return Arc::clone(log);
        }
        let file = self
            .dir
            .as_ref()
            .map(|d| RotatingFile::new(d.join(format!("{name}.log")), rotation));
        let log = Arc::new(ChildLog::new(
            name.to_string(),
            file,
            self.foreground.clone(),
        ));
        map.insert(name.to_string(), Arc::clone(&log));
        log
    }

    /// The log of `name`, if it exists.
    pub fn get(&self, name: &str) -> Option<Arc<ChildLog>> {
        self.map().get(name).cloned()
    }

    /// The last `n` lines of `name`.
    pub fn tail(&self, name: &str, n: usize) -> Option<Vec<LogLine>> {
        Some(self.get(name)?.tail(n))
    }

    /// Forgets `name` (its child was retired); its followers see the end of the stream.
    pub fn remove(&self, name: &str) {
        self.map().remove(name);
    }

    /// Names of every child with a log.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.map().keys().cloned().collect();
        names.sort();
        names
    }
}
