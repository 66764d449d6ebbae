//! The console's data: a narrow window onto the control API. Allowed requests are passed
//! to the control socket unchanged (answers and SSE streams come back as they are), so the
//! console has no second source of truth and the same bounds, validation and permissions
//! apply. Commands are audited by the API as ever; the console adds who asked from where to
//! the `reason`: `web console from 127.0.0.1:51234: <the reason typed>`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::Full;
use serde_json::Value;

use super::WebState;
use crate::api::{ClientError, HttpError};

/// The verbs the console may send.
const VERBS: [&str; 8] = [
    "restart",
    "stop",
    "start",
    "pause",
    "resume",
    "quarantine",
    "release",
    "signal",
];

/// The longest `reason` the API accepts, in bytes.
const MAX_REASON: usize = 1024;

/// Whether `GET /v1/<rest>` is offered to the console.
fn readable(rest: &[&str]) -> bool {
    matches!(
        rest,
        ["status" | "children" | "events" | "errors" | "plan"]
            | ["events", "stream"]
            | ["children", _]
            | ["children", _, "logs"]
            | ["children", _, "logs", "stream"]
    )
}

/// Whether `POST /v1/<rest>` is offered to the console.
fn writable(rest: &[&str]) -> bool {
    match rest {
        ["children", _, verb] | ["commands", verb] => VERBS.contains(verb),
        _ => false,
    }
}

/// `GET /api/v1/{*rest}`.
pub async fn get(
    State(state): State<Arc<WebState>>,
    Path(rest): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let parts: Vec<&str> = rest.split('/').collect();
    if !readable(&parts) {
        return not_offered();
    }
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(uri(&rest, query));
    if let Some(id) = headers.get("last-event-id") {
        request = request.header("last-event-id", id);
    }
    forward(&state, request.body(Full::new(Bytes::new()))).await
}

/// `POST /api/v1/{*rest}`: a command, with the remote address added to its reason.
pub async fn post(
    State(state): State<Arc<WebState>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    Path(rest): Path<String>,
    body: Bytes,
) -> Response {
    let parts: Vec<&str> = rest.split('/').collect();
    if !writable(&parts) {
        return not_offered();
    }
    let mut command: Value = if body.is_empty() {
        Value::Object(Default::default())
    } else {
        match serde_json::from_slice(&body) {
            Ok(value @ Value::Object(_)) => value,
            _ => {
                return HttpError::new(
                    StatusCode::BAD_REQUEST,
                    "bad-request",
                    "the body must be a JSON object",
                )
                .into_response();
            }
        }
    };
    let typed = command.get("reason").and_then(Value::as_str).unwrap_or("");
    command["reason"] = Value::String(audited_reason(remote, typed));
    let request = Request::builder()
        .method(Method::POST)
        .uri(uri(&rest, None))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(command.to_string())));
    forward(&state, request).await
}

/// `web console from ADDR: REASON`, cut to what the API accepts (on a character boundary).
pub fn audited_reason(remote: SocketAddr, typed: &str) -> String {
    let mut reason = format!("web console from {remote}");
    if !typed.trim().is_empty() {
        reason.push_str(": ");
        reason.push_str(typed.trim());
    }
    if reason.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

fn uri(rest: &str, query: Option<String>) -> String {
    match query {
        Some(query) => format!("/v1/{rest}?{query}"),
        None => format!("/v1/{rest}"),
    }
}

fn not_offered() -> Response {
    HttpError::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "the console does not offer this",
    )
    .into_response()
}

async fn forward(
    state: &WebState,
    request: Result<Request<Full<Bytes>>, axum::http::Error>,
) -> Response {
    let Ok(request) = request else {
        return HttpError::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "malformed request path",
        )
        .into_response();
    };
    match state.client.forward(request).await {
        Ok(answer) => {
            let (parts, body) = answer.into_parts();
            let mut response = Response::new(Body::new(body));
            *response.status_mut() = parts.status;
            if let Some(kind) = parts.headers.get(header::CONTENT_TYPE) {
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, kind.clone());
            }
            response
        }
        Err(ClientError::Connect { .. }) => HttpError::unavailable().into_response(),
        Err(_) => HttpError::new(
            StatusCode::BAD_GATEWAY,
            "unavailable",
            "the control socket did not answer",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_console_paths_pass_and_reasons_name_the_remote() {
        assert!(readable(&["status"]) && readable(&["children", "web", "logs", "stream"]));
        assert!(!readable(&["shutdown"]) && !readable(&["children", "web", "restart"]));
        assert!(writable(&["children", "web", "restart"]) && writable(&["commands", "stop"]));
        assert!(
            !writable(&["shutdown"])
                && !writable(&["reload"])
                && !writable(&["children", "a", "x"])
        );
        let remote: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(
            audited_reason(remote, ""),
            "web console from 127.0.0.1:5000"
        );
        assert_eq!(
            audited_reason(remote, " deploy "),
            "web console from 127.0.0.1:5000: deploy"
        );
        assert!(audited_reason(remote, &"é".repeat(2000)).len() <= MAX_REASON);
    }
}
