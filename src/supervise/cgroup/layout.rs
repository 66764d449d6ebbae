//! herder's subtree in each usable hierarchy, and what it enforces: the layout decided once at start.
//!
//! Preference, per the host: a delegated cgroup v2 subtree (controllers in herder's own cgroup) enforces every
//! limit and tracks, kills and freezes; a *hybrid* host (cgroup2 without controllers beside v1 controllers)
//! enforces limits with v1 and tracks, kills and freezes with v2; a v1-only host does everything with v1
//! (kill = freeze, SIGKILL each member, thaw); with none usable, limits fall back to rlimits and the RSS
//! watchdog. `HERDER_CGROUPS=v2|v1|off` restricts the choice (tests, and hosts where one hierarchy misbehaves).
//!
//! Each hierarchy gets `<herder's cgroup>/herder-<instance>/`, and each child incarnation a directory below
//! it ([`super::incarnation`]): always nested under herder's own cgroup, never beside it. On a delegated v2
//! subtree herder first moves itself into the leaf `herder-supervisor` (the "no internal processes" rule
//! forbids enabling controllers for sub-cgroups of a cgroup that has processes), then enables `memory`,
//! `cpu` and `pids` for its subtree.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use super::cleanup;
use super::detect::{self, Found, V1};

/// Which cgroup layout herder uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// cgroup v2 alone (a delegated subtree, or tracking only when no controller is delegated).
    V2,
    /// v1 controllers for limits, cgroup2 for tracking, kill and freeze.
    Hybrid,
    /// cgroup v1 alone.
    V1,
    /// No usable cgroup: rlimits and the RSS watchdog.
    None,
}

/// What herder's cgroups can do on this host.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Controller {
    /// Memory limit, usage and OOM kills.
    Memory,
    /// CPU bandwidth limit.
    Cpu,
    /// Process-count limit.
    Pids,
    /// Pause and resume of a whole tree.
    Freeze,
    /// Kill of a whole tree at once (`cgroup.kill`, or freeze then SIGKILL each member).
    Kill,
}

/// The detection result reported by `herder up` and `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Detection {
    /// The layout in use.
    pub layout: Layout,
    /// What is usable.
    pub controllers: Vec<Controller>,
    /// Where, and why not where not.
    pub detail: String,
}

impl Detection {
    fn none(detail: String) -> Self {
        Self {
            layout: Layout::None,
            controllers: Vec::new(),
            detail,
        }
    }
}

/// How a v2 subtree is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unified {
    /// `<own>/herder-<instance>`.
    pub base: PathBuf,
    /// Controllers enabled for the children: `memory`, `cpu`, `pids`.
    pub controllers: Vec<String>,
    /// `cgroup.kill` exists (Linux ≥ 5.14).
    pub kill: bool,
    /// `cgroup.freeze` exists (Linux ≥ 5.2).
    pub freeze: bool,
}

impl Unified {
    /// Whether the v2 `controller` is enabled for children.
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// herder's subtrees: where each child incarnation's cgroups are made.
#[derive(Debug, Clone)]
pub struct Tree {
    /// What was found.
    pub detection: Detection,
    /// The v2 subtree, if used.
    pub unified: Option<Unified>,
    /// The v1 subtree per controller, if used.
    pub v1: BTreeMap<V1, PathBuf>,
}

impl Tree {
    /// herder's `herder-<instance>` directories, one per hierarchy in use.
    pub fn bases(&self) -> Vec<PathBuf> {
        bases(self.unified.as_ref(), &self.v1)
    }
}

fn bases(unified: Option<&Unified>, v1: &BTreeMap<V1, PathBuf>) -> Vec<PathBuf> {
    let mut bases: Vec<PathBuf> = unified.iter().map(|u| u.base.clone()).collect();
    bases.extend(v1.values().cloned());
    // `cpu` and `cpuacct` may share one directory.
    bases.sort();
    bases.dedup();
    bases
}

/// The outcome of [`setup`].
#[derive(Debug)]
pub struct Setup {
    /// What `herder up` reports.
    pub detection: Detection,
    /// The subtrees, unless the layout is [`Layout::None`].
    pub tree: Option<Tree>,
    /// Leftover cgroups of this instance (from a herder killed with SIGKILL) that were emptied and removed.
    pub leftovers: cleanup::Removed,
}

/// Which hierarchies herder may use (`HERDER_CGROUPS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preference {
    /// Whatever works best (the default).
    Auto,
    /// cgroup v2 only.
    V2,
    /// cgroup v1 only.
    V1,
    /// No cgroups.
    Off,
}

