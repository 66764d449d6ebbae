//! The reconciler's front door for the control API: requests with a reply channel, and
//! the serializable views it answers with.
//!
//! The reconciler task owns all state; the API holds a [`Control`] (a cheap clone of a
//! sender plus the read-only event log) and asks. Views are built at request time from
//! the reconciler's slots and the child actors' published status, so nothing is mirrored.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::command::{Command, CommandError, Verb, VerbName};
use super::state::State;
use crate::events::{EventLog, JournalHealth};
use crate::manifest::DesiredSet;
use crate::manifest::diagnostic::Diagnostic;
use crate::manifest::model::{Kind, Manifest, Schedule};
use crate::plan::Plan;
use crate::supervise::ChildHandle;
use crate::supervise::cgroup::{Detection, Usage};
use crate::supervise::limits::Enforcement;
use crate::supervise::logs::FileHealth;

/// Who sent a request, from the socket's `SO_PEERCRED`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// Peer user id.
    pub uid: u32,
    /// Peer process id, when the kernel reports it.
    pub pid: Option<i32>,
}

/// A request to the reconciler.
#[derive(Debug)]
pub enum Request {
    /// Every child with its status.
    Status {
        /// Where the answer goes.
        reply: oneshot::Sender<StatusReport>,
    },
    /// One child in detail; `None` when there is no such child.
    Child {
        /// The child name.
        name: String,
        /// Where the answer goes.
        reply: oneshot::Sender<Option<ChildDetail>>,
    },
    /// An operator command; permissions are checked and the command is audited.
    Command {
        /// What to do.
        command: Command,
        /// Who asked.
        peer: Peer,
        /// The `--reason` given.
        reason: Option<String>,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<(), ControlError>>,
    },
    /// One operator command on many children (every child when `children` is `None`),
    /// applied in one pass of the reconciler: each child is checked, audited and answered
    /// as a [`Request::Command`] on its own would be.
    Batch {
        /// What to do to each child.
        verb: Verb,
        /// The children, in the order given; `None` for every child, by name.
        children: Option<Vec<String>>,
        /// Who asked.
        peer: Peer,
        /// The `--reason` given.
        reason: Option<String>,
        /// Where the answer goes: each child with its verdict, in the order applied.
        reply: oneshot::Sender<Vec<(String, Result<(), ControlError>)>>,
    },
    /// The scheduled oneshots of the desired set, for the schedule dispatcher.
    Scheduled {
        /// Where the answer goes.
        reply: oneshot::Sender<Vec<ScheduledChild>>,
    },
    /// How many reloads were applied and how long the last took (ms), for the metrics: a
    /// constant-time answer where a whole status would cost O(children).
    Reloads {
        /// Where the answer goes.
        reply: oneshot::Sender<(u64, Option<f64>)>,
    },
    /// Rescan the manifest directory now.
    Reload {
        /// Who asked.
        peer: Peer,
        /// Acknowledged once the rescan was requested.
        reply: oneshot::Sender<()>,
    },
    /// The plan of a desired set (the watched directory's when `None`) against what runs.
    Plan {
        /// Another desired set to compare, e.g. loaded from `herder plan DIR`.
        desired: Option<DesiredSet>,
        /// Where the answer goes.
        reply: oneshot::Sender<Plan>,
    },
    /// Ordered shutdown of everything, then exit.
    Shutdown {
        /// Who asked.
        peer: Peer,
        /// The `--reason` given.
        reason: Option<String>,
        /// Acknowledged once the shutdown began.
        reply: oneshot::Sender<()>,
    },
}

/// A oneshot with a schedule, as the dispatcher sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledChild {
    /// The child.
    pub name: String,
    /// Its schedule in force.
    pub schedule: Schedule,
    /// Whether a run is going (starting, running, or waiting to be restarted).
    pub running: bool,
}

/// Why a command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The reconciler refused it (unknown child, not running, quarantined).
    #[error(transparent)]
    Command(#[from] CommandError),
    /// `command_permissions` forbid it.
    #[error("`{verb}` is not permitted on `{name}` by its command_permissions")]
    Forbidden {
        /// The child.
        name: String,
        /// The verb.
        verb: VerbName,
    },
    /// herder is shutting down.
    #[error("herder is shutting down")]
    ShuttingDown,
}

/// A cheap handle the API uses to talk to the reconciler.
#[derive(Clone)]
pub struct Control {
    /// Requests to the reconciler task.
    pub requests: mpsc::Sender<Request>,
    /// The event log (read side).
    pub events: Arc<EventLog>,
    /// The manifest directory being watched.
    pub manifest_dir: PathBuf,
}

