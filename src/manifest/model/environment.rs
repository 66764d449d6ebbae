//! `environment:` and `secrets:` — what a child's environment is made of.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{is_true, yes};

/// The environment of a child: an ordered list of variables.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Environment(pub Vec<EnvVar>);

impl Environment {
    /// No variables declared.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One environment variable.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    /// Variable name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Literal value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Name of a secret declared under `secrets`; its value becomes the variable's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<String>,
}

impl Serialize for Environment {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Environment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvironmentVisitor;
        impl<'de> Visitor<'de> for EnvironmentVisitor {
            type Value = Environment;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of {name, value | secret_ref} entries or a map {KEY: value}")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Environment, A::Error> {
                let mut vars = Vec::new();
                while let Some(var) = seq.next_element::<EnvVar>()? {
                    vars.push(var);
                }
                Ok(Environment(vars))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Environment, A::Error> {
                let mut vars = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, String>()? {
                    vars.push(EnvVar {
                        name,
                        value: Some(value),
                        secret_ref: None,
                    });
                }
                Ok(Environment(vars))
            }
        }
        deserializer.deserialize_any(EnvironmentVisitor)
    }
}

impl JsonSchema for Environment {
    fn schema_name() -> Cow<'static, str> {
        "Environment".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let var = generator.subschema_for::<EnvVar>();
        json_schema!({
            "type": ["array", "object"],
            "items": var,
            "additionalProperties": {"type": "string"},
            "description": "Environment variables: a list of `{name, value}` / `{name, secret_ref}` entries, or a map `{KEY: value}` of literal values."
        })
    }
}

/// A secret: a value read from a file or from herder's environment, never shown anywhere.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    /// Name used by `secret_ref` in `environment`.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Read the value from this file (relative to the manifest's folder). Trailing newline is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Read the value from this variable of herder's own environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// A missing required secret is an error; a missing optional one leaves the variable unset.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub required: bool,
}
