//! The operator commands on one child: `restart`, `stop`, `start`, `pause`, `resume`,
//! `quarantine`, `release` (`NAME [--reason TEXT]`) and `signal NAME SIG`.
//!
//! Each is one `POST /v1/children/NAME/VERB`; the instance checks the child's
//! `command_permissions` and records the command, your uid and pid and the reason in its
//! event log. Exit 0 when carried out, 1 when refused (unknown child, not permitted, not
//! running, quarantined), 4 without a running instance.

use clap::Args;

use super::exit::Exit;
use super::remote::{ConnectArgs, block_on, connect, emit};
use crate::api::client::child_path;
use crate::api::wire::{CommandRequest, CommandResponse};
use crate::manifest::model::Signal;

/// Arguments of the commands on one child.
#[derive(Debug, Args)]
pub struct CommandArgs {
    /// The child.
    pub name: String,
    /// Why: recorded in the event log with your uid and pid.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// How to reach the instance.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Arguments of `herder signal`.
#[derive(Debug, Args)]
pub struct SignalArgs {
    /// The child.
    pub name: String,
    /// The signal: `SIGHUP`, `HUP` or `hup` (the child's `command_permissions.signals` must allow it).
    pub signal: Signal,
    /// Why: recorded in the event log with your uid and pid.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// How to reach the instance.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Runs `verb` (one of [`VERBS`](crate::api::wire::VERBS) but `signal`) on the child.
pub fn run(verb: &'static str, args: &CommandArgs) -> u8 {
    let request = CommandRequest {
        reason: args.reason.clone(),
        signal: None,
    };
    send(verb, &args.name, &request, &args.connect)
}

/// Runs `herder signal`.
pub fn run_signal(args: &SignalArgs) -> u8 {
    let request = CommandRequest {
        reason: args.reason.clone(),
        signal: Some(args.signal.name().to_owned()),
    };
    send("signal", &args.name, &request, &args.connect)
}

fn send(
    verb: &'static str,
    name: &str,
    request: &CommandRequest,
    connect_args: &ConnectArgs,
) -> u8 {
    block_on(async {
        let client = connect(connect_args).await?;
        let path = child_path(name, &format!("/{verb}"));
        let done: CommandResponse = client.post(&path, request).await?;
        // Accepted by the reconciler; the process side follows asynchronously.
        let text = match &request.signal {
            Some(signal) => format!("{}: {signal} requested\n", done.child),
            None => format!("{}: {} requested\n", done.child, done.command),
        };
        emit(&text)?;
        Ok(Exit::OK)
    })
}
