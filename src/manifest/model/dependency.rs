//! `dependencies:` — the children that must reach a condition first.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::is_default;

/// A dependency on another child.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DependencySpec {
    /// Name of the child depended on (for replicated children, the base name waits for every replica).
    pub name: String,
    /// What the dependency must reach before this child starts.
    #[serde(default, skip_serializing_if = "is_default")]
    pub condition: Condition,
    /// Restart this child whenever the dependency is replaced or restarted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart: bool,
}

/// A dependency, written as a bare name (condition `ready`) or as an object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Dependency(pub DependencySpec);

impl Serialize for Dependency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let spec = &self.0;
        if spec.condition == Condition::default() && !spec.restart {
            spec.name.serialize(serializer)
        } else {
            spec.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Dependency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DependencyVisitor;
        impl<'de> Visitor<'de> for DependencyVisitor {
            type Value = Dependency;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a child name or {name, condition, restart}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dependency, E> {
                Ok(Dependency(DependencySpec {
                    name: v.to_owned(),
                    condition: Condition::default(),
                    restart: false,
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Dependency, A::Error> {
                DependencySpec::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(Dependency)
            }
        }
        deserializer.deserialize_any(DependencyVisitor)
    }
}

impl JsonSchema for Dependency {
    fn schema_name() -> Cow<'static, str> {
        "Dependency".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let object = generator.subschema_for::<DependencySpec>();
        json_schema!({
            "description": "A child name (waits for `ready`), or `{name, condition, restart}`.",
            "anyOf": [{"type": "string"}, object]
        })
    }
}

/// The condition a dependency must reach.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Condition {
    /// The dependency's process has been spawned.
    Started,
    /// The dependency passed its readiness probe (or started, without one).
    #[default]
    Ready,
    /// The dependency (a oneshot) exited with code 0.
    Completed,
}
