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
//!   a child whose file is gone, empty, or no longer declares it (and no other file does)
//!   stays in force, with its last good manifest, until the loss has held for the settle
//!   time, confirmed by a later rescan (the scanner asks for one). A truncate-then-write, a vim rename-away or a ConfigMap swap in
//!   flight therefore never stops anything. A directory that cannot be listed (deleted,
//!   being recreated) changes nothing at all.
//!
//! A [`Generation`] is produced only when the desired set or the diagnostics changed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

mod cache;
mod cross;
mod fingerprint;
mod secrets;
mod settle;

use cache::{FileEntry, refresh_entry, same_docs};
use fingerprint::{Fingerprint, Listing, Stats, directories};

use super::generation::{FileStatus, Generation};
use crate::manifest::desired::replica_names;
use crate::manifest::diagnostic::{Location, sort_diagnostics};
use crate::manifest::load::{LoadError, describe_io, is_ignored, is_manifest_name};
use crate::manifest::{
    Code, DesiredSet, Diagnostic, ManifestDoc, child_specs, list_manifest_files,
};

/// How long a removal must hold before it takes effect.
pub const DEFAULT_SETTLE: Duration = Duration::from_millis(150);

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

/// The proposals of one scan, by file: only the files that changed or still diverge
/// from what is in force; every other file keeps its documents in force.
type Proposals = BTreeMap<PathBuf, Proposal>;

/// The last published state, to decide whether anything changed.
#[derive(Debug)]
struct Published {
    desired: DesiredSet,
    diagnostics: Vec<Diagnostic>,
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
///
/// Every scan `stat`s every file; everything after that is proportional to what changed:
/// only changed (or still diverging) files are parsed and proposed, unchanged files keep
/// their documents and child specs (shared by pointer with the previous generation), and
/// an index of the declared names answers "does another file declare it?".
#[derive(Debug)]
pub struct Scanner {
    dir: PathBuf,
    settle: Duration,
    files: BTreeMap<PathBuf, FileEntry>,
    /// Files whose loss of children is on hold, since when.
    pending: BTreeMap<PathBuf, Instant>,
    /// Files that [`FileEntry::diverges`].
    diverging: BTreeSet<PathBuf>,
    /// How many documents in force declare each child name (replicas expanded).
    declared: HashMap<String, usize>,
    /// Files whose documents in force changed, or that were removed, since the last
    /// generation.
    touched: BTreeSet<PathBuf>,
    published: Option<Published>,
    number: u64,
    /// The problems passed in by the last full scan.
    extra: Vec<Diagnostic>,
    /// The files whose documents in force declare secrets.
    with_secrets: BTreeSet<PathBuf>,
    /// The secret files of the documents in force, with their fingerprints.
    secret_files: Vec<(PathBuf, Option<Fingerprint>)>,
    /// Their folders.
    secret_dirs: BTreeSet<PathBuf>,
    /// The cross-file diagnostics of the documents in force, as of the last full scan.
    baseline: Vec<Diagnostic>,
    /// The last listing, while it can be trusted.
    listing: Option<Listing>,
    /// Whether the last scan could list the directory.
    listed: bool,
    /// File-system work done so far.
    io: ScanIo,
}

/// How much file-system work the scans did: what makes a scan cost more as the directory
/// grows. Exposed so that tests can show a plain edit does not list or stat the directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanIo {
    /// Full listings of the directory tree (the cached listing is not counted).
    pub listings: u64,
    /// Directories `stat`ed to check the cached listing.
    pub dirs_stated: u64,
    /// Manifest files `stat`ed for their fingerprint.
    pub files_stated: u64,
    /// Manifest files read and parsed.
    pub files_read: u64,
}

impl Scanner {
    /// A scanner of `dir` whose removals take effect once they held for `settle`.
    pub fn new(dir: impl Into<PathBuf>, settle: Duration) -> Self {
        Self {
            dir: dir.into(),
            settle,
            files: BTreeMap::new(),
            pending: BTreeMap::new(),
            diverging: BTreeSet::new(),
            declared: HashMap::new(),
            touched: BTreeSet::new(),
            published: None,
            number: 0,
            extra: Vec::new(),
            with_secrets: BTreeSet::new(),
            secret_files: Vec::new(),
            secret_dirs: BTreeSet::new(),
            baseline: Vec::new(),
            listing: None,
            listed: false,
            io: ScanIo::default(),
        }
    }

    /// The desired set of the last generation, if there was one.
    pub fn desired(&self) -> Option<&DesiredSet> {
        self.published.as_ref().map(|published| &published.desired)
    }

