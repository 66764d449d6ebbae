//! Per-child resource usage from `/proc`, for children without a cgroup to read it from.
//!
//! A child's process is its process group's leader, so one pass over `/proc/*/stat` sums
//! CPU time, resident memory and the number of processes by process group. Resident memory
//! is the sum of each member's RSS (shared pages count once per process). The pass costs one
//! small read per process on the machine, whatever the number of children; a process that
//! exits during the pass is skipped.

use std::collections::HashMap;

use crate::supervise::os;

/// What one process group uses.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// User plus system CPU time, in seconds.
    pub cpu_seconds: f64,
    /// Resident memory, in bytes.
    pub memory_bytes: u64,
    /// Processes in the group.
    pub processes: u64,
}

/// The usage of every process group on the machine, by process group id.
pub fn by_process_group() -> HashMap<i32, Usage> {
    let ticks = os::clock_ticks_per_second() as f64;
    let page = os::page_size();
    let mut groups: HashMap<i32, Usage> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return groups;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some(process) = parse_stat(&stat) {
            let usage = groups.entry(process.pgrp).or_default();
            usage.cpu_seconds += process.cpu_ticks as f64 / ticks;
            usage.memory_bytes += process.rss_pages * page;
            usage.processes += 1;
        }
    }
    groups
}

/// The fields of `/proc/PID/stat` used here.
#[derive(Debug, PartialEq, Eq)]
struct ProcStat {
    pgrp: i32,
    cpu_ticks: u64,
    rss_pages: u64,
}

/// Parses `/proc/PID/stat`. The command name (field 2) is in parentheses and may hold spaces
/// and parentheses itself, so fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    // Fields from 3 (state) on; pgrp is field 5, utime 14, stime 15, rss 24.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).copied();
    Some(ProcStat {
        pgrp: field(5)?.parse().ok()?,
        cpu_ticks: field(14)?.parse::<u64>().ok()? + field(15)?.parse::<u64>().ok()?,
        rss_pages: field(24)?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_a_tricky_command_name() {
        let line = "42 (a b) c)) S 1 40 40 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 100 1000 25 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(ProcStat {
                pgrp: 40,
                cpu_ticks: 10,
                rss_pages: 25
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn finds_this_process_group() {
        let group = nix::unistd::getpgrp().as_raw();
        let usage = by_process_group()[&group];
        assert!(usage.processes >= 1 && usage.memory_bytes > 0, "{usage:?}");
    }
}
