//! The request/response endpoints: status, one child, logs, events, commands, reload,
//! plan, manifest errors and shutdown. Each asks the reconciler through
//! [`Control::ask`](crate::reconcile::Control::ask) and turns the answer into JSON.

use std::path::PathBuf;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;

use super::error::HttpError;
use super::extract::{JsonBody, Params, Segments};
use super::server::AppState;
use super::wait::{self, WaitQuery};
use super::wire::{
    Accepted, BatchRequest, BatchResponse, BatchResult, ChildrenResponse, CommandRequest,
    CommandResponse, ErrorsResponse, EventsResponse, LogEntry, LogsResponse, PlanDocument,
    PlanRequest, PlanText, ShutdownRequest,
};
use crate::events::RING_CAPACITY;
use crate::manifest::Diagnostic;
use crate::manifest::model::Kind;
use crate::manifest::model::Signal;
use crate::manifest::selector::Selector;
use crate::plan::{self, Plan};
use crate::reconcile::{
    ChildDetail, CommandError, ControlError, Peer, Request, StatusReport, Verb, VerbName,
};
use crate::supervise::logs::book::RING_LINES;

/// The longest `reason` accepted, in bytes (it goes into every audit record).
pub const MAX_REASON_BYTES: usize = 1024;

/// Lines `GET /v1/children/{name}/logs` returns without `?n=`.
pub const DEFAULT_LOG_LINES: usize = 100;

/// Events `GET /v1/events` returns without `?limit=`.
pub const DEFAULT_EVENTS: usize = 1000;

impl AppState {
    /// The status report with every child's usage; 503 once the reconciler is gone.
    pub(super) async fn status_report(&self) -> Result<StatusReport, HttpError> {
        let mut report = self
            .control
            .ask(|reply| Request::Status { reply })
            .await
            .ok_or_else(HttpError::unavailable)?;
        // The usage reads happen here, on a blocking thread: not on the reconciler.
        tokio::task::spawn_blocking(move || {
            report.read_usage();
            report
        })
        .await
        .map_err(|_| HttpError::unavailable())
    }

    /// 404 for `name`, with suggestions from the children that exist.
    pub(super) async fn unknown_child(&self, name: &str) -> HttpError {
        let report = self.status_report().await.unwrap_or_default();
        HttpError::unknown_child(name, report.children.iter().map(|c| c.name.as_str()))
    }
}

/// `?selector=team=core` on the status.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StatusQuery {
    /// A label selector: only the children it matches.
    selector: Option<String>,
}

/// `GET /v1/status`: every child (or those `?selector=` matches), the generation, reloads
/// and the manifest errors in force.
pub(super) async fn status(
    State(state): State<AppState>,
    Params(query): Params<StatusQuery>,
) -> Result<Json<StatusReport>, HttpError> {
    let mut report = state.status_report().await?;
    if let Some(text) = &query.selector {
        let selector = parse_selector(text)?;
        report
            .children
            .retain(|child| selector.matches(&child.labels));
        if report.children.is_empty() {
            return Err(no_match(&selector));
        }
    }
    Ok(Json(report))
}

fn parse_selector(text: &str) -> Result<Selector, HttpError> {
    text.parse()
        .map_err(|message: String| HttpError::bad_request(message))
}

fn no_match(selector: &Selector) -> HttpError {
    HttpError::new(
        StatusCode::NOT_FOUND,
        "no-match",
        format!("no child matches the selector `{selector}`"),
    )
    .with_hint("`herder status` shows each child's labels")
}

/// The children whose labels match `text`, in name order; an error when none does.
async fn select(state: &AppState, text: &str) -> Result<Vec<String>, HttpError> {
    let selector = parse_selector(text)?;
    let names: Vec<String> = state
        .status_report()
        .await?
        .children
        .into_iter()
        // A target has no process for a verb to act on: a selector passes over it.
        .filter(|child| child.kind != Kind::Target && selector.matches(&child.labels))
        .map(|child| child.name)
        .collect();
    if names.is_empty() {
        return Err(no_match(&selector));
    }
    Ok(names)
}

/// `GET /v1/children`: every child with its status.
pub(super) async fn children(
    State(state): State<AppState>,
) -> Result<Json<ChildrenResponse>, HttpError> {
    let report = state.status_report().await?;
    Ok(Json(ChildrenResponse {
        children: report.children,
    }))
}

