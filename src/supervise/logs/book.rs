//! The log book: every child's captured output, queryable by name.
//!
//! Each child has one [`ChildLog`] that outlives its incarnations. Every captured line (already redacted,
//! see [`super::redact`]) gets the next per-child sequence number and goes, under one short lock, to (a) a
//! bounded in-memory ring for `herder logs`, (b) a broadcast channel for followers (`logs -f`), (c) the
//! foreground sink if `herder up` prints output; then, outside the lock, the batch goes to (d) the writer
//! thread that appends it to the rotated file `<state_dir>/logs/<name>.log` ([`super::writer`]). The ring and
//! the broadcast channel are allocated lazily, so an idle child costs a few hundred bytes. The ring receives
//! every line; a follower that lags is skipped ahead and told how many lines it missed
//! ([`LogItem::Dropped`]); lines the file could not take are counted ([`ChildLog::health`]).
//!
//! # Memory bound
//!
//! Per child: the ring, at most [`RING_BYTES`] of text in at most [`RING_LINES`] lines; while someone
//! follows, the broadcast buffer of [`FOLLOW_BUFFER`] lines (shared with the ring where they overlap; at
//! most 16 KiB each); the pump's read buffer and unterminated line while it reads (about 64 KiB). Shared by
//! all children: the file writer's queue ([`super::writer::QUEUE_BYTES`], 8 MiB) and the foreground queue
//! ([`super::foreground::QUEUE_BYTES`], 1 MiB). So N flooding children without followers cost at most about
//! N × 1.2 MiB + 9 MiB, whatever their speed.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::broadcast;

use super::foreground::ForegroundSink;
use super::redact::Redactor;
use super::rotate::Rotation;
use super::writer::{Batch, FileHealth, FileSink, Reporter, Writer};

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
}

/// The captured output of one child.
#[derive(Debug)]
pub struct ChildLog {
    name: String,
    foreground: Option<ForegroundSink>,
    file: Option<(Arc<FileSink>, Arc<Writer>)>,
    redactor: RwLock<Arc<Redactor>>,
    inner: Mutex<Inner>,
}

impl ChildLog {
    fn new(
        name: String,
        file: Option<(Arc<FileSink>, Arc<Writer>)>,
        foreground: Option<ForegroundSink>,
    ) -> Self {
        Self {
            name,
            foreground,
            file,
            redactor: RwLock::default(),
            inner: Mutex::new(Inner {
                next_seq: 1,
                ring: VecDeque::new(),
                ring_bytes: 0,
                followers: None,
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
        if let Some((sink, _)) = &self.file {
            sink.set_rotation(rotation);
        }
    }

    /// The redactor the pump applies to every line now.
    pub fn redactor(&self) -> Arc<Redactor> {
        let current = self.redactor.read().unwrap_or_else(|p| p.into_inner());
        Arc::clone(&current)
    }

    /// Redacts `values` (the secret values of a run about to start) from now on, besides the
    /// values redacted so far. Called before the process is spawned, so its first line is
    /// redacted already.
    pub fn add_secrets<'a>(&self, values: impl IntoIterator<Item = &'a str>) {
        let mut current = self.redactor.write().unwrap_or_else(|p| p.into_inner());
        let mut values = values.into_iter().peekable();
        if values.peek().is_none() {
            return;
        }
        *current = Arc::new(current.with(values));
    }

    /// How the log file is doing; the default (nothing lost) without a file.
    pub fn health(&self) -> FileHealth {
        self.file
            .as_ref()
            .map(|(sink, _)| sink.health())
            .unwrap_or_default()
    }

    /// Records a batch of (redacted) lines from one pipe: ring, followers and foreground at once,
    /// then the file through the writer thread (waiting a bounded time for room in its queue).
    pub async fn record(&self, incarnation: u64, stream: Stream, lines: Vec<Arc<str>>) {
        if let Some(batch) = self.append(incarnation, stream, lines)
            && let Some((_, writer)) = &self.file
        {
            writer.send(batch).await;
        }
    }

    /// The synchronous part of [`ChildLog::record`]: returns the batch for the file.
    fn append(&self, incarnation: u64, stream: Stream, lines: Vec<Arc<str>>) -> Option<Batch> {
        if lines.is_empty() {
            return None;
        }
        if let Some(fg) = &self.foreground {
            fg.print(&self.name, lines.iter().map(|l| &**l));
        }
        let at = SystemTime::now();
        let mut file_buf = Vec::new();
        if self.file.is_some() {
            let stamp = humantime::format_rfc3339_millis(at).to_string();
            let size: usize = lines.iter().map(|l| l.len() + stamp.len() + 9).sum();
            file_buf.reserve_exact(size);
            for text in &lines {
                file_buf.extend_from_slice(stamp.as_bytes());
                file_buf.push(b' ');
                file_buf.extend_from_slice(stream.as_str().as_bytes());
                file_buf.push(b' ');
                file_buf.extend_from_slice(text.as_bytes());
                file_buf.push(b'\n');
            }
        }
        let count = lines.len() as u64;
        let mut inner = self.lock();
        for text in lines {
            let line = LogLine {
                seq: inner.next_seq,
                incarnation,
                stream,
                at,
                text,
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
        drop(inner);
        let (sink, _) = self.file.as_ref()?;
        Some(Batch {
            sink: Arc::clone(sink),
            bytes: file_buf,
            lines: count,
        })
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
    writer: Option<Arc<Writer>>,
    children: Mutex<HashMap<String, Arc<ChildLog>>>,
}

impl LogBook {
    /// A book writing files under `logs_dir` (e.g. `<state_dir>/logs`), or only to memory with `None`.
    pub fn new(logs_dir: Option<PathBuf>) -> Self {
        Self::with_reporter(logs_dir, None)
    }

    /// [`LogBook::new`], telling `reporter` when a child's file stops or resumes taking lines.
    pub fn with_reporter(logs_dir: Option<PathBuf>, reporter: Option<Reporter>) -> Self {
        let writer = logs_dir
            .as_ref()
            .and_then(|_| Writer::start(reporter))
            .map(Arc::new);
        Self {
            dir: logs_dir,
            foreground: None,
            writer,
            children: Mutex::new(HashMap::new()),
        }
    }

    /// Waits until every line recorded so far is in its file (or `timeout` passed); returns
    /// whether it is. For tests and benchmarks; herder itself never waits for the disk.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.writer.as_ref().is_none_or(|w| w.flush(timeout))
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
        let file = match (&self.dir, &self.writer) {
            (Some(dir), Some(writer)) => {
                let path = dir.join(format!("{name}.log"));
                let sink = FileSink::new(name.to_owned(), path, rotation);
                Some((Arc::new(sink), Arc::clone(writer)))
            }
            _ => None,
        };
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
