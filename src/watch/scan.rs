//! The rescan: the whole directory, turned into the next desired set.
//!
//! Events are hints, never diffs (a ConfigMap swap names no manifest; an overflow names
//! nothing), so every rescan looks at the whole directory. It stays cheap because a file
//! whose (device, inode, size, mtime, ctime) did not change is neither read nor parsed again:
//! its [`ParsedFile`] is cached. Then, per file:
//!
//! * **Keep last good.** A file that fails (YAML, schema, semantic checks) keeps its last
//!   good documents in force and reports its errors; a brand-new bad file contributes
//!   nothing. Once fixed, it applies.
//! * **Cross-file errors reject the change, not the set.** The merged set is checked
//!   ([`check_set`]); an error that the in-force set does not have was introduced by this
//!   scan's changes, so the changed files at fault (the file the error points at, or else the
//!   changed files that declared or removed the names involved) go back to their last good
//!   version, and the set is checked again, until no new error remains.
//! * **A half-written save never retires a child.** Additions and changes apply at once, but
//!   a file that is gone, empty, or no longer declares a child keeps its last good version in
//!   force until the loss has held for the settle time, confirmed by a later rescan (the
//!   scanner asks for one). A truncate-then-write, a vim rename-away or a ConfigMap swap in
//!   flight therefore never stops anything. A directory that cannot be listed (deleted,
//!   being recreated) changes nothing at all.
//!
//! A [`Generation`] is produced only when the desired set or the diagnostics changed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read as _};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::generation::{FileStatus, Generation};
use crate::manifest::desired::replica_names;
use crate::manifest::diagnostic::{Location, sort_diagnostics};
use crate::manifest::load::{LoadError, MAX_FILE_BYTES, describe_io};
use crate::manifest::validate::base_dir;
use crate::manifest::{
    ChildSpec, Code, DesiredSet, Diagnostic, ManifestDoc, ParsedFile, check_set, desired_set,
    list_manifest_files, parse_file,
};

/// How long a removal must hold before it takes effect.
pub const DEFAULT_SETTLE: Duration = Duration::from_millis(150);

/// What identifies a file's content without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fingerprint {
    device: u64,
    inode: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Fingerprint {
    /// The fingerprint of what `path` points to (symlinks followed, as reading does).
    fn of(path: &Path) -> Option<Self> {
        let meta = fs::metadata(path).ok()?;
        Some(Self {
            device: meta.dev(),
            inode: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        })
    }
}

/// Everything known about one manifest file.
#[derive(Debug, Default)]
struct FileEntry {
    /// The fingerprint `parsed` was read under; `None` forces a read next time.
    fingerprint: Option<Fingerprint>,
    /// The latest parse; `None` while the file is absent.
    parsed: Option<ParsedFile>,
    /// The documents in force: the last good version, `None` if it never was good.
    in_force: Option<Vec<ManifestDoc>>,
}

/// What a scan proposes for one file.
#[derive(Clone, Debug)]
enum Proposal {
    /// Its documents in force stay.
    Keep,
    /// Its current, good content replaces the documents in force.
    New(Vec<ManifestDoc>),
    /// It is gone and had nothing in force: forget it.
    Forget,
}

/// The last published state, to decide whether anything changed.
#[derive(Debug)]
struct Published {
    desired: DesiredSet,
    diagnostics: Vec<Diagnostic>,
    files: BTreeMap<PathBuf, FileStatus>,
}

/// The result of one scan.
#[derive(Debug)]
pub struct Scan {
    /// The new generation, if the desired set or the diagnostics changed.
    pub generation: Option<Generation>,
    /// When to rescan to confirm removals that have not settled yet.
    pub settle_at: Option<Instant>,
    /// Directories holding secret files of the manifests in force: their changes must
    /// trigger a rescan (secret digests are part of the desired set).
    pub secret_dirs: BTreeSet<PathBuf>,
}

