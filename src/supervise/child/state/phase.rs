//! Where a child incarnation is in its life: the states of the machine and what each one implies.

use tokio::time::Instant;

use super::AfterStop;
use crate::supervise::os::ExitStatus;

/// Where a child incarnation is in its life.
#[derive(Debug, Clone, PartialEq)]
pub enum ChildState {
    /// A spawn request is with the spawner; no pid yet.
    Spawning {
        /// When the request was made.
        since: Instant,
        /// A stop arrived meanwhile; it is carried out as soon as the pid is known.
        stop_requested: bool,
    },
    /// Running, not ready yet (readiness probe pending).
    Starting {
        /// Process (and process group) id.
        pid: i32,
        /// When it was spawned.
        since: Instant,
    },
    /// Running and ready.
    Running {
        /// Process (and process group) id.
        pid: i32,
        /// When it was spawned.
        since: Instant,
    },
    /// Being stopped: the stop signal was sent; SIGKILL follows at `deadline`.
    Stopping {
        /// Process group id.
        pid: i32,
        /// When SIGKILL is sent to the group (if not sent yet).
        deadline: Instant,
        /// Whether SIGKILL was sent.
        killed: bool,
        /// Whether the group leader has already exited (the rest of the group may linger).
        leader_exited: bool,
        /// What happens once the whole group is gone.
        then: AfterStop,
        /// When the (current) run was spawned, for the stable-run backoff reset.
        since: Instant,
    },
    /// Waiting before the next spawn.
    Backoff {
        /// When the next spawn happens.
        until: Instant,
        /// Restart number (1 for the first restart).
        attempt: u32,
    },
    /// A service exited on its own with code 0 and its policy does not restart it.
    Exited {
        /// How it exited.
        status: ExitStatus,
    },
    /// A oneshot finished successfully.
    Completed,
    /// Permanently failed (crash loop, failure without restart).
    Failed {
        /// Why.
        reason: String,
    },
    /// Stopped on request.
    Stopped {
        /// Whether SIGKILL was needed.
        killed: bool,
    },
}

impl ChildState {
    /// A short lowercase name: `starting`, `running`, `backoff`, ...
    pub fn phase(&self) -> &'static str {
        match self {
            Self::Spawning { .. } => "spawning",
            Self::Starting { .. } => "starting",
            Self::Running { .. } => "running",
            Self::Stopping { .. } => "stopping",
            Self::Backoff { .. } => "backoff",
            Self::Exited { .. } => "exited",
            Self::Completed => "completed",
            Self::Failed { .. } => "failed",
            Self::Stopped { .. } => "stopped",
        }
    }

    /// The live process, if any.
    pub fn pid(&self) -> Option<i32> {
        match self {
            Self::Starting { pid, .. } | Self::Running { pid, .. } | Self::Stopping { pid, .. } => {
                Some(*pid)
            }
            _ => None,
        }
    }

    /// `true` in `Running`.
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Running { .. })
    }

    /// `true` when the actor waits for a command only (no process, no timer).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Exited { .. } | Self::Completed | Self::Failed { .. } | Self::Stopped { .. }
        )
    }
}
