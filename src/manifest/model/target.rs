//! `kind: target`: a manifest without a process. Its schema rule lives here: a target
//! takes only the fields that describe a group ([`TARGET_FIELDS`]); everything else needs
//! a process and is refused at the field, while any other kind needs a `command`.

use schemars::Schema;
use serde_json::{Map, Value, json};

/// The fields a `kind: target` may have; every other field configures a process.
pub const TARGET_FIELDS: [&str; 6] = [
    "name",
    "description",
    "labels",
    "enabled",
    "kind",
    "dependencies",
];

/// Adds to the manifest's schema: `if kind is target then no process field, else command
/// is required` (draft-07 `if`/`then`/`else`, which editors and independent validators
/// understand as herder does).
pub(super) fn schema_rule(schema: &mut Schema) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let process_fields: Map<String, Value> = object
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|properties| properties.keys())
        .filter(|field| !TARGET_FIELDS.contains(&field.as_str()))
        .map(|field| (field.clone(), Value::Bool(false)))
        .collect();
    object.insert(
        "if".to_owned(),
        json!({"properties": {"kind": {"const": "target"}}, "required": ["kind"]}),
    );
    object.insert(
        "then".to_owned(),
        json!({"properties": Value::Object(process_fields)}),
    );
    object.insert("else".to_owned(), json!({"required": ["command"]}));
}
