//! The watcher against real files and real inotify: every test edits a temporary directory
//! the way people and tools do, then awaits the generation that must follow (inside a
//! timeout naming the suspected bug), never sleeping and hoping.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use herder::manifest::Code;
use herder::watch::{FileStatus, Generation, WatchConfig, WatchHandle, spawn};
use tokio::sync::mpsc::Receiver;
use tokio::time::{Instant, timeout};

const PATIENCE: Duration = Duration::from_secs(10);

struct Fixture {
    _root: tempfile::TempDir,
    dir: PathBuf,
    handle: WatchHandle,
    generations: Receiver<Generation>,
}

impl Fixture {
    /// A watched directory holding `files`, after its first generation.
    async fn new(files: &[(&str, String)]) -> (Self, Generation) {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("herder.d");
        fs::create_dir(&dir).expect("create dir");
        for (name, text) in files {
            fs::write(dir.join(name), text).expect("write manifest");
        }
        let (handle, generations, _task) = spawn(WatchConfig::new(&dir));
        let mut fixture = Self {
            _root: root,
            dir,
            handle,
            generations,
        };
        let first = fixture.next("the initial scan publishes nothing").await;
        (fixture, first)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    async fn next(&mut self, suspect: &str) -> Generation {
        timeout(PATIENCE, self.generations.recv())
            .await
            .unwrap_or_else(|_| panic!("no generation within {PATIENCE:?}: {suspect}"))
            .expect("the watch task ended")
    }

    /// Awaits generations until one satisfies `done`; every one before it must satisfy
    /// `invariant`.
    async fn until(
        &mut self,
        suspect: &str,
        invariant: impl Fn(&Generation) -> bool,
        done: impl Fn(&Generation) -> bool,
    ) -> Generation {
        loop {
            let generation = self.next(suspect).await;
            assert!(
                invariant(&generation),
                "invariant broken in generation {}: {suspect}: {generation:#?}",
                generation.number
            );
            if done(&generation) {
                return generation;
            }
        }
    }

    /// Proves no generation is queued besides the ones already consumed: writes a marker
    /// manifest and checks that the very next generation is the one adding it.
    async fn assert_quiet(&mut self, suspect: &str) {
        fs::write(self.path("zz-marker.yaml"), manifest("zz-marker", 1)).expect("write marker");
        let generation = self.next("the marker file was not picked up").await;
        assert!(
            generation.desired.children.contains_key("zz-marker"),
            "an extra generation was published: {suspect}: {generation:#?}"
        );
    }
}

fn manifest(name: &str, variant: u32) -> String {
    format!("name: {name}\ncommand: [\"/bin/sleep\", \"{variant}\"]\n")
}

fn command_of(generation: &Generation, name: &str) -> Option<String> {
    generation
        .desired
        .children
        .get(name)
        .and_then(|spec| Some(spec.manifest.command.as_ref()?.to_string()))
}

fn has(name: &str) -> impl Fn(&Generation) -> bool + '_ {
    move |generation| generation.desired.children.contains_key(name)
}

fn runs(name: &'static str, variant: u32) -> impl Fn(&Generation) -> bool {
    move |generation| {
        command_of(generation, name).as_deref() == Some(&format!("[\"/bin/sleep\", \"{variant}\"]"))
    }
}

#[tokio::test]
async fn initial_scan_publishes_the_directory() {
    let (_fixture, first) =
        Fixture::new(&[("a.yaml", manifest("a", 1)), ("b.yml", manifest("b", 1))]).await;
    assert_eq!(first.number, 1);
    assert_eq!(first.desired.generation, 1);
    let names: Vec<&str> = first.desired.children.keys().map(String::as_str).collect();
    assert_eq!(names, ["a", "b"]);
    assert!(first.diagnostics.is_empty(), "{:?}", first.diagnostics);
    assert!(first.files.values().all(|s| *s == FileStatus::Good));
}

