//! Process inspection through `/proc`: states, groups, zombies, command lines.

use super::*;

/// What `/proc/PID/stat` says about a process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcStat {
    /// The pid.
    pub pid: i32,
    /// State letter (`R`, `S`, `Z`, ...).
    pub state: char,
    /// Parent pid.
    pub ppid: i32,
    /// Process group.
    pub pgid: i32,
    /// Start time in clock ticks since boot (identifies the process with its pid).
    pub start_time: u64,
}

/// `/proc/PID/stat` of `pid`, if it exists.
pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold anything: split after the last one.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        pid,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgid: fields.get(2)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// Whether `pid` runs (exists and is not a zombie: a zombie is dead, only not reaped yet,
/// possibly by a parent outside our control).
pub fn alive(pid: i64) -> bool {
    i32::try_from(pid)
        .ok()
        .and_then(proc_stat)
        .is_some_and(|s| s.state != 'Z')
}

/// Every process visible in `/proc`.
pub fn all_processes() -> Vec<ProcStat> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter_map(proc_stat)
        .collect()
}

/// The live (non-zombie) members of process group `pgid`.
pub fn group_members(pgid: i32) -> Vec<i32> {
    all_processes()
        .into_iter()
        .filter(|p| p.pgid == pgid && p.state != 'Z')
        .map(|p| p.pid)
        .collect()
}

/// Zombies whose parent is `ppid`.
pub fn zombie_children(ppid: i32) -> Vec<ProcStat> {
    all_processes()
        .into_iter()
        .filter(|p| p.ppid == ppid && p.state == 'Z')
        .collect()
}

/// The NUL-separated command line of `pid`, as one space-separated string.
pub fn cmdline(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        String::from_utf8_lossy(&raw)
            .trim_end_matches('\0')
            .replace('\0', " "),
    )
}

/// Waits until `pid` no longer runs.
pub fn wait_dead(pid: i64, what: &str) {
    wait_until(
        &format!("pid {pid} to be gone ({what})"),
        || format!("stat: {:?}", i32::try_from(pid).ok().and_then(proc_stat)),
        || (!alive(pid)).then_some(()),
    );
}
