//! The checked-in schema is the one generated from the types, and `herder schema` prints it.

use std::process::Command;

use herder::manifest::schema_text;

const SCHEMA_FILE: &str = "schemas/herder.schema.json";

#[test]
fn checked_in_schema_is_up_to_date() {
    let on_disk = std::fs::read_to_string(SCHEMA_FILE).unwrap_or_default();
    assert!(
        on_disk == schema_text(),
        "{SCHEMA_FILE} is out of date: run `cargo run -- schema > {SCHEMA_FILE}`"
    );
}

#[test]
fn herder_schema_prints_it() {
    let output = Command::new(env!("CARGO_BIN_EXE_herder"))
        .arg("schema")
        .output()
        .unwrap_or_else(|err| panic!("cannot run herder: {err}"));
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), schema_text());
}

#[test]
fn every_field_has_a_description() {
    let schema: serde_json::Value = serde_json::from_str(&schema_text()).unwrap_or_default();
    let mut missing = Vec::new();
    let mut objects = vec![("".to_owned(), &schema)];
    if let Some(definitions) = schema["definitions"].as_object() {
        objects.extend(
            definitions
                .iter()
                .map(|(name, def)| (format!("/definitions/{name}"), def)),
        );
    }
    for (path, object) in objects {
        for (field, property) in object["properties"].as_object().into_iter().flatten() {
            if property.get("description").is_none() {
                missing.push(format!("{path}/properties/{field}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "fields without a description: {missing:?}"
    );
}

#[test]
fn durations_and_sizes_are_patterned_strings() {
    let schema: serde_json::Value = serde_json::from_str(&schema_text()).unwrap_or_default();
    let duration = &schema["definitions"]["Duration"];
    assert_eq!(duration["type"], "string");
    assert!(duration["pattern"].is_string());
    assert!(schema["definitions"]["ByteSize"]["pattern"].is_string());
}

#[test]
fn examples_carry_the_schema_modeline() {
    let dir = std::path::Path::new("examples/herder.d");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../../schemas/herder.schema.json\n"),
            "{} lacks the modeline",
            entry.path().display()
        );
        seen += 1;
    }
    assert!(seen >= 4);
}