#[tokio::test]
async fn adding_a_file_starts_a_child() {
    let (mut fixture, _) = Fixture::new(&[("a.yaml", manifest("a", 1))]).await;
    fs::write(fixture.path("b.yaml"), manifest("b", 1)).expect("write");
    let generation = fixture.next("a new file was not seen").await;
    assert!(has("b")(&generation));
    assert_eq!(generation.number, 2);
    assert_eq!(
        generation.files.keys().collect::<Vec<_>>(),
        [&fixture.path("b.yaml")]
    );
}

#[tokio::test]
async fn editing_a_file_in_place_changes_the_child() {
    let (mut fixture, _) = Fixture::new(&[("a.yaml", manifest("a", 1))]).await;
    fs::write(fixture.path("a.yaml"), manifest("a", 2)).expect("write");
    fixture
        .until("an in-place edit was not applied", has("a"), runs("a", 2))
        .await;
}

#[tokio::test]
async fn atomic_save_applies_once() {
    let (mut fixture, _) = Fixture::new(&[("a.yaml", manifest("a", 1))]).await;
    let tmp = fixture.path(".a.yaml.tmp1234");
    fs::write(&tmp, manifest("a", 2)).expect("write tmp");
    fs::rename(&tmp, fixture.path("a.yaml")).expect("rename");
    let generation = fixture.next("an atomic save was not seen").await;
    assert!(runs("a", 2)(&generation));
    fixture.assert_quiet("an atomic save published twice").await;
}

#[tokio::test]
async fn renaming_a_file_keeps_the_child_running() {
    let (mut fixture, _) = Fixture::new(&[("a.yaml", manifest("a", 1))]).await;
    fs::rename(fixture.path("a.yaml"), fixture.path("renamed.yaml")).expect("rename");
    let target = fixture.path("renamed.yaml");
    let generation = fixture
        .until("a rename was not applied", has("a"), |g| {
            g.desired
                .children
                .get("a")
                .is_some_and(|s| s.source == target)
        })
        .await;
    assert_eq!(generation.files.get(&target), Some(&FileStatus::Good));
}

#[tokio::test]
async fn removal_retires_only_after_settling() {
    let (mut fixture, _) =
        Fixture::new(&[("a.yaml", manifest("a", 1)), ("b.yaml", manifest("b", 1))]).await;
    let removed_at = Instant::now();
    fs::remove_file(fixture.path("b.yaml")).expect("remove");
    let generation = fixture.next("a removal never took effect").await;
    assert!(!has("b")(&generation) && has("a")(&generation));
    assert!(
        removed_at.elapsed() >= Duration::from_millis(150),
        "the removal took effect before the settle time: {:?}",
        removed_at.elapsed()
    );
    assert_eq!(
        generation.files.get(&fixture.path("b.yaml")),
        Some(&FileStatus::Removed)
    );
}

#[tokio::test]
async fn truncate_then_write_never_retires() {
    let (mut fixture, _) = Fixture::new(&[("a.yaml", manifest("a", 1))]).await;
    let path = fixture.path("a.yaml");
    let file = fs::File::create(&path).expect("truncate");
    // A slow writer: the file stays empty well past the quiet window, so a rescan sees it.
    tokio::time::sleep(Duration::from_millis(40)).await;
    drop(file);
    fs::write(&path, manifest("a", 2)).expect("write");
    fixture
        .until("an empty file retired its child", has("a"), runs("a", 2))
        .await;
}

