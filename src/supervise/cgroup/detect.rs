//! Which cgroup hierarchies this process can use, found once at start.
//!
//! The facts come from two files: `/proc/self/mountinfo` says where each hierarchy is mounted (a `cgroup2`
//! mount, or a `cgroup` mount whose super options name its v1 controllers), and `/proc/self/cgroup` says which
//! cgroup of each hierarchy herder is in. herder's own directory in a hierarchy is the mount point joined with
//! that path (relative to the mount's root, which differs from `/` inside a cgroup namespace or a bind mount).
//! Parsing is pure ([`parse_mounts`], [`own_cgroups`]) so every layout can be tested from text.
//!
//! A hierarchy is *usable* when herder's own directory is writable (it may create sub-cgroups there) and the
//! mount is not read-only. For cgroup v2 the controllers that can be enforced are those listed in the own
//! directory's `cgroup.controllers` (a delegated subtree); a v2 mount without controllers still tracks, kills
//! and freezes a tree of processes, which is what a hybrid host offers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A v1 controller herder uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum V1 {
    /// `memory`: limit, usage, OOM count.
    Memory,
    /// `cpu`: CFS quota.
    Cpu,
    /// `cpuacct`: CPU time used.
    Cpuacct,
    /// `pids`: process count and limit.
    Pids,
    /// `freezer`: pause and resume.
    Freezer,
}

impl V1 {
    /// Every v1 controller herder uses.
    pub const ALL: [V1; 5] = [V1::Memory, V1::Cpu, V1::Cpuacct, V1::Pids, V1::Freezer];

    /// The controller's name in mount options and `/proc/self/cgroup`.
    pub fn name(self) -> &'static str {
        match self {
            V1::Memory => "memory",
            V1::Cpu => "cpu",
            V1::Cpuacct => "cpuacct",
            V1::Pids => "pids",
            V1::Freezer => "freezer",
        }
    }
}

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted.
    pub point: PathBuf,
    /// The cgroup shown at the mount point (`/` unless in a namespace or a bind mount).
    pub root: String,
    /// `true` for `cgroup2`.
    pub unified: bool,
    /// The v1 controllers of a `cgroup` mount (empty for `cgroup2`).
    pub controllers: Vec<String>,
    /// Mounted read-only.
    pub read_only: bool,
}

/// Every cgroup mount listed in a `/proc/PID/mountinfo` text.
pub fn parse_mounts(mountinfo: &str) -> Vec<Mount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let _source = right.next()?;
            let super_options = right.next().unwrap_or("");
            let unified = match fstype {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            let root = unescape(left.get(3)?);
            let point = PathBuf::from(unescape(left.get(4)?));
            let read_only = left.get(5).is_some_and(|o| o.split(',').any(|o| o == "ro"))
                || super_options.split(',').any(|o| o == "ro");
            let controllers = if unified {
                Vec::new()
            } else {
                super_options
                    .split(',')
                    .filter(|o| V1::ALL.iter().any(|c| c.name() == *o))
                    .map(str::to_owned)
                    .collect()
            };
            Some(Mount {
                point,
                root,
                unified,
                controllers,
                read_only,
            })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let digits: String = chars.clone().take(3).collect();
            if let Ok(byte) = u8::from_str_radix(&digits, 8)
                && digits.len() == 3
            {
                out.push(char::from(byte));
                chars.nth(2);
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// herder's own cgroups from a `/proc/PID/cgroup` text: the v2 path (the `0::` line) and the path per v1
/// controller.
pub fn own_cgroups(proc_cgroup: &str) -> (Option<String>, BTreeMap<String, String>) {
    let mut unified = None;
    let mut v1 = BTreeMap::new();
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            unified = Some(path.to_owned());
        } else {
            for controller in controllers.split(',') {
                v1.insert(controller.to_owned(), path.to_owned());
            }
        }
    }
    (unified, v1)
}

/// The directory of cgroup `path` in `mount`, or `None` when the cgroup is outside what the mount shows.
pub fn directory(mount: &Mount, path: &str) -> Option<PathBuf> {
    let root = mount.root.trim_end_matches('/');
    let relative = if root.is_empty() {
        path
    } else {
        path.strip_prefix(root)?
    };
    let relative = relative.trim_start_matches('/');
    if relative.split('/').any(|c| c == "..") {
        return None;
    }
    Some(if relative.is_empty() {
        mount.point.clone()
    } else {
        mount.point.join(relative)
    })
}

