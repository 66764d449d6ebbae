//! The inotify side: which paths are watched, and which events count.
//!
//! * The manifest directory is watched recursively. Its identity (device, inode) is
//!   remembered: when the directory is deleted the kernel drops the watch **silently**, and a
//!   directory recreated under the same name is a new inode, so every sync re-watches it when
//!   the identity changed.
//! * Its nearest existing ancestor (normally the parent) is watched non-recursively, so the
//!   directory's deletion, recreation or replacement (a symlink swap) is seen at all.
//! * The folders of secret files outside the directory are watched non-recursively: a rotated
//!   secret changes a child's spec (its digest) without touching any manifest. A folder that
//!   does not exist yet is covered by watching its nearest existing ancestor.
//!
//! The event callback runs on notify's thread. It drops `Access` events (the rescan's own
//! reads generate them: reacting would loop forever) and events about unrelated entries of
//! the watched ancestors, counts the rest and wakes the watch task. Events are hints, never
//! diffs, but a hint can be narrow: an event that names one manifest file ([`hint_of`])
//! lets the task read that file only, so a plain edit costs the same in a directory of ten
//! files or ten thousand. An event about names the scan ignores (editor temporaries, `.git/`)
//! names no file and asks for no full rescan. Everything else asks for a full rescan: directories, `..` names (a
//! ConfigMap's `..data` symlink swap names no manifest), ancestors, overflows
//! (`need_rescan`), events without paths and kinds notify cannot tell apart.
//!
//! Watching can fail: the inotify instance or watch limits (`ENOSPC`, reported as
//! `MaxFilesWatch`), permissions. The failure becomes a diagnostic with a hint, the watch is
//! retried at every rescan, and meanwhile the task rescans on a short timer (degraded mode).

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use notify::event::{CreateKind, ModifyKind, RemoveKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::Notify;

use crate::manifest::diagnostic::Location;
use crate::manifest::load::{is_ignored, is_manifest_name};
use crate::manifest::{Code, Diagnostic};

/// What the callback shares with the task.
#[derive(Debug, Default)]
pub(super) struct Signals {
    /// Relevant events since the task last looked.
    events: AtomicU64,
    /// The watcher reported an error: watches must be re-established.
    broken: AtomicBool,
    /// Wakes the task.
    pub(super) wake: Notify,
    /// Which paths matter.
    relevance: RwLock<Relevance>,
    /// What the events since the task last looked name.
    hints: Mutex<Hints>,
}

/// Most manifest files a burst may name before it is rescanned whole anyway.
pub(super) const MAX_HINTED: usize = 256;

/// What a burst of events names: manifest files to read again, or the whole directory.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Hints {
    /// The manifest files named.
    pub(super) files: BTreeSet<PathBuf>,
    /// Some event was not about one manifest file: rescan everything.
    pub(super) full: bool,
}

impl Hints {
    /// Adds what `other` names.
    pub(super) fn merge(&mut self, other: Hints) {
        self.full |= other.full;
        if !self.full {
            self.files.extend(other.files);
        }
        if self.full || self.files.len() > MAX_HINTED {
            self.full = true;
            self.files.clear();
        }
    }
}

/// What one event names: `Some(files)` when it is only about manifest files (or about a
/// secret folder, which every scan checks anyway: no file), `None` for a full rescan.
pub(super) fn hint_of(
    event: &Event,
    dir: &Path,
    secret_dirs: &BTreeSet<PathBuf>,
) -> Option<Vec<PathBuf>> {
    if event.paths.is_empty() || event.need_rescan() {
        return None;
    }
    let about_files = matches!(
        event.kind,
        EventKind::Create(CreateKind::File)
            | EventKind::Modify(
                ModifyKind::Data(_) | ModifyKind::Metadata(_) | ModifyKind::Name(_)
            )
            | EventKind::Remove(RemoveKind::File)
    );
    let mut files = Vec::new();
    for path in &event.paths {
        let Ok(relative) = path.strip_prefix(dir) else {
            if path
                .parent()
                .is_some_and(|parent| secret_dirs.contains(parent))
            {
                continue;
            }
            return None;
        };
        let names: Vec<&std::ffi::OsStr> = relative.iter().collect();
        let (name, folders) = names.split_last()?;
        // A `..` name anywhere (`..data`, `..2024_01_01`) may be a ConfigMap swap.
        if !about_files
            || names
                .iter()
                .any(|n| n.as_encoded_bytes().starts_with(b".."))
        {
            return None;
        }
        // What the scan never reads (an editor's `.x.yaml.swp` or `.tmp.x.yaml` before its
        // rename, anything under `.git/`) names no file to re-read: the rename that follows
        // names the manifest itself. Rescanning everything for them made each editor-style save
        // cost a full scan (28-40 ms at 5,000 files).
        if folders.iter().any(|f| is_ignored(f)) || is_ignored(name) {
            continue;
        }
        if is_manifest_name(name) {
            files.push(path.clone());
        } else if !is_ignored(name) {
            // A rename or removal of something that is not a manifest may be a directory.
            return None;
        }
    }
    Some(files)
}