#[tokio::test]
async fn invalid_edit_keeps_the_last_good_and_fixing_applies() {
    let (mut fixture, first) = Fixture::new(&[("a.yaml", manifest("a", 1))]).await;
    let path = fixture.path("a.yaml");
    fs::write(
        &path,
        "name: a\ncommand: [\"/bin/sleep\", \"2\"]\nrestart: sometimes\n",
    )
    .expect("write");
    let bad = fixture.next("an invalid edit was not reported").await;
    assert_eq!(
        bad.desired.children.get("a").map(|s| &s.manifest),
        first.desired.children.get("a").map(|s| &s.manifest),
        "the last good version must stay in force"
    );
    let error = bad.errors().next().expect("an error is reported");
    assert_eq!(error.file, path);
    assert_eq!((error.line, error.column), (3, 10), "{error:?}");
    assert_eq!(
        bad.files.get(&path),
        Some(&FileStatus::Invalid {
            last_good_in_force: true
        })
    );

    fs::write(&path, manifest("a", 3)).expect("write");
    let fixed = fixture.next("fixing the file was not applied").await;
    assert!(runs("a", 3)(&fixed));
    assert!(fixed.diagnostics.is_empty(), "{:?}", fixed.diagnostics);
    assert_eq!(fixed.files.get(&path), Some(&FileStatus::Good));
}

#[tokio::test]
async fn brand_new_bad_file_contributes_nothing() {
    let (mut fixture, _) = Fixture::new(&[("a.yaml", manifest("a", 1))]).await;
    fs::write(fixture.path("b.yaml"), "name: b\ncommand: [\n").expect("write");
    let generation = fixture.next("a bad new file was not reported").await;
    assert!(!has("b")(&generation));
    assert_eq!(
        generation.files.get(&fixture.path("b.yaml")),
        Some(&FileStatus::Invalid {
            last_good_in_force: false
        })
    );
    assert!(generation.errors().any(|e| e.code == Code::Syntax));
}

#[tokio::test]
async fn vim_style_save_never_retires() {
    let (mut fixture, _) = Fixture::new(&[("a.yaml", manifest("a", 1))]).await;
    let path = fixture.path("a.yaml");
    let backup = fixture.path("a.yaml~");
    fs::write(fixture.path("4913"), "").expect("probe");
    fs::remove_file(fixture.path("4913")).expect("probe");
    fs::rename(&path, &backup).expect("rename away");
    tokio::time::sleep(Duration::from_millis(20)).await;
    fs::write(&path, manifest("a", 2)).expect("write new");
    fs::remove_file(&backup).expect("delete backup");
    fixture
        .until("a vim-style save retired its child", has("a"), runs("a", 2))
        .await;
}

#[tokio::test]
async fn burst_of_fifty_files_is_one_generation() {
    let (mut fixture, _) = Fixture::new(&[("a.yaml", manifest("a", 1))]).await;
    let texts: Vec<(PathBuf, String)> = (0..50)
        .map(|i| {
            (
                fixture.path(&format!("svc-{i:02}.yaml")),
                manifest(&format!("svc-{i:02}"), 1),
            )
        })
        .collect();
    for (path, text) in &texts {
        fs::write(path, text).expect("write");
    }
    let generation = fixture.next("the burst was not seen").await;
    assert_eq!(
        generation.desired.children.len(),
        51,
        "a burst was split into partial generations"
    );
    assert_eq!(generation.files.len(), 50);
    fixture.assert_quiet("a burst published twice").await;
}

#[tokio::test]
async fn kubernetes_configmap_swap_is_one_reload() {
    let (mut fixture, _) = Fixture::new(&[]).await;
    let dir = fixture.dir.clone();
    let write_version = |version: &str, variant: u32| {
        let data = dir.join(version);
        fs::create_dir(&data).expect("data dir");
        fs::write(data.join("a.yaml"), manifest("a", variant)).expect("write a");
        fs::write(data.join("b.yaml"), manifest("b", variant)).expect("write b");
    };
    let swap = |version: &str| {
        std::os::unix::fs::symlink(version, dir.join("..data_tmp")).expect("symlink");
        fs::rename(dir.join("..data_tmp"), dir.join("..data")).expect("swap");
    };

    write_version("..2026_01_01", 1);
    swap("..2026_01_01");
    for name in ["a.yaml", "b.yaml"] {
        std::os::unix::fs::symlink(Path::new("..data").join(name), dir.join(name)).expect("link");
    }
    fixture
        .until(
            "the initial ConfigMap was not loaded",
            |_| true,
            |g| runs("a", 1)(g) && runs("b", 1)(g),
        )
        .await;

    write_version("..2026_01_02", 2);
    swap("..2026_01_02");
    fs::remove_dir_all(dir.join("..2026_01_01")).expect("remove old version");
    let generation = fixture.next("a ConfigMap swap was not seen").await;
    assert!(
        runs("a", 2)(&generation) && runs("b", 2)(&generation),
        "the swap applied partially: {generation:#?}"
    );
    fixture
        .assert_quiet("a ConfigMap swap published twice")
        .await;
}

