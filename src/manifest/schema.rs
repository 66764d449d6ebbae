//! The JSON Schema of a manifest: generated from the Rust types (draft-07, the dialect
//! editors understand), compiled once into a validator, and its errors translated into
//! located [`Diagnostic`]s that read like a person wrote them.

use std::sync::LazyLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{JsonType, ValidationError, Validator};
use schemars::generate::SchemaSettings;
use schemars::transform::{RecursiveTransform, Transform};
use serde_json::Value;

use super::diagnostic::{Code, Diagnostic};
use super::model::{Manifest, NAME_PATTERN, TARGET_FIELDS};
use super::spans::{Spans, escape_segment};
use super::suggest::did_you_mean;
use super::units::{DURATION_PATTERN, SIZE_PATTERN};

/// The manifest schema as JSON, generated from [`Manifest`].
pub fn manifest_schema() -> Value {
    let settings = SchemaSettings::draft07().with(|settings| {
        // Run before draft-07's own transforms, so that `$ref` siblings left behind by the
        // removal of `null` are still wrapped for draft-07.
        settings
            .transforms
            .insert(0, Box::new(RecursiveTransform(NotNullable)));
    });
    let mut schema = settings.into_generator().into_root_schema_for::<Manifest>();
    schema.insert(
        "$comment".to_owned(),
        "Generated from herder's Rust types by `herder schema`; do not edit by hand.".into(),
    );
    schema.to_value()
}

/// The schema as checked in at `schemas/herder.schema.json`: pretty JSON with a final newline.
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&manifest_schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// Makes `Option<T>` fields describe `T` alone: an absent field is the way to say "none",
/// and `anyOf [T, null]` would turn every error inside `T` into a vague `anyOf` error.
#[derive(Clone, Copy, Debug)]
struct NotNullable;

impl Transform for NotNullable {
    fn transform(&mut self, schema: &mut schemars::Schema) {
        let Some(object) = schema.as_object_mut() else {
            return;
        };
        if let Some(Value::Array(types)) = object.get_mut("type") {
            types.retain(|t| t != "null");
            if let [single] = types.as_slice() {
                let single = single.clone();
                object.insert("type".to_owned(), single);
            }
        }
        let is_null = |v: &Value| v.get("type").is_some_and(|t| t == "null");
        if let Some(Value::Array(branches)) = object.get("anyOf")
            && branches.len() == 2
            && branches.iter().any(is_null)
        {
            let kept = branches.iter().find(|b| !is_null(b)).cloned();
            object.remove("anyOf");
            if let Some(Value::Object(kept)) = kept {
                for (key, value) in kept {
                    object.entry(key).or_insert(value);
                }
            }
        }
    }
}

/// The schema, generated once.
static SCHEMA: LazyLock<Value> = LazyLock::new(manifest_schema);

/// The schema compiled once; `Err` only if the generated schema were itself invalid,
/// which a unit test rules out.
static VALIDATOR: LazyLock<Result<Validator, String>> = LazyLock::new(|| {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .build(&SCHEMA)
        .map_err(|err| err.to_string())
});

/// Validates one document against the schema: one diagnostic per problem, located through
/// `spans`, values under `environment` and `secrets` never echoed.
pub fn check_schema(
    value: &Value,
    spans: &Spans,
    file: &std::path::Path,
    document: usize,
) -> Vec<Diagnostic> {
    let validator = match &*VALIDATOR {
        Ok(validator) => validator,
        Err(message) => {
            return vec![Diagnostic::error(
                Code::Schema,
                file,
                document,
                spans.value(""),
                "",
                format!("internal error: the manifest schema does not compile: {message}"),
            )];
        }
    };
    if validator.is_valid(value) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for error in validator.iter_errors(value) {
        translate(&error, spans, file, document, &mut out);
    }
    out
}

