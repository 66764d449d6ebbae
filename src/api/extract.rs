//! Request extractors whose rejections are [`HttpError`]s, so every failure, even a
//! malformed query string or an oversized body, answers with the `{"error": {...}}` body;
//! and the peer's credentials, read once per connection with `SO_PEERCRED`.

use axum::body::Bytes;
use axum::extract::connect_info::Connected;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::serve::IncomingStream;
use serde::de::DeserializeOwned;
use tokio::net::UnixListener;

use super::error::HttpError;
use crate::reconcile::Peer;

/// The credentials of a connection's peer; `None` when the kernel would not tell.
#[derive(Clone, Copy, Debug)]
pub(super) struct PeerCred(pub(super) Option<Peer>);

impl Connected<IncomingStream<'_, UnixListener>> for PeerCred {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Self {
        // Captured by the kernel at connect(); the peer cannot change them afterwards.
        Self(stream.io().peer_cred().ok().map(|cred| Peer {
            uid: cred.uid(),
            pid: cred.pid(),
        }))
    }
}

/// Path parameters.
pub(super) struct Segments<T>(pub(super) T);

impl<T, S> FromRequestParts<S> for Segments<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, HttpError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| Self(value))
            .map_err(|rejection| HttpError::bad_request(rejection.body_text().to_lowercase()))
    }
}

/// Query parameters.
pub(super) struct Params<T>(pub(super) T);

impl<T, S> FromRequestParts<S> for Params<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, HttpError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Self(value))
            .map_err(|rejection| HttpError::bad_request(rejection.body_text().to_lowercase()))
    }
}

/// A JSON body, bounded by the router's body limit; an empty body is `T::default()`. The
/// content type is not checked: `curl -d '{}'` works as it is.
pub(super) struct JsonBody<T>(pub(super) T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = HttpError;

    async fn from_request(request: Request, state: &S) -> Result<Self, HttpError> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(body_rejection)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(|error| HttpError::bad_request(format!("malformed JSON body: {error}")))
    }
}

fn body_rejection(rejection: BytesRejection) -> HttpError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!(
                "the request body is larger than {} bytes",
                super::server::MAX_BODY_BYTES
            ),
        )
    } else {
        HttpError::new(
            rejection.status(),
            "bad-request",
            format!("cannot read the request body: {}", rejection.body_text()),
        )
    }
}