impl Preference {
    /// From `HERDER_CGROUPS`; unknown values mean `auto`.
    pub fn from_env() -> Self {
        match std::env::var("HERDER_CGROUPS").as_deref() {
            Ok("v2") => Self::V2,
            Ok("v1") => Self::V1,
            Ok("off" | "none") => Self::Off,
            _ => Self::Auto,
        }
    }
}

/// Detects the layout, creates `herder-<instance>` in every usable hierarchy and removes the leftovers of a
/// previous herder of the same instance. Never fails: what does not work is reported in the detail.
pub fn setup(instance: &str, preference: Preference) -> Setup {
    let base_name = format!("herder-{}", sanitize(instance));
    match find(preference) {
        Some(found) => build(found, &base_name),
        None => Setup {
            detection: turned_off(),
            tree: None,
            leftovers: cleanup::Removed::default(),
        },
    }
}

/// What a herder started here now could enforce, creating and moving nothing: the prediction
/// `herder validate` warns from. It assumes that enabling the controllers a v2 subtree offers succeeds.
pub fn predict(preference: Preference) -> Detection {
    let Some(found) = find(preference) else {
        return turned_off();
    };
    let unified = found.unified.as_ref().map(|own| Unified {
        base: own.clone(),
        controllers: wanted_v2(own),
        kill: own.join("cgroup.kill").exists(),
        freeze: own.join("cgroup.freeze").exists(),
    });
    describe(unified.as_ref(), &found.v1, &found.unusable)
}

fn turned_off() -> Detection {
    Detection::none("cgroups turned off (HERDER_CGROUPS=off)".into())
}

/// herder's own directories in the hierarchies `preference` allows (`None`: cgroups turned off).
fn find(preference: Preference) -> Option<Found> {
    if preference == Preference::Off {
        return None;
    }
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let mut found = detect::find(
        &read("/proc/self/mountinfo"),
        &read("/proc/self/cgroup"),
        detect::is_writable,
    );
    match preference {
        Preference::V2 => found.v1.clear(),
        Preference::V1 => found.unified = None,
        Preference::Auto | Preference::Off => {}
    }
    Some(found)
}

/// The limit controllers a v2 directory offers its sub-cgroups.
fn wanted_v2(own: &Path) -> Vec<String> {
    detect::v2_controllers(own)
        .into_iter()
        .filter(|c| matches!(c.as_str(), "memory" | "cpu" | "pids"))
        .collect()
}

