//! `herder down`: ordered shutdown of the running instance (as Ctrl-C on `herder up`):
//! dependents stop before what they depend on, then herder exits.
//!
//! By default it waits until the instance has gone: it follows the event stream, which
//! the server ends when it stops, so there is nothing to poll. `--no-wait` returns as
//! soon as the shutdown has begun.

use clap::Args;

use super::exit::Exit;
use super::remote::{ConnectArgs, block_on, connect, emit};
use crate::api::wire::{Accepted, ShutdownRequest};

/// Arguments of `herder down`.
#[derive(Debug, Args)]
pub struct DownArgs {
    /// Why: recorded in the event log with your uid and pid.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Return once the shutdown has begun instead of waiting for the instance to exit.
    #[arg(long)]
    pub no_wait: bool,
    /// How to reach the instance.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Shuts the instance down; exit 0, or 4 without a running instance.
pub fn run(args: &DownArgs) -> u8 {
    block_on(async {
        let client = connect(&args.connect).await?;
        // Subscribed before asking, so the end of the stream cannot be missed.
        let mut stream = if args.no_wait {
            None
        } else {
            Some(client.stream("/v1/events/stream", None).await?)
        };
        let request = ShutdownRequest {
            reason: args.reason.clone(),
        };
        let _: Accepted = client.post("/v1/shutdown", &request).await?;
        emit("herder is shutting down\n")?;
        if let Some(stream) = stream.as_mut() {
            // The server ends the stream as it stops; a broken connection means the same.
            while let Ok(Some(_)) = stream.next().await {}
            emit("herder has stopped\n")?;
        }
        Ok(Exit::OK)
    })
}
