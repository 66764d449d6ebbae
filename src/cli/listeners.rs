//! The optional TCP listeners of `herder up`: `--metrics ADDR` (Prometheus) and `--web ADDR`
//! (the web console). Both read the same reconciler and event log as the control socket
//! (the console through the socket itself); nothing is served over TCP unless asked for.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::metrics;
use crate::reconcile::Control;
use crate::web::{Console, WebError};

/// The flags of `herder up` that open TCP listeners.
#[derive(Debug, Default, Args)]
pub struct ListenerArgs {
    /// Serve `/metrics` for Prometheus on ADDR (IP:PORT, e.g. 127.0.0.1:9464); read-only.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Require `Authorization: Bearer TOKEN` on `/metrics`, TOKEN read from FILE.
    #[arg(long, value_name = "FILE", requires = "metrics")]
    pub metrics_token_file: Option<PathBuf>,
    /// Serve the web console on ADDR (IP:PORT, e.g. 127.0.0.1:8700); loopback only unless
    /// --web-allow-remote. The URL with its access token is printed once.
    #[arg(long, value_name = "ADDR")]
    pub web: Option<SocketAddr>,
    /// Allow --web on a non-loopback address (anyone who can reach it still needs the token).
    #[arg(long, requires = "web")]
    pub web_allow_remote: bool,
    /// The web console shows everything and changes nothing.
    #[arg(long, requires = "web")]
    pub web_read_only: bool,
}

/// Why a listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    /// The address cannot be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The web console cannot start.
    #[error(transparent)]
    Web(#[from] WebError),
    /// The token file cannot be read, or is empty.
    #[error("cannot read a token from {}", path.display())]
    Token {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

impl ListenerArgs {
    /// Binds every listener asked for and serves it until `closing` is cancelled. Errors
    /// come before anything is served, so `up` can refuse to start.
    /// `socket` is the control socket, which the web console talks to.
    pub async fn start(
        &self,
        control: &Control,
        socket: &Path,
        closing: &CancellationToken,
    ) -> Result<(), ListenerError> {
        if let Some(addr) = self.metrics {
            let token = self
                .metrics_token_file
                .as_ref()
                .map(read_token)
                .transpose()?;
            let listener = bind(addr).await?;
            let local = listener.local_addr().unwrap_or(addr);
            let served = metrics::tcp::serve(
                listener,
                control.clone(),
                token,
                closing.clone().cancelled_owned(),
            );
            tokio::spawn(async move {
                if let Err(error) = served.await {
                    tracing::warn!(%error, "the metrics listener stopped");
                }
            });
            eprintln!("herder: metrics on http://{local}/metrics");
        }
        if let Some(addr) = self.web {
            let console =
                Console::bind(addr, self.web_allow_remote, self.web_read_only, socket).await?;
            eprintln!(
                "herder: web console{} on {}",
                if self.web_read_only {
                    " (read-only)"
                } else {
                    ""
                },
                console.url()
            );
            let served = console.serve(closing.clone().cancelled_owned());
            tokio::spawn(async move {
                if let Err(error) = served.await {
                    tracing::warn!(%error, "the web console stopped");
                }
            });
        }
        Ok(())
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ListenerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ListenerError::Bind { addr, source })
}

/// The token in `path`, without surrounding whitespace; an empty file is an error.
fn read_token(path: &PathBuf) -> Result<String, ListenerError> {
    let error = |source| ListenerError::Token {
        path: path.clone(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(error)?;
    let token = text.trim();
    if token.is_empty() {
        return Err(error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the file is empty",
        )));
    }
    Ok(token.to_owned())
}
