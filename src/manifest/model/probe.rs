//! `readiness:` and `health_check:` — probes and their timing.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Command, is_default, is_one, one};
use crate::manifest::units::Duration;

/// A probe: the one check it performs and its timing.
///
/// Written as a mapping with exactly one check key (`http`, `tcp`, `exec` or `log_line`)
/// beside the timing fields; [`ProbeFields`] is that written form, and loading reports a
/// mapping with no check or several at the offending key before it becomes a `Probe`.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    /// What is checked.
    pub check: Check,
    /// Time between checks.
    pub interval: Duration,
    /// Time a single check may take.
    pub timeout: Duration,
    /// Grace period after spawn during which failures do not count.
    pub start_period: Duration,
    /// Consecutive failures that make the probe fail.
    pub failure_threshold: u32,
    /// Consecutive successes that make the probe pass.
    pub success_threshold: u32,
}

/// The single check a probe performs.
#[derive(Clone, Debug, PartialEq)]
pub enum Check {
    /// HTTP GET.
    Http(HttpCheck),
    /// TCP connect.
    Tcp(TcpCheck),
    /// Command exit code.
    Exec(ExecCheck),
    /// Readiness only: a regular expression a line of output must match.
    LogLine(String),
    /// Readiness only: the child sends `READY=1` on `NOTIFY_SOCKET` (systemd's sd_notify).
    Notify,
    /// Readiness only: the child writes a newline to this file descriptor (s6's convention).
    NotificationFd(u32),
    /// Liveness only: the child sends `WATCHDOG=1` on `NOTIFY_SOCKET` at least this often
    /// (systemd's `WatchdogSec`).
    Watchdog(Duration),
}

impl Check {
    /// The manifest key of this check.
    pub fn key(&self) -> &'static str {
        match self {
            Self::Http(_) => "http",
            Self::Tcp(_) => "tcp",
            Self::Exec(_) => "exec",
            Self::LogLine(_) => "log_line",
            Self::Notify => "notify",
            Self::NotificationFd(_) => "notification_fd",
            Self::Watchdog(_) => "watchdog",
        }
    }
}

/// The keys that name a check; a probe has exactly one of them.
pub const CHECK_KEYS: [&str; 7] = [
    "http",
    "tcp",
    "exec",
    "log_line",
    "notify",
    "notification_fd",
    "watchdog",
];

/// A probe as written: every check optional, so that the schema (and an editor) offers
/// them all. [`Probe`] converts from it when exactly one check is present.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    rename = "Probe",
    description = "A probe: one check (`http`, `tcp`, `exec`, `log_line`, `notify`, `notification_fd` or `watchdog`) and its timing."
)]
pub struct ProbeFields {
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
    /// Readiness only: `true` — the child sends `READY=1` to the datagram socket named by `NOTIFY_SOCKET` (systemd's sd_notify protocol; `STATUS=` text shows in status).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notify: bool,
    /// Readiness only: the child writes a newline to this file descriptor (3 or more) when ready (s6's convention).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 3, max = 1023))]
    pub notification_fd: Option<u32>,
    /// Health check only: the child sends `WATCHDOG=1` to `NOTIFY_SOCKET` at least this often once ready; a period without one is a liveness failure (systemd's `WatchdogSec`). `WATCHDOG_USEC` tells the child the period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watchdog: Option<Duration>,
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

impl TryFrom<ProbeFields> for Probe {
    type Error = String;

