//! `ports:` — the ports a child owns: checked free before it starts, shown in status.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::is_default;

/// A port a child owns, written as a number (`8080`, TCP on every address) or an object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Port(pub PortSpec);

/// A declared port in full.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortSpec {
    /// The port number.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// `tcp` (default) or `udp`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub protocol: Protocol,
    /// The address it is bound to; absent for every address. Only a holder on the same address (or on every address) blocks the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The child binds with `SO_REUSEPORT`, so two incarnations can hold the port at once (what `update: start-first` needs); another holder still blocks the start.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reuse_port: bool,
}

/// A transport protocol.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// TCP (a listening socket holds the port).
    #[default]
    Tcp,
    /// UDP (a bound socket holds the port).
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        })
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Some(host) if host.contains(':') => {
                write!(f, "[{host}]:{}/{}", self.port, self.protocol)
            }
            Some(host) => write!(f, "{host}:{}/{}", self.port, self.protocol),
            None => write!(f, "{}/{}", self.port, self.protocol),
        }
    }
}

impl Serialize for Port {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let spec = &self.0;
        if spec.protocol == Protocol::Tcp && spec.host.is_none() && !spec.reuse_port {
            spec.port.serialize(serializer)
        } else {
            spec.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PortVisitor;
        impl<'de> Visitor<'de> for PortVisitor {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number or {port, protocol, host, reuse_port}")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
                let port = u16::try_from(v)
                    .ok()
                    .filter(|port| *port > 0)
                    .ok_or_else(|| E::custom(format!("port {v} is out of range (1-65535)")))?;
                Ok(Port(PortSpec {
                    port,
                    protocol: Protocol::Tcp,
                    host: None,
                    reuse_port: false,
                }))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Port, E> {
                Err(E::custom(format!("port {v} is out of range (1-65535)")))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Port, A::Error> {
                PortSpec::deserialize(de::value::MapAccessDeserializer::new(map)).map(Port)
            }
        }
        deserializer.deserialize_any(PortVisitor)
    }
}

impl JsonSchema for Port {
    fn schema_name() -> Cow<'static, str> {
        "Port".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let object = generator.subschema_for::<PortSpec>();
        json_schema!({
            "description": "A port number (TCP on every address), or `{port, protocol, host, reuse_port}`.",
            "anyOf": [{"type": "integer", "minimum": 1, "maximum": 65535}, object]
        })
    }
}
