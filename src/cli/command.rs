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
use crate::api::ClientError;
use crate::api::client::child_path;
use crate::api::wire::{CommandRequest, CommandResponse};
use crate::manifest::model::Signal;
use crate::reconcile::StatusReport;

/// Arguments of the commands on one child.
#[derive(Debug, Args)]
pub struct CommandArgs {
    /// The child.
    #[arg(required_unless_present = "all")]
    pub name: Option<String>,
    /// Every child instead of one (`herder stop --all`); a child that refuses (permissions,
    /// quarantine, nothing running) is reported and the others go ahead.
    #[arg(long, conflicts_with = "name")]
    pub all: bool,
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

/// Runs `verb` (one of [`VERBS`](crate::api::wire::VERBS) but `signal`) on the child, or
/// on every child with `--all`.
pub fn run(verb: &'static str, args: &CommandArgs) -> u8 {
    let request = CommandRequest {
        reason: args.reason.clone(),
        signal: None,
    };
    match &args.name {
        Some(name) => send(verb, name, &request, &args.connect),
        None => send_all(verb, &request, &args.connect),
    }
}

/// `verb` on every child the instance knows, one request each, in name order.
fn send_all(verb: &'static str, request: &CommandRequest, connect_args: &ConnectArgs) -> u8 {
    block_on(async {
        let client = connect(connect_args).await?;
        let report: StatusReport = client.get("/v1/status").await?;
        let mut refused = 0;
        for child in &report.children {
            let path = child_path(&child.name, &format!("/{verb}"));
            match client.post::<_, CommandResponse>(&path, request).await {
                Ok(done) => emit(&format!("{}: {} requested\n", done.child, done.command))?,
                Err(ClientError::Api { error, .. }) => {
                    refused += 1;
                    eprintln!("herder: {}: {}", child.name, error.message);
                }
                Err(other) => return Err(other.into()),
            }
        }
        Ok(if refused == 0 { Exit::OK } else { Exit::FAILED })
    })
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
