//! Every raw OS call of the supervisor, behind safe functions.
//!
//! Only [`raw`] (the `clone` path and libc calls nix has no wrapper for) contains `unsafe`; each block states the
//! invariant it relies on.
//!
//! Signals are always sent to a *process group* (`-pgid`): every child is a session leader, so its pgid equals
//! its pid, and Linux does not reuse a pid while it is still the pgid of a live process; signalling a group whose
//! leader already exited therefore reaches the remaining members or fails with `ESRCH`, never a stranger.

mod exit;
mod process;
mod raw;
mod signal;

// Public only what tests and benches use; the rest is the crate's, so the compiler finds what nothing uses.
pub use exit::ExitStatus;
pub(crate) use exit::reap_one;
pub(crate) use process::{
    become_subreaper, is_root, nofile_limit, page_size, raise_nofile_soft_limit,
};
pub use process::{clock_ticks_per_second, own_pid};
pub(crate) use raw::{
    ChildSetup, Credentials, Exec, StdioSlots, above_stdio, limit_malloc_arenas,
    release_free_memory, set_open_files, spawn_process,
};
pub(crate) use signal::signal_process;
pub use signal::{group_exists, signal_group};
