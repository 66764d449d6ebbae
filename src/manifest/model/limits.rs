//! `resource_limits:` — memory, CPU, open files and processes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::manifest::units::ByteSize;

/// Resource limits.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceLimits {
    /// Memory limit: cgroup `memory.max`, else an RSS watchdog that restarts the child when exceeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteSize>,
    /// CPU limit in cores (0.5 = half a core): cgroup `cpu.max`, else reported as not enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.001, max = 1024.0))]
    pub cpu: Option<f64>,
    /// Maximum open file descriptors (`RLIMIT_NOFILE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub open_files: Option<u64>,
    /// Maximum number of processes and threads: cgroup `pids.max`, else reported as not enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub processes: Option<u64>,
}