/// The rescan state of one manifest directory. Owned by the watch task; usable on its own
/// (benchmarks, tests) since it touches only the files, never the watcher.
#[derive(Debug)]
pub struct Scanner {
    dir: PathBuf,
    settle: Duration,
    files: BTreeMap<PathBuf, FileEntry>,
    /// Files whose loss of children is on hold, since when.
    pending: BTreeMap<PathBuf, Instant>,
    /// Files whose documents in force changed since the last generation.
    touched: BTreeSet<PathBuf>,
    published: Option<Published>,
    number: u64,
}

impl Scanner {
    /// A scanner of `dir` whose removals take effect once they held for `settle`.
    pub fn new(dir: impl Into<PathBuf>, settle: Duration) -> Self {
        Self {
            dir: dir.into(),
            settle,
            files: BTreeMap::new(),
            pending: BTreeMap::new(),
            touched: BTreeSet::new(),
            published: None,
            number: 0,
        }
    }

    /// The directory scanned.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Rescans the directory at `now`. `extra` holds problems found outside the scan (the
    /// watcher's), reported with the file diagnostics. The first scan always yields a
    /// generation.
    pub fn scan(&mut self, now: Instant, extra: &[Diagnostic]) -> Scan {
        let mut diagnostics: Vec<Diagnostic> = extra.to_vec();
        let listed = match list_manifest_files(&self.dir) {
            Ok(paths) => {
                self.refresh(&paths);
                true
            }
            Err(err) => {
                diagnostics.push(directory_diagnostic(&self.dir, &err));
                false
            }
        };

        let mut proposals = self.propose();
        let holding = self.hold_removals(&mut proposals, now, listed);
        let (cross_file, rejected) = self.check(&mut proposals);
        let removed = self.commit(proposals);

        for entry in self.files.values() {
            if let Some(parsed) = &entry.parsed {
                diagnostics.extend(parsed.diagnostics.iter().cloned());
            }
        }
        diagnostics.extend(cross_file);
        sort_diagnostics(&mut diagnostics);
        diagnostics.dedup();

        let statuses = self.statuses(&diagnostics, &holding, &rejected, &removed);
        let docs = self.docs_in_force();
        let secret_dirs = secret_dirs(&docs);
        let settle_at = holding
            .iter()
            .filter_map(|path| self.pending.get(path))
            .min()
            .map(|since| *since + self.settle);
        let generation = self.publish(&docs, diagnostics, statuses);
        Scan {
            generation,
            settle_at,
            secret_dirs,
        }
    }

    /// Reads and parses the listed files whose fingerprint changed; marks the others absent.
    fn refresh(&mut self, paths: &[PathBuf]) {
        let listed: BTreeSet<&PathBuf> = paths.iter().collect();
        for entry in self
            .files
            .iter_mut()
            .filter_map(|(path, entry)| (!listed.contains(path)).then_some(entry))
        {
            entry.parsed = None;
            entry.fingerprint = None;
        }
        for path in paths {
            let fingerprint = Fingerprint::of(path);
            let entry = self.files.entry(path.clone()).or_default();
            if fingerprint.is_some() && entry.fingerprint == fingerprint && entry.parsed.is_some() {
                continue;
            }
            // Stat before reading: if the file changes in between, the cached fingerprint is
            // older than the content and the next scan reads it again.
            let (parsed, fingerprint) = match read(path) {
                Ok(Some(bytes)) => (Some(parse_file(path, &bytes)), fingerprint),
                Ok(None) => (None, None),
                Err(diagnostic) => (
                    Some(ParsedFile {
                        path: path.clone(),
                        docs: Vec::new(),
                        diagnostics: vec![diagnostic],
                    }),
                    None,
                ),
            };
            entry.parsed = parsed;
            entry.fingerprint = fingerprint;
        }
    }

    /// What each file's current content proposes, before removals and cross-file checks.
    fn propose(&self) -> BTreeMap<PathBuf, Proposal> {
        self.files
            .iter()
            .map(|(path, entry)| {
                let in_force = entry.in_force.as_deref();
                let proposal = match &entry.parsed {
                    None if in_force.is_none_or(<[_]>::is_empty) => Proposal::Forget,
                    None => Proposal::New(Vec::new()),
                    Some(parsed) if !parsed.is_ok() => Proposal::Keep,
                    Some(parsed) if in_force.is_some_and(|docs| same_docs(docs, &parsed.docs)) => {
                        Proposal::Keep
                    }
                    Some(parsed) => Proposal::New(parsed.docs.clone()),
                };
                (path.clone(), proposal)
            })
            .collect()
    }

