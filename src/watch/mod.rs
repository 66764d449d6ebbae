//! Watching the manifest directory: notify events, a quiet window, a full rescan, and a new
//! [`Generation`] of the desired set whenever something changed.
//!
//! Why it is built this way:
//!
//! * **Events are hints, not diffs.** A Kubernetes ConfigMap update only swaps the `..data`
//!   symlink, so no event names the manifests that changed; an inotify overflow names
//!   nothing; editors save through temp files and renames. So a burst of events whose every
//!   event names a manifest file re-reads those files only (a plain edit costs the same in
//!   any size of directory), and any other burst rescans the directory whole ([`scan`]),
//!   with unchanged files served from a cache keyed by (device, inode, size, mtime, ctime).
//!   The 60 s safety rescan is always whole.
//! * **Our own reads generate events.** Reading a file produces `Access` events; reacting to
//!   them would rescan forever, so they are dropped ([`watcher`]).
//! * **A deleted directory kills its watch silently.** The directory's parent is watched too,
//!   and the directory is re-watched whenever its inode changes ([`watcher`]).
//! * **Bursts must apply once.** A `git checkout` of 50 files is one reload, not 50 partial
//!   ones; a lone save must still apply within milliseconds ([`debounce`]).
//! * **Half-written saves must not retire anything.** Removals wait for a settled rescan; bad
//!   files keep their last good version; cross-file errors reject the edit that caused them,
//!   not the whole set ([`scan`]).
//! * **Secrets live elsewhere.** Secret files are part of a child's spec (by digest), so
//!   their folders are watched as well.
//!
//! Entry point: [`spawn`] a task for a [`WatchConfig`]; consume the [`Generation`]s from the
//! returned receiver and call [`WatchHandle::rescan_now`] on SIGHUP.

pub mod debounce;
pub mod generation;
pub mod scan;
pub mod task;
mod watcher;

pub use debounce::QuietWindow;
pub use generation::{FileStatus, Generation};
pub use scan::{Scan, ScanIo, Scanner};
pub use task::{WatchConfig, WatchHandle, spawn};
