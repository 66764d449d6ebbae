//! The control API (DESIGN.md §7): HTTP/1.1 and JSON over a Unix socket, versioned under
//! `/v1`, with Server-Sent Event streams for events and logs; and its client, used by the
//! operator commands of the CLI.
//!
//! * [`socket`]: binding the socket safely (0600 in a 0700 directory, stale-socket
//!   detection, one server per socket) and finding running instances;
//! * [`serve`]: the axum server `herder up` runs over a [`Control`](crate::reconcile::Control)
//!   and the [`LogBook`](crate::supervise::logs::LogBook);
//! * [`client`]: hyper over `UnixStream`, with a small SSE parser ([`sse`]);
//! * [`wire`]: the JSON bodies both sides share.
//!
//! Every endpoint, its bodies, status codes, the SSE format and the auth model are in
//! `docs/api.md`.
//!
//! ```no_run
//! # async fn up(control: herder::reconcile::Control,
//! #             logs: std::sync::Arc<herder::supervise::logs::LogBook>) -> Result<(), herder::api::ApiError> {
//! let listener = herder::api::bind(std::path::Path::new("/run/user/1000/herder/app.sock")).await?;
//! herder::api::serve(listener, control, logs, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

pub mod client;
pub mod error;
mod extract;
pub mod metrics;
mod routes;
pub mod server;
pub mod socket;
pub mod sse;
mod streams;
pub mod wait;
pub mod wire;

pub use client::{Client, ClientError};
pub use error::{ApiError, HttpError};
pub use server::serve;
pub use socket::{DiscoverError, Listener, bind, discover};
