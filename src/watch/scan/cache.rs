//! The parsed-file cache: everything known about one manifest file, and reading and parsing
//! it again only when its fingerprint changed.

use std::fs;
use std::io::{self, Read as _};
use std::path::Path;
use std::sync::Arc;

use super::ScanIo;
use super::fingerprint::{Fingerprint, Stats};
use crate::manifest::diagnostic::Location;
use crate::manifest::load::{MAX_FILE_BYTES, describe_io};
use crate::manifest::{ChildSpec, Code, Diagnostic, ManifestDoc, ParsedFile, parse_file};
use crate::watch::generation::FileStatus;

/// Everything known about one manifest file.
#[derive(Debug, Default)]
pub(super) struct FileEntry {
    /// The fingerprint `parsed` was read under; `None` forces a read next time.
    pub(super) fingerprint: Option<Fingerprint>,
    /// The latest parse; `None` while the file is absent.
    pub(super) parsed: Option<ParsedFile>,
    /// The documents in force: the last good version, `None` if it never was good.
    pub(super) in_force: Option<Vec<ManifestDoc>>,
    /// The children the documents in force declare, built when they change (or when a
    /// secret they read changes), so that unchanged files keep the very same specs.
    pub(super) specs: Vec<Arc<ChildSpec>>,
    /// The status in the last published generation.
    pub(super) status: Option<FileStatus>,
}

impl FileEntry {
    pub(super) fn in_force(&self) -> &[ManifestDoc] {
        self.in_force.as_deref().unwrap_or_default()
    }

    /// Whether the file asks for something other than what is in force: a good new
    /// version, or its loss. Such a file is proposed again at every scan until it is
    /// applied (a change rejected for breaking another file applies once that one is
    /// fixed; a held removal applies once it has settled).
    pub(super) fn diverges(&self) -> bool {
        match &self.parsed {
            None => !self.in_force().is_empty(),
            Some(parsed) => parsed.is_ok() && !same_docs(self.in_force(), &parsed.docs),
        }
    }
}

/// Reads a file: `Ok(None)` when it vanished since it was listed (a rename in flight), which
/// is not an error but a possible removal.
pub(super) fn read(path: &Path) -> Result<Option<Vec<u8>>, Diagnostic> {
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

/// Whether two lists of documents are the same: shared parses compare by pointer.
pub(super) fn same_docs(a: &[ManifestDoc], b: &[ManifestDoc]) -> bool {
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
pub(super) fn refresh_entry(
    path: &Path,
    entry: &mut FileEntry,
    stats: &mut Stats,
    io: &mut ScanIo,
) -> bool {
    io.files_stated += 1;
    let fingerprint = stats.fingerprint(path);
    if fingerprint.is_some() && entry.fingerprint == fingerprint && entry.parsed.is_some() {
        return false;
    }
    let fingerprint = fingerprint.filter(Fingerprint::settled);
    // Stat before reading: if the file changes in between, the cached fingerprint is older
    // than the content and the next scan reads it again.
    io.files_read += 1;
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