/// Whether values at `pointer` may be secret and must not be shown.
pub fn is_sensitive(pointer: &str) -> bool {
    ["/environment", "/secrets"].iter().any(|prefix| {
        pointer
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

fn translate(
    error: &ValidationError<'_>,
    spans: &Spans,
    file: &std::path::Path,
    document: usize,
    out: &mut Vec<Diagnostic>,
) {
    let pointer = error.instance_path().as_str();
    let instance = error.instance();
    let sensitive = is_sensitive(pointer);
    let field = field_name(pointer);
    let at_value = |message: String| {
        Diagnostic::error(
            Code::Schema,
            file,
            document,
            spans.value(pointer),
            pointer,
            message,
        )
    };
    let diagnostic = match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let allowed = allowed_properties(error);
            for key in unexpected {
                let key_pointer = format!("{pointer}/{}", escape_segment(key));
                let mut diagnostic = Diagnostic::error(
                    Code::Schema,
                    file,
                    document,
                    spans.key(&key_pointer),
                    key_pointer,
                    format!("unknown field {}", quoted(key)),
                );
                if let Some(best) = did_you_mean(key, allowed.iter().map(String::as_str)) {
                    diagnostic = diagnostic.with_hint(format!("did you mean {}?", quoted(best)));
                } else if !allowed.is_empty() {
                    diagnostic =
                        diagnostic.with_hint(format!("allowed fields: {}", allowed.join(", ")));
                }
                out.push(diagnostic);
            }
            return;
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            let branches = || context.iter().flatten();
            // Enums with documented values are `oneOf` single-value branches: say which
            // values are allowed.
            let mut options: Vec<&str> = Vec::new();
            let all_values = branches().all(|e| match e.kind() {
                ValidationErrorKind::Constant { expected_value } => {
                    options.extend(expected_value.as_str());
                    true
                }
                ValidationErrorKind::Enum { options: values } => {
                    options.extend(
                        values
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str),
                    );
                    true
                }
                _ => false,
            });
            if all_values && !options.is_empty() {
                out.push(unknown_value(
                    instance, &options, sensitive, field, at_value,
                ));
                return;
            }
            // Otherwise report the branch whose type matches the value (the object form of
            // `restart` for a mapping, the policy name for a string); if none does, say
            // which types fit.
            match context
                .iter()
                .find(|branch| !branch.iter().any(|e| mismatches_type(e, pointer)))
            {
                Some(branch) => {
                    for error in branch {
                        translate(error, spans, file, document, out);
                    }
                    return;
                }
                None => {
                    let mut expected: Vec<JsonType> = Vec::new();
                    for error in context.iter().flatten() {
                        collect_types(error, &mut expected);
                    }
                    at_value(format!(
                        "{field} must be {}, found {}",
                        alternatives(&expected),
                        value_kind(instance)
                    ))
                }
            }
        }
        ValidationErrorKind::Type { kind } => {
            let expected = type_list(kind);
            let diagnostic = at_value(format!(
                "{field} must be {}, found {}",
                alternatives(&expected),
                value_kind(instance)
            ));
            if instance.is_null() {
                diagnostic.with_hint("an empty value is null: give it a value or remove the line")
            } else if expected == [JsonType::Boolean]
                && matches!(
                    instance.as_str(),
                    Some("yes" | "no" | "on" | "off" | "y" | "n" | "True" | "False")
                )
            {
                diagnostic.with_hint("YAML 1.2 booleans are `true` and `false`")
            } else if expected.contains(&JsonType::String)
                && matches!(&**instance, Value::Number(_) | Value::Bool(_))
            {
                if sensitive {
                    diagnostic.with_hint("quote the value to make it a string")
                } else {
                    diagnostic.with_hint(format!("quote the value: \"{instance}\""))
                }
            } else {
                diagnostic
            }
        }
        ValidationErrorKind::Enum { options } => {
            let options: Vec<&str> = options
                .as_array()
                .map(|values| values.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            unknown_value(instance, &options, sensitive, field, at_value)
        }
        ValidationErrorKind::Pattern { pattern } => pattern_diagnostic(
            pattern,
            field,
            if sensitive { None } else { instance.as_str() },
            at_value,
        ),
        // The only `false` schemas are the fields a `kind: target` cannot have.
        ValidationErrorKind::FalseSchema => Diagnostic::error(
            Code::Schema,
            file,
            document,
            spans.key(pointer),
            pointer,
            format!("a target has no process: {} is not allowed on `kind: target`", quoted(field)),
        )
        .with_hint(format!(
            "a target takes only {}; give the process a manifest of its own and list it under `dependencies`",
            TARGET_FIELDS.join(", ")
        )),
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            at_value(format!("missing required field {}", quoted(name)))
                .with_hint(format!("add `{name}:` to this mapping"))
        }
        ValidationErrorKind::Minimum { limit }
        | ValidationErrorKind::ExclusiveMinimum { limit } => at_value(format!(
            "{field} must be at least {limit}, found {instance}"
        )),
        ValidationErrorKind::Maximum { limit }
        | ValidationErrorKind::ExclusiveMaximum { limit } => {
            at_value(format!("{field} must be at most {limit}, found {instance}"))
        }
        ValidationErrorKind::MinLength { limit: 1 }
        | ValidationErrorKind::MinItems { limit: 1 } => {
            at_value(format!("{field} must not be empty"))
        }
        ValidationErrorKind::MinLength { limit } => {
            at_value(format!("{field} must have at least {limit} characters"))
        }
        ValidationErrorKind::MaxLength { limit } => {
            at_value(format!("{field} must have at most {limit} characters"))
        }
        ValidationErrorKind::MinItems { limit } => {
            at_value(format!("{field} must have at least {limit} entries"))
        }
        ValidationErrorKind::MaxItems { limit } => {
            at_value(format!("{field} must have at most {limit} entries"))
        }
        _ => {
            let text = if sensitive {
                error.masked().to_string()
            } else {
                error.to_string()
            };
            at_value(lowercase_first(&text))
        }
    };
    out.push(diagnostic);
}

