//! Resource limits: how each limit of a manifest is enforced on this machine, and the rlimit part.
//!
//! cgroup v2 can enforce every limit (`memory.max`, `cpu.max`, `pids.max`) but needs a *delegated* subtree:
//! `/sys/fs/cgroup` must be a cgroup2 mount (statfs magic) and herder's own cgroup (the `0::` line of
//! `/proc/self/cgroup`) must be writable and offer the controllers. Without one (containers, most sandboxes,
//! this build machine), herder falls back to what a plain process can do:
//!
//! | limit | fallback |
//! |---|---|
//! | `open_files` | `RLIMIT_NOFILE`, set between fork and exec |
//! | `memory` | an RSS watchdog over the child's process group ([`super::memwatch`]); over the limit ⇒ restart |
//! | `cpu`, `processes` | not enforced (`RLIMIT_NPROC` counts per user, not per tree), and reported so |
//!
//! This version detects and reports cgroup v2 delegation but always applies the fallback; `status` shows
//! which mechanism each limit really uses.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::manifest::model::ResourceLimits;

/// How one limit is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Enforcement {
    /// By a cgroup v2 controller.
    Cgroup,
    /// By a resource limit (`setrlimit`).
    Rlimit,
    /// By herder's RSS watchdog, which restarts the child.
    Watchdog,
    /// Configured but not enforced on this machine.
    NotEnforced,
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

/// Whether a delegated cgroup v2 subtree is available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupSupport {
    /// herder's own cgroup is a writable cgroup2 directory with controllers.
    Delegated {
        /// herder's cgroup directory.
        path: PathBuf,
    },
    /// No usable cgroup v2.
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// Detects cgroup v2 delegation once per process.
pub fn cgroup_support() -> &'static CgroupSupport {
    static SUPPORT: OnceLock<CgroupSupport> = OnceLock::new();
    SUPPORT.get_or_init(detect)
}

fn detect() -> CgroupSupport {
    let unavailable = |reason: &str| CgroupSupport::Unavailable {
        reason: reason.into(),
    };
    match nix::sys::statfs::statfs("/sys/fs/cgroup") {
        Ok(fs) if fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC => {}
        Ok(_) => return unavailable("/sys/fs/cgroup is not a cgroup2 mount"),
        Err(e) => return unavailable(&format!("cannot statfs /sys/fs/cgroup: {e}")),
    }
    let Ok(own) = std::fs::read_to_string("/proc/self/cgroup") else {
        return unavailable("cannot read /proc/self/cgroup");
    };
    let Some(rel) = own.lines().find_map(|l| l.strip_prefix("0::")) else {
        return unavailable("no cgroup v2 entry in /proc/self/cgroup");
    };
    let path = PathBuf::from("/sys/fs/cgroup").join(rel.trim_start_matches('/'));
    let controllers = std::fs::read_to_string(path.join("cgroup.controllers")).unwrap_or_default();
    if controllers.split_whitespace().next().is_none() {
        return unavailable("herder's cgroup offers no controllers");
    }
    match nix::unistd::access(
        &path.join("cgroup.subtree_control"),
        nix::unistd::AccessFlags::W_OK,
    ) {
        Ok(()) => CgroupSupport::Delegated { path },
        Err(_) => unavailable("herder's cgroup is not writable (not delegated)"),
    }
}

/// How `limits` are enforced by this version (always the fallback, see the module docs).
pub fn report(limits: &ResourceLimits) -> LimitReport {
    LimitReport {
        memory: limits.memory.map(|_| Enforcement::Watchdog),
        cpu: limits.cpu.map(|_| Enforcement::NotEnforced),
        open_files: limits.open_files.map(|_| Enforcement::Rlimit),
        processes: limits.processes.map(|_| Enforcement::NotEnforced),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::units::ByteSize;

    #[test]
    fn fallback_report() {
        let limits = ResourceLimits {
            memory: Some(ByteSize(1 << 20)),
            cpu: Some(0.5),
            open_files: Some(64),
            processes: None,
        };
        let r = report(&limits);
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
    }

    #[test]
    fn detection_does_not_panic() {
        match cgroup_support() {
            CgroupSupport::Delegated { path } => assert!(path.starts_with("/sys/fs/cgroup")),
            CgroupSupport::Unavailable { reason } => assert!(!reason.is_empty()),
        }
    }
}
