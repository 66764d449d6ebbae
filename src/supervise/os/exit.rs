//! How a child ended: the raw `waitpid` result and its exit status.

use std::io;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// The raw result of one `waitpid`: which process ended and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    /// The process that was reaped.
    pub pid: i32,
    /// How it ended.
    pub status: ExitStatus,
}

/// How a process ended, decoded from a `waitpid` status word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ExitStatus {
    /// The exit code, when the process called `exit`.
    pub code: Option<i32>,
    /// The signal that killed it, when it was killed.
    pub signal: Option<i32>,
    /// The memory limit (bytes) when the kernel's OOM killer ended it in its cgroup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_limit: Option<u64>,
}

impl ExitStatus {
    /// A process ended by `exit(code)`.
    pub fn exited(code: i32) -> Self {
        Self {
            code: Some(code),
            signal: None,
            oom_limit: None,
        }
    }

    /// A process killed by `signal`.
    pub fn signaled(signal: i32) -> Self {
        Self {
            code: None,
            signal: Some(signal),
            oom_limit: None,
        }
    }

    /// A process whose end is unknown (its status was lost).
    pub fn unknown() -> Self {
        Self {
            code: None,
            signal: None,
            oom_limit: None,
        }
    }

    /// `true` for `exit(0)` only.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(limit) = self.oom_limit {
            let limit = crate::manifest::units::ByteSize(limit);
            return write!(f, "killed by the kernel: out of memory (limit {limit})");
        }
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exited with code {code}"),
            (None, Some(sig)) => match Signal::try_from(sig) {
                Ok(s) => write!(f, "killed by {}", s.as_str()),
                Err(_) => write!(f, "killed by signal {sig}"),
            },
            (None, None) => write!(f, "ended with an unknown status"),
        }
    }
}

/// Reaps one terminated child of this process without blocking.
///
/// `Ok(None)` means nothing is left to reap right now (no terminated child, or no child at all).
pub fn reap_one() -> io::Result<Option<Reaped>> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    loop {
        // Without WUNTRACED or WCONTINUED only terminations are reported.
        let (pid, status) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, ExitStatus::exited(code)),
            Ok(WaitStatus::Signaled(pid, signal, _core)) => {
                (pid, ExitStatus::signaled(signal as i32))
            }
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return Ok(None),
            Ok(other) => match other.pid() {
                Some(pid) => (pid, ExitStatus::unknown()),
                None => return Ok(None),
            },
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        return Ok(Some(Reaped {
            pid: pid.as_raw(),
            status,
        }));
    }
}
