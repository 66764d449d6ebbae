//! The rescan on its own, with synthetic instants: caching, keep-last-good, settled
//! removals and cross-file rejection, deterministic (no watcher, no timing).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use herder::manifest::Code;
use herder::watch::{FileStatus, Generation, Scanner};
use tokio::time::Instant;

const SETTLE: Duration = Duration::from_millis(150);

struct Dir {
    _root: tempfile::TempDir,
    path: PathBuf,
    scanner: Scanner,
    now: Instant,
}

impl Dir {
    fn new(files: &[(&str, &str)]) -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let path = root.path().join("herder.d");
        fs::create_dir(&path).expect("mkdir");
        for (name, text) in files {
            fs::write(path.join(name), text).expect("write");
        }
        let scanner = Scanner::new(&path, SETTLE);
        Self {
            _root: root,
            path,
            scanner,
            now: Instant::now(),
        }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn write(&self, name: &str, text: &str) {
        fs::write(self.file(name), text).expect("write");
    }

    /// Scans `after` past the previous scan.
    fn scan_after(&mut self, after: Duration) -> Option<Generation> {
        self.now += after;
        self.scanner.scan(self.now, &[]).generation
    }

    fn scan(&mut self) -> Option<Generation> {
        self.scan_after(Duration::from_millis(5))
    }
}

fn names(generation: &Generation) -> Vec<&str> {
    generation
        .desired
        .children
        .keys()
        .map(String::as_str)
        .collect()
}

const A: &str = "name: a\ncommand: [\"/bin/a\"]\n";
const B: &str = "name: b\ncommand: [\"/bin/b\"]\n";
const B_NEEDS_A: &str = "name: b\ncommand: [\"/bin/b\"]\ndependencies: [a]\n";

#[test]
fn unchanged_files_are_not_parsed_again_and_nothing_is_republished() {
    let mut dir = Dir::new(&[("a.yaml", A)]);
    let first = dir.scan().expect("the first scan publishes");
    assert!(
        dir.scan().is_none(),
        "an unchanged directory was republished"
    );
    dir.write("b.yaml", B);
    let second = dir.scan().expect("a new file publishes");
    assert_eq!(names(&second), ["a", "b"]);
    assert!(
        Arc::ptr_eq(
            &first.desired.children["a"].manifest,
            &second.desired.children["a"].manifest
        ),
        "an unchanged file was parsed again"
    );
    assert_eq!(
        second.files.keys().collect::<Vec<_>>(),
        [&dir.file("b.yaml")]
    );
}

#[test]
fn removal_waits_for_the_settle_time() {
    let mut dir = Dir::new(&[("a.yaml", A), ("b.yaml", B)]);
    dir.scan();
    fs::remove_file(dir.file("b.yaml")).expect("rm");
    let scan = {
        dir.now += Duration::from_millis(5);
        dir.scanner.scan(dir.now, &[])
    };
    assert!(
        scan.generation.is_none(),
        "a removal applied before settling"
    );
    assert_eq!(scan.settle_at, Some(dir.now + SETTLE));
    assert!(dir.scan_after(Duration::from_millis(100)).is_none());
    let settled = dir
        .scan_after(Duration::from_millis(50))
        .expect("the settled removal publishes");
    assert_eq!(names(&settled), ["a"]);
    assert_eq!(settled.files[&dir.file("b.yaml")], FileStatus::Removed);
    assert!(dir.scan().is_none());
}

#[test]
fn emptied_file_that_is_refilled_in_time_retires_nothing() {
    let mut dir = Dir::new(&[("a.yaml", A)]);
    dir.scan();
    dir.write("a.yaml", "");
    assert!(
        dir.scan().is_none(),
        "an emptied file retired its child at once"
    );
    dir.write("a.yaml", "name: a\ncommand: [\"/bin/a2\"]\n");
    let generation = dir.scan().expect("the new content publishes");
    assert_eq!(
        generation.desired.children["a"]
            .manifest
            .command
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        "[\"/bin/a2\"]"
    );
    // Long after, the old hold has not turned into a removal.
    assert!(dir.scan_after(Duration::from_secs(1)).is_none());
}

