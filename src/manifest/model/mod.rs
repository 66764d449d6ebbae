//! The manifest model: one YAML document describes one child (or N replicas of it).
//!
//! These types are the single source of truth for the manifest format. The JSON Schema in
//! `schemas/herder.schema.json` is generated from them (every doc comment on a field becomes
//! its `description`, which editors show on hover), so the doc comments here address the
//! person writing YAML.
//!
//! One file per field family; this one holds the manifest itself. Fields that accept a
//! short and a long form (`command`, `environment`, `dependencies`, `restart`) have
//! hand-written serde visitors whose `expecting()` names both forms, and hand-written
//! schemas, so that both the schema and serde explain the accepted shapes.

mod command;
mod dependency;
mod environment;
mod limits;
mod logs;
mod permissions;
mod ports;
mod probe;
mod restart;
mod schedule;
mod signal;
mod stop;
mod target;

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use command::Command;
pub use dependency::{Condition, Dependency, DependencySpec};
pub use environment::{EnvVar, Environment, Secret};
pub use limits::ResourceLimits;
pub use logs::Logs;
pub use permissions::CommandPermissions;
pub use ports::{Port, PortSpec, Protocol};
pub use probe::{
    CHECK_KEYS, Check, ExecCheck, HttpCheck, HttpTarget, Probe, ProbeFields, TcpCheck,
};
pub use restart::{Backoff, Criticality, Restart, RestartLimit, RestartPolicy, RestartSpec};
pub use schedule::{Missed, Overlap, Schedule};
pub use signal::Signal;
pub use stop::{Stop, UpdateStrategy};
pub use target::TARGET_FIELDS;

use super::export::ExportSettings;
use super::units::Duration;

/// The pattern every child name must match (a DNS label).
pub const NAME_PATTERN: &str = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$";

/// A herder manifest: one child process (or `replicas` copies of it) that herder keeps running.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "herder manifest", transform = target::schema_rule)]
pub struct Manifest {
    /// Unique name of the child in the directory: lowercase letters, digits and `-`, at most 63 characters.
    #[schemars(regex(pattern = NAME_PATTERN), length(min = 1, max = 63))]
    pub name: String,
    /// A human-readable description, shown by `herder status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Free-form key/value labels, shown in status and usable by tooling.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `false` keeps the file but stops (retires) the child.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// `service` runs until stopped; `oneshot` runs to completion (success = exit code 0); `target` runs nothing and is ready once its dependencies meet their conditions (a group others can depend on).
    #[serde(default, skip_serializing_if = "is_default")]
    pub kind: Kind,
    /// What to run (required, except on a `kind: target`, which has none). A list is executed directly (`["./bin/api", "--port", "8080"]`); a string is run by `/bin/sh -c`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Command>,
    /// Working directory of the child. Relative paths are relative to the folder of this manifest file. Default: that folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<PathBuf>,
    /// Environment variables: a list of `{name, value}` / `{name, secret_ref}` entries, or a map `{KEY: value}`.
    #[serde(default, skip_serializing_if = "Environment::is_empty")]
    pub environment: Environment,
    /// Pass herder's own environment through to the child (default `true`); `environment` entries override it.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub inherit_environment: bool,
    /// Secrets this child may reference from `environment` with `secret_ref`. Values are never logged or shown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Secret>,
    /// Children that must reach a condition before this one starts: a name (condition `ready`) or `{name, condition, restart}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Dependency>,
    /// When to restart the child: `always`, `on-failure`, `never`, or an object with `policy`, `backoff` and `limit`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub restart: Restart,
    /// `critical`: if this child fails permanently, herder stops everything and exits non-zero.
    #[serde(default, skip_serializing_if = "is_default")]
    pub criticality: Criticality,
    /// Longest time from spawn to ready before the start counts as failed. Extended automatically to fit the readiness probe's budget.
    #[serde(
        default = "default_start_timeout",
        skip_serializing_if = "is_default_start_timeout"
    )]
    pub start_timeout: Duration,
    /// Readiness probe: gates dependents that wait for `ready`. Without it, the child is ready as soon as it has started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Probe>,
    /// Liveness probe: `failure_threshold` consecutive failures restart the child according to its restart policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<Probe>,
    /// Resource limits. Enforced through cgroup v2 when a delegated subtree is available, otherwise as described per field.
    #[serde(default, skip_serializing_if = "is_default")]
    pub resource_limits: ResourceLimits,
    /// How the child is stopped.
    #[serde(default, skip_serializing_if = "is_default")]
    pub stop: Stop,
    /// How a changed child is replaced: `stop-first` (default) or `start-first` (the new one is ready before the old one stops).
    #[serde(default, skip_serializing_if = "is_default")]
    pub update: UpdateStrategy,
    /// Number of copies. With more than 1, the children are named `<name>-0` … `<name>-(N-1)` and get `HERDER_REPLICA=i`.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    #[schemars(range(min = 1, max = 1000))]
    pub replicas: u32,
    /// What the control API may do to this child.
    #[serde(default, skip_serializing_if = "is_default")]
    pub command_permissions: CommandPermissions,
    /// User to run the child as (name or numeric id). Only applies when herder runs as root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Group to run the child as (name or numeric id). Only applies when herder runs as root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Rotation of the child's log file.
    #[serde(default, skip_serializing_if = "is_default")]
    pub logs: Logs,
    /// Oneshots only: when it runs by itself (`{cron: "*/5 * * * *"}` or `{every: 30s}`); without it a oneshot runs once per start of herder (and on `herder run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// Ports the child owns (`[8080, {port: 53, protocol: udp}]`): before each start herder checks that no other process holds them and waits, naming the holder, until they are free.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// Settings for `herder export` (the container image for Kubernetes); no effect on how herder runs the child.
    #[serde(default, skip_serializing_if = "is_default")]
    pub export: ExportSettings,
}