    /// Rescans the directory at `now`. `extra` holds problems found outside the scan (the
    /// watcher's), reported with the file diagnostics. The first scan always yields a
    /// generation.
    ///
    /// When no file, secret file or problem changed and no removal is on hold, the scan stops
    /// after the `stat`s: the set cannot have changed.
    pub fn scan(&mut self, now: Instant, extra: &[Diagnostic]) -> Scan {
        let mut diagnostics: Vec<Diagnostic> = extra.to_vec();
        let (listed, changed) = match self.list() {
            Ok(listing) => {
                let changed = self.refresh(&listing.paths);
                self.keep_listing(listing);
                (true, changed)
            }
            Err(err) => {
                diagnostics.push(directory_diagnostic(&self.dir, &err));
                (false, Vec::new())
            }
        };
        self.settle_scan(now, extra, diagnostics, listed, changed)
    }

    /// Scans only `paths` (manifest files named by the watcher's events) and the files whose
    /// removal is on hold, without listing the directory or looking at any other file: the
    /// work of a plain edit does not grow with the directory. Everything after the reads is
    /// what [`Scanner::scan`] does (keep last good, held removals, cross-file checks), over
    /// the same state. A path that is not a manifest file of the directory is skipped; the
    /// caller falls back to a full scan for every event that is not about one file.
    pub fn scan_paths(
        &mut self,
        now: Instant,
        extra: &[Diagnostic],
        paths: &BTreeSet<PathBuf>,
    ) -> Scan {
        let mut wanted: BTreeSet<PathBuf> = paths
            .iter()
            .filter(|path| self.files.contains_key(*path) || self.is_manifest_path(path))
            .cloned()
            .collect();
        wanted.extend(self.pending.keys().cloned());
        let mut stats = Stats::default();
        let mut changed = Vec::new();
        for path in wanted {
            let entry = self.files.entry(path.clone()).or_default();
            let new = entry.parsed.is_none() && entry.in_force.is_none();
            if refresh_entry(&path, entry, &mut stats, &mut self.io) || new {
                changed.push(path.clone());
            }
            if new && entry.parsed.is_none() {
                // Named by an event, but not there (a rename in flight): nothing to track.
                self.files.remove(&path);
                changed.pop();
            }
        }
        let listed = self.listed;
        self.settle_scan(now, extra, extra.to_vec(), listed, changed)
    }

