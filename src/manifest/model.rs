//! The manifest model: one YAML document describes one child (or N replicas of it).
//!
//! These types are the single source of truth for the manifest format. The JSON Schema in
//! `schemas/herder.schema.json` is generated from them (every doc comment on a field becomes
//! its `description`, which editors show on hover), so the doc comments here address the
//! person writing YAML.
//!
//! Fields that accept a short and a long form (`command`, `environment`, `dependencies`,
//! `restart`) have hand-written serde visitors whose `expecting()` names both forms, and
//! hand-written schemas, so that both the schema and serde explain the accepted shapes.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::export::ExportSettings;
use super::units::{ByteSize, Duration};

/// The pattern every child name must match (a DNS label).
pub const NAME_PATTERN: &str = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$";

/// A herder manifest: one child process (or `replicas` copies of it) that herder keeps running.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "herder manifest")]
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
    /// `service` runs until stopped; `oneshot` runs to completion (success = exit code 0).
    #[serde(default, skip_serializing_if = "is_default")]
    pub kind: Kind,
    /// What to run. A list is executed directly (`["./bin/api", "--port", "8080"]`); a string is run by `/bin/sh -c`.
    pub command: Command,
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
    /// Settings for `herder export` (the container image for Kubernetes); no effect on how herder runs the child.
    #[serde(default, skip_serializing_if = "is_default")]
    pub export: ExportSettings,
}

impl Manifest {
    /// The restart policy in force: the explicit one, else `always` for services and `never` for oneshots.
    pub fn restart_policy(&self) -> RestartPolicy {
        self.restart.policy.unwrap_or(match self.kind {
            Kind::Service => RestartPolicy::Always,
            Kind::Oneshot => RestartPolicy::Never,
        })
    }
}

fn yes() -> bool {
    true
}
fn is_true(value: &bool) -> bool {
    *value
}
fn one() -> u32 {
    1
}
fn is_one(value: &u32) -> bool {
    *value == 1
}
fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}
fn default_start_timeout() -> Duration {
    Duration::from_secs(30)
}
fn is_default_start_timeout(value: &Duration) -> bool {
    *value == default_start_timeout()
}

/// Whether a child runs until stopped or to completion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Long-running; restarted by policy when it exits.
    #[default]
    Service,
    /// Runs to completion; exit code 0 means `completed`.
    Oneshot,
}

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

/// The environment of a child: an ordered list of variables.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Environment(pub Vec<EnvVar>);

impl Environment {
    /// No variables declared.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One environment variable.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    /// Variable name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Literal value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Name of a secret declared under `secrets`; its value becomes the variable's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<String>,
}

impl Serialize for Environment {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Environment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvironmentVisitor;
        impl<'de> Visitor<'de> for EnvironmentVisitor {
            type Value = Environment;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of {name, value | secret_ref} entries or a map {KEY: value}")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Environment, A::Error> {
                let mut vars = Vec::new();
                while let Some(var) = seq.next_element::<EnvVar>()? {
                    vars.push(var);
                }
                Ok(Environment(vars))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Environment, A::Error> {
                let mut vars = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, String>()? {
                    vars.push(EnvVar {
                        name,
                        value: Some(value),
                        secret_ref: None,
                    });
                }
                Ok(Environment(vars))
            }
        }
        deserializer.deserialize_any(EnvironmentVisitor)
    }
}

impl JsonSchema for Environment {
    fn schema_name() -> Cow<'static, str> {
        "Environment".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let var = generator.subschema_for::<EnvVar>();
        json_schema!({
            "type": ["array", "object"],
            "items": var,
            "additionalProperties": {"type": "string"},
            "description": "Environment variables: a list of `{name, value}` / `{name, secret_ref}` entries, or a map `{KEY: value}` of literal values."
        })
    }
}

/// A secret: a value read from a file or from herder's environment, never shown anywhere.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    /// Name used by `secret_ref` in `environment`.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Read the value from this file (relative to the manifest's folder). Trailing newline is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Read the value from this variable of herder's own environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// A missing required secret is an error; a missing optional one leaves the variable unset.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub required: bool,
}

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

/// A probe: one check (`http`, `tcp`, `exec` or `log_line`) and its timing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// HTTP GET; succeeds when the response has the expected status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheck>,
    /// TCP connect; succeeds when the connection is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpCheck>,
    /// Run a command; succeeds on exit code 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecCheck>,
    /// Readiness only: a regular expression; ready once a line of the child's output matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_line: Option<String>,
    /// Time between checks.
    #[serde(
        default = "default_interval",
        skip_serializing_if = "is_default_interval"
    )]
    pub interval: Duration,
    /// Time a single check may take.
    #[serde(
        default = "default_interval",
        skip_serializing_if = "is_default_interval"
    )]
    pub timeout: Duration,
    /// Grace period after spawn during which failures do not count.
    #[serde(default, skip_serializing_if = "is_default")]
    pub start_period: Duration,
    /// Consecutive failures that make the probe fail.
    #[serde(
        default = "default_failure_threshold",
        skip_serializing_if = "is_default_failure_threshold"
    )]
    #[schemars(range(min = 1))]
    pub failure_threshold: u32,
    /// Consecutive successes that make the probe pass.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    #[schemars(range(min = 1))]
    pub success_threshold: u32,
}

