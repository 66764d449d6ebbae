//! The snapshot an actor publishes on its `watch` channel after every change.

use std::time::Instant;

use super::state::ChildState;
use crate::supervise::limits::LimitReport;
use crate::supervise::os::ExitStatus;

/// Everything observable about one child incarnation.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildStatus {
    /// The child's name.
    pub name: String,
    /// The incarnation.
    pub incarnation: u64,
    /// The state.
    pub state: ChildState,
    /// The live process, if any.
    pub pid: Option<i32>,
    /// Restarts so far.
    pub restarts: u32,
    /// The last exit of a process of this incarnation.
    pub last_exit: Option<ExitStatus>,
    /// Ready (readiness passed, or no readiness probe, and still running).
    pub ready: bool,
    /// Liveness verdict: `None` without a health check or before its first verdict.
    pub healthy: Option<bool>,
    /// Stopped with SIGSTOP by `pause`.
    pub paused: bool,
    /// When the live process was spawned (monotonic clock); `None` without one. The
    /// uptime is measured from it, so it does not reset when the state changes.
    pub started: Option<Instant>,
    /// How each resource limit is enforced.
    pub limits: LimitReport,
    /// The last `STATUS=` text the child sent on its notify socket (secrets redacted).
    pub notify_status: Option<String>,
    /// `reloading` or `stopping`, when the child said so over sd_notify.
    pub notify_state: Option<&'static str>,
    /// Why the next spawn is held back: a declared port that another process holds
    /// ("port 8080/tcp is held by pid 4242: python3 -m http.server").
    pub waiting: Option<String>,
    /// The number of processes spawned so far by this incarnation (the fencing counter).
    pub run: u64,
}
