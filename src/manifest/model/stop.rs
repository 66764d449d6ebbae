//! `stop:` and `update:` — how an incarnation ends and how a changed child is replaced.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Signal;
use crate::manifest::units::Duration;

/// How the child is stopped.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Stop {
    /// Signal sent to the child's process group first.
    pub signal: Signal,
    /// Time to wait after the signal before SIGKILL is sent to the whole process group.
    pub timeout: Duration,
}

impl Default for Stop {
    fn default() -> Self {
        Self {
            signal: Signal::Sigterm,
            timeout: Duration::from_secs(10),
        }
    }
}

/// How a changed child is replaced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateStrategy {
    /// Stop the old incarnation, then start the new one.
    #[default]
    StopFirst,
    /// Start the new incarnation and stop the old one once the new one is ready. If the new one does not become ready within `start_timeout`, it is stopped and the old one keeps serving.
    StartFirst,
}
