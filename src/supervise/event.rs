//! What child actors report to the reconciler.
//!
//! Every actor sends on one shared `mpsc::UnboundedSender<ChildEvent>`; each event names the child and the
//! incarnation it belongs to, so the reconciler drops events of an incarnation it has already replaced. These
//! are internal values; the public, serialised events are built from them by the reconciler.

use std::time::Duration;

/// One report of a child actor.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildEvent {
    /// The child's name.
    pub name: String,
    /// The incarnation the event belongs to.
    pub incarnation: u64,
    /// What happened.
    pub kind: ChildEventKind,
}

/// What happened to a child.
#[derive(Debug, Clone, PartialEq)]
pub enum ChildEventKind {
    /// A process was started.
    Spawned {
        /// Its pid (and process group).
        pid: i32,
    },
    /// A process could not be started. Never contains secret values.
    SpawnFailed {
        /// Why.
        error: String,
    },
    /// The readiness probe passed (or there is none).
    Ready,
    /// Readiness failed `failure_threshold` times in a row, or the start timeout elapsed.
    NotReady {
        /// The last failure.
        reason: String,
    },
    /// The liveness probe failed `failure_threshold` times in a row; a restart by policy follows.
    Unhealthy {
        /// The last failure.
        reason: String,
    },
    /// The liveness probe passes again (after at least one failure).
    Healthy,
    /// The process exited.
    Exited {
        /// Exit code, if it exited.
        code: Option<i32>,
        /// Signal number, if it was killed.
        signal: Option<i32>,
    },
    /// A new process will be spawned after `delay`.
    Restarting {
        /// Restart number (counts automatic and requested restarts).
        attempt: u32,
        /// Delay before the spawn.
        delay: Duration,
    },
    /// Permanently failed; no restart follows.
    Failed {
        /// Why.
        reason: String,
    },
    /// A oneshot exited with code 0.
    Completed,
    /// The kernel's OOM killer ended a process of the child's cgroup.
    OomKilled {
        /// The memory limit in force, bytes.
        limit: Option<u64>,
    },
    /// A `fork` in the child's cgroup was refused at `pids.max`.
    PidsLimit {
        /// The `processes` limit in force.
        limit: Option<u64>,
    },
    /// The kernel refused a new value of a limit for the running child's cgroup (cgroup v1 cannot lower
    /// `memory` below what the child uses): the previous value stays in force.
    LimitRefused {
        /// `memory`, `cpu` or `processes`.
        limit: String,
        /// Why, and what stays in force.
        reason: String,
    },
    /// The child's cgroup could not be made: it runs with the fallback (rlimits, the RSS watchdog).
    CgroupFallback {
        /// Why.
        reason: String,
    },
    /// A declared port is held by a process outside the child: the spawn waits until it
    /// is free (or until it is held by another process: then this again).
    PortHeld {
        /// Who holds which port ("port 8080/tcp is held by pid 4242: python3 -m http.server").
        holder: String,
    },
    /// Stopped on request; its whole process group is gone.
    Stopped {
        /// Whether SIGKILL was needed.
        killed: bool,
    },
}
