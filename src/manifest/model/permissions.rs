//! `command_permissions:` — what the control API may do to a child.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Signal;

/// What the control API may do to a child.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CommandPermissions {
    /// Allow `herder restart`.
    pub restart: bool,
    /// Allow `herder stop`, `pause` and `quarantine`.
    pub stop: bool,
    /// Signals `herder signal` may send.
    pub signals: Vec<Signal>,
}

impl Default for CommandPermissions {
    fn default() -> Self {
        Self {
            restart: true,
            stop: true,
            signals: vec![Signal::Sighup, Signal::Sigusr1, Signal::Sigusr2],
        }
    }
}
