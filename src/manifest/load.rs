//! Loading manifests: scanning a directory, reading files, and parsing each file into
//! typed, located documents.
//!
//! Parsing is per file so that a watcher can keep a bad file's last good version in force;
//! cross-file checks live in [`super::validate::check_set`].

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::fcntl::{self, OFlag};
use nix::sys::stat::Mode;
use serde::Deserialize;
use serde_json::Value;

use super::desired::{DesiredSet, desired_set};
use super::diagnostic::{Code, Diagnostic, Location, sort_diagnostics};
use super::model::Manifest;
use super::schema::check_schema;
use super::spans::{Spans, marker_location};
use super::validate::{check_manifest, check_probe_shapes, check_sorted_set};
use super::yaml_json::parse_documents;

/// Largest manifest file herder reads; a real one is a few kilobytes.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// The read buffer's starting size: larger than nearly every manifest.
const READ_BUFFER_BYTES: usize = 64 << 10;

/// Why a directory or path could not be scanned at all (as opposed to a bad file, which is
/// a [`Diagnostic`]).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A directory could not be listed.
    #[error("cannot read directory {}", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A path given on the command line does not exist or cannot be inspected.
    #[error("cannot access {}", path.display())]
    Access {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// One manifest document, parsed, schema-checked and typed.
#[derive(Clone, Debug, PartialEq)]
pub struct ManifestDoc {
    /// The manifest.
    pub manifest: Arc<Manifest>,
    /// The file it came from.
    pub file: PathBuf,
    /// Its index among the file's `---` separated documents, from 0.
    pub doc_index: usize,
    /// Where each JSON pointer of the document is in the file.
    pub spans: Arc<Spans>,
}

impl ManifestDoc {
    /// An error located at `pointer` (its value) in this document.
    pub fn error_at(&self, code: Code, pointer: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(
            code,
            &self.file,
            self.doc_index,
            self.spans.value(pointer),
            pointer,
            message,
        )
    }

    /// An error located at the key of the mapping entry at `pointer`.
    pub fn error_at_key(
        &self,
        code: Code,
        pointer: &str,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::error(
            code,
            &self.file,
            self.doc_index,
            self.spans.key(pointer),
            pointer,
            message,
        )
    }
}

/// The result of parsing one file: its good documents and every problem found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParsedFile {
    /// The file.
    pub path: PathBuf,
    /// Documents that parsed and passed the per-document checks.
    pub docs: Vec<ManifestDoc>,
    /// Problems in this file, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
}

impl ParsedFile {
    /// Whether the file is good as a whole: no error in any document. A bad file must not
    /// change what runs; its last good version stays in force.
    pub fn is_ok(&self) -> bool {
        !self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Every manifest file under `dir`, sorted: `*.yaml` and `*.yml`, recursively, through
/// symlinks (each real directory visited once, so symlink loops end), skipping names that
/// start with `.` (files and directories, so a Kubernetes `..2026_…` data directory is not
/// read twice) and editor droppings (`*~`, `*.swp`, `4913`, `#*#`, `*.tmp`).
pub fn list_manifest_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut files = Vec::new();
    let mut visited = BTreeSet::new();
    scan(dir, &mut visited, &mut files)?;
    Ok(files)
}

fn scan(
    dir: &Path,
    visited: &mut BTreeSet<PathBuf>,
    files: &mut Vec<PathBuf>,
) -> Result<(), LoadError> {
    let read_dir_error = |source| LoadError::ReadDir {
        path: dir.to_path_buf(),
        source,
    };
    let real = fs::canonicalize(dir).map_err(read_dir_error)?;
    if !visited.insert(real) {
        return Ok(());
    }
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_dir_error)? {
        let entry = entry.map_err(read_dir_error)?;
        let name = entry.file_name();
        if !is_ignored(&name) {
            entries.push((name, entry));
        }
    }
    // Paths order by their components, so visiting each directory's entries by name lists
    // the files already sorted: sorting the whole list would compare long paths instead.
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (name, entry) in entries {
        let path = entry.path();
        // The entry's type comes from the directory listing itself (no `stat`), which
        // keeps rescans of large directories cheap; only symlinks are resolved, with
        // `metadata`, and a dangling link is kept as a file so that reading it reports
        // the problem.
        let is_dir = match entry.file_type() {
            Ok(kind) if kind.is_symlink() => fs::metadata(&path).is_ok_and(|meta| meta.is_dir()),
            Ok(kind) => kind.is_dir(),
            Err(_) => fs::metadata(&path).is_ok_and(|meta| meta.is_dir()),
        };
        if is_dir {
            scan(&path, visited, files)?;
        } else if is_manifest_name(&name) {
            files.push(path);
        }
    }
    Ok(())
}

