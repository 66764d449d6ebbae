//! `herder up --metrics ADDR`: `/metrics` over TCP, for a Prometheus server (which cannot
//! scrape a Unix socket).
//!
//! Read-only by construction: the router has one route, `GET /metrics`; every other path is
//! 404 and every other method 405. With a bearer token (`--metrics-token-file`), a scrape
//! without `Authorization: Bearer TOKEN` is 401; the token is compared in constant time and
//! never logged. Request bodies are refused (limit 0).

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::CONTENT_TYPE;
use super::tally::Tally;
use crate::reconcile::Control;

#[derive(Clone)]
struct MetricsState {
    control: Control,
    tally: Arc<Tally>,
    token: Option<Arc<str>>,
}

/// Serves `GET /metrics` on `listener` until `shutdown` completes. `token`, when given, is
/// required as a bearer token.
pub async fn serve(
    listener: TcpListener,
    control: Control,
    token: Option<String>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let closing = CancellationToken::new();
    let state = MetricsState {
        tally: Tally::spawn(control.clone(), closing.clone()),
        control,
        token: token.map(Arc::from),
    };
    let app = Router::new()
        .route("/metrics", get(metrics))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "not found: only /metrics is served here\n",
            )
        })
        .layer(DefaultBodyLimit::max(0))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            closing.cancel();
        })
        .await
}

async fn metrics(State(state): State<MetricsState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.token
        && !bearer_matches(&headers, token)
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "a bearer token is required\n",
        )
            .into_response();
    }
    match super::scrape(&state.control, &state.tally).await {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(error) => error.into_response(),
    }
}

/// Whether `Authorization` carries `Bearer <token>`, compared in constant time.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "))
    else {
        return false;
    };
    given.ct_eq(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_passes() {
        let mut headers = HeaderMap::new();
        assert!(!bearer_matches(&headers, "s3cret"));
        for (value, ok) in [
            ("Bearer s3cret", true),
            ("Bearer s3cre", false),
            ("Bearer s3cretx", false),
            ("Basic s3cret", false),
        ] {
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            assert_eq!(bearer_matches(&headers, "s3cret"), ok, "{value}");
        }
    }
}