/// Issue 11: a plain edit among many files reads that file only: the directory is not
/// listed again and no other file is `stat`ed, so the work per edit does not grow with the
/// directory.
#[tokio::test]
async fn a_plain_edit_reads_that_file_only() {
    const FILES: usize = 300;
    let files: Vec<(String, String)> = (0..FILES)
        .map(|i| (format!("m{i:03}.yaml"), manifest(&format!("m{i:03}"), 1)))
        .collect();
    let refs: Vec<(&str, String)> = files.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    let (mut fixture, first) = Fixture::new(&refs).await;
    assert_eq!(first.desired.children.len(), FILES);
    let before = fixture.handle.io();
    assert!(
        before.files_stated >= FILES as u64,
        "the first scan looked at every file: {before:?}"
    );

    fs::write(fixture.path("m123.yaml"), manifest("m123", 2)).expect("edit in place");
    fixture
        .until("the edit was not applied", |_| true, runs("m123", 2))
        .await;
    let after = fixture.handle.io();
    assert_eq!(
        after.listings, before.listings,
        "the directory was listed again: {after:?}"
    );
    assert_eq!(after.dirs_stated, before.dirs_stated, "{after:?}");
    assert!(
        after.files_stated - before.files_stated <= 2,
        "other files were stat'ed: {before:?} -> {after:?}"
    );
    assert!(
        after.files_read - before.files_read <= 2,
        "{before:?} -> {after:?}"
    );

    // A new file and a removal are single-file events too.
    let before = fixture.handle.io();
    fs::write(fixture.path("new.yaml"), manifest("new", 1)).expect("add");
    fixture
        .until("the new file was not applied", |_| true, has("new"))
        .await;
    fs::remove_file(fixture.path("m000.yaml")).expect("remove");
    fixture
        .until("the removal was not applied", |_| true, |g| !has("m000")(g))
        .await;
    let after = fixture.handle.io();
    assert_eq!(after.listings, before.listings, "{before:?} -> {after:?}");
    assert!(
        after.files_stated - before.files_stated <= 8,
        "{before:?} -> {after:?}"
    );
}

/// A ConfigMap-style swap names no manifest: it still rescans the directory, and applies.
#[tokio::test]
async fn a_symlink_swap_rescans_the_whole_directory() {
    let (mut fixture, _) = Fixture::new(&[("plain.yaml", manifest("plain", 1))]).await;
    let dir = fixture.dir.clone();
    fs::create_dir(dir.join("..v1")).expect("version dir");
    fs::write(dir.join("..v1/a.yaml"), manifest("a", 1)).expect("write a");
    std::os::unix::fs::symlink("..v1", dir.join("..data")).expect("data link");
    std::os::unix::fs::symlink("..data/a.yaml", dir.join("a.yaml")).expect("link");
    fixture
        .until("the ConfigMap file was not loaded", |_| true, runs("a", 1))
        .await;
    let before = fixture.handle.io();
    fs::create_dir(dir.join("..v2")).expect("version dir");
    fs::write(dir.join("..v2/a.yaml"), manifest("a", 2)).expect("write a");
    std::os::unix::fs::symlink("..v2", dir.join("..data_tmp")).expect("symlink");
    fs::rename(dir.join("..data_tmp"), dir.join("..data")).expect("swap");
    fixture
        .until("the swap was not applied", |_| true, runs("a", 2))
        .await;
    let after = fixture.handle.io();
    assert!(
        after.files_stated > before.files_stated + 1
            && after.dirs_stated + after.listings > before.dirs_stated + before.listings,
        "a swap must look at the whole directory: {before:?} -> {after:?}"
    );
}