/// Whether a directory entry is skipped by the listing: dot-names and editor droppings.
pub fn is_ignored(name: &OsStr) -> bool {
    let bytes = name.as_encoded_bytes();
    bytes.starts_with(b".")
        || bytes.ends_with(b"~")
        || bytes.ends_with(b".swp")
        || bytes.ends_with(b".tmp")
        || bytes == b"4913"
        || (bytes.starts_with(b"#") && bytes.ends_with(b"#"))
}

/// Whether a file name is a manifest's: `*.yaml` or `*.yml`.
pub fn is_manifest_name(name: &OsStr) -> bool {
    let bytes = name.as_encoded_bytes();
    bytes.ends_with(b".yaml") || bytes.ends_with(b".yml")
}

/// Reads and parses one file; a read failure is a diagnostic of the file.
pub fn load_file(path: &Path) -> ParsedFile {
    Reader::default().load(path)
}

/// Reads manifest files one after another: into one reused buffer, and each relative to
/// its directory, which is opened once for all of its files (sorted files come directory
/// by directory), so that the kernel resolves one name per file instead of its whole path.
#[derive(Default)]
struct Reader {
    buffer: Vec<u8>,
    dir: Option<(PathBuf, OwnedFd)>,
}

impl Reader {
    /// Reads and parses one file, as [`load_file`] does.
    fn load(&mut self, path: &Path) -> ParsedFile {
        match self.read(path) {
            Ok(()) => parse_file(path, &self.buffer),
            Err(diagnostic) => ParsedFile {
                path: path.to_path_buf(),
                docs: Vec::new(),
                diagnostics: vec![diagnostic],
            },
        }
    }

    /// Reads at most [`MAX_FILE_BYTES`] + 1 bytes of `path` into the buffer.
    fn read(&mut self, path: &Path) -> Result<(), Diagnostic> {
        let io_error = |err: io::Error| {
            Diagnostic::error(
                Code::Io,
                path,
                0,
                Location::START,
                "",
                format!("cannot read file: {}", describe_io(&err)),
            )
        };
        self.buffer.clear();
        // With room for a typical manifest, the read takes one call instead of growing
        // probes, and needs no `fstat` for the file's size.
        self.buffer.reserve(READ_BUFFER_BYTES);
        let file = self.open(path).map_err(io_error)?;
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut self.buffer)
            .map_err(io_error)?;
        Ok(())
    }

    fn open(&mut self, path: &Path) -> io::Result<fs::File> {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return fs::File::open(path);
        };
        if dir.as_os_str().is_empty() {
            return fs::File::open(path);
        }
        let cached = self
            .dir
            .as_ref()
            .is_some_and(|(open, _)| open.as_os_str() == dir.as_os_str());
        if !cached {
            // A directory that cannot be opened leaves the error to the plain open below.
            self.dir = fcntl::open(
                dir,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ok()
            .map(|fd| (dir.to_path_buf(), fd));
        }
        match &self.dir {
            Some((_, dir)) => {
                let fd =
                    fcntl::openat(dir, name, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
                Ok(fs::File::from(fd))
            }
            None => fs::File::open(path),
        }
    }
}

/// A lowercase description of an I/O error, without the `(os error N)` suffix.
pub fn describe_io(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::NotFound => "not found".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        io::ErrorKind::IsADirectory => "is a directory".to_owned(),
        _ => {
            let text = err.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text);
            let mut chars = text.chars();
            chars
                .next()
                .map(|first| first.to_lowercase().chain(chars).collect())
                .unwrap_or_default()
        }
    }
}

/// Parses one file's bytes: YAML 1.2 (several `---` documents allowed), schema, typed
/// deserialization and the per-document checks. An empty file holds no documents.
pub fn parse_file(path: &Path, bytes: &[u8]) -> ParsedFile {
    let mut parsed = ParsedFile {
        path: path.to_path_buf(),
        ..ParsedFile::default()
    };
    match decode(path, bytes) {
        Ok(text) => parse_text(path, text, &mut parsed),
        Err(diagnostic) => parsed.diagnostics.push(diagnostic),
    }
    sort_diagnostics(&mut parsed.diagnostics);
    parsed
}