#[test]
fn a_child_moved_to_another_file_is_not_a_removal() {
    let mut dir = Dir::new(&[("a.yaml", A)]);
    dir.scan();
    fs::remove_file(dir.file("a.yaml")).expect("rm");
    dir.write("moved.yaml", A);
    let generation = dir.scan().expect("the move publishes at once");
    assert_eq!(
        generation.desired.children["a"].source,
        dir.file("moved.yaml")
    );
}

#[test]
fn bad_edit_keeps_last_good_and_reports_where() {
    let mut dir = Dir::new(&[("a.yaml", A)]);
    let first = dir.scan().expect("first");
    dir.write(
        "a.yaml",
        "name: a\ncommand: [\"/bin/a\"]\nstart_timeout: soon\n",
    );
    let bad = dir.scan().expect("the error publishes");
    assert_eq!(
        bad.desired.children["a"].manifest,
        first.desired.children["a"].manifest
    );
    let error = bad.errors().next().expect("an error");
    assert_eq!(
        (error.file.as_path(), error.line),
        (dir.file("a.yaml").as_path(), 3)
    );
    assert!(error.column > 0);
    assert_eq!(
        bad.files[&dir.file("a.yaml")],
        FileStatus::Invalid {
            last_good_in_force: true
        }
    );
    // Still bad, even long after: nothing changes, nothing is republished.
    assert!(dir.scan_after(Duration::from_secs(1)).is_none());
}

#[test]
fn new_dependency_on_a_missing_child_is_rejected() {
    let mut dir = Dir::new(&[("b.yaml", B)]);
    dir.scan();
    dir.write(
        "b.yaml",
        "name: b\ncommand: [\"/bin/b2\"]\ndependencies: [nope]\n",
    );
    let generation = dir.scan().expect("the rejection publishes");
    assert_eq!(
        generation.desired.children["b"]
            .manifest
            .command
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        "[\"/bin/b\"]",
        "the last good version must stay"
    );
    let error = generation.errors().next().expect("an error");
    assert_eq!(error.code, Code::MissingDependency);
    assert_eq!((error.file.clone(), error.line), (dir.file("b.yaml"), 3));
}

#[test]
fn removing_a_needed_child_is_rejected_until_the_dependent_lets_go() {
    let mut dir = Dir::new(&[("a.yaml", A), ("b.yaml", B_NEEDS_A)]);
    dir.scan();
    fs::remove_file(dir.file("a.yaml")).expect("rm");
    assert!(dir.scan().is_none());
    let rejected = dir
        .scan_after(SETTLE)
        .expect("the rejected removal publishes its error");
    assert_eq!(names(&rejected), ["a", "b"], "a needed child was retired");
    assert!(
        rejected
            .errors()
            .any(|e| e.file == dir.file("a.yaml") && e.message.starts_with("change not applied")),
        "{:#?}",
        rejected.diagnostics
    );
    assert!(
        rejected
            .errors()
            .any(|e| e.file == dir.file("b.yaml") && e.code == Code::MissingDependency)
    );

    dir.write("b.yaml", B);
    let released = dir.scan().expect("dropping the dependency publishes");
    assert_eq!(names(&released), ["b"]);
    assert!(!released.has_errors(), "{:#?}", released.diagnostics);
}

#[test]
fn an_edit_closing_a_cycle_is_rejected() {
    let mut dir = Dir::new(&[("a.yaml", A), ("b.yaml", B_NEEDS_A)]);
    dir.scan();
    dir.write(
        "a.yaml",
        "name: a\ncommand: [\"/bin/a\"]\ndependencies: [b]\n",
    );
    let generation = dir.scan().expect("the cycle publishes its error");
    assert!(
        generation.desired.children["a"]
            .manifest
            .dependencies
            .is_empty()
    );
    assert!(generation.errors().any(|e| e.code == Code::Cycle));
    assert_eq!(
        generation.files[&dir.file("a.yaml")],
        FileStatus::Invalid {
            last_good_in_force: true
        }
    );
    assert_eq!(
        generation.files[&dir.file("b.yaml")],
        FileStatus::Invalid {
            last_good_in_force: true
        }
    );
}