impl Signals {
    /// Takes the number of relevant events since the last call.
    pub(super) fn take_events(&self) -> u64 {
        self.events.swap(0, Ordering::AcqRel)
    }

    /// Takes what the events since the last call name.
    pub(super) fn take_hints(&self) -> Hints {
        std::mem::take(&mut *self.hints.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn bump(&self, files: Option<Vec<PathBuf>>) {
        let hint = match files {
            Some(files) => Hints {
                files: files.into_iter().collect(),
                full: false,
            },
            None => Hints {
                files: BTreeSet::new(),
                full: true,
            },
        };
        self.hints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .merge(hint);
        self.events.fetch_add(1, Ordering::AcqRel);
        self.wake.notify_one();
    }

    fn handle(&self, result: notify::Result<Event>) {
        match result {
            Ok(event) if event.need_rescan() => self.bump(None),
            Ok(event) if matches!(event.kind, EventKind::Access(_)) => {}
            Ok(event) => {
                let relevance = self
                    .relevance
                    .read()
                    .unwrap_or_else(PoisonError::into_inner);
                if relevance.matters(&event.paths) {
                    let hint = hint_of(&event, &relevance.dir, &relevance.secret_dirs);
                    drop(relevance);
                    self.bump(hint);
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, paths = ?err.paths, "file watcher error; re-watching");
                self.broken.store(true, Ordering::Release);
                self.bump(None);
            }
        }
    }
}

/// The paths whose events trigger a rescan.
#[derive(Debug, Default)]
struct Relevance {
    dir: PathBuf,
    secret_dirs: BTreeSet<PathBuf>,
}

impl Relevance {
    fn matters(&self, paths: &[PathBuf]) -> bool {
        // An event without paths (`Other`) may be anything.
        paths.is_empty()
            || paths.iter().any(|path| {
                path.starts_with(&self.dir)
                    || self.dir.starts_with(path)
                    || self
                        .secret_dirs
                        .iter()
                        .any(|dir| path.parent() == Some(dir.as_path()) || dir.starts_with(path))
            })
    }
}

/// The watches of one manifest directory.
pub(super) struct Watches {
    dir: PathBuf,
    signals: Arc<Signals>,
    watcher: Option<RecommendedWatcher>,
    /// The identity of the directory inode watched recursively.
    root: Option<(u64, u64)>,
    /// Paths watched non-recursively: the directory's ancestor and the secret folders.
    plain: BTreeSet<PathBuf>,
    /// Current watching problems, reported as diagnostics.
    problems: Vec<Diagnostic>,
}

impl Watches {
    /// Watches for `dir` (absolute), reporting to `signals`. Nothing is watched until
    /// [`Watches::sync`].
    pub(super) fn new(dir: PathBuf, signals: Arc<Signals>) -> Self {
        Self {
            dir,
            signals,
            watcher: None,
            root: None,
            plain: BTreeSet::new(),
            problems: Vec::new(),
        }
    }

    /// Problems watching, as diagnostics.
    pub(super) fn problems(&self) -> &[Diagnostic] {
        &self.problems
    }

    /// Whether events can be relied on; otherwise the task rescans on a short timer.
    pub(super) fn healthy(&self) -> bool {
        self.problems.is_empty()
    }

    /// Brings the watches in line with the directory and `secret_dirs`. Returns whether a
    /// watch was added (a change that happened just before it may have been missed: rescan).
    pub(super) fn sync(&mut self, secret_dirs: &BTreeSet<PathBuf>) -> bool {
        self.problems.clear();
        let secret_dirs: BTreeSet<PathBuf> = secret_dirs
            .iter()
            .filter(|dir| !dir.starts_with(&self.dir))
            .cloned()
            .collect();
        match self.signals.relevance.write() {
            Ok(mut relevance) => {
                relevance.dir.clone_from(&self.dir);
                relevance.secret_dirs.clone_from(&secret_dirs);
            }
            Err(poisoned) => {
                let mut relevance = poisoned.into_inner();
                relevance.dir.clone_from(&self.dir);
                relevance.secret_dirs.clone_from(&secret_dirs);
            }
        }
        if self.signals.broken.swap(false, Ordering::AcqRel) {
            self.root = None;
        }

        self.ensure_watcher();
        let Some(watcher) = self.watcher.as_mut() else {
            return false;
        };
        let mut added = false;

        // The directory itself, recursively, re-watched when its inode changed.
        let identity = std::fs::metadata(&self.dir)
            .ok()
            .filter(|meta| meta.is_dir())
            .map(|meta| (meta.dev(), meta.ino()));
        if identity != self.root {
            // The old watch may already be gone with its inode.
            let _ = watcher.unwatch(&self.dir);
            self.root = None;
            if identity.is_some() {
                match watcher.watch(&self.dir, RecursiveMode::Recursive) {
                    Ok(()) => {
                        self.root = identity;
                        added = true;
                    }
                    Err(err) => self.problems.push(problem(&self.dir, &err)),
                }
            }
        }

        // The directory's ancestor and the secret folders, each through its nearest
        // existing ancestor.
        let mut wanted = BTreeSet::new();
        wanted.extend(self.dir.parent().and_then(existing_ancestor));
        wanted.extend(secret_dirs.iter().filter_map(|dir| existing_ancestor(dir)));
        for stale in self.plain.difference(&wanted).cloned().collect::<Vec<_>>() {
            let _ = watcher.unwatch(&stale);
            self.plain.remove(&stale);
        }
        for path in wanted {
            if self.plain.contains(&path) {
                continue;
            }
            match watcher.watch(&path, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.plain.insert(path);
                    added = true;
                }
                Err(err) => self.problems.push(problem(&path, &err)),
            }
        }
        added
    }

    /// Creates the inotify watcher if there is none (the first time, or after it failed).
    fn ensure_watcher(&mut self) {
        if self.watcher.is_none() {
            let signals = Arc::clone(&self.signals);
            match RecommendedWatcher::new(
                move |result| signals.handle(result),
                notify::Config::default(),
            ) {
                Ok(watcher) => {
                    self.watcher = Some(watcher);
                    self.root = None;
                    self.plain.clear();
                }
                Err(err) => self.problems.push(problem(&self.dir, &err)),
            }
        }
    }
}

/// `path` or its nearest ancestor that exists as a directory.
fn existing_ancestor(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .find(|candidate| candidate.is_dir())
        .map(Path::to_path_buf)
}

/// A watching failure as a diagnostic of `path`.
fn problem(path: &Path, err: &notify::Error) -> Diagnostic {
    let (message, hint) = match &err.kind {
        notify::ErrorKind::MaxFilesWatch => (
            "cannot watch: the inotify watch limit is reached".to_owned(),
            "raise it, e.g. `sysctl fs.inotify.max_user_watches=524288` (and `fs.inotify.max_user_instances`); until then herder rescans every few seconds".to_owned(),
        ),
        notify::ErrorKind::Io(io) if io.raw_os_error() == Some(libc::EMFILE) => (
            "cannot create a file watcher: too many inotify instances".to_owned(),
            "raise `fs.inotify.max_user_instances` with sysctl; until then herder rescans every few seconds".to_owned(),
        ),
        _ => (
            format!("cannot watch: {err}"),
            "herder rescans every few seconds until watching works again".to_owned(),
        ),
    };
    Diagnostic::error(Code::Io, path, 0, Location::START, "", message).with_hint(hint)
}

#[cfg(test)]
mod tests {
    use notify::event::{DataChange, ModifyKind, RenameMode};