    /// Puts back the last good version of files whose proposal drops children that no other
    /// file declares, until that has held for the settle time. Returns the files on hold.
    fn hold_removals(
        &mut self,
        proposals: &mut BTreeMap<PathBuf, Proposal>,
        now: Instant,
        may_confirm: bool,
    ) -> BTreeSet<PathBuf> {
        let mut proposed_names = BTreeSet::new();
        for (path, proposal) in proposals.iter() {
            for doc in self.candidate(path, proposal) {
                proposed_names.extend(replica_names(&doc.manifest));
            }
        }
        let mut holding = BTreeSet::new();
        for (path, proposal) in proposals.iter_mut() {
            let loses = matches!(proposal, Proposal::New(_))
                && self.in_force(path).iter().any(|doc| {
                    replica_names(&doc.manifest)
                        .iter()
                        .any(|name| !proposed_names.contains(name))
                });
            if !loses {
                self.pending.remove(path);
                continue;
            }
            let since = *self.pending.entry(path.clone()).or_insert(now);
            if !(may_confirm && now.saturating_duration_since(since) >= self.settle) {
                *proposal = Proposal::Keep;
                holding.insert(path.clone());
            }
        }
        holding
    }

    /// Runs the cross-file checks, reverting the changed files at fault until the set has no
    /// error the documents in force do not have. Returns the final diagnostics (with those
    /// that caused a rejection) and the rejected files.
    fn check(
        &self,
        proposals: &mut BTreeMap<PathBuf, Proposal>,
    ) -> (Vec<Diagnostic>, BTreeSet<PathBuf>) {
        let candidate = |proposals: &BTreeMap<PathBuf, Proposal>| -> Vec<ManifestDoc> {
            proposals
                .iter()
                .flat_map(|(path, proposal)| self.candidate(path, proposal).iter().cloned())
                .collect()
        };
        let mut diagnostics = check_set(&candidate(proposals));
        let mut rejected = BTreeSet::new();
        let mut reasons = Vec::new();
        let changes = |proposals: &BTreeMap<PathBuf, Proposal>| -> BTreeSet<PathBuf> {
            proposals
                .iter()
                .filter(|(_, proposal)| matches!(proposal, Proposal::New(_)))
                .map(|(path, _)| path.clone())
                .collect()
        };
        if changes(proposals).is_empty() {
            return (diagnostics, rejected);
        }
        let baseline = check_set(&self.docs_in_force());
        loop {
            let new: Vec<&Diagnostic> = diagnostics
                .iter()
                .filter(|d| d.is_error() && !baseline.contains(d))
                .collect();
            let changed = changes(proposals);
            if new.is_empty() || changed.is_empty() {
                break;
            }
            let mut faulty: BTreeSet<PathBuf> = new
                .iter()
                .filter(|d| changed.contains(&d.file))
                .map(|d| d.file.clone())
                .collect();
            if faulty.is_empty() {
                faulty = self.culprits(&new, &changed, proposals);
                for path in &faulty {
                    reasons.push(blame(path, new[0]));
                }
            }
            reasons.extend(new.into_iter().cloned());
            for path in &faulty {
                proposals.insert(path.clone(), Proposal::Keep);
            }
            rejected.extend(faulty);
            diagnostics = check_set(&candidate(proposals));
        }
        diagnostics.extend(reasons);
        (diagnostics, rejected)
    }

