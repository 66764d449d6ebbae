//! The log-file writer: one thread that writes every child's log file, fed by a
//! [`ByteQueue`] of batches, so no async worker ever waits on the disk.
//!
//! A batch is a run of whole, stamped lines of one child. The pump queues it after the
//! lines reached the ring and the followers, waiting at most [`PATIENCE`] for room (a slow
//! disk slows the flooding child down a little; a stalled one costs lines, never a blocked
//! child). Whatever cannot be written, because the queue stayed full or the write failed
//! (`ENOSPC`, `EIO`, a vanished directory), is counted per child as lost lines; the first
//! failure and the recovery are reported once each (an event, see [`Report`]), and the disk
//! is tried again every [`RETRY`], so writing resumes as soon as space is back.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::queue::ByteQueue;
use super::rotate::{RotatingFile, Rotation};

/// Bytes of stamped lines queued for the writer, for all children together.
pub const QUEUE_BYTES: usize = 8 << 20;

/// How long a pump waits for room in the queue before it counts a batch as lost.
pub const PATIENCE: Duration = Duration::from_secs(1);

/// While a file fails, how often the disk is tried again; batches in between count as lost
/// without a write. Bounds the failed/resumed events of a disk on the edge of full.
pub const RETRY: Duration = Duration::from_millis(250);

/// A change in a child's ability to write its log file, for the event log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Report {
    /// Writing failed; lines are being lost from now on.
    Failing {
        /// The child.
        child: String,
        /// The OS error.
        error: String,
    },
    /// Writing works again.
    Resumed {
        /// The child.
        child: String,
        /// Lines lost while it failed.
        lost_lines: u64,
    },
}

/// Receives the writer's [`Report`]s (on the writer thread).
pub type Reporter = Arc<dyn Fn(Report) + Send + Sync>;

/// How a child's log file is doing, for `herder status` and `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHealth {
    /// Captured lines that never reached the file (they were in the ring and the follow
    /// streams), since herder started.
    pub lost_lines: u64,
    /// The error writing fails with now; absent while writing works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One child's log file, shared by its [`ChildLog`](super::ChildLog) and the writer.
#[derive(Debug)]
pub(super) struct FileSink {
    name: String,
    /// Locked by the writer thread while it writes, and to change the rotation.
    file: Mutex<RotatingFile>,
    lost: AtomicU64,
    /// Lost lines when the current failure began.
    lost_before: AtomicU64,
    /// The error writing fails with, and when the disk may be tried again.
    failing: Mutex<Option<(String, Instant)>>,
}

impl FileSink {
    pub(super) fn new(name: String, path: PathBuf, rotation: Rotation) -> Self {
        Self {
            name,
            file: Mutex::new(RotatingFile::new(path, rotation)),
            lost: AtomicU64::new(0),
            lost_before: AtomicU64::new(0),
            failing: Mutex::new(None),
        }
    }

    fn file(&self) -> MutexGuard<'_, RotatingFile> {
        // A write that panicked leaves at worst a partial line in the file.
        self.file.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn failing(&self) -> MutexGuard<'_, Option<(String, Instant)>> {
        self.failing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn set_rotation(&self, rotation: Rotation) {
        self.file().set_rotation(rotation);
    }

    /// Counts `lines` as lost.
    pub(super) fn lose(&self, lines: u64) {
        self.lost.fetch_add(lines, Ordering::Relaxed);
    }

    pub(super) fn health(&self) -> FileHealth {
        FileHealth {
            lost_lines: self.lost.load(Ordering::Relaxed),
            error: self.failing().as_ref().map(|(error, _)| error.clone()),
        }
    }
}

/// Lines of one child on their way to its file.
pub(super) struct Batch {
    pub(super) sink: Arc<FileSink>,
    pub(super) bytes: Vec<u8>,
    pub(super) lines: u64,
}

/// The writer thread and its queue. Dropping it closes the queue; the thread writes what
/// is queued and ends.
pub(super) struct Writer {
    queue: Arc<ByteQueue<Batch>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("queued_bytes", &self.queue.bytes())
            .finish()
    }
}

impl Writer {
    /// Starts the thread; `None` if the OS refuses a thread (then files are not written, and
    /// every line counts as lost).
    pub(super) fn start(reporter: Option<Reporter>) -> Option<Self> {
        let queue = Arc::new(ByteQueue::new(QUEUE_BYTES));
        let work = Arc::clone(&queue);
        let spawned = std::thread::Builder::new()
            .name("herder-logs".into())
            .spawn(move || {
                while let Some(batch) = work.pop() {
                    write(&batch, reporter.as_ref());
                }
            });
        match spawned {
            Ok(_) => Some(Self { queue }),
            Err(error) => {
                tracing::error!(%error, "cannot start the log writer thread; log files are not written");
                None
            }
        }
    }

    /// Queues `batch`, waiting up to [`PATIENCE`] for room; a batch that does not fit is
    /// counted as lost.
    pub(super) async fn send(&self, batch: Batch) {
        let bytes = batch.bytes.len();
        if let Err(batch) = self.queue.push_within(batch, bytes, PATIENCE).await {
            batch.sink.lose(batch.lines);
        }
    }

    /// Waits until everything queued so far is written (or `timeout` passed).
    pub(super) fn flush(&self, timeout: Duration) -> bool {
        self.queue.wait_idle(timeout)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// Writes one batch and keeps the sink's health up to date.
fn write(batch: &Batch, reporter: Option<&Reporter>) {
    let sink = &batch.sink;
    let mut failing = sink.failing();
    if failing
        .as_ref()
        .is_some_and(|(_, retry)| Instant::now() < *retry)
    {
        sink.lose(batch.lines);
        return;
    }
    let result = sink.file().write_lines(&batch.bytes);
    match result {
        Ok(()) => {
            if failing.take().is_some() {
                let lost = sink.lost.load(Ordering::Relaxed);
                let lost_lines = lost - sink.lost_before.load(Ordering::Relaxed);
                tracing::info!(child = %sink.name, lost_lines, "writing the log file again");
                if let Some(report) = reporter {
                    report(Report::Resumed {
                        child: sink.name.clone(),
                        lost_lines,
                    });
                }
            }
        }
        Err((lines, error)) => {
            if failing.is_none() {
                sink.lost_before
                    .store(sink.lost.load(Ordering::Relaxed), Ordering::Relaxed);
                tracing::warn!(child = %sink.name, %error, "cannot write the log file; counting lost lines");
                if let Some(report) = reporter {
                    report(Report::Failing {
                        child: sink.name.clone(),
                        error: error.to_string(),
                    });
                }
            }
            *failing = Some((error.to_string(), Instant::now() + RETRY));
            sink.lose(lines);
        }
    }
}