    use super::*;

    fn event(kind: EventKind, paths: &[&str]) -> Event {
        let mut event = Event::new(kind);
        event.paths = paths.iter().map(PathBuf::from).collect();
        event
    }

    #[test]
    fn a_file_event_names_the_file_and_everything_else_asks_for_a_full_rescan() {
        let dir = Path::new("/m");
        let none = BTreeSet::new();
        let secrets: BTreeSet<PathBuf> = [PathBuf::from("/s")].into();
        let data = EventKind::Modify(ModifyKind::Data(DataChange::Content));
        assert_eq!(
            hint_of(&event(data, &["/m/a.yaml"]), dir, &none),
            Some(vec![PathBuf::from("/m/a.yaml")])
        );
        let rename = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        assert_eq!(
            hint_of(
                &event(rename, &["/m/a.yaml.tmp", "/m/sub/a.yaml"]),
                dir,
                &none
            ),
            Some(vec![PathBuf::from("/m/sub/a.yaml")]),
            "an atomic save through a temp file names the manifest"
        );
        assert_eq!(
            hint_of(&event(data, &["/m/a.yaml~"]), dir, &none),
            Some(vec![])
        );
        // Names the scan ignores ask for nothing, not for a full rescan.
        for ignored in ["/m/.tmp.a.yaml", "/m/.a.yaml.swp", "/m/.git/index"] {
            assert_eq!(
                hint_of(&event(data, &[ignored]), dir, &none),
                Some(vec![]),
                "{ignored}"
            );
        }
        assert_eq!(
            hint_of(&event(data, &["/s/token"]), dir, &secrets),
            Some(vec![])
        );
        for (kind, path) in [
            (rename, "/m/..data"),
            (
                EventKind::Create(CreateKind::File),
                "/m/..2026_12_07/a.yaml",
            ),
            (EventKind::Create(CreateKind::Folder), "/m/sub"),
            (EventKind::Remove(RemoveKind::Folder), "/m/sub"),
            (rename, "/m/sub"),
            (data, "/m"),
            (data, "/elsewhere/a.yaml"),
            (EventKind::Any, "/m/a.yaml"),
            (EventKind::Other, "/m/a.yaml"),
        ] {
            assert_eq!(
                hint_of(&event(kind, &[path]), dir, &none),
                None,
                "{kind:?} {path}"
            );
        }
        assert_eq!(hint_of(&event(data, &[]), dir, &none), None, "no paths");
    }

    #[test]
    fn hints_are_bounded() {
        let mut hints = Hints::default();
        for i in 0..=MAX_HINTED {
            hints.merge(Hints {
                files: [PathBuf::from(format!("/m/{i}.yaml"))].into(),
                full: false,
            });
        }
        assert!(hints.full && hints.files.is_empty());
    }
}
