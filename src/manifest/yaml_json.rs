//! YAML → JSON: saphyr's YAML 1.2 parser emits events that carry their source spans (keys
//! included), and the builder below turns them straight into a `serde_json::Value` for
//! schema validation and typed deserialization, recording each pointer's span in a
//! [`SpanMap`] when asked to. Building JSON from the events, without an intermediate YAML
//! tree, keeps loading fast.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use saphyr::{Marker, Scalar, ScalarStyle, ScanError, Tag};
use saphyr_parser::{Event, Parser, Span};
use serde_json::{Map, Number, Value};

use super::diagnostic::{Code, Location};
use super::spans::{NodeSpan, SpanMap, Spans, escape_segment, location};
use super::yaml_input::CompactInput;

/// Deepest nesting a manifest may have; real manifests stay under 10.
const MAX_DEPTH: usize = 64;

/// Why a YAML document has no JSON form (or repeats a key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported {
    /// [`Code::Syntax`] for a duplicate key, [`Code::Unsupported`] otherwise.
    pub code: Code,
    /// Where the offending node is.
    pub location: Location,
    /// The pointer of the offending node.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

/// Most nodes that anchor aliases may produce in one document ("billion laughs" guard).
const MAX_ALIAS_NODES: usize = 10_000;

/// One `---` separated document of a file, converted to JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct YamlDocument {
    /// Index of the document in the file, from 0.
    pub index: usize,
    /// The document as JSON with its span map, or why it has none.
    pub result: Result<(Value, Spans), Unsupported>,
}

/// Parses every document of a YAML 1.2 text into JSON with spans. A syntax error anywhere
/// in the text fails the whole text, as YAML parsers do.
pub fn parse_documents(text: &str) -> Result<Vec<YamlDocument>, ScanError> {
    let mut built = build(text, false)?;
    // A problem is reported at its pointer, which only a recording pass knows.
    if built.iter().any(Result::is_err) {
        built = build(text, true)?;
    }
    let source: Arc<str> = Arc::from(text);
    Ok(built
        .into_iter()
        .enumerate()
        .map(|(index, result)| YamlDocument {
            index,
            result: result.map(|(value, map)| {
                // A recording pass has the map already.
                let map = (!map.nodes.is_empty()).then_some(map);
                (value, Spans::new(Arc::clone(&source), index, map))
            }),
        })
        .collect())
}

/// One document built from events: its JSON and span map, or why it has no JSON form.
type Built = Result<(Value, SpanMap), Unsupported>;