    /// The changed files behind errors that point at unchanged files: those that declare, or
    /// used to declare, a name the erring files declare or depend on. All changed files if
    /// none matches.
    fn culprits(
        &self,
        errors: &[&Diagnostic],
        changed: &BTreeSet<PathBuf>,
        proposals: &BTreeMap<PathBuf, Proposal>,
    ) -> BTreeSet<PathBuf> {
        let mut involved = BTreeSet::new();
        for error in errors {
            let Some(proposal) = proposals.get(&error.file) else {
                continue;
            };
            for doc in self.candidate(&error.file, proposal) {
                involved.extend(names(&doc.manifest));
                involved.extend(doc.manifest.dependencies.iter().map(|d| d.0.name.clone()));
            }
        }
        let culprits: BTreeSet<PathBuf> = changed
            .iter()
            .filter(|path| {
                let before = self.in_force(path).iter();
                let after = proposals
                    .get(*path)
                    .map(|proposal| self.candidate(path, proposal))
                    .unwrap_or_default()
                    .iter();
                before
                    .chain(after)
                    .any(|doc| names(&doc.manifest).iter().any(|n| involved.contains(n)))
            })
            .cloned()
            .collect();
        if culprits.is_empty() {
            changed.clone()
        } else {
            culprits
        }
    }

    /// Applies the accepted proposals. Returns the files forgotten (removed).
    fn commit(&mut self, proposals: BTreeMap<PathBuf, Proposal>) -> BTreeSet<PathBuf> {
        let mut removed = BTreeSet::new();
        for (path, proposal) in proposals {
            match proposal {
                Proposal::Keep => {}
                Proposal::New(docs) => {
                    let gone = self.files.get(&path).is_some_and(|e| e.parsed.is_none());
                    if gone {
                        self.files.remove(&path);
                        removed.insert(path.clone());
                    } else if let Some(entry) = self.files.get_mut(&path) {
                        entry.in_force = Some(docs);
                    }
                    self.pending.remove(&path);
                    self.touched.insert(path);
                }
                Proposal::Forget => {
                    self.files.remove(&path);
                    self.pending.remove(&path);
                    removed.insert(path);
                }
            }
        }
        removed
    }

    fn statuses(
        &self,
        diagnostics: &[Diagnostic],
        holding: &BTreeSet<PathBuf>,
        rejected: &BTreeSet<PathBuf>,
        removed: &BTreeSet<PathBuf>,
    ) -> BTreeMap<PathBuf, FileStatus> {
        let erring: BTreeSet<&Path> = diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.file.as_path())
            .collect();
        let mut statuses: BTreeMap<PathBuf, FileStatus> = self
            .files
            .iter()
            .map(|(path, entry)| {
                let bad = entry.parsed.as_ref().is_some_and(|p| !p.is_ok());
                let status = if bad || rejected.contains(path) || erring.contains(path.as_path()) {
                    FileStatus::Invalid {
                        last_good_in_force: entry.in_force.is_some(),
                    }
                } else if holding.contains(path) {
                    FileStatus::Settling
                } else {
                    FileStatus::Good
                };
                (path.clone(), status)
            })
            .collect();
        statuses.extend(
            removed
                .iter()
                .map(|path| (path.clone(), FileStatus::Removed)),
        );
        statuses
    }

    /// Publishes a generation if the desired set or the diagnostics changed.
    fn publish(
        &mut self,
        docs: &[ManifestDoc],
        diagnostics: Vec<Diagnostic>,
        files: BTreeMap<PathBuf, FileStatus>,
    ) -> Option<Generation> {
        let desired = desired_set(docs, self.number + 1);
        if let Some(published) = &self.published
            && same_children(&published.desired.children, &desired.children)
            && published.diagnostics == diagnostics
        {
            return None;
        }
        self.number += 1;
        let mut changed = std::mem::take(&mut self.touched);
        if let Some(published) = &self.published {
            changed.extend(
                files
                    .iter()
                    .filter(|(path, status)| published.files.get(*path) != Some(status))
                    .map(|(path, _)| path.clone()),
            );
        } else {
            changed.extend(files.keys().cloned());
        }
        let generation = Generation {
            number: self.number,
            desired: desired.clone(),
            diagnostics: diagnostics.clone(),
            files: files.clone(),
            changed: changed.into_iter().collect(),
        };
        // Removed files are reported once.
        let files = files
            .into_iter()
            .filter(|(_, status)| *status != FileStatus::Removed)
            .collect();
        self.published = Some(Published {
            desired,
            diagnostics,
            files,
        });
        Some(generation)
    }

    fn in_force(&self, path: &Path) -> &[ManifestDoc] {
        self.files
            .get(path)
            .and_then(|entry| entry.in_force.as_deref())
            .unwrap_or_default()
    }

    fn candidate<'a>(&'a self, path: &Path, proposal: &'a Proposal) -> &'a [ManifestDoc] {
        match proposal {
            Proposal::Keep => self.in_force(path),
            Proposal::New(docs) => docs,
            Proposal::Forget => &[],
        }
    }

    fn docs_in_force(&self) -> Vec<ManifestDoc> {
        self.files
            .values()
            .filter_map(|entry| entry.in_force.as_deref())
            .flatten()
            .cloned()
            .collect()
    }
}