impl Manifest {
    /// The restart policy in force: the explicit one, else `always` for services and `never` for oneshots.
    pub fn restart_policy(&self) -> RestartPolicy {
        self.restart.policy.unwrap_or(match self.kind {
            Kind::Service => RestartPolicy::Always,
            Kind::Oneshot | Kind::Target => RestartPolicy::Never,
        })
    }

    /// Whether this is a `kind: target`: no process, ready once its dependencies are met.
    pub fn is_target(&self) -> bool {
        self.kind == Kind::Target
    }
}

pub(super) fn yes() -> bool {
    true
}
pub(super) fn is_true(value: &bool) -> bool {
    *value
}
pub(super) fn one() -> u32 {
    1
}
pub(super) fn is_one(value: &u32) -> bool {
    *value == 1
}
pub(super) fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}
fn default_start_timeout() -> Duration {
    Duration::from_secs(30)
}
fn is_default_start_timeout(value: &Duration) -> bool {
    *value == default_start_timeout()
}

/// Whether a child runs until stopped, runs to completion, or runs nothing (a target).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Long-running; restarted by policy when it exits.
    #[default]
    Service,
    /// Runs to completion; exit code 0 means `completed`.
    Oneshot,
    /// Runs nothing: ready once all its dependencies meet their conditions. A name for a
    /// group ("everything the web tier needs") that others depend on.
    Target,
}

impl Kind {
    /// Whether this is the default kind, `service` (for `skip_serializing_if`).
    pub fn is_service(&self) -> bool {
        *self == Kind::Service
    }

    /// `service`, `oneshot` or `target`, as written in a manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Service => "service",
            Kind::Oneshot => "oneshot",
            Kind::Target => "target",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Kind;

    #[test]
    fn a_kind_is_spelled_as_serde_spells_it() {
        for kind in [Kind::Service, Kind::Oneshot, Kind::Target] {
            assert_eq!(
                serde_json::to_value(kind).ok(),
                Some(serde_json::Value::from(kind.as_str()))
            );
        }
    }
}