/// `GET /v1/children/{name}`: one child in detail.
pub(super) async fn child(
    State(state): State<AppState>,
    Segments(name): Segments<String>,
) -> Result<Json<ChildDetail>, HttpError> {
    let detail = state
        .control
        .ask(|reply| Request::Child {
            name: name.clone(),
            reply,
        })
        .await
        .ok_or_else(HttpError::unavailable)?;
    match detail {
        Some(detail) => Ok(Json(detail)),
        None => Err(state.unknown_child(&name).await),
    }
}

/// `?n=` of the logs endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LogsQuery {
    /// How many of the last lines.
    pub(super) n: Option<usize>,
}

/// `GET /v1/children/{name}/logs?n=N`: the last N lines in memory.
pub(super) async fn logs(
    State(state): State<AppState>,
    Segments(name): Segments<String>,
    Params(query): Params<LogsQuery>,
) -> Result<Json<LogsResponse>, HttpError> {
    let n = query.n.unwrap_or(DEFAULT_LOG_LINES).min(RING_LINES);
    let lines = match state.logs.tail(&name, n) {
        Some(lines) => lines.iter().map(LogEntry::from).collect(),
        None => {
            // No output captured yet is an empty log, if the child exists.
            let report = state.status_report().await?;
            if !report.children.iter().any(|child| child.name == name) {
                return Err(state.unknown_child(&name).await);
            }
            Vec::new()
        }
    };
    Ok(Json(LogsResponse { child: name, lines }))
}

/// `?since=&limit=` of `GET /v1/events`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventsQuery {
    since: Option<u64>,
    limit: Option<usize>,
}

/// `GET /v1/events?since=SEQ&limit=N`: the newest N events after SEQ still in memory.
pub(super) async fn events(
    State(state): State<AppState>,
    Params(query): Params<EventsQuery>,
) -> Json<EventsResponse> {
    let log = &state.control.events;
    let last_seq = log.last_seq();
    let limit = query.limit.unwrap_or(DEFAULT_EVENTS).min(RING_CAPACITY);
    let events = log.since(query.since.unwrap_or(0), limit);
    Json(EventsResponse { events, last_seq })
}

/// `POST /v1/children/{name}/{verb}`: an operator command, audited with the peer's
/// credentials and reason.
pub(super) async fn command(
    State(state): State<AppState>,
    Extension(peer): Extension<Peer>,
    Segments((name, verb)): Segments<(String, String)>,
    Params(wait): Params<WaitQuery>,
    JsonBody(request): JsonBody<CommandRequest>,
) -> Result<Json<CommandResponse>, HttpError> {
    check_reason(request.reason.as_deref())?;
    let command = to_verb(&verb, &request)?.on(name.clone());
    let verb_name = command.verb.name();
    let bound = wait.bound()?.filter(|_| wait::waits(verb_name));
    // Taken before the command: the wait sees every event it causes, and tells the
    // process that ran then from the one the command brings.
    let since = state.control.events.last_seq();
    let old_pid = match bound {
        Some(_) => wait::status(&state.control, &name)
            .await
            .and_then(|s| s.pid),
        None => None,
    };
    let outcome = state
        .control
        .ask(|reply| Request::Command {
            command,
            peer,
            reason: request.reason.clone(),
            reply,
        })
        .await
        .ok_or_else(HttpError::unavailable)?;
    match outcome {
        Ok(()) => {
            let status = match bound {
                Some(timeout) => Some(
                    wait::outcome(&state.control, &name, verb_name, since, old_pid, timeout)
                        .await?,
                ),
                None => None,
            };
            Ok(Json(CommandResponse {
                child: name,
                command: verb_name.to_string(),
                status,
            }))
        }
        Err(ControlError::Command(CommandError::UnknownChild(_))) => {
            Err(state.unknown_child(&name).await)
        }
        Err(error) => Err(HttpError::refused(&error)),
    }
}

fn check_reason(reason: Option<&str>) -> Result<(), HttpError> {
    match reason {
        Some(reason) if reason.len() > MAX_REASON_BYTES => Err(HttpError::bad_request(format!(
            "the reason is longer than {MAX_REASON_BYTES} bytes"
        ))),
        _ => Ok(()),
    }
}