#[test]
fn two_files_changed_together_apply_together() {
    let mut dir = Dir::new(&[("a.yaml", A), ("b.yaml", B_NEEDS_A)]);
    dir.scan();
    // Rename `a` to `c` and point `b` at it in one checkout.
    dir.write("a.yaml", "name: c\ncommand: [\"/bin/a\"]\n");
    dir.write(
        "b.yaml",
        "name: b\ncommand: [\"/bin/b\"]\ndependencies: [c]\n",
    );
    let first = dir.scan().expect("the additions publish at once");
    assert_eq!(
        names(&first),
        ["a", "b", "c"],
        "`a` must stay until settled"
    );
    assert!(!first.has_errors(), "{:#?}", first.diagnostics);
    assert_eq!(first.files[&dir.file("a.yaml")], FileStatus::Settling);
    let settled = dir
        .scan_after(SETTLE)
        .expect("the settled removal publishes");
    assert_eq!(names(&settled), ["b", "c"]);
    assert!(!settled.has_errors(), "{:#?}", settled.diagnostics);
    assert_eq!(settled.files[&dir.file("a.yaml")], FileStatus::Good);
}

#[test]
fn scaling_down_waits_for_the_settle_time() {
    let mut dir = Dir::new(&[(
        "api.yaml",
        "name: api\ncommand: [\"/bin/api\"]\nreplicas: 3\n",
    )]);
    dir.scan();
    dir.write(
        "api.yaml",
        "name: api\ncommand: [\"/bin/api\"]\nreplicas: 2\n",
    );
    assert!(dir.scan().is_none(), "a scale-down applied before settling");
    let settled = dir
        .scan_after(SETTLE)
        .expect("the settled scale-down publishes");
    assert_eq!(names(&settled), ["api-0", "api-1"]);
}

#[test]
fn an_unlistable_directory_retires_nothing() {
    let mut dir = Dir::new(&[("a.yaml", A)]);
    dir.scan();
    let moved = dir.path.with_file_name("elsewhere");
    fs::rename(&dir.path, &moved).expect("move the directory away");
    let gone = dir.scan().expect("the missing directory is reported");
    assert_eq!(names(&gone), ["a"]);
    assert!(
        gone.errors()
            .any(|e| e.file == dir.path && e.code == Code::Io)
    );
    assert!(dir.scan_after(Duration::from_secs(5)).is_none());
    fs::rename(&moved, &dir.path).expect("move it back");
    let back = dir.scan().expect("its return clears the error");
    assert_eq!(names(&back), ["a"]);
    assert!(back.diagnostics.is_empty());
}

#[test]
fn secret_rotation_is_seen_by_a_rescan() {
    let mut dir = Dir::new(&[]);
    let secret = dir.path.join("token");
    fs::write(&secret, "one").expect("secret");
    dir.write(
        "api.yaml",
        "name: api\ncommand: [\"/bin/api\"]\nsecrets: [{name: t, file: token}]\nenvironment: [{name: T, secret_ref: t}]\n",
    );
    let first = dir.scan().expect("first");
    fs::write(&secret, "two").expect("rotate");
    let rotated = dir.scan().expect("a rotated secret publishes");
    assert_ne!(
        first.desired.children["api"].secret_digests["t"],
        rotated.desired.children["api"].secret_digests["t"]
    );
}

#[test]
fn scan_reports_the_secret_folders_to_watch() {
    let secrets = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "name: api\ncommand: [\"/bin/api\"]\nsecrets: [{{name: t, file: {}, required: false}}]\n",
        secrets.path().join("token").display()
    );
    let mut dir = Dir::new(&[("api.yaml", &text)]);
    let scan = dir.scanner.scan(dir.now, &[]);
    assert!(
        scan.secret_dirs.contains(Path::new(secrets.path())),
        "{:?}",
        scan.secret_dirs
    );
}

