//! YAML → JSON with a map from JSON pointer to source location.
//!
//! saphyr parses YAML 1.2 into a tree whose every node (keys included) carries its span.
//! The walk below turns that tree into a `serde_json::Value` for schema validation and
//! typed deserialization, and records where each pointer came from, so that any later
//! error — schema, serde or semantic — lands on the right `line:column`.

use saphyr::{MarkedYaml, Marker, Scalar, YamlData};
use serde_json::{Map, Number, Value};

use super::diagnostic::Location;

/// Deepest nesting a manifest may have; real manifests stay under 10.
const MAX_DEPTH: usize = 64;

/// Where one JSON pointer's value (and, for a mapping entry, its key) is in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NodeSpan {
    value: Location,
    key: Option<Location>,
}

/// JSON pointer → source location, for one document.
///
/// Lookups happen only when something is reported, so the pointers are kept in one
/// buffer and searched linearly: recording them is cheap, which keeps loading fast.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spans {
    /// Every pointer, concatenated.
    text: String,
    /// `(end of the pointer in text, span)`, in document order; each pointer starts where
    /// the previous one ends.
    nodes: Vec<(usize, NodeSpan)>,
}

impl Spans {
    fn insert(&mut self, pointer: &str, node: NodeSpan) {
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

    /// Where the value at `pointer` starts; for a pointer that does not exist (a missing
    /// field), the nearest existing ancestor.
    pub fn value(&self, pointer: &str) -> Location {
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

    /// Where the key of the mapping entry at `pointer` is (`restart_polcy` in
    /// `restart_polcy: always`); the value's location for sequence items and the root.
    pub fn key(&self, pointer: &str) -> Location {
        match self.get(pointer) {
            Some(NodeSpan { key: Some(key), .. }) => *key,
            _ => self.value(pointer),
        }
    }

    /// Whether `pointer` names a node of the document.
    pub fn contains(&self, pointer: &str) -> bool {
        self.get(pointer).is_some()
    }
}

/// Why a YAML document has no JSON form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported {
    /// Where the offending node is.
    pub location: Location,
    /// The pointer of the offending node.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

/// Converts one YAML document into JSON, recording every node's location.
pub fn to_json(document: &MarkedYaml<'_>) -> Result<(Value, Spans), Unsupported> {
    let mut spans = Spans {
        text: String::with_capacity(1024),
        nodes: Vec::with_capacity(64),
    };
    let mut pointer = String::new();
    let value = convert(document, &mut pointer, None, &mut spans, 0)?;
    Ok((value, spans))
}

/// Escapes one JSON pointer segment (RFC 6901).
pub fn escape_segment(segment: &str) -> std::borrow::Cow<'_, str> {
    if segment.contains(['~', '/']) {
        segment.replace('~', "~0").replace('/', "~1").into()
    } else {
        segment.into()
    }
}

fn location(node: &MarkedYaml<'_>) -> Location {
    let start = node.span.start;
    let end = node.span.end;
    let length = if end.line() == start.line() && end.col() > start.col() {
        end.col() - start.col()
    } else {
        1
    };
    Location {
        line: clamp(start.line()),
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

fn convert(
    node: &MarkedYaml<'_>,
    pointer: &mut String,
    key: Option<Location>,
    spans: &mut Spans,
    depth: usize,
) -> Result<Value, Unsupported> {
    let here = location(node);
    let fail = |pointer: &str, message: String, hint: Option<&str>| Unsupported {
        location: here,
        pointer: pointer.to_owned(),
        message,
        hint: hint.map(str::to_owned),
    };
    if depth > MAX_DEPTH {
        return Err(fail(
            pointer,
            format!("nesting deeper than {MAX_DEPTH} levels"),
            None,
        ));
    }
    spans.insert(pointer, NodeSpan { value: here, key });
    let value = match &node.data {
        YamlData::Value(scalar) => scalar_to_json(scalar).map_err(|message| {
            fail(
                pointer,
                message,
                Some("JSON has no infinity or NaN; write the number out or quote it"),
            )
        })?,
        YamlData::Sequence(items) => {
            let mut array = Vec::with_capacity(items.len());
            let base = pointer.len();
            for (index, item) in items.iter().enumerate() {
                pointer.push('/');
                pointer.push_str(&index.to_string());
                array.push(convert(item, pointer, None, spans, depth + 1)?);
                pointer.truncate(base);
            }
            Value::Array(array)
        }
        YamlData::Mapping(entries) => {
            let mut object = Map::with_capacity(entries.len());
            let base = pointer.len();
            for (key_node, value_node) in entries {
                let name = key_text(key_node).ok_or_else(|| Unsupported {
                    location: location(key_node),
                    pointer: pointer.clone(),
                    message: "mapping keys must be strings".to_owned(),
                    hint: Some("write the key as a plain word, like `name:`".to_owned()),
                })?;
                pointer.push('/');
                pointer.push_str(&escape_segment(&name));
                let value = convert(
                    value_node,
                    pointer,
                    Some(location(key_node)),
                    spans,
                    depth + 1,
                )?;
                pointer.truncate(base);
                object.insert(name, value);
            }
            Value::Object(object)
        }
        YamlData::Tagged(tag, _) => {
            return Err(fail(
                pointer,
                format!("YAML tag `{tag}` is not supported"),
                Some("remove the tag; manifests use plain YAML values"),
            ));
        }
        YamlData::Alias(_) | YamlData::Representation(..) | YamlData::BadValue => {
            return Err(fail(
                pointer,
                "this value cannot be read".to_owned(),
                Some("check the tag or the anchor this value refers to"),
            ));
        }
    };
    Ok(value)
}

fn scalar_to_json(scalar: &Scalar<'_>) -> Result<Value, String> {
    Ok(match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::Number((*i).into()),
        Scalar::FloatingPoint(f) => Number::from_f64(f.into_inner())
            .map(Value::Number)
            .ok_or_else(|| format!("{} has no JSON form", f.into_inner()))?,
        Scalar::String(s) => Value::String(s.to_string()),
    })
}

/// A mapping key as text: strings as they are, numbers and booleans in their YAML form.
fn key_text(node: &MarkedYaml<'_>) -> Option<String> {
    match &node.data {
        YamlData::Value(Scalar::String(s)) => Some(s.to_string()),
        YamlData::Value(Scalar::Integer(i)) => Some(i.to_string()),
        YamlData::Value(Scalar::Boolean(b)) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use saphyr::LoadableYamlNode;

    use super::*;

    fn parse(text: &str) -> (Value, Spans) {
        let docs = MarkedYaml::load_from_str(text).unwrap_or_default();
        docs.first()
            .and_then(|doc| to_json(doc).ok())
            .unwrap_or_default()
    }

    #[test]
    fn pointers_map_to_values_and_keys() {
        let (value, spans) = parse("name: web\ncommand:\n  - ./run\n  - 10\nlabels: {a/b: x}\n");
        assert_eq!(value["command"][1], 10);
        assert_eq!(
            spans.value("/name"),
            Location {
                line: 1,
                column: 7,
                length: 3
            }
        );
        assert_eq!(spans.key("/name").column, 1);
        assert_eq!(
            (
                spans.value("/command/1").line,
                spans.value("/command/1").column
            ),
            (4, 5)
        );
        assert_eq!(spans.value("/labels/a~1b").column, 15);
        assert_eq!(
            spans.value("/missing/deep").line,
            1,
            "falls back to the root"
        );
    }

    #[test]
    fn yaml_1_2_scalars() {
        let (value, _) = parse("a: yes\nb: 0755\nc: ~\nd: 1.5\n");
        assert_eq!(
            value,
            serde_json::json!({"a": "yes", "b": 755, "c": null, "d": 1.5})
        );
    }

    #[test]
    fn unsupported_nodes_are_located() {
        let docs = MarkedYaml::load_from_str("a: .inf\n").unwrap_or_default();
        let err = docs.first().map(to_json);
        assert!(
            matches!(
                err,
                Some(Err(Unsupported {
                    location: Location {
                        line: 1,
                        column: 4,
                        ..
                    },
                    ..
                }))
            ),
            "{err:?}"
        );
        let docs = MarkedYaml::load_from_str("? [a]\n: b\n").unwrap_or_default();
        assert!(matches!(docs.first().map(to_json), Some(Err(_))));
    }
}