/// `POST /v1/commands/{verb}`: an operator command on the children listed (every child
/// without a list), in one pass of the reconciler. Each child is checked and audited as
/// its own command would be; the answer holds every child's verdict.
pub(super) async fn batch(
    State(state): State<AppState>,
    Extension(peer): Extension<Peer>,
    Segments(verb): Segments<String>,
    JsonBody(request): JsonBody<BatchRequest>,
) -> Result<Json<BatchResponse>, HttpError> {
    let BatchRequest {
        children,
        reason,
        signal,
        selector,
    } = request;
    check_reason(reason.as_deref())?;
    let children = match selector {
        Some(selector) => {
            if children.is_some() {
                return Err(HttpError::bad_request(
                    "give `children` or `selector`, not both",
                ));
            }
            Some(select(&state, &selector).await?)
        }
        None => children,
    };
    let command = to_verb(
        &verb,
        &CommandRequest {
            reason: reason.clone(),
            signal,
        },
    )?;
    let verdicts = state
        .control
        .ask(|reply| Request::Batch {
            verb: command,
            children,
            peer,
            reason,
            reply,
        })
        .await
        .ok_or_else(HttpError::unavailable)?;
    let unknown = |verdict: &Result<(), ControlError>| {
        matches!(
            verdict,
            Err(ControlError::Command(CommandError::UnknownChild(_)))
        )
    };
    // Suggestions for unknown names need the known ones: ask only when there is one.
    let known = if verdicts.iter().any(|(_, verdict)| unknown(verdict)) {
        state.status_report().await?.children
    } else {
        Vec::new()
    };
    let results = verdicts
        .into_iter()
        .map(|(child, verdict)| {
            let error = verdict.err().map(|error| match error {
                ControlError::Command(CommandError::UnknownChild(name)) => {
                    HttpError::unknown_child(&name, known.iter().map(|c| c.name.as_str())).detail
                }
                other => HttpError::refused(&other).detail,
            });
            BatchResult {
                child,
                ok: error.is_none(),
                error,
            }
        })
        .collect();
    Ok(Json(BatchResponse {
        command: verb,
        results,
    }))
}

/// The verb of `POST /v1/children/{name}/{verb}` and `POST /v1/commands/{verb}`: the route's
/// segment parsed into a [`VerbName`] once, then the verb of that name with what it needs.
fn to_verb(verb: &str, request: &CommandRequest) -> Result<Verb, HttpError> {
    let name: VerbName = verb.parse().map_err(|message: String| {
        HttpError::new(StatusCode::NOT_FOUND, "unknown-command", message).with_hint(format!(
            "one of {}",
            VerbName::ALL.map(VerbName::as_str).join(", ")
        ))
    })?;
    if request.signal.is_some() && name != VerbName::Signal {
        return Err(HttpError::bad_request(format!(
            "`signal` is only accepted by the signal command, not by `{name}`"
        )));
    }
    if let Some(verb) = name.verb(request.reason.clone()) {
        return Ok(verb);
    }
    let text = request.signal.as_deref().ok_or_else(|| {
        HttpError::bad_request("the signal command needs a `signal`, e.g. {\"signal\": \"SIGHUP\"}")
    })?;
    let signal: Signal = text.parse().map_err(|message: String| {
        HttpError::bad_request(message).with_hint(format!(
            "one of {}",
            Signal::ALL.map(Signal::name).join(", ")
        ))
    })?;
    Ok(Verb::Signal(signal))
}

/// `POST /v1/reload`: rescan the manifest directory now.
pub(super) async fn reload(
    State(state): State<AppState>,
    Extension(peer): Extension<Peer>,
) -> Result<(StatusCode, Json<Accepted>), HttpError> {
    state
        .control
        .ask(|reply| Request::Reload { peer, reply })
        .await
        .ok_or_else(HttpError::unavailable)?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { accepted: true })))
}

/// `POST /v1/shutdown`: ordered shutdown of every child, then herder exits.
pub(super) async fn shutdown(
    State(state): State<AppState>,
    Extension(peer): Extension<Peer>,
    JsonBody(request): JsonBody<ShutdownRequest>,
) -> Result<(StatusCode, Json<Accepted>), HttpError> {
    check_reason(request.reason.as_deref())?;
    state
        .control
        .ask(|reply| Request::Shutdown {
            peer,
            reason: request.reason,
            reply,
        })
        .await
        .ok_or_else(HttpError::unavailable)?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { accepted: true })))
}