    /// Whether `path` would be listed as a manifest file: under the directory, no ignored
    /// component (dot-names, editor droppings), a `.yaml`/`.yml` name.
    fn is_manifest_path(&self, path: &Path) -> bool {
        let Ok(relative) = path.strip_prefix(&self.dir) else {
            return false;
        };
        let mut names = relative.components().map(|c| c.as_os_str()).peekable();
        names.peek().is_some()
            && relative
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(name) if !is_ignored(name)))
            && path.file_name().is_some_and(is_manifest_name)
    }

    /// What the scanner's file-system work has been so far.
    pub fn io(&self) -> ScanIo {
        self.io
    }

    /// Everything after the reads: proposals, held removals, cross-file checks, commit and
    /// publication.
    fn settle_scan(
        &mut self,
        now: Instant,
        extra: &[Diagnostic],
        mut diagnostics: Vec<Diagnostic>,
        listed: bool,
        changed: Vec<PathBuf>,
    ) -> Scan {
        let secrets_changed = self
            .secret_files
            .iter()
            .any(|(path, fingerprint)| Fingerprint::of(path) != *fingerprint);
        let listed_before = std::mem::replace(&mut self.listed, listed);
        if self.published.is_some()
            && listed_before
            && listed
            && changed.is_empty()
            && !secrets_changed
            && self.pending.is_empty()
            && self.extra == extra
        {
            return Scan {
                generation: None,
                settle_at: None,
                secret_dirs: self.secret_dirs.clone(),
            };
        }
        self.extra = extra.to_vec();
        if secrets_changed {
            self.rebuild_secret_specs();
        }

        let mut proposals: Proposals = changed
            .into_iter()
            .chain(self.diverging.iter().cloned())
            .map(|path| {
                let proposal = self.propose(&path);
                (path, proposal)
            })
            .collect();
        let holding = self.hold_removals(&mut proposals, now, listed);
        let (cross_file, rejected) = self.check(&mut proposals, secrets_changed);
        let in_force_changed = self.commit(proposals, &holding);

        for entry in self.files.values() {
            if let Some(parsed) = &entry.parsed {
                diagnostics.extend(parsed.diagnostics.iter().cloned());
            }
        }
        diagnostics.extend(cross_file);
        sort_diagnostics(&mut diagnostics);
        diagnostics.dedup();

        if in_force_changed || secrets_changed || self.published.is_none() {
            self.remember_secrets();
        }
        let settle_at = holding
            .iter()
            .filter_map(|path| self.pending.get(path))
            .min()
            .map(|since| *since + self.settle);
        let desired_changed = in_force_changed || secrets_changed;
        let generation = self.publish(diagnostics, desired_changed, &holding, &rejected);
        Scan {
            generation,
            settle_at,
            secret_dirs: self.secret_dirs.clone(),
        }
    }

    /// The manifest files, sorted: the cached listing while no directory of the tree
    /// changed, else a fresh one (directories are fingerprinted first, so a change during
    /// the listing invalidates it). The listing is taken out of the cache: hand it back
    /// with [`Scanner::keep_listing`].
    fn list(&mut self) -> Result<Listing, LoadError> {
        if let Some(listing) = self.listing.take() {
            self.io.dirs_stated += listing.dirs.as_ref().map_or(0, |dirs| dirs.len() as u64);
            if listing.is_current() {
                return Ok(listing);
            }
        }
        self.io.listings += 1;
        let dirs = directories(&self.dir);
        let paths = list_manifest_files(&self.dir)?;
        Ok(Listing { paths, dirs })
    }

    /// Caches `listing` for the next scan if its directories can be trusted.
    fn keep_listing(&mut self, listing: Listing) {
        if listing.dirs.is_some() {
            self.listing = Some(listing);
        }
    }

    /// Brings the cache in line with the sorted listing: reads and parses the files whose
    /// fingerprint changed, marks unlisted ones absent. Returns the files whose parse
    /// changed (new, edited or gone), sorted.
    fn refresh(&mut self, paths: &[PathBuf]) -> Vec<PathBuf> {
        let mut changed = Vec::new();
        let mut added = Vec::new();
        let mut stats = Stats::default();
        let mut listing = paths.iter().peekable();
        // Both sides are sorted the same way: walk them together instead of looking up
        // thousands of paths. They are almost always equal, which compares as bytes.
        for (path, entry) in &mut self.files {
            while let Some(new) = listing.next_if(|listed| {
                listed.as_os_str() != path.as_os_str() && listed.as_path() < path.as_path()
            }) {
                added.push(new);
            }
            if listing
                .next_if(|listed| listed.as_os_str() == path.as_os_str())
                .is_some()
            {
                if refresh_entry(path, entry, &mut stats, &mut self.io) {
                    changed.push(path.clone());
                }
            } else if entry.parsed.is_some() {
                entry.parsed = None;
                entry.fingerprint = None;
                changed.push(path.clone());
            }
        }
        added.extend(listing);
        for path in added {
            let mut entry = FileEntry::default();
            refresh_entry(path, &mut entry, &mut stats, &mut self.io);
            self.files.insert(path.clone(), entry);
            changed.push(path.clone());
        }
        changed.sort();
        changed
    }

    /// What the current content of `path` proposes, before removals and cross-file checks.
    fn propose(&self, path: &Path) -> Proposal {
        let Some(entry) = self.files.get(path) else {
            return Proposal::Keep;
        };
        let in_force = entry.in_force.as_deref();
        match &entry.parsed {
            None if in_force.is_none_or(<[_]>::is_empty) => Proposal::Forget,
            None => Proposal::New(Vec::new()),
            Some(parsed) if !parsed.is_ok() => Proposal::Keep,
            Some(parsed) if in_force.is_some_and(|docs| same_docs(docs, &parsed.docs)) => {
                Proposal::Keep
            }
            Some(parsed) => Proposal::New(parsed.docs.clone()),
        }
    }

    /// Applies the accepted proposals: the documents in force, their specs, the name index
    /// and the diverging files. Returns whether any documents in force changed.
    fn commit(&mut self, proposals: Proposals, holding: &BTreeSet<PathBuf>) -> bool {
        let mut in_force_changed = false;
        for (path, proposal) in proposals {
            match proposal {
                Proposal::Keep => {}
                Proposal::New(docs) => {
                    in_force_changed = true;
                    let gone = docs.is_empty()
                        && self.files.get(&path).is_some_and(|e| e.parsed.is_none());
                    if gone {
                        self.forget(&path);
                    } else if let Some(entry) = self.files.get_mut(&path) {
                        let old = entry.in_force.replace(docs);
                        entry.specs = entry.in_force().iter().flat_map(child_specs).collect();
                        count_names(
                            &mut self.declared,
                            old.as_deref().unwrap_or_default(),
                            false,
                        );
                        count_names(&mut self.declared, entry.in_force(), true);
                        let secrets = entry
                            .in_force()
                            .iter()
                            .any(|doc| !doc.manifest.secrets.is_empty());
                        if secrets {
                            self.with_secrets.insert(path.clone());
                        } else {
                            self.with_secrets.remove(&path);
                        }
                    }
                    if !holding.contains(&path) {
                        self.pending.remove(&path);
                    }
                    self.touched.insert(path.clone());
                }
                Proposal::Forget => {
                    self.forget(&path);
                    self.pending.remove(&path);
                    self.touched.insert(path.clone());
                }
            }
            if self.files.get(&path).is_some_and(FileEntry::diverges) {
                self.diverging.insert(path);
            } else {
                self.diverging.remove(&path);
            }
        }
        in_force_changed
    }

    /// Drops a file that is gone, with its names.
    fn forget(&mut self, path: &Path) {
        if let Some(entry) = self.files.remove(path) {
            count_names(&mut self.declared, entry.in_force(), false);
        }
        self.with_secrets.remove(path);
    }

    /// Publishes a generation if the desired set or the diagnostics changed, with the
    /// statuses of the files that changed since the last one.
    fn publish(
        &mut self,
        diagnostics: Vec<Diagnostic>,
        desired_changed: bool,
        holding: &BTreeSet<PathBuf>,
        rejected: &BTreeSet<PathBuf>,
    ) -> Option<Generation> {
        let desired = match &self.published {
            Some(published) if !desired_changed => {
                if published.diagnostics == diagnostics {
                    return None;
                }
                published.desired.children.clone()
            }
            _ => {
                let mut children = BTreeMap::new();
                for spec in self.files.values().flat_map(|entry| &entry.specs) {
                    children.insert(spec.name.clone(), Arc::clone(spec));
                }
                children
            }
        };
        let desired = DesiredSet {
            generation: self.number + 1,
            children: desired,
        };
        if let Some(published) = &self.published
            && published.desired.same_children(&desired)
            && published.diagnostics == diagnostics
        {
            return None;
        }
        self.number += 1;

        let erring: BTreeSet<&Path> = diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.file.as_path())
            .collect();
        let mut touched = std::mem::take(&mut self.touched).into_iter().peekable();
        let mut files = BTreeMap::new();
        for (path, entry) in &mut self.files {
            let bad = entry.parsed.as_ref().is_some_and(|p| !p.is_ok());
            let status = if bad
                || (!rejected.is_empty() && rejected.contains(path))
                || (!erring.is_empty() && erring.contains(path.as_path()))
            {
                FileStatus::Invalid {
                    last_good_in_force: entry.in_force.is_some(),
                }
            } else if !holding.is_empty() && holding.contains(path) {
                FileStatus::Settling
            } else {
                FileStatus::Good
            };
            // Removed files sort among the others: report them on the way.
            while let Some(gone) = touched.next_if(|t| t.as_path() < path.as_path()) {
                files.insert(gone, FileStatus::Removed);
            }
            let touched_now = touched
                .next_if(|t| t.as_os_str() == path.as_os_str())
                .is_some();
            if touched_now || entry.status != Some(status) {
                files.insert(path.clone(), status);
            }
            entry.status = Some(status);
        }
        files.extend(touched.map(|gone| (gone, FileStatus::Removed)));

        self.published = Some(Published {
            desired: desired.clone(),
            diagnostics: diagnostics.clone(),
        });
        Some(Generation {
            number: self.number,
            desired,
            diagnostics,
            files,
        })
    }

    fn in_force(&self, path: &Path) -> &[ManifestDoc] {
        self.files
            .get(path)
            .map(FileEntry::in_force)
            .unwrap_or_default()
    }

    fn candidate<'a>(&'a self, path: &Path, proposal: &'a Proposal) -> &'a [ManifestDoc] {
        match proposal {
            Proposal::Keep => self.in_force(path),
            Proposal::New(docs) => docs,
            Proposal::Forget => &[],
        }
    }
}

/// Adds (or removes) the child names `docs` declare to the index.
fn count_names(declared: &mut HashMap<String, usize>, docs: &[ManifestDoc], add: bool) {
    for name in docs.iter().flat_map(|doc| replica_names(&doc.manifest)) {
        if add {
            *declared.entry(name).or_default() += 1;
        } else if let Some(count) = declared.get_mut(&name) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                declared.remove(&name);
            }
        }
    }
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