fn unknown_value(
    instance: &Value,
    options: &[&str],
    sensitive: bool,
    field: &str,
    at_value: impl Fn(String) -> Diagnostic,
) -> Diagnostic {
    let shown = if sensitive {
        "value".to_owned()
    } else {
        format!("value {instance}")
    };
    let diagnostic = at_value(format!("unknown {shown} for {field}"));
    let listed = options
        .iter()
        .map(|o| quoted(o))
        .collect::<Vec<_>>()
        .join(", ");
    match instance
        .as_str()
        .and_then(|s| did_you_mean(s, options.iter().copied()))
    {
        Some(best) if !sensitive => diagnostic.with_hint(format!(
            "did you mean {}? expected one of {listed}",
            quoted(best)
        )),
        _ => diagnostic.with_hint(format!("expected one of {listed}")),
    }
}

fn pattern_diagnostic(
    pattern: &str,
    field: &str,
    value: Option<&str>,
    at_value: impl Fn(String) -> Diagnostic,
) -> Diagnostic {
    let shown = value.map(|v| format!(" {}", quoted(v))).unwrap_or_default();
    if pattern == NAME_PATTERN {
        at_value(format!("invalid {field}{shown}")).with_hint(
            "use lowercase letters, digits and `-`, starting and ending with a letter or digit, at most 63 characters",
        )
    } else if pattern == DURATION_PATTERN {
        at_value(format!("invalid duration{shown} for {field}"))
            .with_hint("write a number with a unit, like `250ms`, `10s` or `1m30s` (units ns, us, ms, s, m, h, d)")
    } else if pattern == SIZE_PATTERN {
        at_value(format!("invalid size{shown} for {field}"))
            .with_hint("write a byte count or a number with Ki, Mi, Gi or Ti, like `256Mi`")
    } else if field == "url" {
        at_value(format!("invalid URL{shown}"))
            .with_hint("write a plain HTTP URL, like `http://127.0.0.1:8080/healthz`")
    } else {
        at_value(format!(
            "{field}{shown} does not match the pattern `{pattern}`"
        ))
    }
}

