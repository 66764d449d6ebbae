//! Writing a manifest's limits into a child's cgroup: at creation, and again on every in-place update.
//!
//! | limit | cgroup v2 | cgroup v1 |
//! |---|---|---|
//! | `memory` | `memory.max` (and `memory.swap.max` 0) | `memory.limit_in_bytes` and `memory.memsw.limit_in_bytes` |
//! | `cpu` | `cpu.max` = `quota period` | `cpu.cfs_quota_us` and `cpu.cfs_period_us` |
//! | `processes` | `pids.max` | `pids.max` |
//!
//! An absent limit is written as unlimited, so removing one from a manifest lifts it in place. Lowering
//! `memory` below what the child uses is applied as the kernel does it: v2 reclaims, then OOM-kills; v1
//! refuses with `EBUSY` once reclaim fails, which is reported, and the actor keeps the old value as the
//! one in force and writes the new one again when the child next starts.

use std::io;
use std::path::Path;

use super::detect::V1;
use super::incarnation::ChildCgroup;
use crate::manifest::model::ResourceLimits;

/// The CFS period herder uses: 100 ms, the kernel's default.
pub const CPU_PERIOD_US: u64 = 100_000;
/// The kernel refuses quotas below 1 ms.
const MIN_QUOTA_US: u64 = 1_000;

/// A limit that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot set {limit} in `{}`", .path.display())]
pub struct LimitError {
    /// `memory`, `cpu` or `processes`.
    pub limit: &'static str,
    /// The file.
    pub path: std::path::PathBuf,
    /// The OS error (`EBUSY`: the kernel could not reclaim down to a lowered memory limit).
    #[source]
    pub source: io::Error,
}

/// The CFS quota of `cores`, in microseconds per [`CPU_PERIOD_US`].
pub fn cpu_quota_us(cores: f64) -> u64 {
    let quota = (cores * CPU_PERIOD_US as f64).round();
    if quota.is_finite() && quota > 0.0 {
        (quota as u64).max(MIN_QUOTA_US)
    } else {
        MIN_QUOTA_US
    }
}

fn write(dir: &Path, file: &str, value: &str, limit: &'static str) -> Result<(), LimitError> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(|source| LimitError {
        limit,
        path,
        source,
    })
}

/// Writes every limit the cgroup can enforce that differs from `before` (what is in force:
/// [`ResourceLimits::default`], no limits, for a cgroup just made). Stops at the first
/// failure.
///
/// Writing only what changed matters beyond a few writes: setting a CPU quota or period,
/// even to "none", makes the kernel walk every CPU cgroup of the machine under a global
/// lock (`tg_set_cfs_bandwidth`), which at 5,000 children cost ~0.4 s per spawn.
pub fn apply(
    cgroup: &ChildCgroup,
    limits: &ResourceLimits,
    before: &ResourceLimits,
) -> Result<(), LimitError> {
    for limit in LIMITS {
        apply_one(cgroup, limit, limits, before)?;
    }
    Ok(())
}

/// Like [`apply`], but a refused limit does not keep the others from being written: the
/// limits that could not be written, with why (their `limit` names them).
pub fn apply_each(
    cgroup: &ChildCgroup,
    limits: &ResourceLimits,
    before: &ResourceLimits,
) -> Vec<LimitError> {
    LIMITS
        .into_iter()
        .filter_map(|limit| apply_one(cgroup, limit, limits, before).err())
        .collect()
}

/// The limits a cgroup enforces, by their manifest names.
const LIMITS: [&str; 3] = ["memory", "cpu", "processes"];

fn apply_one(
    cgroup: &ChildCgroup,
    limit: &'static str,
    limits: &ResourceLimits,
    before: &ResourceLimits,
) -> Result<(), LimitError> {
    let dirs = &cgroup.dirs;
    match limit {
        "memory" if limits.memory != before.memory => {
            let memory = limits.memory.map(|b| b.0);
            if let (true, Some(dir)) = (cgroup.v2_has("memory"), &dirs.unified) {
                let value = memory.map_or_else(|| "max".to_owned(), |m| m.to_string());
                write(dir, "memory.max", &value, "memory")?;
                if dir.join("memory.swap.max").exists() {
                    let swap = if memory.is_some() { "0" } else { "max" };
                    write(dir, "memory.swap.max", swap, "memory")?;
                }
            } else if let Some(dir) = dirs.v1.get(&V1::Memory) {
                v1_memory(dir, memory)?;
            }
        }
        // The expensive one (see `apply`): only when it changed.
        "cpu" if limits.cpu != before.cpu => {
            if let (true, Some(dir)) = (cgroup.v2_has("cpu"), &dirs.unified) {
                let quota = limits
                    .cpu
                    .map_or_else(|| "max".to_owned(), |c| cpu_quota_us(c).to_string());
                write(dir, "cpu.max", &format!("{quota} {CPU_PERIOD_US}"), "cpu")?;
            } else if let Some(dir) = dirs.v1.get(&V1::Cpu) {
                write(dir, "cpu.cfs_period_us", &CPU_PERIOD_US.to_string(), "cpu")?;
                let quota = limits
                    .cpu
                    .map_or_else(|| "-1".to_owned(), |c| cpu_quota_us(c).to_string());
                write(dir, "cpu.cfs_quota_us", &quota, "cpu")?;
            }
        }
        "processes" if limits.processes != before.processes => {
            let pids = limits
                .processes
                .map_or_else(|| "max".to_owned(), |p| p.to_string());
            if let (true, Some(dir)) = (cgroup.v2_has("pids"), &dirs.unified) {
                write(dir, "pids.max", &pids, "processes")?;
            } else if let Some(dir) = dirs.v1.get(&V1::Pids) {
                write(dir, "pids.max", &pids, "processes")?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// v1 keeps `memsw` (memory + swap) ≥ `limit_in_bytes`: raise memsw first when raising, lower it last when
/// lowering, so swap never dodges the limit and neither write is refused.
fn v1_memory(dir: &Path, memory: Option<u64>) -> Result<(), LimitError> {
    let value = memory.map_or_else(|| "-1".to_owned(), |m| m.to_string());
    let memsw = dir.join("memory.memsw.limit_in_bytes").exists();
    let current: Option<u64> = std::fs::read_to_string(dir.join("memory.limit_in_bytes"))
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let raising = match (memory, current) {
        (None, _) => true,
        (Some(new), Some(old)) => new >= old,
        (Some(_), None) => false,
    };
    if memsw && raising {
        write(dir, "memory.memsw.limit_in_bytes", &value, "memory")?;
    }
    write(dir, "memory.limit_in_bytes", &value, "memory")?;
    if memsw && !raising {
        write(dir, "memory.memsw.limit_in_bytes", &value, "memory")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas() {
        assert_eq!(cpu_quota_us(0.25), 25_000);
        assert_eq!(cpu_quota_us(2.0), 200_000);
        assert_eq!(cpu_quota_us(0.001), 1_000);
        assert_eq!(cpu_quota_us(0.0001), 1_000);
        assert_eq!(cpu_quota_us(f64::NAN), 1_000);
    }
}
