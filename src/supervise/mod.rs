//! Supervision: the only part of herder that creates, signals and reaps processes.
//!
//! # Theory of operation
//!
//! * [`spawn`]: one long-lived thread performs every `fork`/`exec` (children and exec probes), because
//!   `PR_SET_PDEATHSIG` is tied to the forking *thread*. Each child gets its own session (pgid = pid), the death
//!   signal, its `RLIMIT_NOFILE`, default signal dispositions and, as root, its user and groups.
//! * [`reaper`]: herder is a child subreaper; one `waitpid(-1, WNOHANG)` loop on `SIGCHLD` reaps everything,
//!   routes each exit to the owner registered at spawn time (under the same lock as the fork) and discards
//!   adopted orphans. Nothing else in herder may wait for a process (no `tokio::process`, no `Child::wait`).
//! * [`child`]: one actor per child *incarnation* ([`child::spawn_child`] → [`child::ChildHandle`]). Its
//!   decisions (restart policy, [`backoff`], [`crashloop`] limit, start timeout, stop escalation) are the pure
//!   [`child::state::Machine`]; the task feeds it observations and carries out its effects. It reports every
//!   transition as an [`event::ChildEvent`] on one shared channel and publishes a [`child::ChildStatus`].
//! * [`probe`]: readiness and liveness checks (`http`, `tcp`, `exec`, `log_line`), timers only while configured.
//! * [`logs`]: pipes → per-child ring, rotated file, optional `name | line` foreground stream, followers.
//! * [`limits`] and [`memwatch`]: cgroup v2 detection and the fallback (rlimit, RSS watchdog, "not enforced").
//! * [`statefile`]: `children.json`, so that leftovers of a herder killed with SIGKILL are found and killed.
//!
//! # Driving it (the reconciler)
//!
//! Create one [`child::ChildContext`] (event sender, `Arc<LogBook>`, optional [`statefile::StateFile`]); at
//! start-up call [`statefile::kill_leftovers`] before opening the state file. Per operation of a plan:
//! *start* = `spawn_child(spec, incarnation, &ctx)` and keep the handle; *update* = `handle.update(spec)`;
//! *retire* = `handle.stop().await`, then drop the handle; *replace* = start the new incarnation and retire the
//! old one in the order of the `update` strategy. Key every [`event::ChildEvent`] by `(name, incarnation)`.

pub(crate) use os::release_free_memory;

pub(crate) mod backoff;
pub mod cgroup;
pub mod child;
pub(crate) mod crashloop;
pub mod event;
pub mod launcher;
pub(crate) mod limits;
pub mod logs;
pub(crate) mod memwatch;
pub(crate) mod notify;
pub mod os;
pub(crate) mod ports;
pub(crate) mod probe;
pub mod proc;
pub(crate) mod reaper;
pub mod spawn;
pub mod statefile;

pub use child::{ChildContext, ChildHandle, ChildState, ChildStatus, spawn_child};
pub use event::{ChildEvent, ChildEventKind};
pub use logs::{ForegroundSink, LogBook};
pub use os::ExitStatus;
pub use statefile::{StateFile, kill_leftovers};
