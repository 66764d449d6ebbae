//! Human-friendly units used in manifests: durations (`250ms`, `1m30s`) and byte sizes
//! (`64Ki`, `256Mi`, or a plain byte count).
//!
//! Both parse into real types at deserialization time and appear in the schema as strings
//! with a `pattern`, so an editor flags `10 seconds` before herder ever sees it. The parser
//! accepts exactly what the pattern accepts, so the schema and herder never disagree.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The pattern a duration string must match: one or more `<integer><unit>` groups.
pub const DURATION_PATTERN: &str = "^([0-9]+(ns|us|ms|s|m|h|d))+$";

/// The pattern a size string must match: an integer with an optional binary suffix.
pub const SIZE_PATTERN: &str = "^[0-9]+(Ki|Mi|Gi|Ti)?$";

/// A span of time written as `250ms`, `10s`, `1m30s` or `2h`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }

    /// A duration of `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Self(std::time::Duration::from_millis(ms))
    }

    /// The standard-library duration.
    pub const fn get(self) -> std::time::Duration {
        self.0
    }
}

/// Why a duration or size string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// The text does not match the accepted shape.
    #[error(
        "invalid duration `{0}`: expected a number with a unit, like `250ms`, `10s` or `1m30s`"
    )]
    Duration(String),
    /// The text is not a size.
    #[error(
        "invalid size `{0}`: expected a byte count or a number with Ki, Mi, Gi or Ti, like `256Mi`"
    )]
    Size(String),
    /// The value does not fit.
    #[error("`{0}` is too large")]
    Overflow(String),
}

const DURATION_UNITS: [(&str, u128); 7] = [
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
];

impl FromStr for Duration {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || UnitError::Duration(text.to_owned());
        if text.is_empty() {
            return Err(bad());
        }
        let mut total: u128 = 0;
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(bad());
            }
            let number: u128 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            let unit = &rest[..unit_len];
            let (_, nanos) = DURATION_UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .ok_or_else(bad)?;
            rest = &rest[unit_len..];
            total = number
                .checked_mul(*nanos)
                .and_then(|n| total.checked_add(n))
                .ok_or_else(|| UnitError::Overflow(text.to_owned()))?;
        }
        let secs = u64::try_from(total / 1_000_000_000)
            .map_err(|_| UnitError::Overflow(text.to_owned()))?;
        // The remainder of a division by 1e9 always fits in u32.
        let nanos = (total % 1_000_000_000) as u32;
        Ok(Self(std::time::Duration::new(secs, nanos)))
    }
}

impl fmt::Display for Duration {
    /// Canonical form: the largest units first, e.g. `1m30s`, `250ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        for (name, size) in DURATION_UNITS.iter().rev() {
            if nanos >= *size {
                write!(f, "{}{name}", nanos / size)?;
                nanos %= size;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string like `250ms`, `10s` or `1m30s`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(DurationVisitor)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "A duration: one or more <number><unit> groups, units ns, us, ms, s, m, h, d (e.g. `250ms`, `10s`, `1m30s`).",
            "examples": ["250ms", "10s", "1m30s"]
        })
    }
}

/// A number of bytes, written as a plain integer or with a binary suffix (`64Ki`, `256Mi`, `1Gi`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The number of bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

const SIZE_UNITS: [(&str, u64); 4] = [
    ("Ti", 1 << 40),
    ("Gi", 1 << 30),
    ("Mi", 1 << 20),
    ("Ki", 1 << 10),
];

impl FromStr for ByteSize {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || UnitError::Size(text.to_owned());
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = text[..digits]
            .parse()
            .map_err(|_| UnitError::Overflow(text.to_owned()))?;
        let suffix = &text[digits..];
        let factor = if suffix.is_empty() {
            1
        } else {
            SIZE_UNITS
                .iter()
                .find(|(name, _)| *name == suffix)
                .map(|(_, factor)| *factor)
                .ok_or_else(bad)?
        };
        number
            .checked_mul(factor)
            .map(Self)
            .ok_or_else(|| UnitError::Overflow(text.to_owned()))
    }
}

impl fmt::Display for ByteSize {
    /// Canonical form: the largest suffix that divides the value exactly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, factor) in SIZE_UNITS {
            if self.0 >= factor && self.0.is_multiple_of(factor) {
                return write!(f, "{}{name}", self.0 / factor);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte count or a size string like `256Mi`")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(SizeVisitor)
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> Cow<'static, str> {
        "ByteSize".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // `pattern` constrains only strings and `minimum` only numbers, so one schema
        // covers both forms without an `anyOf` (whose errors editors render poorly).
        json_schema!({
            "type": ["string", "integer"],
            "pattern": SIZE_PATTERN,
            "minimum": 0,
            "description": "A size in bytes: a plain integer, or a number with a binary suffix Ki, Mi, Gi, Ti (e.g. `256Mi`).",
            "examples": ["64Ki", "256Mi", "1Gi"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_canonically() {
        for (text, canonical) in [
            ("250ms", "250ms"),
            ("1m30s", "1m30s"),
            ("90s", "1m30s"),
            ("0s", "0s"),
            ("1h1ms", "1h1ms"),
        ] {
            let parsed: Result<Duration, _> = text.parse();
            assert_eq!(
                parsed.as_ref().map(ToString::to_string),
                Ok(canonical.to_owned())
            );
            assert_eq!(canonical.parse::<Duration>(), parsed);
        }
    }

    #[test]
    fn bad_durations_are_rejected() {
        for text in [
            "",
            "10",
            "s",
            "10 s",
            "1.5s",
            "10sec",
            "-1s",
            "99999999999999999999d",
        ] {
            assert!(text.parse::<Duration>().is_err(), "{text:?} accepted");
        }
    }

    #[test]
    fn sizes_parse_and_print_canonically() {
        assert_eq!(
            "256Mi".parse::<ByteSize>().map(ByteSize::bytes),
            Ok(256 << 20)
        );
        assert_eq!(
            "1024".parse::<ByteSize>().map(|s| s.to_string()),
            Ok("1Ki".to_owned())
        );
        assert_eq!(ByteSize(1000).to_string(), "1000");
        for text in ["", "Mi", "1MB", "1.5Gi", "99999999999Ti"] {
            assert!(text.parse::<ByteSize>().is_err(), "{text:?} accepted");
        }
    }
}
