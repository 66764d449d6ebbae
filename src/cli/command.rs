//! The operator commands on one child: `restart`, `stop`, `start`, `pause`, `resume`,
//! `quarantine`, `release`, `run` (`NAME [--reason TEXT]`) and `signal NAME SIG`.
//!
//! Each is one `POST /v1/children/NAME/VERB`, and `--all` is one `POST /v1/commands/VERB`
//! that the instance applies to every child in one pass; the instance checks each child's
//! `command_permissions` and records the command, your uid and pid and the reason in its
//! event log. Exit 0 when carried out, 1 when refused (unknown child, not permitted, not
//! running, quarantined; with `--all`, when any child refused), 4 without a running
//! instance.

use clap::Args;

use super::exit::Exit;
use super::remote::{ConnectArgs, block_on, connect, emit};
use crate::api::client::child_path;
use crate::api::wire::{BatchRequest, BatchResponse, CommandRequest, CommandResponse};
use crate::manifest::model::Signal;
use crate::reconcile::VerbName;

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

/// Runs `verb` (any but `signal`) on the child, or on every child with `--all`.
pub fn run(verb: VerbName, args: &CommandArgs) -> u8 {
    let request = CommandRequest {
        reason: args.reason.clone(),
        signal: None,
    };
    match &args.name {
        Some(name) => send(verb, name, &request, &args.connect),
        None => send_all(verb, &request, &args.connect),
    }
}

/// `verb` on every child the instance knows, in one request: the instance applies it to
/// each child in name order and answers with every verdict.
fn send_all(verb: VerbName, request: &CommandRequest, connect_args: &ConnectArgs) -> u8 {
    block_on(async {
        let client = connect(connect_args).await?;
        let batch = BatchRequest {
            children: None,
            reason: request.reason.clone(),
            signal: request.signal.clone(),
        };
        let done: BatchResponse = client.post(&format!("/v1/commands/{verb}"), &batch).await?;
        let mut accepted = String::new();
        let mut refused = 0;
        for result in &done.results {
            match &result.error {
                None => {
                    accepted.push_str(&format!("{}: {} requested\n", result.child, done.command))
                }
                Some(error) => {
                    refused += 1;
                    eprintln!("herder: {}: {}", result.child, error.message);
                }
            }
        }
        emit(&accepted)?;
        Ok(if refused == 0 { Exit::OK } else { Exit::FAILED })
    })
}

/// Runs `herder signal`.
pub fn run_signal(args: &SignalArgs) -> u8 {
    let request = CommandRequest {
        reason: args.reason.clone(),
        signal: Some(args.signal.name().to_owned()),
    };
    send(VerbName::Signal, &args.name, &request, &args.connect)
}

fn send(verb: VerbName, name: &str, request: &CommandRequest, connect_args: &ConnectArgs) -> u8 {
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
