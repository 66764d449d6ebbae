//! The YAML → JSON builder: pointers to values and keys, YAML 1.2 scalars, duplicate keys, aliases, and what it
//! refuses, located.

use super::*;

fn documents(text: &str) -> Vec<Result<(Value, Spans), Unsupported>> {
    parse_documents(text)
        .unwrap_or_default()
        .into_iter()
        .map(|doc| doc.result)
        .collect()
}

fn parse(text: &str) -> (Value, Spans) {
    documents(text)
        .into_iter()
        .next()
        .and_then(Result::ok)
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
    let docs = documents("a: .inf\n");
    let location = docs
        .first()
        .and_then(|d| d.as_ref().err())
        .map(|e| e.location);
    assert_eq!(
        location,
        Some(Location {
            line: 1,
            column: 4,
            length: 4
        })
    );
    assert!(matches!(documents("? [a]\n: b\n").first(), Some(Err(_))));
    assert!(matches!(documents("a: !custom b\n").first(), Some(Err(_))));
}

#[test]
fn plain_words_resolve_as_saphyr_resolves_them() {
    let words = [
        "name", "svc-1", "a", "n", "T", "null", "Null", "NULL", "nULL", "true", "True", "TRUE",
        "tRUE", "false", "False", "FALSE", "fAlse", "yes", "No", "on", "inf", "Infinity", "nan",
        "NaN", "e5", "E5", "x1e5", "inf1", "0x1F", "0o17", "1e3", ".5", "-1", "+1", "~", "",
        ".inf", "-.inf", ".NaN", "1_000", "é", "Ω1",
    ];
    for word in words {
        assert_eq!(
            resolve_scalar(word.into(), ScalarStyle::Plain, None),
            Scalar::parse_from_cow_and_metadata(word.into(), ScalarStyle::Plain, None),
            "{word:?}"
        );
    }
}

#[test]
fn large_mappings_keep_every_key_and_reject_duplicates() {
    let text: String = (0..100).map(|i| format!("k{i}: {i}\n")).collect();
    let (value, spans) = parse(&text);
    assert_eq!(value.as_object().map(Map::len), Some(100));
    assert_eq!(value["k99"], 99);
    assert_eq!(spans.value("/k99").line, 100);
    let duplicate = documents(&format!("{text}k50: again\nk0: again\n"));
    assert_eq!(
        duplicate
            .first()
            .and_then(|d| d.as_ref().err())
            .map(|e| (e.location.line, e.pointer.as_str())),
        Some((101, "/k50"))
    );
}

#[test]
fn duplicate_keys_and_documents() {
    let docs = documents("a: 1\n---\nb: 1\nb: 2\n");
    assert_eq!(docs.len(), 2);
    let duplicate = docs[1].as_ref().err();
    assert_eq!(
        duplicate.map(|e| (e.code, e.location.line, e.pointer.as_str())),
        Some((Code::Syntax, 4, "/b"))
    );
}

#[test]
fn aliases_expand_at_the_alias() {
    let (value, spans) = parse("a: &x [1, 2]\nb: *x\n");
    assert_eq!(value["b"], serde_json::json!([1, 2]));
    assert_eq!(
        spans.value("/b/0").line,
        2,
        "alias copies are located at the alias"
    );
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n";
    assert!(matches!(documents(bomb).first(), Some(Err(_))));
}