/// `GET /v1/errors`: the manifest errors in force.
pub(super) async fn errors(
    State(state): State<AppState>,
) -> Result<Json<ErrorsResponse>, HttpError> {
    let report = state.status_report().await?;
    Ok(Json(ErrorsResponse {
        errors: report.errors,
    }))
}

/// `?format=` of the plan endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PlanQuery {
    #[serde(default)]
    format: PlanFormat,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum PlanFormat {
    #[default]
    Json,
    Human,
}

/// `GET /v1/plan`: the plan of the watched directory against what runs.
pub(super) async fn plan_watched(
    State(state): State<AppState>,
    Params(query): Params<PlanQuery>,
) -> Result<Response, HttpError> {
    let plan = state
        .control
        .ask(|reply| Request::Plan {
            desired: None,
            reply,
        })
        .await
        .ok_or_else(HttpError::unavailable)?;
    Ok(plan_response(&plan, Vec::new(), query.format))
}

/// `POST /v1/plan {"dir": "/abs/path"}`: the plan of another directory against what runs.
pub(super) async fn plan_dir(
    State(state): State<AppState>,
    Params(query): Params<PlanQuery>,
    JsonBody(request): JsonBody<Option<PlanRequest>>,
) -> Result<Response, HttpError> {
    let dir: PathBuf = request
        .map(|request| request.dir)
        .ok_or_else(|| HttpError::bad_request("the body needs a `dir`"))?;
    if !dir.is_absolute() {
        return Err(HttpError::bad_request(format!(
            "`dir` must be an absolute path, not `{}`",
            dir.display()
        )));
    }
    let load = tokio::task::spawn_blocking(move || crate::manifest::load_dir(&dir)).await;
    let (desired, diagnostics) = match load {
        Ok(Ok(loaded)) => loaded,
        Ok(Err(error)) => {
            return Err(HttpError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad-directory",
                error.to_string(),
            ));
        }
        Err(join) => {
            return Err(HttpError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("loading the directory failed: {join}"),
            ));
        }
    };
    let plan = state
        .control
        .ask(|reply| Request::Plan {
            desired: Some(desired),
            reply,
        })
        .await
        .ok_or_else(HttpError::unavailable)?;
    Ok(plan_response(&plan, diagnostics, query.format))
}

fn plan_response(plan: &Plan, diagnostics: Vec<Diagnostic>, format: PlanFormat) -> Response {
    match format {
        PlanFormat::Json => Json(PlanDocument::new(plan, &diagnostics)).into_response(),
        PlanFormat::Human => Json(PlanText {
            text: plan::render(plan, plan::Format::Human),
            diagnostics,
        })
        .into_response(),
    }
}

/// Every route the router does not know.
pub(super) async fn not_found() -> HttpError {
    HttpError::new(StatusCode::NOT_FOUND, "not-found", "no such endpoint")
        .with_hint("the endpoints are under /v1 (see docs/api.md)")
}

/// A known route with the wrong method.
pub(super) async fn method_not_allowed() -> HttpError {
    HttpError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this endpoint does not accept that method",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_become_commands() {
        let to_command = |verb: &str, request: &CommandRequest| {
            to_verb(verb, request).map(|verb| verb.on("web"))
        };
        let plain = CommandRequest::default();
        for name in VerbName::ALL.into_iter().filter(|v| *v != VerbName::Signal) {
            let command = to_command(name.as_str(), &plain).unwrap();
            assert_eq!((command.verb.name(), command.child.as_str()), (name, "web"));
        }
        let hup = CommandRequest {
            signal: Some("hup".into()),
            ..CommandRequest::default()
        };
        assert_eq!(
            to_command("signal", &hup).unwrap(),
            Verb::Signal(Signal::Sighup).on("web")
        );
        assert_eq!(
            to_command("signal", &plain).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            to_command("stop", &hup).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        let bogus = CommandRequest {
            signal: Some("SIGBOGUS".into()),
            ..CommandRequest::default()
        };
        let error = to_command("signal", &bogus).unwrap_err();
        assert!(error.detail.hint.unwrap().contains("SIGTERM"));
        assert_eq!(
            to_command("explode", &plain).unwrap_err().detail.code,
            "unknown-command"
        );
        assert!(check_reason(Some(&"x".repeat(MAX_REASON_BYTES + 1))).is_err());
    }
}
