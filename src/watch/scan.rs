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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::io::{self, Read as _};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, fstatat};
use tokio::time::Instant;

use super::generation::{FileStatus, Generation};
use crate::manifest::desired::replica_names;
use crate::manifest::diagnostic::{Location, sort_diagnostics};
use crate::manifest::load::{LoadError, MAX_FILE_BYTES, describe_io};
use crate::manifest::validate::base_dir;
use crate::manifest::{
    ChildSpec, Code, DesiredSet, Diagnostic, Manifest, ManifestDoc, ParsedFile, check_set,
    child_specs, list_manifest_files, parse_file,
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

    /// Whether the last change is old enough for the fingerprint to be trusted: file
    /// timestamps come from a coarse clock, so two writes within one tick can leave the
    /// same fingerprint. A change younger than [`RACY`] is not trusted (as git does with
    /// its "racily clean" entries) and the file is read again at the next scan.
    fn settled(&self) -> bool {
        let (secs, nanos) = self.ctime;
        let changed = u64::try_from(secs).ok().and_then(|secs| {
            let nanos = u32::try_from(nanos).ok()?;
            SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
        });
        changed.is_some_and(|changed| {
            SystemTime::now()
                .duration_since(changed)
                .is_ok_and(|age| age >= RACY)
        })
    }
}

impl From<FileStat> for Fingerprint {
    fn from(stat: FileStat) -> Self {
        Self {
            device: stat.st_dev,
            inode: stat.st_ino,
            size: u64::try_from(stat.st_size).unwrap_or_default(),
            mtime: (stat.st_mtime, stat.st_mtime_nsec),
            ctime: (stat.st_ctime, stat.st_ctime_nsec),
        }
    }
}

/// `stat`s files relative to their folder, opened once per run of files in it (a listing
/// is sorted, so a folder's files come together): the kernel resolves one name per file
/// instead of walking its whole path.
#[derive(Default)]
struct Stats {
    folder: Option<(PathBuf, Option<OwnedFd>)>,
}

impl Stats {
    /// The fingerprint of what `path` points to (symlinks followed, as reading does).
    fn fingerprint(&mut self, path: &Path) -> Option<Fingerprint> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Fingerprint::of(path);
        };
        let stale = self
            .folder
            .as_ref()
            .is_none_or(|(folder, _)| folder.as_os_str() != parent.as_os_str());
        if stale {
            let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
            let fd = nix::fcntl::open(parent, flags, Mode::empty()).ok();
            self.folder = Some((parent.to_path_buf(), fd));
        }
        match &self.folder {
            Some((_, Some(fd))) => fstatat(fd, name, AtFlags::empty())
                .ok()
                .map(Fingerprint::from),
            _ => Fingerprint::of(path),
        }
    }
}

/// How old a change must be before a fingerprint vouches for the content (well above the
/// kernel's timestamp granularity of one tick).
const RACY: Duration = Duration::from_millis(100);

/// The directory listing, kept while no directory of the tree changed.
#[derive(Debug)]
struct Listing {
    /// The manifest files, sorted.
    paths: Vec<PathBuf>,
    /// Every directory under the manifest directory (dot-directories and symlinked ones
    /// included), with its fingerprint: adding, removing or renaming an entry changes its
    /// directory's. `None` if one changed too recently to be trusted.
    dirs: Option<Vec<(PathBuf, Fingerprint)>>,
}

impl Listing {
    /// Whether no directory changed since the listing was taken.
    fn is_current(&self) -> bool {
        self.dirs.as_ref().is_some_and(|dirs| {
            dirs.iter()
                .all(|(dir, fingerprint)| Fingerprint::of(dir).as_ref() == Some(fingerprint))
        })
    }
}

/// Every directory under `root` (itself included), following symlinks, each real directory
/// once; `None` if one changed too recently to be trusted.
fn directories(root: &Path) -> Option<Vec<(PathBuf, Fingerprint)>> {
    let mut found = Vec::new();
    let mut seen = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Some(fingerprint) = Fingerprint::of(&dir) else {
            continue;
        };
        if !fingerprint.settled() {
            return None;
        }
        if !seen.insert((fingerprint.device, fingerprint.inode)) {
            continue;
        }
        let Ok(entries) = fs::read_dir(&dir) else {
            return None;
        };
        for entry in entries.flatten() {
            let is_dir = match entry.file_type() {
                Ok(kind) if kind.is_dir() => true,
                Ok(kind) if kind.is_symlink() => entry.path().is_dir(),
                _ => false,
            };
            if is_dir {
                stack.push(entry.path());
            }
        }
        found.push((dir, fingerprint));
    }
    Some(found)
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
    /// The children the documents in force declare, built when they change (or when a
    /// secret they read changes), so that unchanged files keep the very same specs.
    specs: Vec<Arc<ChildSpec>>,
    /// The status in the last published generation.
    status: Option<FileStatus>,
}

