//! A YAML source file (compose, process-compose) read with herder's own YAML 1.2 parser:
//! JSON plus the location of every JSON pointer, so each note and error has a
//! `file:line:col`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::ImportError;
use crate::convert::note::Note;
use crate::manifest::Location;
use crate::manifest::spans::{Spans, escape_segment, marker_location};
use crate::manifest::yaml_json::parse_documents;

/// Largest source file read; real ones are a few kilobytes.
pub const MAX_SOURCE_BYTES: u64 = 4 << 20;

/// One parsed source document.
#[derive(Clone, Debug)]
pub struct Source {
    /// The file.
    pub file: PathBuf,
    /// Its (only) document as JSON.
    pub value: Value,
    spans: Spans,
}

impl Source {
    /// Parses `text`, the contents of `file`: exactly one YAML document, a mapping.
    pub fn parse(file: &Path, text: &str) -> Result<Self, ImportError> {
        let fail = |location: Location, pointer: &str, message: String| ImportError {
            file: file.to_path_buf(),
            notes: vec![Note::new(file, location, pointer, message)],
        };
        let documents = parse_documents(text).map_err(|err| {
            fail(
                marker_location(err.marker()),
                "",
                format!("malformed YAML: {}", err.info()),
            )
        })?;
        let mut documents = documents.into_iter();
        let Some(first) = documents.next() else {
            return Err(fail(Location::START, "", "the file is empty".into()));
        };
        if documents.next().is_some() {
            return Err(fail(
                Location::START,
                "",
                "the file holds several YAML documents; one is expected".into(),
            ));
        }
        let (value, spans) = first
            .result
            .map_err(|bad| fail(bad.location, &bad.pointer, bad.message))?;
        if !value.is_object() {
            return Err(fail(
                Location::START,
                "",
                "the document is not a mapping of keys".into(),
            ));
        }
        Ok(Self {
            file: file.to_path_buf(),
            value,
            spans,
        })
    }

    /// A note at the key of the field at `pointer` (the nearest written ancestor when the
    /// field is not written).
    pub fn note(&self, pointer: &str, message: impl Into<String>) -> Note {
        Note::new(&self.file, self.spans.key(pointer), pointer, message)
    }

    /// A note at the value at `pointer`.
    pub fn value_note(&self, pointer: &str, message: impl Into<String>) -> Note {
        Note::new(&self.file, self.spans.value(pointer), pointer, message)
    }
}

/// The JSON pointer of a path of keys.
pub fn pointer(parts: &[&str]) -> String {
    let mut out = String::new();
    for part in parts {
        out.push('/');
        out.push_str(&escape_segment(part));
    }
    out
}

/// Reads a source file, at most [`MAX_SOURCE_BYTES`], as UTF-8 text.
pub fn read(file: &Path) -> Result<String, ImportError> {
    let fail = |message: String| ImportError {
        file: file.to_path_buf(),
        notes: vec![Note::new(file, Location::START, "", message)],
    };
    let meta = std::fs::metadata(file).map_err(|err| {
        fail(format!(
            "cannot read: {}",
            crate::manifest::load::describe_io(&err)
        ))
    })?;
    if meta.len() > MAX_SOURCE_BYTES {
        return Err(fail(format!("larger than {} MiB", MAX_SOURCE_BYTES >> 20)));
    }
    let bytes = std::fs::read(file).map_err(|err| {
        fail(format!(
            "cannot read: {}",
            crate::manifest::load::describe_io(&err)
        ))
    })?;
    String::from_utf8(bytes).map_err(|_| fail("not UTF-8 text".into()))
}