/// Instance names come from directory names: keep them a single path component.
fn sanitize(instance: &str) -> String {
    instance
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn build(found: Found, base_name: &str) -> Setup {
    let mut notes: Vec<String> = found.unusable.clone();
    let mut leftovers = cleanup::Removed::default();
    let unified = found.unified.as_ref().and_then(|own| {
        match unified_subtree(own, base_name, wanted_v2(own), &mut notes) {
            Ok(u) => Some(u),
            Err(e) => {
                notes.push(format!(
                    "cgroup v2: cannot create {}: {e}",
                    own.join(base_name).display()
                ));
                None
            }
        }
    });
    let mut v1 = BTreeMap::new();
    for (controller, own) in &found.v1 {
        let base = own.join(base_name);
        match create_dir(&base) {
            Ok(()) => {
                v1.insert(*controller, base);
            }
            Err(e) => notes.push(format!(
                "cgroup v1 {}: cannot create {}: {e}",
                controller.name(),
                base.display()
            )),
        }
    }
    if v1.contains_key(&V1::Pids) && !unified.as_ref().is_some_and(|u| u.has("pids")) {
        notes.push(if super::watch::pids_refusals_live() {
            "v1 pids refusals seen live in /dev/kmsg".to_owned()
        } else {
            "v1 pids refusals found at exit (/dev/kmsg is not readable)".to_owned()
        });
    }
    leftovers.merge(cleanup::remove_leftovers(
        &bases(unified.as_ref(), &v1),
        unified.as_ref(),
    ));
    let detection = describe(unified.as_ref(), &v1, &notes);
    let tree = (detection.layout != Layout::None).then(|| Tree {
        detection: detection.clone(),
        unified,
        v1,
    });
    Setup {
        detection,
        tree,
        leftovers,
    }
}

fn create_dir(dir: &Path) -> io::Result<()> {
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// Creates the v2 base and enables the `wanted` controllers the own cgroup delegates, moving herder into a
/// leaf if it must.
fn unified_subtree(
    own: &Path,
    base_name: &str,
    wanted: Vec<String>,
    notes: &mut Vec<String>,
) -> io::Result<Unified> {
    let mut enabled = Vec::new();
    if !wanted.is_empty() {
        match enable(own, &wanted) {
            Ok(()) => enabled = wanted.clone(),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                // herder sits in its own cgroup: move it into a leaf, then enable.
                let leaf = own.join("herder-supervisor");
                let moved = create_dir(&leaf).and_then(|()| {
                    std::fs::write(leaf.join("cgroup.procs"), std::process::id().to_string())
                });
                match moved.and_then(|()| enable(own, &wanted)) {
                    Ok(()) => enabled = wanted.clone(),
                    Err(e) => notes.push(format!(
                        "cgroup v2: cannot enable {} in {}: {e}",
                        wanted.join(" "),
                        own.display()
                    )),
                }
            }
            Err(e) => notes.push(format!(
                "cgroup v2: cannot enable {} in {}: {e}",
                wanted.join(" "),
                own.display()
            )),
        }
    }
    let base = own.join(base_name);
    create_dir(&base)?;
    if !enabled.is_empty()
        && let Err(e) = enable(&base, &enabled)
    {
        notes.push(format!(
            "cgroup v2: cannot enable {} in {}: {e}",
            enabled.join(" "),
            base.display()
        ));
        enabled.clear();
    }
    Ok(Unified {
        kill: base.join("cgroup.kill").exists(),
        freeze: base.join("cgroup.freeze").exists(),
        base,
        controllers: enabled,
    })
}

fn enable(dir: &Path, controllers: &[String]) -> io::Result<()> {
    let current = std::fs::read_to_string(dir.join("cgroup.subtree_control"))?;
    let missing: Vec<String> = controllers
        .iter()
        .filter(|c| !current.split_whitespace().any(|have| have == c.as_str()))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    std::fs::write(dir.join("cgroup.subtree_control"), missing.join(" "))
}

fn describe(unified: Option<&Unified>, v1: &BTreeMap<V1, PathBuf>, notes: &[String]) -> Detection {
    let mut controllers = Vec::new();
    let v2_has = |c: &str| unified.is_some_and(|u| u.has(c));
    if v2_has("memory") || v1.contains_key(&V1::Memory) {
        controllers.push(Controller::Memory);
    }
    if v2_has("cpu") || v1.contains_key(&V1::Cpu) {
        controllers.push(Controller::Cpu);
    }
    if v2_has("pids") || v1.contains_key(&V1::Pids) {
        controllers.push(Controller::Pids);
    }
    if unified.is_some_and(|u| u.freeze) || v1.contains_key(&V1::Freezer) {
        controllers.push(Controller::Freeze);
    }
    if unified.is_some() || !v1.is_empty() {
        controllers.push(Controller::Kill);
    }
    let layout = match unified {
        Some(u) if !u.controllers.is_empty() || v1.is_empty() => Layout::V2,
        Some(_) => Layout::Hybrid,
        None if !v1.is_empty() => Layout::V1,
        None => Layout::None,
    };
    let mut parts = Vec::new();
    if let Some(u) = unified {
        let what = if u.controllers.is_empty() {
            "tracking, kill and freeze (no controllers delegated)".to_owned()
        } else {
            u.controllers.join(", ")
        };
        parts.push(format!("cgroup v2 at {}: {what}", u.base.display()));
    }
    let v1_used: Vec<String> = v1
        .iter()
        .filter(|(c, _)| !(unified.is_some() && matches!(c, V1::Freezer | V1::Cpuacct)))
        .map(|(c, dir)| format!("{} at {}", c.name(), dir.display()))
        .collect();
    if !v1_used.is_empty() {
        parts.push(format!("cgroup v1 {}", v1_used.join(", ")));
    }
    let fallback: Vec<&str> = [
        (!controllers.contains(&Controller::Memory)).then_some("memory by watchdog"),
        (!controllers.contains(&Controller::Cpu)).then_some("cpu not enforced"),
        (!controllers.contains(&Controller::Pids)).then_some("processes not enforced"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !fallback.is_empty() {
        parts.push(fallback.join(", "));
    }
    parts.extend(notes.iter().cloned());
    if parts.is_empty() {
        parts.push("no cgroup hierarchy is mounted".into());
    }
    Detection {
        layout,
        controllers,
        detail: parts.join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unified(controllers: &[&str]) -> Unified {
        Unified {
            base: PathBuf::from("/sys/fs/cgroup/unified/herder-x"),
            controllers: controllers.iter().map(|c| (*c).to_owned()).collect(),
            kill: true,
            freeze: true,
        }
    }

    #[test]
    fn layouts_in_order_of_preference() {
        let mut v1 = BTreeMap::new();
        v1.insert(V1::Memory, PathBuf::from("/sys/fs/cgroup/memory/herder-x"));
        let d = describe(Some(&unified(&["memory", "cpu", "pids"])), &v1, &[]);
        assert_eq!(d.layout, Layout::V2);
        let d = describe(Some(&unified(&[])), &v1, &[]);
        assert_eq!(d.layout, Layout::Hybrid);
        assert_eq!(
            d.controllers,
            vec![Controller::Memory, Controller::Freeze, Controller::Kill]
        );
        assert!(
            d.detail
                .contains("cpu not enforced, processes not enforced"),
            "{}",
            d.detail
        );
        assert_eq!(describe(None, &v1, &[]).layout, Layout::V1);
        let none = describe(
            None,
            &BTreeMap::new(),
            &["cgroup v2: x is not writable".into()],
        );
        assert_eq!(none.layout, Layout::None);
        assert_eq!(
            none.detail,
            "memory by watchdog, cpu not enforced, processes not enforced; cgroup v2: x is not writable"
        );
        assert_eq!(
            describe(Some(&unified(&[])), &BTreeMap::new(), &[]).layout,
            Layout::V2
        );
    }

    /// On a delegated v2 subtree herder's own cgroup holds herder, so enabling controllers for its children
    /// fails with EBUSY (no internal processes) until herder has moved itself into a leaf. Run for real in a
    /// child process (this test binary again) alone in a fresh v2 cgroup, with `hugetlb`: the one controller
    /// this machine's cgroup2 mount offers (the limit controllers are bound to v1 here), which takes the same
    /// path as memory, cpu and pids on a pure v2 host.
    #[test]
    fn a_v2_subtree_with_herder_inside_moves_herder_into_a_leaf() {
        const OWN: &str = "HERDER_TEST_LEAF_OWN";
        if let Ok(own) = std::env::var(OWN) {
            // The child, once the parent has moved it into `own`.
            std::io::stdin().read_line(&mut String::new()).unwrap();
            let mut notes = Vec::new();
            let own = Path::new(&own);
            let unified =
                unified_subtree(own, "herder-test", vec!["hugetlb".into()], &mut notes).unwrap();
            assert!(notes.is_empty(), "{notes:?}");
            assert_eq!(unified.controllers, ["hugetlb"]);
            let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap();
            assert!(
                cgroup
                    .lines()
                    .any(|l| l.starts_with("0::") && l.ends_with("/herder-supervisor")),
                "moved into the leaf: {cgroup}"
            );
            return;
        }
        let Some(parent) = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .into_iter()
            .map(Path::new)
            .find(|m| detect::v2_controllers(m).iter().any(|c| c == "hugetlb"))
        else {
            println!("skipped: no cgroup2 mount offers hugetlb at its root here");
            return;
        };
        let subtree = parent.join("cgroup.subtree_control");
        let had = std::fs::read_to_string(&subtree)
            .unwrap_or_default()
            .split_whitespace()
            .any(|c| c == "hugetlb");
        if !had && std::fs::write(&subtree, "+hugetlb").is_err() {
            println!("skipped: cannot enable hugetlb in {}", subtree.display());
            return;
        }
        let own = parent.join(format!("herder-leaf-test-{}", std::process::id()));
        std::fs::create_dir(&own).unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "supervise::cgroup::layout::tests::a_v2_subtree_with_herder_inside_moves_herder_into_a_leaf",
                "--test-threads=1",
            ])
            .env(OWN, &own)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::fs::write(own.join("cgroup.procs"), child.id().to_string()).unwrap();
        let mut gate = child.stdin.take().unwrap();
        std::io::Write::write_all(&mut gate, b"go\n").unwrap();
        drop(gate);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the child did not end"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        let enabled = |dir: &Path| {
            std::fs::read_to_string(dir.join("cgroup.subtree_control"))
                .unwrap_or_default()
                .contains("hugetlb")
        };
        let (own_enabled, base_enabled) = (enabled(&own), enabled(&own.join("herder-test")));
        for dir in [
            own.join("herder-test"),
            own.join("herder-supervisor"),
            own.clone(),
        ] {
            let _ = std::fs::remove_dir(dir);
        }
        if !had {
            let _ = std::fs::write(&subtree, "-hugetlb");
        }
        assert!(status.success(), "the child's checks failed: {status}");
        assert!(
            own_enabled && base_enabled,
            "hugetlb enabled in the own cgroup and the base"
        );
    }

    #[test]
    fn instance_names_stay_one_component() {
        assert_eq!(sanitize("herder.d-1a2b"), "herder.d-1a2b");
        assert_eq!(sanitize("a/b c"), "a_b_c");
    }
}