/// The property names the schema allows where an `additionalProperties: false` failed.
fn allowed_properties(error: &ValidationError<'_>) -> Vec<String> {
    let path = error.schema_path().as_str();
    let parent = path.strip_suffix("/additionalProperties").unwrap_or(path);
    SCHEMA
        .pointer(parent)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|props| props.keys().cloned().collect())
        .unwrap_or_default()
}

/// Whether `error` says the value at `pointer` has the wrong type, directly or in every
/// branch of a nested `anyOf`/`oneOf`.
fn mismatches_type(error: &ValidationError<'_>, pointer: &str) -> bool {
    if error.instance_path().as_str() != pointer {
        return false;
    }
    match error.kind() {
        ValidationErrorKind::Type { .. } => true,
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            context
                .iter()
                .all(|branch| branch.iter().any(|e| mismatches_type(e, pointer)))
        }
        _ => false,
    }
}

/// The types the errors of a failed `anyOf`/`oneOf` would have accepted.
fn collect_types(error: &ValidationError<'_>, expected: &mut Vec<JsonType>) {
    match error.kind() {
        ValidationErrorKind::Type { kind } => {
            for ty in type_list(kind) {
                if !expected.contains(&ty) {
                    expected.push(ty);
                }
            }
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            for nested in context.iter().flatten() {
                collect_types(nested, expected);
            }
        }
        _ => {}
    }
}

fn type_list(kind: &TypeKind) -> Vec<JsonType> {
    match kind {
        TypeKind::Single(ty) => vec![*ty],
        TypeKind::Multiple(set) => set.iter().collect(),
    }
}

fn type_name(ty: JsonType) -> &'static str {
    match ty {
        JsonType::Null => "null",
        JsonType::Boolean => "a boolean",
        JsonType::Integer => "an integer",
        JsonType::Number => "a number",
        JsonType::String => "a string",
        JsonType::Array => "a list",
        JsonType::Object => "a mapping",
    }
}

fn alternatives(types: &[JsonType]) -> String {
    let names: Vec<&str> = types.iter().map(|ty| type_name(*ty)).collect();
    match names.as_slice() {
        [] => "something else".to_owned(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The last named segment of a pointer (`/readiness/http/url` → `url`, `/command/1` →
/// `command`), or `manifest` for the root.
fn field_name(pointer: &str) -> &str {
    pointer
        .rsplit('/')
        .find(|segment| !segment.is_empty() && !segment.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or("manifest")
}

fn quoted(text: &str) -> String {
    format!("\"{}\"", text.escape_debug())
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_compiles_and_is_draft_07() {
        assert!(VALIDATOR.is_ok(), "{:?}", VALIDATOR.as_ref().err());
        let schema = manifest_schema();
        assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
        assert!(schema.get("$defs").is_none());
    }

    #[test]
    fn optional_fields_are_not_nullable() {
        let text = schema_text();
        assert!(!text.contains("\"null\""), "a schema still allows null");
        let schema = manifest_schema();
        assert_eq!(schema["properties"]["description"]["type"], "string");
    }

    #[test]
    fn sensitive_pointers() {
        assert!(is_sensitive("/environment/0/value"));
        assert!(is_sensitive("/secrets"));
        assert!(!is_sensitive("/environments"));
        assert!(!is_sensitive("/name"));
    }

    #[test]
    fn field_names() {
        assert_eq!(field_name("/readiness/http/url"), "url");
        assert_eq!(field_name("/command/1"), "command");
        assert_eq!(field_name(""), "manifest");
    }
}
