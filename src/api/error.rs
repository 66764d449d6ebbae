//! The server's errors: [`ApiError`] when the socket cannot be set up or served, and
//! [`HttpError`], the `{"error": {...}}` response every failed request gets.

use std::io;
use std::path::PathBuf;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::wire::{ErrorBody, ErrorDetail};
use crate::manifest::suggest::suggestions;
use crate::reconcile::{CommandError, ControlError};

/// Why the control socket could not be bound or served.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The directory that holds the socket could not be created or secured.
    #[error("cannot prepare the socket directory {}", path.display())]
    SocketDir {
        /// The directory.
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// The socket directory belongs to another user, so it cannot be trusted.
    #[error(
        "the socket directory {} belongs to uid {owner}, not to this user (uid {euid}); remove it or pass --socket",
        path.display()
    )]
    ForeignSocketDir {
        /// The directory.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// herder's effective uid.
        euid: u32,
    },
    /// A Unix socket path is limited to 107 bytes.
    #[error("the socket path {} is longer than 107 bytes; pass a shorter --socket", path.display())]
    PathTooLong {
        /// The path.
        path: PathBuf,
    },
    /// Something accepts connections on the socket already.
    #[error("another instance serves {}", path.display())]
    InUse {
        /// The socket.
        path: PathBuf,
    },
    /// Binding, securing or moving the socket into place failed.
    #[error("cannot bind the control socket {}", path.display())]
    Bind {
        /// The socket.
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// The server stopped with an I/O error.
    #[error("the control API on {} failed", path.display())]
    Serve {
        /// The socket.
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
}

/// A failed request: its status code and the `{"error": {...}}` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub detail: ErrorDetail,
}

impl HttpError {
    /// An error with `status`, a stable `code` and a lowercase `message`.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            detail: ErrorDetail {
                code: code.to_owned(),
                message: message.into(),
                hint: None,
                suggestions: Vec::new(),
            },
        }
    }

    /// Adds what to do about it.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.detail.hint = Some(hint.into());
        self
    }

    /// 400: the request cannot be understood.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", message)
    }

    /// 404 for a child name, with the closest names among `known` as suggestions.
    pub fn unknown_child<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Self {
        let suggestions: Vec<String> = suggestions(name, known)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let mut error = Self::new(
            StatusCode::NOT_FOUND,
            "unknown-child",
            CommandError::UnknownChild(name.to_owned()).to_string(),
        );
        error = match suggestions.first() {
            Some(best) => error.with_hint(format!("did you mean `{best}`?")),
            None => error.with_hint("`herder status` lists the children"),
        };
        error.detail.suggestions = suggestions;
        error
    }

    /// 503: the reconciler is gone (herder is exiting).
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting-down",
            ControlError::ShuttingDown.to_string(),
        )
    }

    /// The response for a command the reconciler refused (other than an unknown child,
    /// which needs the known names: see [`HttpError::unknown_child`]).
    pub fn refused(error: &ControlError) -> Self {
        match error {
            ControlError::Command(CommandError::UnknownChild(name)) => {
                Self::unknown_child(name, [])
            }
            ControlError::Command(CommandError::NotRunning(name)) => {
                Self::new(StatusCode::CONFLICT, "not-running", error.to_string())
                    .with_hint(format!("`herder start {name}` starts it"))
            }
            ControlError::Command(CommandError::Quarantined(name)) => {
                Self::new(StatusCode::CONFLICT, "quarantined", error.to_string())
                    .with_hint(format!("`herder release {name}` ends the quarantine"))
            }
            ControlError::Command(CommandError::NotOneshot(name)) => {
                Self::new(StatusCode::CONFLICT, "not-oneshot", error.to_string())
                    .with_hint(format!("`herder restart {name}` restarts a service"))
            }
            ControlError::Command(CommandError::Target(_)) => {
                Self::new(StatusCode::CONFLICT, "target", error.to_string()).with_hint(
                    "a target groups its dependencies: act on them by name, or with a label selector (`-l KEY=VALUE`)",
                )
            }
            ControlError::Command(CommandError::AlreadyRunning(_)) => {
                Self::new(StatusCode::CONFLICT, "already-running", error.to_string())
                    .with_hint("wait for the run to end, or `herder restart` it")
            }
            ControlError::Forbidden { .. } => {
                Self::new(StatusCode::FORBIDDEN, "forbidden", error.to_string())
                    .with_hint("allow it under `command_permissions` in the child's manifest")
            }
            ControlError::ShuttingDown => Self::unavailable(),
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { error: self.detail })).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_rank_replicas_and_typos() {
        let known = ["api-0", "api-1", "web", "worker", "db"];
        let error = HttpError::unknown_child("wokrer", known);
        assert_eq!(error.status, StatusCode::NOT_FOUND);
        assert_eq!(error.detail.suggestions, ["worker"]);
        assert_eq!(error.detail.hint.as_deref(), Some("did you mean `worker`?"));
    }

    #[test]
    fn refusals_map_to_status_codes() {
        let forbidden = ControlError::Forbidden {
            name: "web".into(),
            verb: crate::reconcile::VerbName::Stop,
        };
        assert_eq!(HttpError::refused(&forbidden).status, StatusCode::FORBIDDEN);
        let not_running = ControlError::Command(CommandError::NotRunning("web".into()));
        assert_eq!(
            HttpError::refused(&not_running).status,
            StatusCode::CONFLICT
        );
        let quarantined = ControlError::Command(CommandError::Quarantined("web".into()));
        assert_eq!(HttpError::refused(&quarantined).detail.code, "quarantined");
        assert_eq!(
            HttpError::refused(&ControlError::ShuttingDown).status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
