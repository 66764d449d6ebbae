//! What a child uses: memory (current and peak), CPU time, recent CPU share and processes.
//!
//! From its cgroup where it has one (v2 `memory.current`, `memory.peak`, `cpu.stat`, `pids.current`; v1
//! `memory.usage_in_bytes`, `memory.max_usage_in_bytes`, `cpuacct.usage`, `pids.current`), else from `/proc`
//! over its process group. Read when asked (`herder status`), never on a timer: a handful of small reads per
//! child.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use super::detect::V1;
use super::incarnation::{ChildCgroup, Dirs};
use crate::supervise::{os, proc};

/// One reading of a child's usage; `None` where this host cannot tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    /// Memory in use, bytes.
    pub memory_bytes: Option<u64>,
    /// The most memory used since the incarnation started, bytes.
    pub memory_peak_bytes: Option<u64>,
    /// CPU time used since the incarnation started, seconds.
    pub cpu_seconds: Option<f64>,
    /// CPU share since the previous reading (100 = one core), once there are two readings.
    pub cpu_percent: Option<f64>,
    /// Processes (and, in a cgroup, threads) in the tree.
    pub processes: Option<u64>,
}

/// The value of `key` in a flat-keyed cgroup file (`populated 1`, `oom_kill 3`, `usage_usec 123`).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        if k == key {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

fn number(dir: &Path, file: &str) -> Option<u64> {
    std::fs::read_to_string(dir.join(file))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Reads the cgroup's counters (without `cpu_percent`).
pub fn read(dirs: &Dirs, v2_memory: bool, v2_pids: bool) -> Usage {
    let mut usage = Usage::default();
    match (&dirs.unified, dirs.v1.get(&V1::Memory)) {
        (Some(dir), _) if v2_memory => {
            usage.memory_bytes = number(dir, "memory.current");
            usage.memory_peak_bytes = number(dir, "memory.peak");
        }
        (_, Some(dir)) => {
            usage.memory_bytes = number(dir, "memory.usage_in_bytes");
            usage.memory_peak_bytes = number(dir, "memory.max_usage_in_bytes");
        }
        _ => {}
    }
    usage.cpu_seconds = match (&dirs.unified, dirs.v1.get(&V1::Cpuacct)) {
        (Some(dir), _) => std::fs::read_to_string(dir.join("cpu.stat"))
            .ok()
            .and_then(|s| keyed(&s, "usage_usec"))
            .map(|us| us as f64 / 1e6),
        (None, Some(dir)) => number(dir, "cpuacct.usage").map(|ns| ns as f64 / 1e9),
        (None, None) => None,
    };
    usage.processes = match (&dirs.unified, dirs.v1.get(&V1::Pids)) {
        (Some(dir), _) if v2_pids => number(dir, "pids.current"),
        (_, Some(dir)) => number(dir, "pids.current"),
        _ => Some(dirs.pids().len() as u64),
    };
    usage
}

/// The usage of the main process `pid` alone from `/proc/PID/stat`, for a child without a cgroup: one read,
/// where a sum over its process group would scan every process of the machine per child.
pub fn read_process(pid: i32) -> Usage {
    let Some(stat) = proc::stat(pid) else {
        return Usage::default();
    };
    let ticks = os::clock_ticks_per_second().max(1);
    Usage {
        memory_bytes: Some(stat.rss_pages * os::page_size()),
        cpu_seconds: Some(stat.cpu_ticks as f64 / ticks as f64),
        ..Usage::default()
    }
}

/// A child's usage source, shared by its actor (which sets the cgroup once made) and its handles (which read).
#[derive(Debug, Default)]
pub struct Meter {
    cgroup: OnceLock<Arc<ChildCgroup>>,
    cpu: CpuMeter,
}

impl Meter {
    /// Measures from `cgroup` from now on.
    pub fn set(&self, cgroup: Arc<ChildCgroup>) {
        // Set once per incarnation; a second cgroup is never made.
        let _ = self.cgroup.set(cgroup);
    }

    /// Reads the usage now: from the cgroup, else from the main process `pid`, else nothing.
    pub fn read(&self, pid: Option<i32>) -> Usage {
        let mut usage = match (self.cgroup.get(), pid) {
            (Some(cg), _) => read(&cg.dirs, cg.v2_has("memory"), cg.v2_has("pids")),
            (None, Some(pid)) => read_process(pid),
            (None, None) => return Usage::default(),
        };
        if let Some(cpu) = usage.cpu_seconds {
            usage.cpu_percent = self.cpu.percent(cpu, Instant::now());
        }
        usage
    }
}

/// Turns successive CPU-time readings into a recent CPU share. Readings closer than [`CpuMeter::MIN_WINDOW`]
/// to the previous one are measured against the one before, so frequent callers still see a stable figure.
#[derive(Debug, Default)]
pub struct CpuMeter {
    samples: Mutex<[Option<(Instant, f64)>; 2]>,
}

impl CpuMeter {
    /// The shortest window a share is measured over.
    pub const MIN_WINDOW: std::time::Duration = std::time::Duration::from_millis(500);

    /// Records `cpu_seconds` read now and returns the share in percent of one core.
    pub fn percent(&self, cpu_seconds: f64, now: Instant) -> Option<f64> {
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let [older, newer] = *samples;
        let base = match newer {
            Some((at, _)) if now.duration_since(at) >= Self::MIN_WINDOW => {
                *samples = [newer, Some((now, cpu_seconds))];
                newer
            }
            Some(_) => older.or(newer),
            None => {
                *samples = [None, Some((now, cpu_seconds))];
                None
            }
        };
        let (at, then) = base?;
        let wall = now.duration_since(at).as_secs_f64();
        (wall > 0.0).then(|| (cpu_seconds - then).max(0.0) / wall * 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn keyed_files() {
        let events = "populated 1\nfrozen 0\n";
        assert_eq!(keyed(events, "populated"), Some(1));
        assert_eq!(keyed(events, "frozen"), Some(0));
        assert_eq!(
            keyed("usage_usec 250\nuser_usec 1\n", "usage_usec"),
            Some(250)
        );
        assert_eq!(keyed("max 3", "max"), Some(3));
        assert_eq!(keyed("", "max"), None);
    }

    #[test]
    fn cpu_share_over_a_stable_window() {
        let meter = CpuMeter::default();
        let t0 = Instant::now();
        assert_eq!(meter.percent(1.0, t0), None);
        let share = meter.percent(1.5, t0 + Duration::from_secs(1));
        assert!((share.unwrap_or(0.0) - 50.0).abs() < 1e-6, "{share:?}");
        // 10 ms later: still measured against t0's reading, not over 10 ms.
        let share = meter.percent(1.5, t0 + Duration::from_millis(1010));
        assert!((share.unwrap_or(0.0) - 49.5).abs() < 0.1, "{share:?}");
    }
}
