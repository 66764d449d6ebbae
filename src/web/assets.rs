//! The page and its two files, embedded in the binary (no build step, nothing fetched at
//! run time), and the two endpoints of the console itself: `/` (which trades the token in
//! `?token=` for a session cookie) and `/api/session` (the CSRF value for the page's POSTs).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::WebState;
use super::guard::session_cookie;
use super::token::COOKIE;

const INDEX: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/app.js");
const STYLE: &str = include_str!("console/app.css");

/// `?token=` on `/`.
#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// `GET /`: the page for a session; with the right `?token=`, a new session and a redirect
/// to `/` (so the token leaves the address bar and the history).
pub async fn index(
    State(state): State<Arc<WebState>>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    if let Some(token) = &query.token {
        if !state.access.token_matches(token) {
            return (StatusCode::UNAUTHORIZED, "wrong token\n").into_response();
        }
        let Ok(id) = state.access.open() else {
            return (StatusCode::INTERNAL_SERVER_ERROR, "cannot open a session\n").into_response();
        };
        let cookie = format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/");
        let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
        return response;
    }
    if session_cookie(&headers)
        .and_then(|id| state.access.csrf(id))
        .is_none()
    {
        return (
            StatusCode::UNAUTHORIZED,
            "open the console with the URL `herder up --web` printed (it carries the token)\n",
        )
            .into_response();
    }
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response()
}

/// `GET /app.js`.
pub async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}

/// `GET /app.css`.
pub async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE)
}

/// `GET /api/session`: the CSRF value of this session, and whether the console is read-only.
pub async fn session(State(state): State<Arc<WebState>>, headers: HeaderMap) -> Response {
    let csrf = session_cookie(&headers).and_then(|id| state.access.csrf(id));
    Json(json!({"csrf": csrf, "read_only": state.read_only})).into_response()
}
