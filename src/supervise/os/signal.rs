//! Signals to a process group or a single process, and whether a group still exists.

use std::io;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

impl From<crate::manifest::model::Signal> for Signal {
    /// nix's signal of a name a manifest accepts. Every such name is a Linux signal, so the fallback (SIGKILL,
    /// which no manifest can block) is never taken.
    fn from(signal: crate::manifest::model::Signal) -> Self {
        Signal::try_from(signal.number()).unwrap_or(Signal::SIGKILL)
    }
}

/// Sends `signal` to process group `pgid`. Returns `Ok(false)` when the group no longer exists.
pub fn signal_group(pgid: i32, signal: Signal) -> io::Result<bool> {
    match nix::sys::signal::killpg(Pid::from_raw(pgid), signal) {
        Ok(()) => Ok(true),
        Err(Errno::ESRCH) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Sends `signal` to the single process `pid`. Returns `Ok(false)` when it no longer exists.
pub fn signal_process(pid: i32, signal: Signal) -> io::Result<bool> {
    match nix::sys::signal::kill(Pid::from_raw(pid), signal) {
        Ok(()) => Ok(true),
        Err(Errno::ESRCH) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// `true` while at least one process (zombies included) is still in process group `pgid`.
pub fn group_exists(pgid: i32) -> bool {
    // EPERM means a member exists but belongs to someone else: it still exists.
    !matches!(
        nix::sys::signal::killpg(Pid::from_raw(pgid), None),
        Err(Errno::ESRCH)
    )
}
