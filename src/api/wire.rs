//! The JSON bodies of the control API, shared by the server and the client.
//!
//! The status views ([`StatusReport`](crate::reconcile::StatusReport),
//! [`ChildDetail`](crate::reconcile::ChildDetail)), events ([`Event`]) and diagnostics
//! ([`Diagnostic`]) are the reconciler's and the manifest loader's own serializable types;
//! this module holds only what exists for the wire. Fields are only ever added.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::events::Event;
use crate::manifest::Diagnostic;
use crate::plan::model::Summary;
use crate::plan::{Plan, Step};
use crate::reconcile::ChildStatus;
use crate::supervise::logs::{LogLine, Stream};

/// The answer to `GET /v1/children`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ChildrenResponse {
    /// Every child with its status, by name.
    pub children: Vec<ChildStatus>,
}

/// The body of a command (`POST /v1/children/{name}/{verb}`); an empty body is `{}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// Why: recorded in the event log with the peer's uid and pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The signal to send, `SIGHUP`, `HUP` or `hup`; required by `signal` and only allowed there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
}

/// The answer to an accepted command.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommandResponse {
    /// The child.
    pub child: String,
    /// The verb carried out.
    pub command: String,
    /// With `?wait=true`: the child's status once the outcome was reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ChildStatus>,
}

/// The body of a command on many children (`POST /v1/commands/{verb}`); an empty body is
/// `{}`, every child.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The children, in the order to apply the command; absent for every child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<String>>,
    /// A label selector (`team=core,tier!=edge`) instead of `children`: the children it matches, in name order; none matching is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Why: recorded in the event log with the peer's uid and pid, once per child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The signal to send, `SIGHUP`, `HUP` or `hup`; required by `signal` and only allowed there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
}

/// The answer to a command on many children: every child's verdict.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    /// The verb.
    pub command: String,
    /// One entry per child, in the order the command was applied.
    pub results: Vec<BatchResult>,
}

/// One child's verdict in a [`BatchResponse`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResult {
    /// The child.
    pub child: String,
    /// Whether the command was accepted.
    pub ok: bool,
    /// Why it was refused: the error a command on this child alone would have answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// The body of `POST /v1/shutdown`; an empty body is `{}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownRequest {
    /// Why: recorded in the event log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The body of `POST /v1/plan`: plan another manifest directory against what runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    /// The directory, absolute (it is read by the server, on the same machine).
    pub dir: PathBuf,
}

/// The answer to `GET /v1/plan?format=human` and `POST /v1/plan?format=human`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanText {
    /// The plan as `herder plan` prints it.
    pub text: String,
    /// Problems found while loading the directory (its bad files are left out of the plan).
    pub diagnostics: Vec<Diagnostic>,
}

/// The JSON form of a plan: `herder plan --format json`.
#[derive(Serialize)]
pub struct PlanDocument<'a> {
    /// The operations, in execution order.
    pub steps: &'a [Step],
    /// How many steps of each kind.
    pub summary: Summary,
    /// Problems found while loading the directory.
    pub diagnostics: &'a [Diagnostic],
}

impl<'a> PlanDocument<'a> {
    /// The document of `plan`, with the diagnostics of loading its directory.
    pub fn new(plan: &'a Plan, diagnostics: &'a [Diagnostic]) -> Self {
        Self {
            steps: &plan.steps,
            summary: plan.summary(),
            diagnostics,
        }
    }
}

/// An acknowledgement without more to say (`reload`, `shutdown`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// Always `true`.
    pub accepted: bool,
}

/// One captured line of a child's output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Monotonic per child across incarnations (the SSE `id`).
    pub seq: u64,
    /// The incarnation that printed it.
    pub incarnation: u64,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// When it was read, RFC 3339 with milliseconds.
    pub time: String,
    /// The text, without the newline.
    pub text: String,
}

impl From<&LogLine> for LogEntry {
    fn from(line: &LogLine) -> Self {
        let stream = match line.stream {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        };
        Self {
            seq: line.seq,
            incarnation: line.incarnation,
            stream: stream.to_owned(),
            time: humantime::format_rfc3339_millis(line.at).to_string(),
            text: line.text.to_string(),
        }
    }
}

/// The answer to `GET /v1/children/{name}/logs`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsResponse {
    /// The child.
    pub child: String,
    /// The last lines in memory, oldest first.
    pub lines: Vec<LogEntry>,
}

/// The answer to `GET /v1/events`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventsResponse {
    /// The events after `since`, oldest first (at most `limit`, the newest ones).
    pub events: Vec<Arc<Event>>,
    /// The newest sequence number: resume from here with `?since=` or `Last-Event-ID`.
    pub last_seq: u64,
}

/// The answer to `GET /v1/errors`: the manifest errors in force.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorsResponse {
    /// Each with file, line, column and message; the files' last good versions stay applied.
    pub errors: Vec<Diagnostic>,
}

/// The data of an SSE `resync` event: entries that a stream could not deliver because
/// they had already left the in-memory ring (events stay in `events.jsonl`, log lines in
/// the child's log file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resync {
    /// The first sequence number missed.
    pub from: u64,
    /// The last sequence number missed.
    pub to: u64,
}

/// Every error response: `{"error": {...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong, for people and programs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable identifier: `unknown-child`, `forbidden`, `not-running`, ...
    pub code: String,
    /// A lowercase sentence fragment.
    pub message: String,
    /// What to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Likely meant names (unknown child).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<String>,
}
