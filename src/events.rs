//! The event log: every lifecycle change, reload and operator command, in order.
//!
//! Events get a monotonic sequence number, are kept in a bounded in-memory ring (for
//! `herder events` and SSE resume), broadcast to live followers, and appended to a JSONL
//! file in the state directory, rotated by size like a child's log ([`FILE_ROTATION`]). The
//! reconciler is the main writer (the log writer reports file trouble too); the API only
//! reads.
//!
//! The file is written by a thread of its own, fed by a queue of at most [`JOURNAL_QUEUE`]
//! bytes, as the state file is: appending never waits on the disk. An event the queue or
//! the disk cannot take (`ENOSPC`, `EIO`) is still in the ring and with the followers; it is
//! counted as lost ([`EventLog::journal`]), and every later event tries the disk again.
//!
//! Followers subscribe *before* reading the ring (see [`EventLog::subscribe_since`]), so an
//! event appended in between is seen twice rather than never; they drop duplicates by
//! sequence number.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::supervise::logs::Rotation;
use crate::supervise::logs::queue::ByteQueue;
use crate::supervise::logs::rotate::RotatingFile;
use crate::supervise::logs::writer::Report;

/// How many events the in-memory ring keeps.
pub const RING_CAPACITY: usize = 10_000;

/// Bytes of serialized events waiting for the journal thread.
pub const JOURNAL_QUEUE: usize = 4 << 20;

/// Rotation of `events.jsonl`: 10 MiB per file, three rotated files kept.
pub const FILE_ROTATION: Rotation = Rotation {
    max_size: 10 << 20,
    keep: 3,
};

/// One entry of the event log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Monotonic sequence number, starting at 1 for each run of herder.
    pub seq: u64,
    /// Wall-clock time, RFC 3339 with milliseconds.
    pub time: String,
    /// The child the event is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child: Option<String>,
    /// The incarnation of that child the event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incarnation: Option<u64>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened. Serialized with a `"type"` tag in kebab-case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum EventKind {
    /// A process was spawned for the child.
    Spawned {
        /// Its pid (also its process group id).
        pid: i32,
    },
    /// Spawning failed.
    SpawnFailed {
        /// The OS error, with what was being done.
        error: String,
    },
    /// The readiness probe passed (or the child started, without one).
    Ready,
    /// A probe is failing.
    Unhealthy {
        /// Why.
        reason: String,
    },
    /// The process exited.
    Exited {
        /// Exit code, when it exited normally.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<i32>,
        /// Signal number, when a signal killed it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<i32>,
    },
    /// A restart is scheduled.
    Restarting {
        /// Restart attempt number (1 for the first).
        attempt: u32,
        /// Delay before the restart, in milliseconds.
        delay_ms: u64,
    },
    /// The child gave up: crash loop, start timeout, or a permanent error.
    Failed {
        /// Why.
        reason: String,
    },
    /// A oneshot finished with exit code 0.
    Completed,
    /// The kernel's OOM killer ended a process of the child (its cgroup's memory limit).
    OomKilled {
        /// The memory limit in force (`64Mi`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<String>,
    },
    /// A `fork` of the child was refused at its `processes` limit (`pids.max`).
    PidsLimit {
        /// The limit in force.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u64>,
    },
    /// The kernel refused a new value of a limit for the running child (cgroup v1 cannot lower `memory`
    /// below what the child uses); the previous value stays in force until the child's next start.
    LimitRefused {
        /// `memory`, `cpu` or `processes`.
        limit: String,
        /// Why, and what stays in force.
        reason: String,
    },
    /// The child's cgroup could not be made; it runs with the fallback (rlimits, RSS watchdog).
    CgroupFallback {
        /// Why.
        reason: String,
    },
    /// A declared port is held by a process outside the child: its start waits until the
    /// port is free.
    PortHeld {
        /// Who holds which port.
        holder: String,
    },
    /// The child was stopped.
    Stopped {
        /// Whether it had to be killed with SIGKILL after the stop timeout.
        killed: bool,
    },
    /// A new desired set from the manifest directory was applied.
    Reload {
        /// The desired-set generation.
        generation: u64,
        /// Operations the plan held: "start api", "replace web (command)", ...
        operations: Vec<String>,
    },
    /// A manifest error is in force (the file's last good version stays applied).
    ManifestError {
        /// File, line and column: `path:line:col`.
        location: String,
        /// The message.
        message: String,
    },
    /// An operator command arrived over the control API.
    Command {
        /// The verb: `restart`, `stop`, `signal`, ...
        verb: String,
        /// Peer user id (SO_PEERCRED).
        uid: u32,
        /// Peer process id, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid: Option<i32>,
        /// The reason given with `--reason`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Whether it was allowed.
        allowed: bool,
    },
    /// A schedule's slot came and its run was asked for.
    Scheduled {
        /// The slot, RFC 3339 UTC.
        slot: String,
        /// Whether the slot passed while herder was not running (`missed: run-once`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        missed: bool,
    },
    /// A schedule's slot came and was skipped.
    Skipped {
        /// The slot, RFC 3339 UTC.
        slot: String,
        /// Why (the previous run is still going, missed while herder was not running).
        reason: String,
    },
    /// herder began an ordered shutdown.
    Shutdown {
        /// Why.
        reason: String,
    },
    /// The child's log file stopped taking lines (full disk, I/O error, vanished directory);
    /// lines are counted as lost until it works again. The ring and followers still get them.
    LogWriteFailed {
        /// The OS error.
        error: String,
    },
    /// The child's log file takes lines again.
    LogWriteResumed {
        /// Lines that did not reach the file meanwhile.
        lost_lines: u64,
    },
}

