//! `herder reload`: ask the running instance to rescan its manifest directory now (as
//! SIGHUP does). The outcome shows in `herder events` (`reload`, `manifest-error`).

use clap::Args;

use super::exit::Exit;
use super::remote::{ConnectArgs, block_on, connect, emit};
use crate::api::wire::Accepted;

/// Arguments of `herder reload`.
#[derive(Debug, Args)]
pub struct ReloadArgs {
    /// How to reach the instance.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Requests the rescan; exit 0, or 4 without a running instance.
pub fn run(args: &ReloadArgs) -> u8 {
    block_on(async {
        let client = connect(&args.connect).await?;
        let _: Accepted = client.post("/v1/reload", &serde_json::json!({})).await?;
        emit("reload requested\n")?;
        Ok(Exit::OK)
    })
}
