//! herder's own process: its pid and privileges, its descriptor limit, the kernel's page size and clock.

use std::io;

/// Makes this process the reaper of all its orphaned descendants.
pub fn become_subreaper() -> io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)
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
    sysconf_or(nix::unistd::SysconfVar::PAGE_SIZE, 4096)
}

/// Clock ticks per second, the unit of the times in `/proc/PID/stat`.
pub fn clock_ticks_per_second() -> u64 {
    sysconf_or(nix::unistd::SysconfVar::CLK_TCK, 100)
}

fn sysconf_or(var: nix::unistd::SysconfVar, default: u64) -> u64 {
    match nix::unistd::sysconf(var) {
        Ok(Some(v)) if v > 0 => v as u64,
        _ => default,
    }
}
