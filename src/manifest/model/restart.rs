//! `restart:` and `criticality:` — what follows when a child exits.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::is_default;
use crate::manifest::units::Duration;

/// When a child is restarted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Whenever it exits.
    Always,
    /// When it exits with a non-zero code or is killed by a signal.
    OnFailure,
    /// Never.
    Never,
}

/// The restart settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartSpec {
    /// `always`, `on-failure` or `never`. Default: `always` for services, `never` for oneshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<RestartPolicy>,
    /// Delay between restarts, growing exponentially.
    #[serde(default, skip_serializing_if = "is_default")]
    pub backoff: Backoff,
    /// Crash-loop limit: more restarts than `count` within `window` put the child in state `failed`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub limit: RestartLimit,
}

/// Restart settings, written as a policy name or as an object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Restart(pub RestartSpec);

impl std::ops::Deref for Restart {
    type Target = RestartSpec;
    fn deref(&self) -> &RestartSpec {
        &self.0
    }
}

impl Serialize for Restart {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let spec = &self.0;
        match spec.policy {
            Some(policy)
                if spec.backoff == Backoff::default() && spec.limit == RestartLimit::default() =>
            {
                policy.serialize(serializer)
            }
            _ => spec.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Restart {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RestartVisitor;
        impl<'de> Visitor<'de> for RestartVisitor {
            type Value = Restart;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`always`, `on-failure`, `never` or {policy, backoff, limit}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Restart, E> {
                let policy = RestartPolicy::deserialize(de::value::StrDeserializer::<E>::new(v))?;
                Ok(Restart(RestartSpec {
                    policy: Some(policy),
                    ..RestartSpec::default()
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Restart, A::Error> {
                RestartSpec::deserialize(de::value::MapAccessDeserializer::new(map)).map(Restart)
            }
        }
        deserializer.deserialize_any(RestartVisitor)
    }
}

impl JsonSchema for Restart {
    fn schema_name() -> Cow<'static, str> {
        "Restart".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let policy = generator.subschema_for::<RestartPolicy>();
        let object = generator.subschema_for::<RestartSpec>();
        json_schema!({
            "description": "`always`, `on-failure`, `never`, or `{policy, backoff, limit}`.",
            "anyOf": [policy, object]
        })
    }
}

/// Exponential backoff between restarts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Backoff {
    /// Delay before the first restart.
    pub initial: Duration,
    /// Upper bound of the delay.
    pub max: Duration,
    /// Factor applied to the delay after each restart.
    #[schemars(range(min = 1.0, max = 100.0))]
    pub multiplier: f64,
    /// Random spread applied to each delay, as a fraction (0.1 = ±10 %).
    #[schemars(range(min = 0.0, max = 1.0))]
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.1,
        }
    }
}

/// The crash-loop limit.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RestartLimit {
    /// Most restarts allowed within `window`.
    #[schemars(range(min = 1))]
    pub count: u32,
    /// The sliding window the restarts are counted in.
    pub window: Duration,
}

impl Default for RestartLimit {
    fn default() -> Self {
        Self {
            count: 5,
            window: Duration::from_secs(60),
        }
    }
}

/// What a child's permanent failure means for herder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Criticality {
    /// The failure is reported; everything else keeps running.
    #[default]
    Optional,
    /// The failure stops everything in order and herder exits non-zero.
    Critical,
}
