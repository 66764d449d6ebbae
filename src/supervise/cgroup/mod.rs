//! Kernel-enforced resource limits: one cgroup per child incarnation, on cgroup v2, hybrid and v1 hosts.
//!
//! * [`detect`]: which hierarchies are mounted and writable for herder (pure parsing of `/proc/self/*`);
//! * [`layout`]: the layout in use (v2, hybrid, v1, none) and herder's `herder-<instance>` subtrees, set up once
//!   at start ([`layout::setup`]);
//! * [`incarnation`]: a child incarnation's directories, joined by the child before it executes; kill, freeze,
//!   removal;
//! * [`limits`]: writing `memory`, `cpu` and `processes` into them, at creation and on in-place updates;
//! * [`usage`]: reading memory, CPU and process counts, for `herder status`;
//! * [`watch`]: inotify and eventfd notifications (populated, OOM kills, pids limit), one thread for all;
//! * [`cleanup`]: the leftovers of a herder killed with SIGKILL.
//!
//! Where no cgroup is usable the rest of `supervise` falls back to rlimits and the RSS watchdog, and says so
//! per limit ([`crate::supervise::limits`]).

pub mod cleanup;
pub mod detect;
pub mod incarnation;
pub mod layout;
pub mod limits;
pub mod usage;
pub mod watch;

pub use incarnation::ChildCgroup;
pub use layout::{Controller, Detection, Layout, Preference, Setup, Tree, setup};
pub use usage::Usage;
