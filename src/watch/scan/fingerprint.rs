//! Fingerprints and listing: what identifies a file's content without reading it, and the
//! directory listing, kept while no directory of the tree changed.

use std::collections::BTreeSet;
use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, fstatat};

/// What identifies a file's content without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Fingerprint {
    pub(super) device: u64,
    pub(super) inode: u64,
    pub(super) size: u64,
    pub(super) mtime: (i64, i64),
    pub(super) ctime: (i64, i64),
}

impl Fingerprint {
    /// The fingerprint of what `path` points to (symlinks followed, as reading does).
    pub(super) fn of(path: &Path) -> Option<Self> {
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
    pub(super) fn settled(&self) -> bool {
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
pub(super) struct Stats {
    folder: Option<(PathBuf, Option<OwnedFd>)>,
}

impl Stats {
    /// The fingerprint of what `path` points to (symlinks followed, as reading does).
    pub(super) fn fingerprint(&mut self, path: &Path) -> Option<Fingerprint> {
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
pub(super) const RACY: Duration = Duration::from_millis(100);

/// The directory listing, kept while no directory of the tree changed.
#[derive(Debug)]
pub(super) struct Listing {
    /// The manifest files, sorted.
    pub(super) paths: Vec<PathBuf>,
    /// Every directory under the manifest directory (dot-directories and symlinked ones
    /// included), with its fingerprint: adding, removing or renaming an entry changes its
    /// directory's. `None` if one changed too recently to be trusted.
    pub(super) dirs: Option<Vec<(PathBuf, Fingerprint)>>,
}

impl Listing {
    /// Whether no directory changed since the listing was taken.
    pub(super) fn is_current(&self) -> bool {
        self.dirs.as_ref().is_some_and(|dirs| {
            dirs.iter()
                .all(|(dir, fingerprint)| Fingerprint::of(dir).as_ref() == Some(fingerprint))
        })
    }
}

/// Every directory under `root` (itself included), following symlinks, each real directory
/// once; `None` if one changed too recently to be trusted.
pub(super) fn directories(root: &Path) -> Option<Vec<(PathBuf, Fingerprint)>> {
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
