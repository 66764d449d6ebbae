//! The web console of `herder up --web ADDR`: the same views and actions as `herder top`
//! in a browser, served over TCP as a small page embedded in the binary (plain HTML, CSS
//! and JavaScript; no build step, nothing fetched).
//!
//! It is a client of the control API like the CLI: [`proxy`] passes a fixed set of
//! requests to the control socket, SSE streams included, so the page is live by the same
//! event and log streams. Security is that of a local admin UI:
//!
//! * loopback only, unless `--web-allow-remote` is given;
//! * a random token, stored 0600 next to the socket and printed once as a URL, traded for
//!   an `HttpOnly`, `SameSite=Strict` session cookie ([`token`]);
//! * `Host` allow-listed, POST-only state changes checked for `Origin` and a CSRF value, a
//!   read-only mode, a strict Content-Security-Policy ([`guard`]);
//! * log text is only ever set as text in the page (never parsed as HTML);
//! * every command is audited by the API with the browser's remote address in its reason;
//! * request bodies bounded as on the socket ([`MAX_BODY_BYTES`](crate::api::server::MAX_BODY_BYTES)).

pub mod assets;
pub mod guard;
pub mod proxy;
pub mod token;

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::get;
use tokio::net::TcpListener;

use self::token::Access;
use crate::api::Client;
use crate::api::server::MAX_BODY_BYTES;

/// What every console handler shares.
#[derive(Debug)]
pub struct WebState {
    /// The control socket's client.
    pub client: Client,
    /// The token and the sessions.
    pub access: Access,
    /// The `Host` values accepted.
    pub hosts: BTreeSet<String>,
    /// Refuse every state change.
    pub read_only: bool,
}

/// Why the console could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A non-loopback address without `--web-allow-remote`.
    #[error("refusing to serve the web console on {addr}, which is not a loopback address")]
    NotLoopback {
        /// The address.
        addr: SocketAddr,
    },
    /// The address cannot be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The token cannot be made or stored.
    #[error("cannot create the console's token file {}", path.display())]
    Token {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

/// A bound console, not serving yet.
#[derive(Debug)]
pub struct Console {
    listener: TcpListener,
    state: Arc<WebState>,
    token_file: PathBuf,
    url: String,
}

impl Console {
    /// Binds `addr` for the instance on `socket`, makes the token and stores it next to
    /// the socket (`<socket>.web-token`, 0600).
    pub async fn bind(
        addr: SocketAddr,
        allow_remote: bool,
        read_only: bool,
        socket: &Path,
    ) -> Result<Self, WebError> {
        if !addr.ip().is_loopback() && !allow_remote {
            return Err(WebError::NotLoopback { addr });
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| WebError::Bind { addr, source })?;
        let local = listener.local_addr().unwrap_or(addr);
        let token_file = socket.with_extension("web-token");
        let token_error = |source| WebError::Token {
            path: token_file.clone(),
            source,
        };
        let token = token::random_hex().map_err(token_error)?;
        token::write_token_file(&token_file, &token).map_err(token_error)?;
        let url = format!("http://{local}/?token={token}");
        let state = Arc::new(WebState {
            client: Client::new(socket),
            access: Access::new(token),
            hosts: guard::allowed_hosts(local),
            read_only,
        });
        Ok(Self {
            listener,
            state,
            token_file,
            url,
        })
    }

    /// The URL that opens the console (it carries the token: print it once).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Serves until `shutdown` completes, then removes the token file.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = Router::new()
            .route("/", get(assets::index))
            .route("/app.js", get(assets::script))
            .route("/app.css", get(assets::style))
            .route(
                "/favicon.ico",
                get(|| async { axum::http::StatusCode::NO_CONTENT }),
            )
            .route("/api/session", get(assets::session))
            .route("/api/v1/{*rest}", get(proxy::get).post(proxy::post))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(middleware::from_fn_with_state(
                Arc::clone(&self.state),
                guard::guard,
            ))
            .with_state(self.state)
            .into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        let _ = std::fs::remove_file(&self.token_file);
        served
    }
}