impl Control {
    /// Sends a request built around a fresh reply channel and awaits the answer; `None`
    /// when the reconciler has already exited.
    pub async fn ask<T>(&self, build: impl FnOnce(oneshot::Sender<T>) -> Request) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(build(reply)).await.ok()?;
        answer.await.ok()
    }
}

/// The children of a [`StatusReport`] whose usage is still to be read, by index.
#[derive(Clone, Default)]
pub struct PendingUsage(pub(super) Vec<(usize, ChildHandle)>);

impl std::fmt::Debug for PendingUsage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PendingUsage({} children)", self.0.len())
    }
}

impl StatusReport {
    /// Reads the usage of every child that runs a process (a few cgroup or `/proc` reads
    /// each): blocking, so off the async threads and never on the reconciler.
    pub fn read_usage(&mut self) {
        for (index, handle) in std::mem::take(&mut self.pending_usage.0) {
            if let Some(child) = self.children.get_mut(index) {
                child.usage = Some(handle.usage());
            }
        }
    }
}

/// The status of every child, and the manifest errors in force.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StatusReport {
    /// The children whose `usage` [`StatusReport::read_usage`] fills in; not sent.
    #[serde(skip)]
    pub pending_usage: PendingUsage,
    /// The desired-set generation in force.
    pub generation: u64,
    /// Every child, by name.
    pub children: Vec<ChildStatus>,
    /// Manifest errors in force (their files' last good versions stay applied).
    pub errors: Vec<Diagnostic>,
    /// Reloads applied since start.
    pub reloads: u64,
    /// Time from the watcher noticing a change to the plan being applied, last reload, ms.
    pub last_reload_ms: Option<f64>,
    /// Whether an ordered shutdown is in progress.
    pub shutting_down: bool,
    /// The cgroup layout herder detected at start, and what it can enforce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups: Option<Detection>,
    /// How the event journal file (`events.jsonl`) is doing: events it could not take.
    #[serde(default)]
    pub journal: JournalHealth,
}

/// One child's status.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ChildStatus {
    /// Child name.
    pub name: String,
    /// What it is doing: one of [`State::ALL`], in kebab-case.
    pub state: State,
    /// Why it is in that state, when there is more to say ("waiting for db (ready)").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `service`, `oneshot` or `target` (a target has no process, pid or logs).
    #[serde(
        default,
        skip_serializing_if = "crate::manifest::model::Kind::is_service"
    )]
    pub kind: Kind,
    /// The last `STATUS=` text the child sent over sd_notify (`readiness: {notify: true}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_status: Option<String>,
    /// `reloading` or `stopping`, when the child said so over sd_notify (`RELOADING=1`,
    /// `STOPPING=1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_state: Option<String>,
    /// The ports it declares (`8080/tcp`, `127.0.0.1:53/udp`), checked free before each start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    /// Process id of the running process (its process group id too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// The incarnation serving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incarnation: Option<u64>,
    /// Automatic and requested restarts of this incarnation.
    pub restarts: u32,
    /// Time since the current process started, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_secs: Option<f64>,
    /// Whether the readiness condition holds.
    pub ready: bool,
    /// Liveness: `Some(false)` while the health check fails, `None` without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    /// How the last process ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<String>,
    /// Each configured limit and how it is enforced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<LimitStatus>,
    /// What the running process tree uses (nulls where this host cannot tell); absent without a process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// How its captured output is doing: lines its log file could not take.
    #[serde(default)]
    pub logs: FileHealth,
    /// The manifest file that declares it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<PathBuf>,
    /// The manifest's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The manifest's labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Since when an operator hold (`stop`, `quarantine`) keeps it out, RFC 3339 UTC; the
    /// hold's reason is in `reason`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_since: Option<String>,
    /// A scheduled oneshot's next slot, RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
}

/// A resource limit and how it is enforced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitStatus {
    /// `memory`, `cpu`, `open_files` or `processes`.
    pub name: String,
    /// The configured value, as written.
    pub value: String,
    /// How it is enforced here.
    pub enforcement: Enforcement,
}

/// One child in detail.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChildDetail {
    /// The status.
    #[serde(flatten)]
    pub status: ChildStatus,
    /// The manifest in force. It holds secret *references* only, never values.
    pub spec: Option<Manifest>,
    /// The child's log file.
    pub log_file: Option<PathBuf>,
}