/// Checks size and encoding: a manifest is UTF-8 text (a BOM is allowed) without NUL bytes.
fn decode<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str, Diagnostic> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Diagnostic::error(
            Code::TooLarge,
            path,
            0,
            Location::START,
            "",
            format!("file is larger than {} KiB", MAX_FILE_BYTES / 1024),
        )
        .with_hint("a manifest describes one child in a few lines; split or trim the file"));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let binary = |offset: usize, what: &str| {
        Diagnostic::error(
            Code::Binary,
            path,
            0,
            location_of_offset(&bytes[..offset]),
            "",
            format!("not a text file: {what}"),
        )
        .with_hint("manifests are UTF-8 YAML text")
    };
    // `contains` is a fast scan; the position is only needed for the diagnostic.
    if bytes.contains(&0)
        && let Some(offset) = bytes.iter().position(|&b| b == 0)
    {
        return Err(binary(offset, "it contains a NUL byte"));
    }
    std::str::from_utf8(bytes).map_err(|err| binary(err.valid_up_to(), "it is not valid UTF-8"))
}

/// The location just after `prefix` (which is valid UTF-8 up to its end, or nearly).
fn location_of_offset(prefix: &[u8]) -> Location {
    let text = String::from_utf8_lossy(prefix);
    let line = text.matches('\n').count() + 1;
    let column = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Location {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        column: u32::try_from(column).unwrap_or(u32::MAX),
        length: 1,
    }
}

fn parse_text(path: &Path, text: &str, parsed: &mut ParsedFile) {
    let documents = match parse_documents(text) {
        Ok(documents) => documents,
        Err(err) => {
            parsed.diagnostics.push(syntax_diagnostic(path, text, &err));
            return;
        }
    };
    for document in documents {
        match document.result {
            // A `---` with nothing after it (or only comments) is an empty document: skip it.
            Ok((Value::Null, _)) => {}
            Ok((value, spans)) => {
                if let Some(doc) =
                    check_document(path, document.index, value, spans, &mut parsed.diagnostics)
                {
                    parsed.docs.push(doc);
                }
            }
            Err(unsupported) => {
                let mut diagnostic = Diagnostic::error(
                    unsupported.code,
                    path,
                    document.index,
                    unsupported.location,
                    unsupported.pointer,
                    unsupported.message,
                );
                diagnostic.hint = unsupported.hint;
                parsed.diagnostics.push(diagnostic);
            }
        }
    }
}

