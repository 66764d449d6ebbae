//! The control API server: axum on the Unix socket, one router, peer authorization.
//!
//! Authorization is by the peer's uid from `SO_PEERCRED`, captured per connection: only
//! herder's own effective uid and root may use the API. The socket's mode (0600 in a 0700
//! directory) already keeps other users out; the check is the second wall, for a socket
//! whose mode someone loosened. What a permitted peer may do to a child is then up to the
//! child's `command_permissions`, enforced (and audited) by the reconciler.
//!
//! Request bodies are bounded ([`MAX_BODY_BYTES`], 413 beyond); every error answers with
//! `{"error": {...}}` (see [`HttpError`]).

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

use super::error::{ApiError, HttpError};
use super::extract::PeerCred;
use super::socket::Listener;
use super::{metrics, routes, streams};
use crate::reconcile::{Control, Peer};
use crate::supervise::logs::LogBook;

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub(super) struct AppState {
    /// The reconciler's front door and the event log.
    pub(super) control: Control,
    /// Every child's captured output.
    pub(super) logs: Arc<LogBook>,
    /// Cancelled when the server stops, ending the streams.
    pub(super) closing: CancellationToken,
    /// herder's effective uid: the one user, besides root, allowed in.
    pub(super) euid: u32,
    /// The event log's counts for `/metrics`.
    pub(super) tally: Arc<metrics::tally::Tally>,
}

/// Serves the control API on `listener` until `shutdown` completes, then stops accepting,
/// ends the open streams, lets requests in flight finish, and removes the socket file.
///
/// `up` calls it with the [`Control`] of its reconciler and the [`LogBook`] its child
/// actors write to.
pub async fn serve(
    listener: Listener,
    control: Control,
    logs: Arc<LogBook>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    let Listener { inner, file } = listener;
    let closing = CancellationToken::new();
    let state = AppState {
        tally: metrics::tally::Tally::spawn(control.clone(), closing.clone()),
        control,
        logs,
        closing: closing.clone(),
        euid: nix::unistd::geteuid().as_raw(),
    };
    let app = router(state).into_make_service_with_connect_info::<PeerCred>();
    let signal = async move {
        shutdown.await;
        closing.cancel();
    };
    let served = axum::serve(inner, app).with_graceful_shutdown(signal).await;
    let path = file.path.clone();
    // Removes the socket file (if it is still ours) before reporting.
    drop(file);
    served.map_err(|source| ApiError::Serve { path, source })
}

/// Every route of the API.
fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/status", get(routes::status))
        .route("/children", get(routes::children))
        .route("/children/{name}", get(routes::child))
        .route("/children/{name}/logs", get(routes::logs))
        .route("/children/{name}/logs/stream", get(streams::logs_stream))
        .route("/children/{name}/{verb}", post(routes::command))
        .route("/commands/{verb}", post(routes::batch))
        .route("/events", get(routes::events))
        .route("/events/stream", get(streams::events_stream))
        .route("/errors", get(routes::errors))
        .route("/plan", get(routes::plan_watched).post(routes::plan_dir))
        .route("/reload", post(routes::reload))
        .route("/shutdown", post(routes::shutdown));
    Router::new()
        .nest("/v1", v1)
        .route("/metrics", get(metrics::metrics))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .with_state(state)
}

/// Lets in herder's own user and root; everyone else gets 403 before any handler runs.
async fn authorize(
    State(state): State<AppState>,
    ConnectInfo(PeerCred(peer)): ConnectInfo<PeerCred>,
    mut request: Request,
    next: Next,
) -> Response {
    match admit(peer, state.euid) {
        Ok(peer) => {
            request.extensions_mut().insert(peer);
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}

/// The authorization rule: `peer` may use a server running as `euid`.
fn admit(peer: Option<Peer>, euid: u32) -> Result<Peer, HttpError> {
    match peer {
        None => Err(HttpError::new(
            StatusCode::UNAUTHORIZED,
            "unidentified-peer",
            "the peer's credentials cannot be read (SO_PEERCRED)",
        )),
        Some(peer) if peer.uid == euid || peer.uid == 0 => Ok(peer),
        Some(peer) => Err(HttpError::new(
            StatusCode::FORBIDDEN,
            "peer-not-allowed",
            format!(
                "uid {} may not use this herder instance (it runs as uid {euid})",
                peer.uid
            ),
        )
        .with_hint("run the command as the user that runs `herder up`, or as root")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_user_and_root_are_admitted() {
        let peer = |uid| Some(Peer { uid, pid: Some(7) });
        assert!(admit(peer(1000), 1000).is_ok());
        assert!(admit(peer(0), 1000).is_ok());
        let refused = admit(peer(1001), 1000).unwrap_err();
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(refused.detail.message.contains("uid 1001"));
        assert_eq!(
            admit(None, 1000).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
    }
}