/// The single check a probe performs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Check<'a> {
    /// HTTP GET.
    Http(&'a HttpCheck),
    /// TCP connect.
    Tcp(&'a TcpCheck),
    /// Command exit code.
    Exec(&'a ExecCheck),
    /// Output line regex.
    LogLine(&'a str),
}

impl Probe {
    /// The checks this probe declares; validation ensures there is exactly one.
    pub fn checks(&self) -> Vec<Check<'_>> {
        let mut checks = Vec::with_capacity(1);
        checks.extend(self.http.as_ref().map(Check::Http));
        checks.extend(self.tcp.as_ref().map(Check::Tcp));
        checks.extend(self.exec.as_ref().map(Check::Exec));
        checks.extend(self.log_line.as_deref().map(Check::LogLine));
        checks
    }
}

fn default_interval() -> Duration {
    Duration::from_secs(1)
}
fn is_default_interval(value: &Duration) -> bool {
    *value == default_interval()
}
fn default_failure_threshold() -> u32 {
    3
}
fn is_default_failure_threshold(value: &u32) -> bool {
    *value == 3
}

/// An HTTP check.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// URL to GET, `http://host:port/path` (plain HTTP only).
    #[schemars(regex(pattern = r"^http://[^/\s]+(/\S*)?$"))]
    pub url: String,
    /// Expected response status.
    #[serde(default = "default_status", skip_serializing_if = "is_default_status")]
    #[schemars(range(min = 100, max = 599))]
    pub status: u16,
}

fn default_status() -> u16 {
    200
}
fn is_default_status(value: &u16) -> bool {
    *value == 200
}

/// A TCP check.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpCheck {
    /// Host to connect to.
    #[serde(default = "default_host", skip_serializing_if = "is_default_host")]
    pub host: String,
    /// Port to connect to.
    #[schemars(range(min = 1))]
    pub port: u16,
}

fn default_host() -> String {
    "127.0.0.1".into()
}
fn is_default_host(value: &String) -> bool {
    value == "127.0.0.1"
}

/// A command check.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecCheck {
    /// The command to run, in the child's working directory and environment.
    pub command: Command,
}

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

/// A POSIX signal, by name.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "UPPERCASE")]
#[allow(missing_docs)]
pub enum Signal {
    Sighup,
    Sigint,
    Sigquit,
    Sigkill,
    Sigusr1,
    Sigusr2,
    Sigterm,
    Sigalrm,
    Sigcont,
    Sigstop,
    Sigtstp,
    Sigwinch,
    Sigpwr,
}

impl Signal {
    /// Every signal a manifest may name.
    pub const ALL: [Signal; 13] = [
        Self::Sighup,
        Self::Sigint,
        Self::Sigquit,
        Self::Sigkill,
        Self::Sigusr1,
        Self::Sigusr2,
        Self::Sigterm,
        Self::Sigalrm,
        Self::Sigcont,
        Self::Sigstop,
        Self::Sigtstp,
        Self::Sigwinch,
        Self::Sigpwr,
    ];

    /// The signal number.
    pub fn number(self) -> i32 {
        match self {
            Self::Sighup => libc::SIGHUP,
            Self::Sigint => libc::SIGINT,
            Self::Sigquit => libc::SIGQUIT,
            Self::Sigkill => libc::SIGKILL,
            Self::Sigusr1 => libc::SIGUSR1,
            Self::Sigusr2 => libc::SIGUSR2,
            Self::Sigterm => libc::SIGTERM,
            Self::Sigalrm => libc::SIGALRM,
            Self::Sigcont => libc::SIGCONT,
            Self::Sigstop => libc::SIGSTOP,
            Self::Sigtstp => libc::SIGTSTP,
            Self::Sigwinch => libc::SIGWINCH,
            Self::Sigpwr => libc::SIGPWR,
        }
    }

    /// The canonical name, e.g. `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sighup => "SIGHUP",
            Self::Sigint => "SIGINT",
            Self::Sigquit => "SIGQUIT",
            Self::Sigkill => "SIGKILL",
            Self::Sigusr1 => "SIGUSR1",
            Self::Sigusr2 => "SIGUSR2",
            Self::Sigterm => "SIGTERM",
            Self::Sigalrm => "SIGALRM",
            Self::Sigcont => "SIGCONT",
            Self::Sigstop => "SIGSTOP",
            Self::Sigtstp => "SIGTSTP",
            Self::Sigwinch => "SIGWINCH",
            Self::Sigpwr => "SIGPWR",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Signal {
    type Err = String;

    /// Accepts `SIGTERM`, `TERM` or `term`.
    fn from_str(text: &str) -> Result<Self, String> {
        let upper = text.to_ascii_uppercase();
        let full = if upper.starts_with("SIG") {
            upper
        } else {
            format!("SIG{upper}")
        };
        Self::ALL
            .into_iter()
            .find(|signal| signal.name() == full)
            .ok_or_else(|| format!("unknown signal `{text}`"))
    }
}
