//! `command:` — the program to run, as an argument vector or a shell line.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The program to run: an argument vector, or a shell command line.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// Executed directly: the first element is the program.
    Exec(Vec<String>),
    /// Run by `/bin/sh -c`.
    Shell(String),
}

impl Command {
    /// The argument vector herder executes (`/bin/sh -c <line>` for the shell form).
    pub fn argv(&self) -> Vec<String> {
        match self {
            Self::Exec(argv) => argv.clone(),
            Self::Shell(line) => vec!["/bin/sh".into(), "-c".into(), line.clone()],
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exec(argv) => write!(f, "{argv:?}"),
            Self::Shell(line) => write!(f, "{line:?}"),
        }
    }
}

impl Serialize for Command {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Exec(argv) => argv.serialize(serializer),
            Self::Shell(line) => line.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CommandVisitor;
        impl<'de> Visitor<'de> for CommandVisitor {
            type Value = Command;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of arguments or a shell command string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Command, E> {
                if v.is_empty() {
                    return Err(E::custom("the command must not be empty"));
                }
                Ok(Command::Shell(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Command, A::Error> {
                let mut argv = Vec::new();
                while let Some(arg) = seq.next_element::<String>()? {
                    argv.push(arg);
                }
                if argv.first().is_none_or(String::is_empty) {
                    return Err(de::Error::custom("the command needs a program to run"));
                }
                Ok(Command::Exec(argv))
            }
        }
        deserializer.deserialize_any(CommandVisitor)
    }
}

impl JsonSchema for Command {
    fn schema_name() -> Cow<'static, str> {
        "Command".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // `items`/`minItems` constrain only arrays and `minLength` only strings, so one
        // schema covers both forms and errors stay precise.
        json_schema!({
            "type": ["array", "string"],
            "items": {"type": "string"},
            "minItems": 1,
            "minLength": 1,
            "description": "What to run: a list is executed directly, a string is run by `/bin/sh -c`.",
            "examples": [["./bin/api", "--port", "8080"], "exec ./bin/api --port 8080"]
        })
    }
}