impl FileEntry {
    fn in_force(&self) -> &[ManifestDoc] {
        self.in_force.as_deref().unwrap_or_default()
    }

    /// Whether the file asks for something other than what is in force: a good new
    /// version, or its loss. Such a file is proposed again at every scan until it is
    /// applied (a change rejected for breaking another file applies once that one is
    /// fixed; a held removal applies once it has settled).
    fn diverges(&self) -> bool {
        match &self.parsed {
            None => !self.in_force().is_empty(),
            Some(parsed) => parsed.is_ok() && !same_docs(self.in_force(), &parsed.docs),
        }
    }
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
        if let Some(listing) = self.listing.take()
            && listing.is_current()
        {
            return Ok(listing);
        }
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
                if refresh_entry(path, entry, &mut stats) {
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
            refresh_entry(path, &mut entry, &mut stats);
            self.files.insert(path.clone(), entry);
            changed.push(path.clone());
        }
        changed.sort();
        changed
    }

    /// Digests the secrets of the documents in force again: a secret file changed.
    fn rebuild_secret_specs(&mut self) {
        for path in &self.with_secrets {
            if let Some(entry) = self.files.get_mut(path) {
                entry.specs = entry.in_force().iter().flat_map(child_specs).collect();
            }
        }
    }

    /// Remembers the secret files the documents in force read (and their folders), so that
    /// an unchanged scan can still notice a rotated secret.
    fn remember_secrets(&mut self) {
        let docs = self
            .with_secrets
            .iter()
            .flat_map(|path| self.in_force(path));
        let files = secret_files(docs);
        // The folders are resolved: `herder.d/../secrets` is outside the manifest directory,
        // though it starts with it, and inotify reports events under the real path.
        self.secret_dirs = files
            .iter()
            .filter_map(|path| path.parent())
            .map(|dir| fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()))
            .collect();
        self.secret_files = files
            .into_iter()
            .map(|path| {
                // A fingerprint too young to vouch for the value is not kept: the next scan
                // sees a difference and digests the secret again.
                let fingerprint = Fingerprint::of(&path).filter(Fingerprint::settled);
                (path, fingerprint)
            })
            .collect();
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

    /// Keeps the children a file's new content drops (and no other file declares) in force
    /// next to that new content, until the loss has held for the settle time: additions and
    /// changes apply at once, removals wait. A dropped manifest that shares its name with the
    /// new content (replicas scaled down) holds the whole file back instead. Returns the
    /// files on hold.
    fn hold_removals(
        &mut self,
        proposals: &mut Proposals,
        now: Instant,
        may_confirm: bool,
    ) -> BTreeSet<PathBuf> {
        // A name stays declared if a proposal declares it, or if more documents in force
        // declare it than the proposals' files do (another file keeps it).
        let mut proposed_names = HashSet::new();
        let mut shadowed: HashMap<String, usize> = HashMap::new();
        for (path, proposal) in proposals.iter() {
            for doc in self.candidate(path, proposal) {
                proposed_names.extend(replica_names(&doc.manifest));
            }
            for doc in self.in_force(path) {
                for name in replica_names(&doc.manifest) {
                    *shadowed.entry(name).or_default() += 1;
                }
            }
        }
        let still_declared = |name: &String| {
            proposed_names.contains(name)
                || self.declared.get(name).copied().unwrap_or_default()
                    > shadowed.get(name).copied().unwrap_or_default()
        };
        let mut holding = BTreeSet::new();
        for (path, proposal) in proposals.iter_mut() {
            let Proposal::New(new_docs) = proposal else {
                self.pending.remove(path);
                continue;
            };
            let in_force = self.in_force(path).to_vec();
            let dropped: Vec<&ManifestDoc> = in_force
                .iter()
                .filter(|doc| {
                    replica_names(&doc.manifest)
                        .iter()
                        .any(|name| !still_declared(name))
                })
                .collect();
            if dropped.is_empty() {
                self.pending.remove(path);
                continue;
            }
            let since = *self.pending.entry(path.clone()).or_insert(now);
            if may_confirm && now.saturating_duration_since(since) >= self.settle {
                continue;
            }
            holding.insert(path.clone());
            let rescaled = dropped.iter().any(|old| {
                new_docs
                    .iter()
                    .any(|new| new.manifest.name == old.manifest.name)
            });
            let mut merged = new_docs.clone();
            merged.extend(dropped.into_iter().cloned());
            *proposal = if rescaled || same_docs(&merged, &in_force) {
                Proposal::Keep
            } else {
                Proposal::New(merged)
            };
        }
        holding
    }

    /// Runs the cross-file checks, reverting the changed files at fault until the set has no
    /// error the documents in force did not have (as of the last full scan). Returns the
    /// final diagnostics (with those that caused a rejection) and the rejected files.
    ///
    /// Nothing proposed and no secret changed: the documents in force are checked already.
    fn check(
        &mut self,
        proposals: &mut Proposals,
        secrets_changed: bool,
    ) -> (Vec<Diagnostic>, BTreeSet<PathBuf>) {
        let changes = |proposals: &Proposals| -> BTreeSet<PathBuf> {
            proposals
                .iter()
                .filter(|(_, proposal)| matches!(proposal, Proposal::New(_)))
                .map(|(path, _)| path.clone())
                .collect()
        };
        let nothing_new =
            !secrets_changed && self.published.is_some() && changes(proposals).is_empty();
        if nothing_new {
            return (self.baseline.clone(), BTreeSet::new());
        }
        if !secrets_changed
            && let Some(scope) = self.local_scope(proposals)
            && check_set(scope).is_empty()
        {
            return (Vec::new(), BTreeSet::new());
        }
        let mut diagnostics = check_set(self.candidate_docs(proposals));
        let mut rejected = BTreeSet::new();
        let mut reasons = Vec::new();
        loop {
            let changed = changes(proposals);
            // An unreadable secret of an unchanged file is that file's own problem, not one a
            // change introduced.
            let new: Vec<&Diagnostic> = diagnostics
                .iter()
                .filter(|d| d.is_error() && !self.baseline.contains(d))
                .filter(|d| d.code != Code::Secret || changed.contains(&d.file))
                .collect();
            let Some(first) = new.first().copied() else {
                break;
            };
            if changed.is_empty() {
                break;
            }
            let mut faulty: BTreeSet<PathBuf> = new
                .iter()
                .filter(|d| changed.contains(&d.file))
                .map(|d| d.file.clone())
                .collect();
            if faulty.is_empty() {
                faulty = self.culprits(&new, &changed, proposals);
                reasons.extend(faulty.iter().map(|path| blame(path, first)));
            }
            reasons.extend(new.into_iter().cloned());
            for path in &faulty {
                proposals.insert(path.clone(), Proposal::Keep);
            }
            rejected.extend(faulty);
            diagnostics = check_set(self.candidate_docs(proposals));
        }
        self.baseline.clone_from(&diagnostics);
        diagnostics.extend(reasons);
        (diagnostics, rejected)
    }

    /// The documents that decide the cross-file verdict of `proposals`, when a clean set
    /// changes in a way that cannot affect the rest of it: files that declare only names
    /// nobody declares yet, and edits that keep every document's names, replicas, kind,
    /// dependencies and secrets. Then no document outside the changed ones and their
    /// dependencies can gain an error (nothing outside depends on a new name, and no edge
    /// of the graph changed), so when these check clean the whole set does: a new manifest
    /// among thousands is checked against its few dependencies, not against all of them.
    /// `None` when the whole set must be checked.
    fn local_scope<'a>(&'a self, proposals: &'a Proposals) -> Option<Vec<&'a ManifestDoc>> {
        if !self.baseline.is_empty() {
            return None;
        }
        let desired = &self.published.as_ref()?.desired;
        let mut scope: Vec<&ManifestDoc> = Vec::new();
        for (path, proposal) in proposals {
            let Proposal::New(docs) = proposal else {
                continue;
            };
            let old = self.in_force(path);
            let fresh = old.is_empty()
                && docs.iter().all(|doc| {
                    names(&doc.manifest)
                        .iter()
                        .all(|name| desired.expand(name).next().is_none())
                });
            let reshaped = old.len() != docs.len()
                || old
                    .iter()
                    .zip(docs)
                    .any(|(old, new)| !same_shape(&old.manifest, &new.manifest));
            if !fresh && reshaped {
                return None;
            }
            scope.extend(docs);
        }
        // The documents in force the scope depends on, transitively, in their candidate
        // version, so that every dependency resolves within the scope.
        let mut seen: HashSet<*const Manifest> =
            scope.iter().map(|doc| Arc::as_ptr(&doc.manifest)).collect();
        let mut pending: Vec<&ManifestDoc> = scope.clone();
        while let Some(doc) = pending.pop() {
            for dependency in &doc.manifest.dependencies {
                for child in desired.expand(&dependency.0.name) {
                    let Some(spec) = desired.children.get(child) else {
                        continue;
                    };
                    let docs = match proposals.get(&spec.source) {
                        Some(proposal) => self.candidate(&spec.source, proposal),
                        None => self.in_force(&spec.source),
                    };
                    for target in docs
                        .iter()
                        .filter(|d| d.manifest.name == spec.manifest.name)
                    {
                        if seen.insert(Arc::as_ptr(&target.manifest)) {
                            scope.push(target);
                            pending.push(target);
                        }
                    }
                }
            }
        }
        Some(scope)
    }

    /// Every document the set would hold with `proposals` applied, in file order.
    fn candidate_docs<'a>(
        &'a self,
        proposals: &'a Proposals,
    ) -> impl Iterator<Item = &'a ManifestDoc> + 'a {
        let mut proposed = proposals.iter().peekable();
        // Both maps are sorted the same way, and every proposal is for a known file.
        self.files.iter().flat_map(move |(path, entry)| {
            match proposed.next_if(|(proposed, _)| proposed.as_os_str() == path.as_os_str()) {
                Some((_, proposal)) => self.candidate(path, proposal),
                None => entry.in_force(),
            }
        })
    }

    /// The changed files behind errors that point at unchanged files: those that declare, or
    /// used to declare, a name the erring files declare or depend on. All changed files if
    /// none matches.
    fn culprits(
        &self,
        errors: &[&Diagnostic],
        changed: &BTreeSet<PathBuf>,
        proposals: &Proposals,
    ) -> BTreeSet<PathBuf> {
        let mut involved = BTreeSet::new();
        for error in errors {
            let docs = match proposals.get(&error.file) {
                Some(proposal) => self.candidate(&error.file, proposal),
                None => self.in_force(&error.file),
            };
            for doc in docs {
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

/// Whether two manifests look the same to the cross-file checks.
fn same_shape(a: &Manifest, b: &Manifest) -> bool {
    a.name == b.name
        && a.replicas == b.replicas
        && a.kind == b.kind
        && a.dependencies == b.dependencies
        && a.secrets == b.secrets
}

/// The child names and the base name a manifest declares.
fn names(manifest: &Manifest) -> Vec<String> {
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

/// Reads and parses `path` unless its fingerprint is unchanged (and old enough to be
/// trusted). Returns whether the entry changed; a parse equal to the cached one keeps the
/// cached one, so unchanged documents stay the same allocation.
fn refresh_entry(path: &Path, entry: &mut FileEntry, stats: &mut Stats) -> bool {
    let fingerprint = stats.fingerprint(path);
    if fingerprint.is_some() && entry.fingerprint == fingerprint && entry.parsed.is_some() {
        return false;
    }
    let fingerprint = fingerprint.filter(Fingerprint::settled);
    // Stat before reading: if the file changes in between, the cached fingerprint is older
    // than the content and the next scan reads it again.
    let (parsed, fingerprint) = match read(path) {
        Ok(Some(bytes)) => (Some(parse_file(path, &bytes)), fingerprint),
        Ok(None) => (None, None),
        Err(diagnostic) => (
            Some(ParsedFile {
                path: path.to_path_buf(),
                docs: Vec::new(),
                diagnostics: vec![diagnostic],
            }),
            fingerprint,
        ),
    };
    entry.fingerprint = fingerprint;
    if entry.parsed == parsed {
        return false;
    }
    entry.parsed = parsed;
    true
}

/// The secret files the documents reference, resolved against their manifests' folders.
fn secret_files<'a>(docs: impl Iterator<Item = &'a ManifestDoc>) -> BTreeSet<PathBuf> {
    let mut files = BTreeSet::new();
    for doc in docs.filter(|doc| !doc.manifest.secrets.is_empty()) {
        let base = base_dir(&doc.file);
        for secret in &doc.manifest.secrets {
            if let Some(file) = &secret.file {
                files.insert(base.join(file));
            }
        }
    }
    files
}