impl EventKind {
    /// The event of a log writer's report, with the child it is about.
    pub fn of_log_report(report: Report) -> (String, EventKind) {
        match report {
            Report::Failing { child, error } => (child, EventKind::LogWriteFailed { error }),
            Report::Resumed { child, lost_lines } => {
                (child, EventKind::LogWriteResumed { lost_lines })
            }
        }
    }
}

/// How the event journal file is doing, for `herder status` and `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalHealth {
    /// Events that never reached `events.jsonl` since herder started.
    pub lost_events: u64,
    /// The error writing fails with now; absent while writing works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The journal thread's side: the queue and what it could not write.
struct Journal {
    queue: Arc<ByteQueue<Vec<u8>>>,
    lost: Arc<AtomicU64>,
    error: Arc<Mutex<Option<String>>>,
}

impl Journal {
    /// Starts the thread writing `file`; `None` if the OS refuses a thread.
    fn start(mut file: RotatingFile) -> Option<Self> {
        let queue: Arc<ByteQueue<Vec<u8>>> = Arc::new(ByteQueue::new(JOURNAL_QUEUE));
        let lost = Arc::new(AtomicU64::new(0));
        let error: Arc<Mutex<Option<String>>> = Arc::default();
        let (work, lost_w, error_w) = (Arc::clone(&queue), Arc::clone(&lost), Arc::clone(&error));
        let spawned = std::thread::Builder::new()
            .name("herder-events".into())
            .spawn(move || {
                while let Some(line) = work.pop() {
                    let result = file.write_lines(&line);
                    let mut failing = error_w.lock().unwrap_or_else(PoisonError::into_inner);
                    match result {
                        Ok(()) => *failing = None,
                        Err((events, e)) => {
                            if failing.is_none() {
                                tracing::warn!(error = %e, "cannot append to the event log file; counting lost events");
                            }
                            *failing = Some(e.to_string());
                            lost_w.fetch_add(events, Ordering::Relaxed);
                        }
                    }
                }
            });
        match spawned {
            Ok(_) => Some(Self { queue, lost, error }),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the event journal thread; events.jsonl is not written");
                None
            }
        }
    }

    fn push(&self, line: Vec<u8>) {
        let size = line.len();
        if self.queue.push(line, size).is_err() {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// The event log. Cheap to share: clone the `Arc`.
pub struct EventLog {
    inner: Mutex<Inner>,
    followers: broadcast::Sender<Arc<Event>>,
    journal: Option<Journal>,
}

struct Inner {
    next_seq: u64,
    ring: VecDeque<Arc<Event>>,
}

impl EventLog {
    /// An event log that also appends to `path` (created on the first event), or
    /// memory-only with `None`.
    pub fn open(path: Option<&Path>) -> std::io::Result<Arc<Self>> {
        let journal = path
            .map(|path| RotatingFile::new(path.to_path_buf(), FILE_ROTATION))
            .and_then(Journal::start);
        let (followers, _) = broadcast::channel(4096);
        Ok(Arc::new(Self {
            inner: Mutex::new(Inner {
                next_seq: 1,
                ring: VecDeque::new(),
            }),
            followers,
            journal,
        }))
    }

    /// Appends an event and returns it with its sequence number.
    pub fn append(
        &self,
        child: Option<&str>,
        incarnation: Option<u64>,
        kind: EventKind,
    ) -> Arc<Event> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let event = Arc::new(Event {
            seq: inner.next_seq,
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            child: child.map(str::to_owned),
            incarnation,
            kind,
        });
        inner.next_seq += 1;
        if inner.ring.len() == RING_CAPACITY {
            inner.ring.pop_front();
        }
        inner.ring.push_back(Arc::clone(&event));
        // Sent under the lock, so followers see events in sequence order. No followers is
        // fine: the event is in the ring.
        let _ = self.followers.send(Arc::clone(&event));
        drop(inner);
        if let Some(journal) = &self.journal {
            match serde_json::to_vec(&*event) {
                Ok(mut line) => {
                    line.push(b'\n');
                    journal.push(line);
                }
                Err(error) => tracing::warn!(%error, "cannot serialize an event"),
            }
        }
        event
    }

    /// The events with a sequence number greater than `since` still in the ring, and a
    /// receiver for every later one. Subscribing first means nothing falls in between.
    pub fn subscribe_since(
        &self,
        since: u64,
    ) -> (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
        let receiver = self.followers.subscribe();
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let start = inner.ring.partition_point(|event| event.seq <= since);
        (inner.ring.range(start..).cloned().collect(), receiver)
    }

    /// The last `limit` events with a sequence number greater than `since`.
    pub fn since(&self, since: u64, limit: usize) -> Vec<Arc<Event>> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let start = inner.ring.partition_point(|event| event.seq <= since);
        let skip = (inner.ring.len() - start).saturating_sub(limit);
        inner.ring.range(start + skip..).cloned().collect()
    }

    /// How the journal file is doing.
    pub fn journal(&self) -> JournalHealth {
        let Some(journal) = &self.journal else {
            return JournalHealth::default();
        };
        JournalHealth {
            lost_events: journal.lost.load(Ordering::Relaxed),
            error: journal
                .error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }

    /// Waits until every event appended so far is in the journal file (or `timeout` passed);
    /// returns whether it is. For tests and shutdown.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.journal
            .as_ref()
            .is_none_or(|journal| journal.queue.wait_idle(timeout))
    }

    /// The sequence number of the newest event (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next_seq
            - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_are_monotonic_and_resume_works() {
        let log = EventLog::open(None).unwrap();
        for pid in 1..=5 {
            log.append(Some("a"), Some(1), EventKind::Spawned { pid });
        }
        let (replay, mut rx) = log.subscribe_since(3);
        assert_eq!(replay.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5]);
        log.append(None, None, EventKind::Ready);
        assert_eq!(rx.try_recv().unwrap().seq, 6);
        assert_eq!(
            log.since(0, 2).iter().map(|e| e.seq).collect::<Vec<_>>(),
            [5, 6]
        );
        assert_eq!(log.last_seq(), 6);
    }

    #[test]
    fn the_ring_is_bounded() {
        let log = EventLog::open(None).unwrap();
        for _ in 0..RING_CAPACITY + 10 {
            log.append(None, None, EventKind::Completed);
        }
        let all = log.since(0, usize::MAX);
        assert_eq!(all.len(), RING_CAPACITY);
        assert_eq!(all[0].seq, 11);
    }

    #[test]
    fn events_serialize_with_a_type_tag() {
        let log = EventLog::open(None).unwrap();
        let event = log.append(
            Some("web"),
            Some(2),
            EventKind::Exited {
                code: Some(3),
                signal: None,
            },
        );
        let json = serde_json::to_value(&*event).unwrap();
        assert_eq!(json["type"], "exited");
        assert_eq!(json["code"], 3);
        assert_eq!(json["child"], "web");
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, *event);
    }
}
