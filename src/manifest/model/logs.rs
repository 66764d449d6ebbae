//! `logs:` — rotation of a child's log file.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::manifest::units::ByteSize;

/// Rotation of a child's log file.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Logs {
    /// Size at which the log file is rotated.
    pub max_size: ByteSize,
    /// Number of rotated files kept besides the current one.
    #[schemars(range(max = 100))]
    pub keep: u32,
}

impl Default for Logs {
    fn default() -> Self {
        Self {
            max_size: ByteSize(10 << 20),
            keep: 3,
        }
    }
}
