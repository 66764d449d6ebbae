//! JSON values written as block YAML, with keys in a chosen order, through saphyr's
//! emitter.
//!
//! `serde_json` maps are sorted by key, which reads badly (`apiVersion` first is luck,
//! `name` after `image` is not), so the caller ranks keys: the ones it lists come first in
//! its order, the rest follow sorted. Output is deterministic.
//!
//! Strings that a YAML 1.1 reader (PyYAML, Go's yaml.v2, what `kubectl` and most tools
//! use) would take for something else, and that saphyr's YAML 1.2 emitter writes plain,
//! are double-quoted: dates, `y`/`n`, numbers with `_`, octal-looking and sexagesimal
//! forms.

use std::borrow::Cow;

use saphyr::{Mapping, Scalar, ScalarStyle, Yaml, YamlEmitter};
use serde_json::Value;

/// One YAML document per value, each starting with `---`; keys ordered by `order`.
pub fn documents(values: &[Value], order: &[&str]) -> String {
    let mut out = String::new();
    for value in values {
        let yaml = to_yaml(value, order);
        let mut text = String::new();
        // Writing into a String cannot fail; a value the emitter rejects has no YAML form
        // here (JSON values always have one).
        if YamlEmitter::new(&mut text).dump(&yaml).is_ok() {
            out.push_str(&text);
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    out
}

/// One YAML document without the leading `---`, keys ordered by `order`.
pub fn document(value: &Value, order: &[&str]) -> String {
    let text = documents(std::slice::from_ref(value), order);
    text.strip_prefix("---\n").unwrap_or(&text).to_owned()
}

fn to_yaml<'a>(value: &'a Value, order: &[&str]) -> Yaml<'a> {
    match value {
        Value::Null => Yaml::Value(Scalar::Null),
        Value::Bool(b) => Yaml::Value(Scalar::Boolean(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Value(Scalar::Integer(i)),
            None => Yaml::Representation(Cow::Owned(n.to_string()), ScalarStyle::Plain, None),
        },
        Value::String(s) => string(s),
        Value::Array(items) => Yaml::Sequence(items.iter().map(|v| to_yaml(v, order)).collect()),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by_key(|key| {
                (
                    order.iter().position(|o| o == key).unwrap_or(order.len()),
                    key.as_str(),
                )
            });
            let mut mapping = Mapping::with_capacity(keys.len());
            for key in keys {
                if let Some(item) = map.get(key) {
                    mapping.insert(string(key), to_yaml(item, order));
                }
            }
            Yaml::Mapping(mapping)
        }
    }
}

fn string(text: &str) -> Yaml<'_> {
    if yaml11_ambiguous(text) {
        // A JSON string literal is a valid YAML double-quoted scalar.
        let quoted = serde_json::to_string(text).unwrap_or_default();
        let inner = quoted
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .unwrap_or_default()
            .to_owned();
        Yaml::Representation(Cow::Owned(inner), ScalarStyle::DoubleQuoted, None)
    } else {
        Yaml::Value(Scalar::String(Cow::Borrowed(text)))
    }
}

/// Plain scalars a YAML 1.1 reader resolves to a non-string that saphyr would not quote.
fn yaml11_ambiguous(text: &str) -> bool {
    const WORDS: [&str; 4] = ["y", "Y", "n", "N"];
    let first_digit = text.starts_with(|c: char| c.is_ascii_digit() || c == '+');
    WORDS.contains(&text)
        || (first_digit
            && text.chars().all(|c| {
                c.is_ascii_digit()
                    || matches!(
                        c,
                        '-' | '_' | ':' | '.' | '+' | 'e' | 'E' | 'T' | 'Z' | 'x' | 'b' | 'o'
                    )
            }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_in_the_given_order_then_sorted() {
        let value =
            json!({"spec": 1, "kind": "Job", "zeta": 2, "apiVersion": "batch/v1", "alpha": 3});
        assert_eq!(
            document(&value, &["apiVersion", "kind", "spec"]),
            "apiVersion: batch/v1\nkind: Job\nspec: 1\nalpha: 3\nzeta: 2\n"
        );
    }

    #[test]
    fn ambiguous_strings_are_quoted() {
        let value = json!([
            "2024-01-01",
            "1_000",
            "y",
            "010",
            "8080",
            "true",
            "plain text",
            "a: b",
            ""
        ]);
        let text = document(&value, &[]);
        assert_eq!(
            text,
            "- \"2024-01-01\"\n- \"1_000\"\n- \"y\"\n- \"010\"\n- \"8080\"\n- \"true\"\n- plain text\n- \"a: b\"\n- \"\"\n"
        );
    }

    #[test]
    fn nested_blocks_and_several_documents() {
        let values = [json!({"a": {"b": [{"c": 1, "d": 0.5}]}}), json!({"e": []})];
        assert_eq!(
            documents(&values, &[]),
            "---\na:\n  b:\n    - c: 1\n      d: 0.5\n---\ne: []\n"
        );
    }
}
