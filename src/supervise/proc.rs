//! Reading `/proc`: process start times, process groups and resident memory.
//!
//! A pid alone does not identify a process across time (pids are recycled); the pair (pid, start time) does.
//! The start time is field 22 of `/proc/PID/stat`, in clock ticks since boot. The `comm` field (2) may contain
//! spaces and parentheses, so fields are counted from the *last* `)`.

use std::fs;

/// The fields of `/proc/PID/stat` herder uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Field 3: `R`, `S`, `Z`, ...
    pub state: char,
    /// Field 4: parent pid.
    pub ppid: i32,
    /// Field 5: process group.
    pub pgrp: i32,
    /// Field 6: session.
    pub session: i32,
    /// Fields 14 + 15: user and system CPU time in clock ticks.
    pub cpu_ticks: u64,
    /// Field 22: start time in clock ticks since boot.
    pub start_time: u64,
    /// Field 24: resident set size in pages.
    pub rss_pages: u64,
}

/// Parses the content of a `/proc/PID/stat` file.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let after = &text[text.rfind(')')? + 1..];
    // `fields[0]` is field 3 (state).
    let fields: Vec<&str> = after.split_whitespace().collect();
    let num = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<i64>().ok());
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        ppid: i32::try_from(num(4)?).ok()?,
        pgrp: i32::try_from(num(5)?).ok()?,
        session: i32::try_from(num(6)?).ok()?,
        cpu_ticks: u64::try_from(num(14)? + num(15)?).ok()?,
        start_time: u64::try_from(num(22)?).ok()?,
        rss_pages: u64::try_from(num(24)?).ok()?,
    })
}

/// The stat of `pid` (`"self"` is not accepted), or `None` if it is gone or unreadable.
pub fn stat(pid: i32) -> Option<ProcStat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The start time of `pid` in clock ticks since boot.
pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|s| s.start_time)
}

/// Every pid currently listed in `/proc`.
pub fn all_pids() -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .collect()
}

/// `(pid, stat)` of every process.
pub fn all_stats() -> Vec<(i32, ProcStat)> {
    all_pids()
        .into_iter()
        .filter_map(|pid| Some((pid, stat(pid)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_comm_with_spaces_and_parens() {
        let line = "1234 (we ird) (x) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 98765 1000000 250 \
                    18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
        let s = parse_stat(line).expect("well-formed");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.pgrp, 1234);
        assert_eq!(s.session, 1234);
        assert_eq!(s.cpu_ticks, 10);
        assert_eq!(s.start_time, 98765);
        assert_eq!(s.rss_pages, 250);
    }

    #[test]
    fn rejects_truncated() {
        assert_eq!(parse_stat("12 (x) S 1"), None);
    }
}