/// Schema, typed deserialization and per-document checks of one converted document.
fn check_document(
    path: &Path,
    index: usize,
    value: Value,
    spans: Spans,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<ManifestDoc> {
    let schema_errors = check_schema(&value, &spans, path, index);
    if !schema_errors.is_empty() {
        diagnostics.extend(schema_errors);
        return None;
    }
    let shape_errors = check_probe_shapes(&value, &spans, path, index);
    if !shape_errors.is_empty() {
        diagnostics.extend(shape_errors);
        return None;
    }
    // The plain deserializer is fast and moves the strings out of `value`; the
    // path-tracking one only runs, on a fresh copy of the document, to locate an error.
    let typed = Manifest::deserialize(value)
        .or_else(|_| serde_path_to_error::deserialize(&spans.document()));
    let manifest: Manifest = match typed {
        Ok(manifest) => manifest,
        Err(err) => {
            let pointer = serde_pointer(err.path());
            diagnostics.push(Diagnostic::error(
                Code::Schema,
                path,
                index,
                spans.value(&pointer),
                pointer.clone(),
                err.into_inner().to_string(),
            ));
            return None;
        }
    };
    let doc = ManifestDoc {
        manifest: Arc::new(manifest),
        file: path.to_path_buf(),
        doc_index: index,
        spans: Arc::new(spans),
    };
    let problems = check_manifest(&doc);
    let fatal = problems.iter().any(Diagnostic::is_error);
    diagnostics.extend(problems);
    (!fatal).then_some(doc)
}

/// The JSON pointer of a `serde_path_to_error` path.
fn serde_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => {
                pointer.push('/');
                pointer.push_str(&index.to_string());
            }
            Segment::Map { key } => {
                pointer.push('/');
                pointer.push_str(&super::spans::escape_segment(key));
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    pointer
}

fn syntax_diagnostic(path: &Path, text: &str, err: &saphyr::ScanError) -> Diagnostic {
    let info = err.info();
    let mut location = marker_location(err.marker());
    // A truncated document is reported at the end of the input; show the last line.
    let lines = text.lines().count().max(1);
    if location.line as usize > lines {
        location.line = u32::try_from(lines).unwrap_or(u32::MAX);
        location.column = text.lines().last().map_or(1, |l| {
            u32::try_from(l.chars().count() + 1).unwrap_or(u32::MAX)
        });
    }
    let (message, hint) = if info.contains("tab") {
        // Point at the offending tab, which the scanner reports at the token it was in.
        if let Some(tab) = first_indenting_tab(text, location.line) {
            location = tab;
        }
        (
            "tab character in indentation".to_owned(),
            Some("YAML indentation must use spaces, not tabs"),
        )
    } else if info.contains("end of stream")
        || err.marker().index() >= text.trim_end().chars().count()
    {
        (
            lowercase(info),
            Some("the file looks truncated: close every quote, bracket and brace"),
        )
    } else {
        (lowercase(info), None)
    };
    let diagnostic = Diagnostic::error(Code::Syntax, path, 0, location, "", message);
    match hint {
        Some(hint) => diagnostic.with_hint(hint),
        None => diagnostic,
    }
}

/// The first tab in the leading whitespace of a line, from line `from` on.
fn first_indenting_tab(text: &str, from: u32) -> Option<Location> {
    text.lines()
        .enumerate()
        .skip((from as usize).saturating_sub(1))
        .find_map(|(index, line)| {
            let column = line
                .chars()
                .take_while(|c| c.is_whitespace())
                .position(|c| c == '\t')?;
            Some(Location {
                line: u32::try_from(index + 1).ok()?,
                column: u32::try_from(column + 1).ok()?,
                length: 1,
            })
        })
}

fn lowercase(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Everything read from a set of paths: the good documents and all diagnostics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Loaded {
    /// Every file read, with its own result.
    pub files: Vec<ParsedFile>,
    /// Diagnostics of all files and of the cross-file checks, sorted.
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    /// Documents of every file, good files and the good documents of bad ones alike (the
    /// cross-file checks see them all, so one bad document does not cause spurious
    /// "missing dependency" errors elsewhere).
    pub fn docs(&self) -> impl Iterator<Item = &ManifestDoc> {
        self.files.iter().flat_map(|file| file.docs.iter())
    }

    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Loads files and directories (recursively) as one set and runs every check on it.
/// A path that does not exist, or a directory that cannot be listed, is a [`LoadError`];
/// every problem in a file is a diagnostic.
pub fn load_paths(paths: &[PathBuf]) -> Result<Loaded, LoadError> {
    let mut files = Vec::new();
    for path in paths {
        let meta = fs::metadata(path).map_err(|source| LoadError::Access {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            files.extend(list_manifest_files(path)?);
        } else {
            files.push(path.clone());
        }
    }
    // One directory lists its files sorted and once each.
    if paths.len() > 1 {
        files.sort();
        files.dedup();
    }
    let mut reader = Reader::default();
    let parsed: Vec<ParsedFile> = files.iter().map(|path| reader.load(path)).collect();
    let mut loaded = Loaded {
        diagnostics: parsed
            .iter()
            .flat_map(|file| file.diagnostics.iter().cloned())
            .collect(),
        files: parsed,
    };
    // The files are sorted, and each one's documents are in order.
    let docs: Vec<&ManifestDoc> = loaded.docs().collect();
    let set_diagnostics = check_sorted_set(&docs);
    loaded.diagnostics.extend(set_diagnostics);
    sort_diagnostics(&mut loaded.diagnostics);
    Ok(loaded)
}

/// Loads a manifest directory for `herder validate` or startup: the desired set built from
/// the files without errors (generation 0; the caller numbers generations), and every
/// diagnostic.
pub fn load_dir(dir: &Path) -> Result<(DesiredSet, Vec<Diagnostic>), LoadError> {
    let loaded = load_paths(&[dir.to_path_buf()])?;
    let bad: BTreeSet<&Path> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.file.as_path())
        .collect();
    let good: Vec<ManifestDoc> = loaded
        .docs()
        .filter(|doc| !bad.contains(doc.file.as_path()))
        .cloned()
        .collect();
    Ok((desired_set(&good, 0), loaded.diagnostics))
}