/// The child names and the base name a manifest declares.
fn names(manifest: &crate::manifest::Manifest) -> Vec<String> {
    let mut names = replica_names(manifest);
    if manifest.replicas > 1 {
        names.push(manifest.name.clone());
    }
    names
}

/// Reads a file: `Ok(None)` when it vanished since it was listed (a rename in flight), which
/// is not an error but a possible removal.
fn read(path: &Path) -> Result<Option<Vec<u8>>, Diagnostic> {
    let failed = |err: &io::Error| {
        Diagnostic::error(
            Code::Io,
            path,
            0,
            Location::START,
            "",
            format!("cannot read file: {}", describe_io(err)),
        )
    };
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(failed(&err)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| failed(&err))?;
    Ok(Some(bytes))
}

fn directory_diagnostic(dir: &Path, err: &LoadError) -> Diagnostic {
    let (path, cause) = match err {
        LoadError::ReadDir { path, source } | LoadError::Access { path, source } => {
            (path.as_path(), describe_io(source))
        }
    };
    Diagnostic::error(
        Code::Io,
        dir,
        0,
        Location::START,
        "",
        format!("cannot list manifest directory {}: {cause}", path.display()),
    )
    .with_hint("everything in force keeps running; herder rescans when the directory is back")
}

/// The diagnostic put on a changed file whose change was undone because it broke another
/// (unchanged) file.
fn blame(path: &Path, error: &Diagnostic) -> Diagnostic {
    Diagnostic::error(
        error.code,
        path,
        0,
        Location::START,
        "",
        format!(
            "change not applied: it would break {}:{}:{}: {}",
            error.file.display(),
            error.line,
            error.column,
            error.message
        ),
    )
    .with_hint(
        "its last good version stays in force; fix the other file first, or change both together",
    )
}

/// Whether two lists of documents are the same: shared parses compare by pointer.
fn same_docs(a: &[ManifestDoc], b: &[ManifestDoc]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            (Arc::ptr_eq(&x.manifest, &y.manifest)
                && Arc::ptr_eq(&x.spans, &y.spans)
                && x.file == y.file
                && x.doc_index == y.doc_index)
                || x == y
        })
}

/// Whether two desired sets hold the same children; manifests shared by both compare by
/// pointer, so an unchanged directory of thousands of files compares in microseconds.
fn same_children(
    a: &BTreeMap<String, Arc<ChildSpec>>,
    b: &BTreeMap<String, Arc<ChildSpec>>,
) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((name_a, x), (name_b, y))| {
            name_a == name_b
                && (Arc::ptr_eq(x, y)
                    || (x.name == y.name
                        && x.replica == y.replica
                        && x.source == y.source
                        && x.base_dir == y.base_dir
                        && x.secret_digests == y.secret_digests
                        && (Arc::ptr_eq(&x.manifest, &y.manifest) || x.manifest == y.manifest)))
        })
}

/// The folders of the secret files the documents reference.
fn secret_dirs(docs: &[ManifestDoc]) -> BTreeSet<PathBuf> {
    let mut dirs = BTreeSet::new();
    for doc in docs {
        let base = base_dir(&doc.file);
        for secret in &doc.manifest.secrets {
            if let Some(file) = &secret.file
                && let Some(parent) = base.join(file).parent()
            {
                dirs.insert(parent.to_path_buf());
            }
        }
    }
    dirs
}