/// Every document of `text`, with its span map when `record` is set (an empty one
/// otherwise).
pub(super) fn build(text: &str, record: bool) -> Result<Vec<Built>, ScanError> {
    let parser = Parser::new(CompactInput::new(text));
    let mut documents = Vec::new();
    let mut builder: Option<Builder> = None;
    for next in parser {
        let (event, span) = next?;
        match event {
            Event::DocumentStart(_) => builder = Some(Builder::new(record)),
            Event::DocumentEnd => {
                if let Some(done) = builder.take() {
                    documents.push(done.finish());
                }
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
            event => {
                if let Some(builder) = builder.as_mut() {
                    builder.event(event, span);
                }
            }
        }
    }
    Ok(documents)
}

/// An open collection.
enum Frame {
    Sequence {
        items: Vec<Value>,
        start: Marker,
        anchor: usize,
        pointer_len: usize,
        span_index: usize,
    },
    Mapping {
        object: Object,
        key: Option<(String, Location)>,
        start: Marker,
        anchor: usize,
        pointer_len: usize,
        span_index: usize,
    },
}

/// The entries of a mapping being built. Most mappings have a handful of keys, for which
/// a list searched in place is cheaper than inserting into a `BTreeMap` one key at a time;
/// a large one moves to a map so that the duplicate check stays logarithmic.
enum Object {
    Few(Vec<(String, Value)>),
    Many(Map<String, Value>),
}

/// Keys an [`Object::Few`] holds before it becomes an [`Object::Many`].
const FEW_KEYS: usize = 32;

impl Object {
    fn contains(&self, key: &str) -> bool {
        match self {
            Self::Few(entries) => entries.iter().any(|(name, _)| name == key),
            Self::Many(map) => map.contains_key(key),
        }
    }

    /// Adds an entry whose key is not there yet (duplicates are rejected before their value).
    fn insert(&mut self, key: String, value: Value) {
        match self {
            Self::Few(entries) if entries.len() < FEW_KEYS => entries.push((key, value)),
            Self::Few(entries) => {
                let mut map: Map<String, Value> = std::mem::take(entries).into_iter().collect();
                map.insert(key, value);
                *self = Self::Many(map);
            }
            Self::Many(map) => {
                map.insert(key, value);
            }
        }
    }

    fn into_value(self) -> Value {
        Value::Object(match self {
            Self::Few(entries) => entries.into_iter().collect(),
            Self::Many(map) => map,
        })
    }
}

/// Builds one document's JSON, and its span map when recording, from parser events.
struct Builder {
    stack: Vec<Frame>,
    /// Whether to track the pointer of each node and record its span.
    record: bool,
    pointer: String,
    spans: SpanMap,
    root: Option<Value>,
    anchors: HashMap<usize, (Value, usize)>,
    alias_nodes: usize,
    error: Option<Unsupported>,
}

impl Builder {
    fn new(record: bool) -> Self {
        Self {
            // Grown on demand: a larger first allocation makes glibc consolidate its
            // free lists on every document.
            stack: Vec::new(),
            record,
            pointer: String::new(),
            spans: SpanMap::default(),
            root: None,
            anchors: HashMap::new(),
            alias_nodes: 0,
            error: None,
        }
    }

    fn finish(self) -> Result<(Value, SpanMap), Unsupported> {
        match self.error {
            Some(error) => Err(error),
            None => Ok((self.root.unwrap_or(Value::Null), self.spans)),
        }
    }

    fn fail(&mut self, code: Code, location: Location, message: String, hint: Option<&str>) {
        if self.error.is_none() {
            self.error = Some(Unsupported {
                code,
                location,
                pointer: self.pointer.clone(),
                message,
                hint: hint.map(str::to_owned),
            });
        }
    }

    fn event(&mut self, event: Event<'_>, span: Span) {
        // After the first problem the rest of the document is skipped.
        if self.error.is_some() {
            return;
        }
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let here = location(span);
                if let Some(tag) = tag.as_deref().filter(|tag| !tag.is_yaml_core_schema()) {
                    return self.unsupported_tag(here, tag);
                }
                if self.expecting_key() {
                    return self.key(text, style, tag.as_ref(), here);
                }
                match resolve_scalar(text, style, tag.as_ref())
                    .ok_or_else(|| {
                        (
                            "this value does not match its tag".to_owned(),
                            "check the `!!` tag of this value",
                        )
                    })
                    .and_then(|scalar| {
                        scalar_to_json(scalar).map_err(|m| {
                            (
                                m,
                                "JSON has no infinity or NaN; write the number out or quote it",
                            )
                        })
                    }) {
                    Ok(value) => {
                        let base = self.enter(here);
                        self.complete(value, anchor, base);
                    }
                    Err((message, hint)) => {
                        self.enter(here);
                        self.fail(Code::Unsupported, here, message, Some(hint));
                    }
                }
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if self.expecting_key() => {
                self.fail(
                    Code::Unsupported,
                    location(span),
                    "mapping keys must be strings".to_owned(),
                    Some("write the key as a plain word, like `name:`"),
                );
            }
            Event::SequenceStart(anchor, tag) => {
                if let Some(tag) = tag.as_deref().filter(|tag| !tag.is_yaml_core_schema()) {
                    return self.unsupported_tag(location(span), tag);
                }
                let span_index = self.spans.nodes.len();
                let pointer_len = self.enter(location(span));
                self.check_depth(span);
                self.stack.push(Frame::Sequence {
                    items: Vec::new(),
                    start: span.start,
                    anchor,
                    pointer_len,
                    span_index,
                });
            }
            Event::MappingStart(anchor, tag) => {
                if let Some(tag) = tag.as_deref().filter(|tag| !tag.is_yaml_core_schema()) {
                    return self.unsupported_tag(location(span), tag);
                }
                let span_index = self.spans.nodes.len();
                let pointer_len = self.enter(location(span));
                self.check_depth(span);
                self.stack.push(Frame::Mapping {
                    object: Object::Few(Vec::with_capacity(8)),
                    key: None,
                    start: span.start,
                    anchor,
                    pointer_len,
                    span_index,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, start, anchor, pointer_len, span_index) = match self.stack.pop() {
                    Some(Frame::Sequence {
                        items,
                        start,
                        anchor,
                        pointer_len,
                        span_index,
                    }) => (Value::Array(items), start, anchor, pointer_len, span_index),
                    Some(Frame::Mapping {
                        object,
                        start,
                        anchor,
                        pointer_len,
                        span_index,
                        ..
                    }) => (object.into_value(), start, anchor, pointer_len, span_index),
                    None => return,
                };
                if let Some((_, node)) = self.spans.nodes.get_mut(span_index) {
                    node.value = location(Span::new(start, span.end));
                }
                self.complete(value, anchor, pointer_len);
            }
            Event::Alias(id) => {
                let here = location(span);
                if self.expecting_key() {
                    return self.fail(
                        Code::Unsupported,
                        here,
                        "mapping keys must be strings".to_owned(),
                        Some("write the key as a plain word, like `name:`"),
                    );
                }
                let base = self.enter(here);
                let Some((value, nodes)) = self.anchors.get(&id).cloned() else {
                    return self.fail(
                        Code::Unsupported,
                        here,
                        "alias to an unknown anchor".to_owned(),
                        None,
                    );
                };
                self.alias_nodes += nodes;
                if self.alias_nodes > MAX_ALIAS_NODES {
                    return self.fail(
                        Code::Unsupported,
                        here,
                        format!("aliases expand to more than {MAX_ALIAS_NODES} nodes"),
                        Some("a manifest needs few anchors; expand them by hand"),
                    );
                }
                self.complete(value, 0, base);
            }
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd
            | Event::Nothing => {}
        }
    }

    fn unsupported_tag(&mut self, here: Location, tag: &Tag) {
        if !self.expecting_key() {
            self.enter(here);
        }
        self.fail(
            Code::Unsupported,
            here,
            format!("YAML tag `{tag}` is not supported"),
            Some("remove the tag; manifests use plain YAML values"),
        );
    }

    fn check_depth(&mut self, span: Span) {
        if self.stack.len() >= MAX_DEPTH {
            self.fail(
                Code::Unsupported,
                location(span),
                format!("nesting deeper than {MAX_DEPTH} levels"),
                None,
            );
        }
    }

    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Mapping { key: None, .. }))
    }

    /// Records a mapping key, rejecting duplicates and keys that are not scalars JSON can name.
    fn key(
        &mut self,
        text: Cow<'_, str>,
        style: ScalarStyle,
        tag: Option<&Cow<'_, Tag>>,
        here: Location,
    ) {
        let name = match resolve_scalar(text, style, tag) {
            Some(Scalar::String(s)) => s.into_owned(),
            Some(Scalar::Integer(i)) => i.to_string(),
            Some(Scalar::Boolean(b)) => b.to_string(),
            _ => {
                return self.fail(
                    Code::Unsupported,
                    here,
                    "mapping keys must be strings".to_owned(),
                    Some("write the key as a plain word, like `name:`"),
                );
            }
        };
        let duplicate = matches!(self.stack.last(), Some(Frame::Mapping { object, .. }) if object.contains(&name));
        if duplicate {
            let length = u32::try_from(name.chars().count()).unwrap_or(1);
            let base = self.pointer.len();
            self.pointer.push('/');
            self.pointer.push_str(&escape_segment(&name));
            self.fail(
                Code::Syntax,
                Location { length, ..here },
                format!("duplicate key \"{}\" in mapping", name.escape_debug()),
                Some("each key may appear once in a mapping; remove or merge the repeated one"),
            );
            self.pointer.truncate(base);
            return;
        }
        if let Some(Frame::Mapping { key, .. }) = self.stack.last_mut() {
            *key = Some((name, here));
        }
    }

    /// When recording, extends the pointer for a value that starts here and records its
    /// span; returns the pointer's previous length.
    fn enter(&mut self, here: Location) -> usize {
        let base = self.pointer.len();
        if !self.record {
            return base;
        }
        let key = match self.stack.last() {
            Some(Frame::Sequence { items, .. }) => {
                self.pointer.push('/');
                // Written in place: `to_string` would allocate for every item.
                let _ = write!(self.pointer, "{}", items.len());
                None
            }
            Some(Frame::Mapping {
                key: Some((name, key)),
                ..
            }) => {
                self.pointer.push('/');
                self.pointer.push_str(&escape_segment(name));
                Some(*key)
            }
            _ => None,
        };
        self.spans
            .insert(&self.pointer, NodeSpan { value: here, key });
        base
    }

    /// Puts a finished value into its parent (or makes it the document) and restores the pointer.
    fn complete(&mut self, value: Value, anchor: usize, pointer_len: usize) {
        if anchor != 0 {
            let nodes = count_nodes(&value);
            self.anchors.insert(anchor, (value.clone(), nodes));
        }
        self.pointer.truncate(pointer_len);
        match self.stack.last_mut() {
            Some(Frame::Sequence { items, .. }) => items.push(value),
            Some(Frame::Mapping { object, key, .. }) => {
                if let Some((name, _)) = key.take() {
                    object.insert(name, value);
                }
            }
            None => self.root = Some(value),
        }
    }
}

