//! Every raw OS call of the supervisor, behind safe functions.
//!
//! This is the only file of `supervise` that contains `unsafe`. Each block states the invariant it relies on.
//! Signals are always sent to a *process group* (`-pgid`): every child is a session leader, so its pgid equals
//! its pid, and Linux does not reuse a pid while it is still the pgid of a live process; signalling a group whose
//! leader already exited therefore reaches the remaining members or fails with `ESRCH`, never a stranger.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

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
}

impl ExitStatus {
    /// Decodes a raw `waitpid` status word.
    pub fn from_raw(raw: i32) -> Self {
        if libc::WIFEXITED(raw) {
            Self {
                code: Some(libc::WEXITSTATUS(raw)),
                signal: None,
            }
        } else if libc::WIFSIGNALED(raw) {
            Self {
                code: None,
                signal: Some(libc::WTERMSIG(raw)),
            }
        } else {
            Self {
                code: None,
                signal: None,
            }
        }
    }

    /// A process ended by `exit(code)`.
    pub fn exited(code: i32) -> Self {
        Self {
            code: Some(code),
            signal: None,
        }
    }

    /// A process killed by `signal`.
    pub fn signaled(signal: i32) -> Self {
        Self {
            code: None,
            signal: Some(signal),
        }
    }

    /// `true` for `exit(0)` only.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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
    let mut raw: libc::c_int = 0;
    loop {
        // SAFETY: `raw` is a valid, writable c_int for the duration of the call.
        let pid = unsafe { libc::waitpid(-1, &mut raw, libc::WNOHANG) };
        if pid > 0 {
            return Ok(Some(Reaped {
                pid,
                status: ExitStatus::from_raw(raw),
            }));
        }
        if pid == 0 {
            return Ok(None);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ECHILD) => return Ok(None),
            _ => return Err(err),
        }
    }
}

/// Makes this process the reaper of all its orphaned descendants.
pub fn become_subreaper() -> io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)
}

/// Sends `signal` to process group `pgid`. Returns `Ok(false)` when the group no longer exists.
pub fn signal_group(pgid: i32, signal: Signal) -> io::Result<bool> {
    match nix::sys::signal::killpg(Pid::from_raw(pgid), signal) {
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

/// This process's id.
pub fn own_pid() -> i32 {
    std::process::id() as i32
}

/// `true` when the effective user is root, the only case where user/group switching is applied.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The current `RLIMIT_NOFILE` as `(soft, hard)`.
pub fn nofile_limit() -> io::Result<(u64, u64)> {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_err(io::Error::from)
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit (every child costs two pipe fds).
/// Returns the previous soft limit, which children get back unless their manifest sets one.
pub fn raise_nofile_soft_limit() -> io::Result<u64> {
    let (soft, hard) = nofile_limit()?;
    if soft < hard {
        nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard)
            .map_err(io::Error::from)?;
    }
    Ok(soft)
}

/// Size of a memory page in bytes.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 { v as u64 } else { 4096 }
}

/// Clock ticks per second, the unit of the times in `/proc/PID/stat`.
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 { v as u64 } else { 100 }
}

/// Credentials a child switches to, resolved before the fork (name lookups are not async-signal-safe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Target user id.
    pub uid: u32,
    /// Target primary group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

/// Everything the forked child does before `exec`, computed in the parent.
#[derive(Debug, Clone)]
pub struct ChildSetup {
    /// The pid of the forking process, to detect that it died before `PR_SET_PDEATHSIG` took effect.
    pub parent_pid: i32,
    /// `RLIMIT_NOFILE` for the child, soft and hard.
    pub nofile: Option<(u64, u64)>,
    /// Identity to switch to (applied last).
    pub credentials: Option<Credentials>,
}

/// Installs the post-fork, pre-exec steps of [`ChildSetup`] on `command`.
///
/// In order: new session (own process group, no controlling terminal), `PR_SET_PDEATHSIG(SIGKILL)` with a
/// `getppid` check closing the race where the parent already died, `RLIMIT_NOFILE`, every signal disposition back
/// to default and an empty signal mask, then supplementary groups, gid and uid, last, so that the privileged steps
/// before them still have root's rights.
pub fn install_child_setup(command: &mut Command, setup: ChildSetup) {
    let groups: Vec<libc::gid_t> = setup
        .credentials
        .as_ref()
        .map(|c| c.groups.clone())
        .unwrap_or_default();
    let closure = move || -> io::Result<()> {
        // Only async-signal-safe calls below: raw syscalls on data prepared before the fork; no allocation.
        // SAFETY (whole closure): each libc call receives valid pointers to memory owned by the closure
        // or to stack locals, and none of them allocates or takes a lock.
        unsafe {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) < 0
            {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != setup.parent_pid {
                // The supervisor died between fork and prctl: nobody would ever stop us.
                libc::_exit(127);
            }
            if let Some((soft, hard)) = setup.nofile {
                let lim = libc::rlimit {
                    rlim_cur: soft as libc::rlim_t,
                    rlim_max: hard as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            for sig in 1..libc::SIGRTMAX() {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    // Fails harmlessly for the few signal numbers glibc reserves.
                    libc::signal(sig, libc::SIG_DFL);
                }
            }
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            if libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) != 0 {
                return Err(io::Error::other("pthread_sigmask failed"));
            }
            if let Some(creds) = &setup.credentials {
                if libc::setgroups(groups.len(), groups.as_ptr()) < 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::setgid(creds.gid) < 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::setuid(creds.uid) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(())
    };
    // SAFETY: the closure only performs async-signal-safe system calls on pre-computed data (see above).
    unsafe {
        command.pre_exec(closure);
    }
}
