//! The control API client: hyper's HTTP/1 connection over a `UnixStream`, one connection
//! per request (a CLI command makes one or two), JSON in and out, and SSE streams.
//!
//! Error answers (`{"error": {...}}`) become [`ClientError::Api`] with the server's code,
//! message, hint and suggestions, so the CLI can print them as they are.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::http::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

use super::sse::{LineTooLong, SseMessage, SseParser};
use super::wire::{ErrorBody, ErrorDetail};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing accepts connections on the socket.
    #[error("cannot connect to herder at {}", socket.display())]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// The connection broke, or the request could not be built.
    #[error("the connection to herder failed")]
    Http(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The server answered with an error.
    #[error("{}", error.message)]
    Api {
        /// The HTTP status.
        status: StatusCode,
        /// The server's code, message, hint and suggestions.
        error: ErrorDetail,
    },
    /// The server's answer is not what was expected.
    #[error("unexpected answer from herder")]
    Decode(#[source] serde_json::Error),
    /// An event stream line exceeded the parser's bound.
    #[error("the event stream is malformed")]
    Stream(#[source] LineTooLong),
}

impl ClientError {
    fn http(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Http(Box::new(error))
    }
}

/// A client for one control socket.
#[derive(Clone, Debug)]
pub struct Client {
    socket: PathBuf,
}

impl Client {
    /// A client of the server on `socket`; nothing is connected until a request.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
        }
    }

    /// The socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `GET path`, decoded from JSON.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let body = self.call(Method::GET, path, None, None).await?;
        serde_json::from_slice(&body).map_err(ClientError::Decode)
    }

    /// `GET path` as text (`/metrics`).
    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let body = self.call(Method::GET, path, None, None).await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// `POST path` with a JSON body, decoded from JSON.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_vec(body).map_err(ClientError::Decode)?;
        let answer = self.call(Method::POST, path, Some(body), None).await?;
        serde_json::from_slice(&answer).map_err(ClientError::Decode)
    }

    /// Opens the SSE stream at `path`, resuming after `last_event_id` when given.
    pub async fn stream(
        &self,
        path: &str,
        last_event_id: Option<u64>,
    ) -> Result<EventStream, ClientError> {
        let response = self.send(Method::GET, path, None, last_event_id).await?;
        let response = check(response).await?;
        Ok(EventStream {
            body: response.into_body(),
            parser: SseParser::new(),
            ready: VecDeque::new(),
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        last_event_id: Option<u64>,
    ) -> Result<Bytes, ClientError> {
        let response = self.send(method, path, body, last_event_id).await?;
        let response = check(response).await?;
        collect(response.into_body()).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        last_event_id: Option<u64>,
    ) -> Result<Response<Incoming>, ClientError> {
        let mut request = Request::builder().method(method).uri(path);
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(ClientError::http)?;
        self.forward(request).await
    }

    /// Sends `request` as it is (method, path, headers, body) and returns the answer
    /// unread, whatever its status: what a proxy onto the socket (the web console) needs.
    pub async fn forward(
        &self,
        mut request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, ClientError> {
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| ClientError::Connect {
                    socket: self.socket.clone(),
                    source,
                })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(ClientError::http)?;
        // Drives the connection until the response body is dropped; its errors surface
        // through `send_request` and the body.
        tokio::spawn(connection);
        request
            .headers_mut()
            .insert(header::HOST, header::HeaderValue::from_static("herder"));
        sender
            .send_request(request)
            .await
            .map_err(ClientError::http)
    }
}

/// The response itself when successful, else its error body as [`ClientError::Api`].
async fn check(response: Response<Incoming>) -> Result<Response<Incoming>, ClientError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = collect(response.into_body()).await?;
    let error = match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(body) => body.error,
        Err(_) => ErrorDetail {
            code: format!("http-{}", status.as_u16()),
            message: format!(
                "herder answered {status}: {}",
                String::from_utf8_lossy(&body).trim()
            ),
            hint: None,
            suggestions: Vec::new(),
        },
    };
    Err(ClientError::Api { status, error })
}

async fn collect(body: Incoming) -> Result<Bytes, ClientError> {
    body.collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(ClientError::http)
}

/// An open SSE stream.
#[derive(Debug)]
pub struct EventStream {
    body: Incoming,
    parser: SseParser,
    ready: VecDeque<SseMessage>,
}

impl EventStream {
    /// The next event; `None` when the server ended the stream.
    pub async fn next(&mut self) -> Result<Option<SseMessage>, ClientError> {
        loop {
            if let Some(message) = self.ready.pop_front() {
                return Ok(Some(message));
            }
            let Some(frame) = self.body.frame().await else {
                return Ok(None);
            };
            let frame = frame.map_err(ClientError::http)?;
            if let Ok(data) = frame.into_data() {
                let messages = self.parser.push(&data).map_err(ClientError::Stream)?;
                self.ready.extend(messages);
            }
        }
    }
}

/// `/v1/children/<name><suffix>` with `name` percent-encoded, so any input makes a valid URI.
pub fn child_path(name: &str, suffix: &str) -> String {
    let mut path = String::from("/v1/children/");
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            path.push(char::from(byte));
        } else {
            path.push_str(&format!("%{byte:02X}"));
        }
    }
    path.push_str(suffix);
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_paths_are_encoded() {
        assert_eq!(child_path("web-0", "/logs"), "/v1/children/web-0/logs");
        assert_eq!(child_path("a b/../c", ""), "/v1/children/a%20b%2F..%2Fc");
    }
}
