//! Resource limits: how each limit of a manifest is enforced for one child on this machine.
//!
//! | limit | with the child's cgroup | without one (no usable hierarchy, or its creation failed) |
//! |---|---|---|
//! | `memory` | `memory.max` (v2) / `memory.limit_in_bytes` + memsw (v1) | the RSS watchdog ([`super::memwatch`]): over the limit ⇒ restart |
//! | `cpu` | `cpu.max` (v2) / CFS quota (v1) | not enforced (no rlimit caps a rate) |
//! | `processes` | `pids.max` | not enforced (`RLIMIT_NPROC` counts per user, not per tree) |
//! | `open_files` | `RLIMIT_NOFILE`, set between fork and exec, and with `prlimit` on updates | the same |
//!
//! `status` shows the [`Enforcement`] of every configured limit; the cgroup side is [`super::cgroup`].

use crate::manifest::model::ResourceLimits;
use crate::supervise::cgroup::ChildCgroup;
use crate::supervise::cgroup::detect::V1;

/// How one limit is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Enforcement {
    /// By a cgroup v2 controller.
    CgroupV2,
    /// By a cgroup v1 controller.
    CgroupV1,
    /// By a resource limit (`setrlimit`).
    Rlimit,
    /// By herder's RSS watchdog, which restarts the child.
    Watchdog,
    /// Configured but not enforced on this machine.
    NotEnforced,
    /// Enforced by a cgroup, but the kernel refused the new value (cgroup v1 cannot lower `memory` below
    /// what the child uses): the previous value stays in force until the child's next start.
    Pending,
}

impl Enforcement {
    /// Every value, in the order of the docs.
    pub const ALL: [Enforcement; 6] = [
        Self::CgroupV2,
        Self::CgroupV1,
        Self::Rlimit,
        Self::Watchdog,
        Self::NotEnforced,
        Self::Pending,
    ];

    /// The serialised spelling: `cgroup-v2`, `cgroup-v1`, `rlimit`, `watchdog`, `not-enforced`, `pending`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CgroupV2 => "cgroup-v2",
            Self::CgroupV1 => "cgroup-v1",
            Self::Rlimit => "rlimit",
            Self::Watchdog => "watchdog",
            Self::NotEnforced => "not-enforced",
            Self::Pending => "pending",
        }
    }
}

impl std::fmt::Display for Enforcement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How each configured limit of a child is enforced (`None`: not configured).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LimitReport {
    /// `memory`.
    pub memory: Option<Enforcement>,
    /// `cpu`.
    pub cpu: Option<Enforcement>,
    /// `open_files`.
    pub open_files: Option<Enforcement>,
    /// `processes`.
    pub processes: Option<Enforcement>,
}

/// How `limits` are enforced for a child in `cgroup` (`None`: no cgroup, the fallback).
pub fn report(limits: &ResourceLimits, cgroup: Option<&ChildCgroup>) -> LimitReport {
    let by = |v2: &str, v1: V1, otherwise: Enforcement| match cgroup {
        Some(cg) if cg.v2_has(v2) => Enforcement::CgroupV2,
        Some(cg) if cg.dirs.v1.contains_key(&v1) => Enforcement::CgroupV1,
        _ => otherwise,
    };
    LimitReport {
        memory: limits
            .memory
            .map(|_| by("memory", V1::Memory, Enforcement::Watchdog)),
        cpu: limits
            .cpu
            .map(|_| by("cpu", V1::Cpu, Enforcement::NotEnforced)),
        open_files: limits.open_files.map(|_| Enforcement::Rlimit),
        processes: limits
            .processes
            .map(|_| by("pids", V1::Pids, Enforcement::NotEnforced)),
    }
}

/// `report` with every cgroup-enforced limit whose value in force differs from `limits` marked
/// [`Enforcement::Pending`].
pub fn with_in_force(
    mut report: LimitReport,
    limits: &ResourceLimits,
    in_force: &ResourceLimits,
) -> LimitReport {
    let by_cgroup =
        |e: Option<Enforcement>| matches!(e, Some(Enforcement::CgroupV1 | Enforcement::CgroupV2));
    for (enforcement, differs) in [
        (&mut report.memory, limits.memory != in_force.memory),
        (&mut report.cpu, limits.cpu != in_force.cpu),
        (
            &mut report.processes,
            limits.processes != in_force.processes,
        ),
    ] {
        if differs && by_cgroup(*enforcement) {
            *enforcement = Some(Enforcement::Pending);
        }
    }
    report
}

/// Whether the memory limit is left to the RSS watchdog.
pub fn memory_by_watchdog(report: &LimitReport) -> bool {
    report.memory == Some(Enforcement::Watchdog)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::units::ByteSize;
    use crate::supervise::cgroup::incarnation::Dirs;
    use std::path::PathBuf;

    fn limits() -> ResourceLimits {
        ResourceLimits {
            memory: Some(ByteSize(1 << 20)),
            cpu: Some(0.5),
            open_files: Some(64),
            processes: None,
        }
    }

    #[test]
    fn fallback_report() {
        let r = report(&limits(), None);
        assert_eq!(r.memory, Some(Enforcement::Watchdog));
        assert_eq!(r.cpu, Some(Enforcement::NotEnforced));
        assert_eq!(r.open_files, Some(Enforcement::Rlimit));
        assert_eq!(r.processes, None);
        assert_eq!(
            serde_json::to_string(&Enforcement::NotEnforced)
                .ok()
                .as_deref(),
            Some("\"not-enforced\"")
        );
        for e in Enforcement::ALL {
            assert_eq!(
                serde_json::to_string(&e).ok(),
                Some(format!("\"{}\"", e.as_str()))
            );
        }
    }

    #[test]
    fn hybrid_report() {
        let mut dirs = Dirs {
            unified: Some(PathBuf::from("/u/x-1")),
            ..Dirs::default()
        };
        dirs.v1.insert(V1::Memory, PathBuf::from("/m/x-1"));
        let cg = ChildCgroup {
            dirs,
            v2_controllers: vec!["cpu".into()],
        };
        let r = report(&limits(), Some(&cg));
        assert_eq!(r.memory, Some(Enforcement::CgroupV1));
        assert_eq!(r.cpu, Some(Enforcement::CgroupV2));
        assert!(!memory_by_watchdog(&r));
    }
}
