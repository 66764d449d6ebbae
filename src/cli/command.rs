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
use crate::manifest::selector::Selector;
use crate::reconcile::VerbName;

/// Arguments of the commands on one child.
#[derive(Debug, Args)]
pub struct CommandArgs {
    /// The child.
    #[arg(required_unless_present_any = ["all", "selector"])]
    pub name: Option<String>,
    /// Every child instead of one (`herder stop --all`); a child that refuses (permissions,
    /// quarantine, nothing running) is reported and the others go ahead.
    #[arg(long, conflicts_with_all = ["name", "selector"])]
    pub all: bool,
    /// The children whose labels match (`-l team=core`, `-l 'tier!=edge'`; several must
    /// all hold), like `--all`; none matching is an error.
    #[arg(short = 'l', long, value_name = "KEY=VALUE", conflicts_with = "name")]
    pub selector: Vec<Selector>,
    /// Block until the outcome (ready or completed, stopped) and exit 0, or exit 1 with
    /// the reason (failed, crash loop, timed out, refused). One child only.
    #[arg(long, conflicts_with_all = ["all", "selector"])]
    pub wait: bool,
    /// The longest `--wait`, e.g. `30s` [default: 60s].
    #[arg(long, value_name = "DURATION", requires = "wait")]
    pub timeout: Option<String>,
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
    let wait = args.wait.then(|| WaitArgs {
        timeout: args.timeout.clone(),
    });
    match &args.name {
        Some(name) => send(verb, name, &request, wait.as_ref(), &args.connect),
        None => send_all(
            verb,
            &request,
            Selector::all(args.selector.iter().cloned()),
            &args.connect,
        ),
    }
}

/// `--wait [--timeout D]`.
struct WaitArgs {
    timeout: Option<String>,
}

/// `verb` on every child the instance knows, in one request: the instance applies it to
/// each child in name order and answers with every verdict.
fn send_all(
    verb: VerbName,
    request: &CommandRequest,
    selector: Option<Selector>,
    connect_args: &ConnectArgs,
) -> u8 {
    block_on(async {
        let client = connect(connect_args).await?;
        let batch = BatchRequest {
            children: None,
            reason: request.reason.clone(),
            signal: request.signal.clone(),
            selector: selector.map(|s| s.to_string()),
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
    send(VerbName::Signal, &args.name, &request, None, &args.connect)
}

fn send(
    verb: VerbName,
    name: &str,
    request: &CommandRequest,
    wait: Option<&WaitArgs>,
    connect_args: &ConnectArgs,
) -> u8 {
    block_on(async {
        let client = connect(connect_args).await?;
        let mut path = child_path(name, &format!("/{verb}"));
        if let Some(wait) = wait {
            path.push_str("?wait=true");
            if let Some(timeout) = &wait.timeout {
                path.push_str(&format!("&timeout={}", query_value(timeout)));
            }
        }
        let done: CommandResponse = client.post(&path, request).await?;
        // Accepted by the reconciler; without --wait the process side follows asynchronously.
        let text = match (&request.signal, &done.status) {
            (Some(signal), _) => format!("{}: {signal} requested\n", done.child),
            (None, Some(status)) => format!(
                "{}: {} done, {}\n",
                done.child,
                done.command,
                serde_json::to_value(status.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ),
            (None, None) => format!("{}: {} requested\n", done.child, done.command),
        };
        emit(&text)?;
        Ok(Exit::OK)
    })
}

/// `text` escaped for a URL query value.
pub fn query_value(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' | '~' | '=' | ',' | '!' => {
                c.to_string()
            }
            other => {
                let mut buf = [0; 4];
                other
                    .encode_utf8(&mut buf)
                    .bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect()
            }
        })
        .collect()
}