fn count_nodes(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(object) => object.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Resolves a scalar by the YAML 1.2 core schema, as
/// [`Scalar::parse_from_cow_and_metadata`] does. Most scalars of a manifest are plain words
/// (keys, names, enum values): one that starts with a letter is a string unless it is one
/// of the null and boolean spellings (a number, `.inf` or `.nan` never starts with a
/// letter), which spares the number parsing that saphyr tries first.
fn resolve_scalar<'a>(
    text: Cow<'a, str>,
    style: ScalarStyle,
    tag: Option<&Cow<'a, Tag>>,
) -> Option<Scalar<'a>> {
    let plain_word = style == ScalarStyle::Plain
        && tag.is_none()
        && text.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        && !matches!(
            &*text,
            "null" | "Null" | "NULL" | "true" | "True" | "TRUE" | "false" | "False" | "FALSE"
        );
    if plain_word {
        Some(Scalar::String(text))
    } else {
        Scalar::parse_from_cow_and_metadata(text, style, tag)
    }
}

fn scalar_to_json(scalar: Scalar<'_>) -> Result<Value, String> {
    Ok(match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(b),
        Scalar::Integer(i) => Value::Number(i.into()),
        Scalar::FloatingPoint(f) => Number::from_f64(f.into_inner())
            .map(Value::Number)
            .ok_or_else(|| format!("{} has no JSON form", f.into_inner()))?,
        Scalar::String(s) => Value::String(s.into_owned()),
    })
}

#[cfg(test)]
mod tests;