/// herder's own directory in each hierarchy it could use, and why the others are not usable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// The cgroup2 directory, if usable.
    pub unified: Option<PathBuf>,
    /// The v1 directory per controller, if usable.
    pub v1: BTreeMap<V1, PathBuf>,
    /// One line per hierarchy that is mounted but not usable.
    pub unusable: Vec<String>,
}

/// Finds herder's directories from the two texts, checking writability with `writable`.
pub fn find(mountinfo: &str, proc_cgroup: &str, writable: impl Fn(&Path) -> bool) -> Found {
    let mounts = parse_mounts(mountinfo);
    let (unified_path, v1_paths) = own_cgroups(proc_cgroup);
    let mut found = Found::default();
    let mut usable = |mount: &Mount, path: Option<&String>, what: &str| -> Option<PathBuf> {
        let Some(path) = path else {
            found.unusable.push(format!(
                "{what} at {}: herder's cgroup is not listed in /proc/self/cgroup",
                mount.point.display()
            ));
            return None;
        };
        let Some(dir) = directory(mount, path) else {
            found.unusable.push(format!(
                "{what} at {}: herder's cgroup {path} is outside the mount",
                mount.point.display()
            ));
            return None;
        };
        if mount.read_only {
            found.unusable.push(format!(
                "{what} at {}: mounted read-only",
                mount.point.display()
            ));
            return None;
        }
        if !writable(&dir) {
            found
                .unusable
                .push(format!("{what}: {} is not writable", dir.display()));
            return None;
        }
        Some(dir)
    };
    for mount in &mounts {
        if mount.unified {
            if found.unified.is_none() {
                found.unified = usable(mount, unified_path.as_ref(), "cgroup v2");
            }
            continue;
        }
        for controller in V1::ALL {
            if found.v1.contains_key(&controller)
                || !mount.controllers.iter().any(|c| c == controller.name())
            {
                continue;
            }
            let what = format!("cgroup v1 {}", controller.name());
            if let Some(dir) = usable(mount, v1_paths.get(controller.name()), &what) {
                found.v1.insert(controller, dir);
            }
        }
    }
    found
}

/// Whether `dir` lets this process create sub-cgroups.
pub fn is_writable(dir: &Path) -> bool {
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok()
        && nix::unistd::access(&dir.join("cgroup.procs"), nix::unistd::AccessFlags::W_OK).is_ok()
}

/// The controllers a v2 directory offers to its sub-cgroups (`cgroup.controllers`).
pub fn v2_controllers(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("cgroup.controllers"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTS: &str = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
35 30 0:31 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup ro,pids
36 30 0:32 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,freezer
";
    const HYBRID_CGROUP: &str = "\
9:pids:/
6:freezer:/
4:memory:/process_api/e01
2:cpu,cpuacct:/
0::/
";

    #[test]
    fn hybrid_mounts_and_own_directories() {
        let found = find(HYBRID_MOUNTS, HYBRID_CGROUP, |_| true);
        assert_eq!(found.unified, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(
            found.v1.get(&V1::Memory),
            Some(&PathBuf::from("/sys/fs/cgroup/memory/process_api/e01"))
        );
        assert_eq!(
            found.v1.get(&V1::Cpuacct),
            Some(&PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert_eq!(found.v1.get(&V1::Pids), None, "read-only");
        assert_eq!(found.unusable.len(), 1, "{:?}", found.unusable);
        assert!(found.unusable[0].contains("read-only"));
    }

    #[test]
    fn pure_v2_delegated_subtree_and_namespace_root() {
        let mounts = "25 20 0:22 /user.slice /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n";
        let found = find(mounts, "0::/user.slice/app.service\n", |_| true);
        assert_eq!(
            found.unified,
            Some(PathBuf::from("/sys/fs/cgroup/app.service"))
        );
        let outside = find(mounts, "0::/system.slice/x\n", |_| true);
        assert_eq!(outside.unified, None);
        assert!(outside.unusable[0].contains("outside the mount"));
    }

    #[test]
    fn not_writable_is_explained() {
        let mounts = "25 20 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let found = find(mounts, "0::/user.slice/u.service\n", |_| false);
        assert_eq!(found.unified, None);
        assert_eq!(
            found.unusable,
            vec!["cgroup v2: /sys/fs/cgroup/user.slice/u.service is not writable".to_owned()]
        );
    }

    #[test]
    fn escaped_mount_points() {
        let mounts = "1 0 0:1 / /mnt/with\\040space rw - cgroup2 none rw\n";
        assert_eq!(
            parse_mounts(mounts)[0].point,
            PathBuf::from("/mnt/with space")
        );
    }
}