#[test]
fn a_rejected_edit_applies_once_the_file_it_needs_arrives() {
    let mut dir = Dir::new(&[("b.yaml", B)]);
    dir.scan();
    dir.write(
        "b.yaml",
        "name: b\ncommand: [\"/bin/b2\"]\ndependencies: [c]\n",
    );
    let rejected = dir.scan().expect("the rejection publishes");
    assert!(
        rejected.desired.children["b"]
            .manifest
            .dependencies
            .is_empty()
    );

    // `b.yaml` is not touched again: adding `c` is what lets its edit through.
    dir.write("c.yaml", "name: c\ncommand: [\"/bin/c\"]\n");
    let applied = dir.scan().expect("the held-back edit publishes");
    assert_eq!(names(&applied), ["b", "c"]);
    assert_eq!(
        applied.desired.children["b"]
            .manifest
            .command
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        "[\"/bin/b2\"]"
    );
    assert!(!applied.has_errors(), "{:#?}", applied.diagnostics);
    assert_eq!(applied.files[&dir.file("b.yaml")], FileStatus::Good);
}

#[test]
fn new_files_are_checked_against_what_they_depend_on() {
    let mut dir = Dir::new(&[("a.yaml", A), ("b.yaml", B_NEEDS_A)]);
    dir.scan();

    // Fine: a new name that depends on existing ones.
    dir.write(
        "c.yaml",
        "name: c\ncommand: [\"/bin/c\"]\ndependencies: [a, b]\n",
    );
    let added = dir.scan().expect("the addition publishes");
    assert_eq!(names(&added), ["a", "b", "c"]);
    assert!(!added.has_errors(), "{:#?}", added.diagnostics);

    // Not fine: `completed` on a service, a missing dependency, a cycle between two new
    // files, a name that already exists. Each new file is turned away with its error.
    dir.write(
        "d.yaml",
        "name: d\ncommand: [\"/bin/d\"]\ndependencies: [{name: a, condition: completed}]\n",
    );
    dir.write(
        "e.yaml",
        "name: e\ncommand: [\"/bin/e\"]\ndependencies: [nope]\n",
    );
    dir.write(
        "f.yaml",
        "name: f\ncommand: [\"/bin/f\"]\ndependencies: [g]\n",
    );
    dir.write(
        "g.yaml",
        "name: g\ncommand: [\"/bin/g\"]\ndependencies: [f]\n",
    );
    let rejected = dir.scan().expect("the rejections publish");
    assert_eq!(names(&rejected), ["a", "b", "c"]);
    dir.write("h.yaml", "name: a\ncommand: [\"/bin/h\"]\n");
    let rejected = dir.scan().expect("the rejection publishes");
    assert_eq!(
        names(&rejected),
        ["a", "b", "c"],
        "{:#?}",
        rejected.diagnostics
    );
    for file in ["d.yaml", "e.yaml", "f.yaml", "g.yaml", "h.yaml"] {
        assert!(
            rejected.errors().any(|e| e.file == dir.file(file)),
            "{file} has no error: {:#?}",
            rejected.diagnostics
        );
    }
    assert!(rejected.errors().any(|e| e.code == Code::Cycle));
    assert!(rejected.errors().any(|e| e.code == Code::MissingDependency));
    assert!(rejected.errors().any(|e| e.code == Code::DuplicateName));
}

#[test]
fn an_edit_that_keeps_the_shape_applies_and_one_that_breaks_it_does_not() {
    let mut dir = Dir::new(&[("a.yaml", A), ("b.yaml", B_NEEDS_A)]);
    dir.scan();
    dir.write(
        "b.yaml",
        "name: b\ncommand: [\"/bin/b2\"]\ndependencies: [a]\n",
    );
    let edited = dir.scan().expect("the edit publishes");
    assert_eq!(
        edited.desired.children["b"]
            .manifest
            .command
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        "[\"/bin/b2\"]"
    );
    assert!(!edited.has_errors(), "{:#?}", edited.diagnostics);

    dir.write(
        "a.yaml",
        "name: a\ncommand: [\"/bin/a\"]\ndependencies: [b]\n",
    );
    let cycle = dir.scan().expect("the rejection publishes");
    assert!(cycle.errors().any(|e| e.code == Code::Cycle));
    assert!(cycle.desired.children["a"].manifest.dependencies.is_empty());
}
