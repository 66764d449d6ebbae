//! What `herder top` reads from the control API, decoded leniently: every field has a
//! default, and fields a newer or older server lacks (`usage` from the cgroup work) are
//! simply absent, so the TUI never fails on a field it does not know.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// `GET /v1/status`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Status {
    /// The desired-set generation in force.
    pub generation: u64,
    /// Every child.
    pub children: Vec<Row>,
    /// Manifest errors in force.
    pub errors: Vec<ManifestError>,
    /// Reloads applied.
    pub reloads: u64,
    /// Whether herder is shutting down.
    pub shutting_down: bool,
}

/// One child of the status report.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Row {
    /// Child name.
    pub name: String,
    /// State, kebab-case (`ready`, `backoff`).
    pub state: String,
    /// Why it is in that state.
    pub reason: Option<String>,
    /// The live process.
    pub pid: Option<i32>,
    /// Restarts of this incarnation.
    pub restarts: u32,
    /// Seconds since the process started, when it was fetched.
    pub uptime_secs: Option<f64>,
    /// Readiness.
    pub ready: bool,
    /// Liveness, when a health check exists.
    pub healthy: Option<bool>,
    /// How the last process ended.
    pub last_exit: Option<String>,
    /// Limits and their enforcement.
    pub limits: Vec<Limit>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Resource usage, where the server reports it.
    pub usage: Option<Usage>,
}

/// A limit and how it is enforced.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Limit {
    /// `memory`, `cpu`, `open_files`, `processes`.
    pub name: String,
    /// As written in the manifest.
    pub value: String,
    /// `cgroup`, `rlimit`, `watchdog`, `not-enforced`, `pending`.
    pub enforcement: String,
}

/// Resource usage of a child, as the server reports it (every field may be unknown).
pub use crate::supervise::cgroup::Usage;

/// A manifest error in force.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ManifestError {
    /// The file.
    pub file: Option<String>,
    /// 1-based line.
    pub line: Option<u64>,
    /// 1-based column.
    pub column: Option<u64>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl ManifestError {
    /// `file:line:col`, as far as known.
    pub fn location(&self) -> String {
        let mut text = self.file.clone().unwrap_or_else(|| "?".to_owned());
        if let Some(line) = self.line {
            text.push_str(&format!(":{line}"));
            if let Some(column) = self.column {
                text.push_str(&format!(":{column}"));
            }
        }
        text
    }
}

/// One captured output line (`/v1/children/{name}/logs/stream`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct LogLine {
    /// The child's line number.
    pub seq: u64,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// The text, as the child wrote it (may hold ANSI sequences).
    pub text: String,
}

/// One event, with a one-line summary of its fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventLine {
    /// Sequence number.
    pub seq: u64,
    /// RFC 3339 time.
    pub time: String,
    /// The child, if any.
    pub child: Option<String>,
    /// The event `type`.
    pub kind: String,
    /// The other fields, `key=value`.
    pub detail: String,
}

impl EventLine {
    /// An event from its JSON object.
    pub fn from_json(value: &Value) -> Self {
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        let detail = value
            .as_object()
            .map(|object| {
                object
                    .iter()
                    .filter(|(key, _)| !matches!(key.as_str(), "seq" | "time" | "child" | "type"))
                    .map(|(key, value)| match value {
                        Value::String(text) => format!("{key}={text}"),
                        other => format!("{key}={other}"),
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        Self {
            seq: value.get("seq").and_then(Value::as_u64).unwrap_or(0),
            time: text("time").unwrap_or_default(),
            child: text("child"),
            kind: text("type").unwrap_or_default(),
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_leniently_with_or_without_usage() {
        let status: Status = serde_json::from_str(
            r#"{"generation": 2, "children": [
                {"name": "web", "state": "ready", "pid": 7, "restarts": 1, "ready": true,
                 "usage": {"memory_bytes": 1024, "cpu_percent": null}, "future_field": 1},
                {"name": "db", "state": "waiting"}],
               "errors": [{"file": "a.yaml", "line": 2, "column": 3, "message": "bad"}]}"#,
        )
        .unwrap();
        assert_eq!(status.children[0].usage.unwrap().memory_bytes, Some(1024));
        assert!(status.children[1].usage.is_none());
        assert_eq!(status.errors[0].location(), "a.yaml:2:3");
        let event = EventLine::from_json(&serde_json::json!(
            {"seq": 5, "time": "t", "child": "web", "type": "exited", "signal": 15}
        ));
        assert_eq!(event.detail, "signal=15");
    }
}