    fn try_from(fields: ProbeFields) -> Result<Self, String> {
        let checks: Vec<Check> = [
            fields.http.map(Check::Http),
            fields.tcp.map(Check::Tcp),
            fields.exec.map(Check::Exec),
            fields.log_line.map(Check::LogLine),
            fields.notify.then_some(Check::Notify),
            fields.notification_fd.map(Check::NotificationFd),
            fields.watchdog.map(Check::Watchdog),
        ]
        .into_iter()
        .flatten()
        .collect();
        let count = checks.len();
        let Some(check) = checks.into_iter().next().filter(|_| count == 1) else {
            return Err(format!(
                "a probe performs exactly one of {}; this one declares {count}",
                CHECK_KEYS.join(", ")
            ));
        };
        Ok(Self {
            check,
            interval: fields.interval,
            timeout: fields.timeout,
            start_period: fields.start_period,
            failure_threshold: fields.failure_threshold,
            success_threshold: fields.success_threshold,
        })
    }
}

impl From<Probe> for ProbeFields {
    fn from(probe: Probe) -> Self {
        let mut fields = Self {
            http: None,
            tcp: None,
            exec: None,
            log_line: None,
            notify: false,
            notification_fd: None,
            watchdog: None,
            interval: probe.interval,
            timeout: probe.timeout,
            start_period: probe.start_period,
            failure_threshold: probe.failure_threshold,
            success_threshold: probe.success_threshold,
        };
        match probe.check {
            Check::Http(http) => fields.http = Some(http),
            Check::Tcp(tcp) => fields.tcp = Some(tcp),
            Check::Exec(exec) => fields.exec = Some(exec),
            Check::LogLine(pattern) => fields.log_line = Some(pattern),
            Check::Notify => fields.notify = true,
            Check::NotificationFd(fd) => fields.notification_fd = Some(fd),
            Check::Watchdog(period) => fields.watchdog = Some(period),
        }
        fields
    }
}

impl Serialize for Probe {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ProbeFields::from(self.clone()).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Probe {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = ProbeFields::deserialize(deserializer)?;
        Probe::try_from(fields).map_err(de::Error::custom)
    }
}

impl JsonSchema for Probe {
    fn schema_name() -> Cow<'static, str> {
        ProbeFields::schema_name()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        ProbeFields::json_schema(generator)
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

/// Where an HTTP check connects and what it asks for, from its URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpTarget {
    /// Host to connect to and to name in the `Host` header (an IPv6 address without brackets).
    pub host: String,
    /// Port (80 when the URL names none).
    pub port: u16,
    /// Path and query (`/` when the URL names none).
    pub path: String,
}

impl HttpCheck {
    /// The URL parsed by `http::Uri`: plain `http://`, a host (IPv6 in brackets), an optional
    /// port, no user info. `Err` says what is wrong.
    pub fn target(&self) -> Result<HttpTarget, String> {
        let uri: http::Uri = self
            .url
            .parse()
            .map_err(|err: http::uri::InvalidUri| format!("`{}` is not a URL: {err}", self.url))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!(
                "`{}` is not a plain http:// URL (https is not supported)",
                self.url
            ));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("`{}` names no host", self.url))?;
        if authority.as_str().contains('@') {
            return Err(format!(
                "`{}` carries user info, which probes do not send",
                self.url
            ));
        }
        let host = authority.host();
        let port = match &authority.as_str()[host.len()..] {
            "" => 80,
            written => authority
                .port_u16()
                .filter(|port| *port > 0)
                .ok_or_else(|| {
                    format!(
                        "`{}` has port `{}`, not a number from 1 to 65535",
                        self.url,
                        written.trim_start_matches(':')
                    )
                })?,
        };
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err(format!("`{}` names no host", self.url));
        }
        Ok(HttpTarget {
            host: host.to_owned(),
            port,
            path: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Result<HttpTarget, String> {
        HttpCheck {
            url: url.to_owned(),
            status: 200,
        }
        .target()
    }

    #[test]
    fn urls_parse_with_ports_and_ipv6() {
        let t = target("http://127.0.0.1:8080/healthz").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("127.0.0.1", 8080, "/healthz")
        );
        let t = target("http://localhost").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("localhost", 80, "/")
        );
        let t = target("http://[::1]:9/x?y").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("::1", 9, "/x?y")
        );
        let t = target("http://[::1]/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((t.host.as_str(), t.port), ("::1", 80));
        assert!(target("https://x/").is_err());
        assert!(target("http://h:notaport/").is_err());
        assert!(target("http://u:p@h/").is_err());
        assert!(target("http://h:70000/").is_err());
    }
}
