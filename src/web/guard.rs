//! The console's walls, checked before any handler runs, in this order:
//!
//! 1. **Host** must be one of the names the console is reached by (the loopback names and
//!    the bound address, with the port): a page on another site that rebinds its DNS name
//!    to 127.0.0.1 sends its own name and is refused (403 `host-not-allowed`).
//! 2. **Session**: every path but `/` (which trades the token for a session) needs the
//!    session cookie (401 `no-session`).
//! 3. **State changes** are POSTs only, and a POST needs an `Origin` equal to the console's
//!    own (403 `cross-origin`), the session's CSRF value in `X-Herder-CSRF` (403 `bad-csrf`),
//!    and a console that is not read-only (403 `read-only`).
//!
//! Every answer carries a strict Content-Security-Policy (scripts and styles from the
//! console itself only, no inline code, no framing), `nosniff`, no referrer and no caching.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::WebState;
use super::token::COOKIE;
use crate::api::HttpError;

/// The Content-Security-Policy of every answer.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
                       frame-ancestors 'none'";

/// The `Host` values the console answers to when bound to `addr`.
pub fn allowed_hosts(addr: SocketAddr) -> BTreeSet<String> {
    let port = addr.port();
    let mut hosts: BTreeSet<String> = [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ]
    .into();
    hosts.insert(addr.to_string());
    hosts
}

/// The session cookie's value in `headers`, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    HttpError::new(status, code, message).into_response()
}

/// The middleware: Host, session, then the POST rules; then the security headers.
pub async fn guard(State(state): State<Arc<WebState>>, request: Request, next: Next) -> Response {
    let mut response = check(&state, request, next).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn check(state: &WebState, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if !state.hosts.contains(host) {
        return refuse(
            StatusCode::FORBIDDEN,
            "host-not-allowed",
            "this console answers only to its own address (Host header refused)",
        );
    }
    if request.uri().path() == "/" && request.method() == Method::GET {
        return next.run(request).await;
    }
    let Some(csrf) = session_cookie(headers).and_then(|id| state.access.csrf(id)) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "no-session",
            "open the console with the URL `herder up` printed (it carries the token)",
        );
    };
    if request.method() != Method::GET {
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        if origin != Some(format!("http://{host}").as_str()) {
            return refuse(
                StatusCode::FORBIDDEN,
                "cross-origin",
                "a state change must come from the console's own page (Origin refused)",
            );
        }
        let given = headers
            .get("x-herder-csrf")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !super::token::same(given, &csrf) {
            return refuse(
                StatusCode::FORBIDDEN,
                "bad-csrf",
                "the CSRF value is missing or wrong",
            );
        }
        if state.read_only {
            return refuse(
                StatusCode::FORBIDDEN,
                "read-only",
                "this console is read-only (herder up --web-read-only)",
            );
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_cookies() {
        let hosts = allowed_hosts("127.0.0.1:8700".parse().unwrap());
        assert!(hosts.contains("localhost:8700") && hosts.contains("[::1]:8700"));
        assert!(!hosts.contains("evil.example:8700") && !hosts.contains("localhost"));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; herder_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(session_cookie(&headers), Some("abc"));
    }
}
