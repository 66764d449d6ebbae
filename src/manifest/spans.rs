//! Where each node of a document is in its file: a map from JSON pointer to source
//! location.
//!
//! Where each pointer came from is only needed when something is reported, so a document
//! keeps its file's text instead of a span map: [`Spans`] builds the document again with
//! [`super::yaml_json`], recording every pointer's location, the first time a diagnostic
//! asks for one. Any later error — schema, serde or semantic, in this file or across the
//! set — lands on the right `line:column`, and the thousands of documents that have none
//! never pay for a map.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use saphyr::Marker;
use saphyr_parser::Span;
use serde_json::Value;

use super::diagnostic::Location;
use super::yaml_json::build;

/// Where one JSON pointer's value (and, for a mapping entry, its key) is in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct NodeSpan {
    pub(super) value: Location,
    pub(super) key: Option<Location>,
}

/// Where the nodes of one document are in its file: JSON pointer → source location, built
/// from the file's text on the first lookup.
#[derive(Clone, Default)]
pub struct Spans {
    /// The whole file, shared by its documents.
    source: Arc<str>,
    /// Which `---` separated document of `source`, from 0.
    index: usize,
    map: OnceLock<SpanMap>,
}

/// Shows where the document is, never the file's text (which may hold values meant to stay
/// out of logs).
impl std::fmt::Debug for Spans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spans")
            .field("document", &self.index)
            .field("source_bytes", &self.source.len())
            .field("mapped", &self.map.get().is_some())
            .finish()
    }
}

impl PartialEq for Spans {
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index && self.source == other.source
    }
}

impl Eq for Spans {}

impl Spans {
    /// The spans of document `index` of `source`, with its map if it was built already.
    pub(super) fn new(source: Arc<str>, index: usize, map: Option<SpanMap>) -> Self {
        let spans = Self {
            source,
            index,
            map: OnceLock::new(),
        };
        if let Some(map) = map {
            let _ = spans.map.set(map);
        }
        spans
    }

    /// The document built once more from its file's text, with its span map if `record`.
    fn rebuild(&self, record: bool) -> Option<(Value, SpanMap)> {
        build(&self.source, record)
            .ok()?
            .into_iter()
            .nth(self.index)?
            .ok()
    }

    fn map(&self) -> &SpanMap {
        self.map
            .get_or_init(|| self.rebuild(true).map(|(_, map)| map).unwrap_or_default())
    }

    /// Where the value at `pointer` starts; for a pointer that does not exist (a missing
    /// field), the nearest existing ancestor.
    pub fn value(&self, pointer: &str) -> Location {
        self.map().value(pointer)
    }

    /// Where the key of the mapping entry at `pointer` is (`restart_polcy` in
    /// `restart_polcy: always`); the value's location for sequence items and the root.
    pub fn key(&self, pointer: &str) -> Location {
        self.map().key(pointer)
    }

    /// Whether `pointer` names a node of the document.
    pub fn contains(&self, pointer: &str) -> bool {
        self.map().get(pointer).is_some()
    }

    /// The document as JSON once more, for a caller that gave its first copy away and then
    /// needs to look at it while reporting a problem.
    pub fn document(&self) -> Value {
        self.rebuild(false).map_or(Value::Null, |(value, _)| value)
    }
}

/// JSON pointer → source location, for one document.
///
/// Lookups happen only when something is reported, so the pointers are kept in one
/// buffer and searched linearly: recording them is cheap.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct SpanMap {
    /// Every pointer, concatenated.
    text: String,
    /// `(end of the pointer in text, span)`, in document order; each pointer starts where
    /// the previous one ends.
    pub(super) nodes: Vec<(usize, NodeSpan)>,
}

impl SpanMap {
    pub(super) fn insert(&mut self, pointer: &str, node: NodeSpan) {
        self.text.push_str(pointer);
        self.nodes.push((self.text.len(), node));
    }

    fn get(&self, pointer: &str) -> Option<&NodeSpan> {
        let mut start = 0;
        for (end, node) in &self.nodes {
            if &self.text[start..*end] == pointer {
                return Some(node);
            }
            start = *end;
        }
        None
    }

    fn value(&self, pointer: &str) -> Location {
        let mut current = pointer;
        loop {
            if let Some(node) = self.get(current) {
                return node.value;
            }
            match current.rfind('/') {
                Some(cut) => current = &current[..cut],
                None => return Location::START,
            }
        }
    }

    fn key(&self, pointer: &str) -> Location {
        match self.get(pointer) {
            Some(NodeSpan { key: Some(key), .. }) => *key,
            _ => self.value(pointer),
        }
    }
}

/// Escapes one JSON pointer segment (RFC 6901).
pub fn escape_segment(segment: &str) -> Cow<'_, str> {
    if segment.bytes().any(|b| b == b'~' || b == b'/') {
        segment.replace('~', "~0").replace('/', "~1").into()
    } else {
        segment.into()
    }
}

/// The location of a parser span: its start, and its length when it stays on one line.
pub(super) fn location(span: Span) -> Location {
    let (start, end) = (span.start, span.end);
    let length = if end.line() == start.line() && end.col() > start.col() {
        end.col() - start.col()
    } else {
        1
    };
    Location {
        line: clamp(start.line().max(1)),
        column: clamp(start.col() + 1),
        length: clamp(length),
    }
}

/// The location of a saphyr marker (which has a 0-based column).
pub fn marker_location(marker: &Marker) -> Location {
    Location {
        line: clamp(marker.line().max(1)),
        column: clamp(marker.col() + 1),
        length: 1,
    }
}

fn clamp(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