#[tokio::test]
async fn directory_removed_and_recreated_is_survived() {
    let (mut fixture, _) = Fixture::new(&[("a.yaml", manifest("a", 1))]).await;
    let dir = fixture.dir.clone();
    fs::remove_dir_all(&dir).expect("remove dir");
    let gone = fixture.next("a deleted directory was not reported").await;
    assert!(
        has("a")(&gone),
        "a vanished directory must not retire anything"
    );
    assert!(gone.errors().any(|e| e.file == dir && e.code == Code::Io));

    fs::create_dir(&dir).expect("recreate dir");
    fs::write(dir.join("a.yaml"), manifest("a", 2)).expect("write a");
    fs::write(dir.join("b.yaml"), manifest("b", 1)).expect("write b");
    fixture
        .until("the recreated directory is not watched", has("a"), |g| {
            runs("a", 2)(g) && has("b")(g) && !g.has_errors()
        })
        .await;

    // The new directory's watch works for later edits too.
    fs::write(dir.join("c.yaml"), manifest("c", 1)).expect("write c");
    fixture
        .until("edits after recreation are not seen", has("a"), has("c"))
        .await;
}

#[tokio::test]
async fn rotating_a_secret_outside_the_directory_changes_the_digest() {
    let secrets = tempfile::tempdir().expect("tempdir");
    let token = secrets.path().join("token");
    fs::write(&token, "one").expect("write secret");
    let text = format!(
        "name: api\ncommand: [\"/bin/true\"]\nsecrets:\n  - {{name: token, file: {}}}\nenvironment:\n  - {{name: TOKEN, secret_ref: token}}\n",
        token.display()
    );
    let (mut fixture, first) = Fixture::new(&[("api.yaml", text)]).await;
    let digest = |g: &Generation| {
        g.desired
            .children
            .get("api")
            .and_then(|s| s.secret_digests.get("token").copied())
    };
    let before = digest(&first).expect("the secret has a digest");

    // Rotate the way tools do: write a temp file, rename it over the secret.
    let tmp = secrets.path().join(".token.new");
    fs::write(&tmp, "two").expect("write");
    fs::rename(&tmp, &token).expect("rename");
    let rotated = fixture
        .until("a rotated secret was not seen", has("api"), |g| {
            digest(g).is_some_and(|d| d != before)
        })
        .await;
    assert!(!rotated.has_errors(), "{:?}", rotated.diagnostics);
}

#[tokio::test]
async fn rescan_now_picks_up_what_events_missed() {
    let (mut fixture, _) = Fixture::new(&[("a.yaml", manifest("a", 1))]).await;
    // An explicit rescan with nothing changed publishes nothing…
    fixture.handle.rescan_now();
    fixture
        .assert_quiet("a rescan without changes published")
        .await;
    // …and one after a change publishes it.
    fs::write(fixture.path("b.yaml"), manifest("b", 1)).expect("write");
    fixture.handle.rescan_now();
    fixture
        .until("rescan_now did not rescan", |_| true, has("b"))
        .await;
}

#[tokio::test]
async fn cross_file_duplicate_is_rejected_and_the_original_kept() {
    let (mut fixture, _) = Fixture::new(&[("a.yaml", manifest("a", 1))]).await;
    fs::write(fixture.path("copy.yaml"), manifest("a", 2)).expect("write");
    let generation = fixture.next("a duplicate name was not reported").await;
    assert!(runs("a", 1)(&generation), "the original must stay");
    assert!(
        generation
            .errors()
            .any(|e| e.code == Code::DuplicateName && e.file == fixture.path("copy.yaml"))
    );
    assert_eq!(
        generation.files.get(&fixture.path("copy.yaml")),
        Some(&FileStatus::Invalid {
            last_good_in_force: false
        })
    );
}
