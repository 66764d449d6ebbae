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

pub use exit::{ExitStatus, Reaped, reap_one};
pub use process::{
    become_subreaper, clock_ticks_per_second, is_root, nofile_limit, own_pid, page_size,
    raise_nofile_soft_limit,
};
pub use raw::{
    ChildSetup, Credentials, Exec, StdioSlots, above_stdio, limit_malloc_arenas,
    release_free_memory, set_open_files, spawn_process,
};
pub use signal::{group_exists, signal_group, signal_process};
