//! `herder up [DIR]`: run the manifest set in the foreground and apply every saved edit.
//!
//! This is the presentation around [`crate::daemon`], which wires the pipeline in its safe
//! order: the arguments, the verdict on the first scan (a scan with errors is checked again
//! by `herder validate`, since some are about watching, not about the manifests), the TCP
//! listeners asked for, and the lifecycle events printed on stderr.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::exit::Exit;
use super::validate::{self, ValidateArgs};
use super::{Format, color_enabled, print_error};
use crate::daemon::{Config, Daemon, DaemonError};
use crate::events::{Event, EventKind, EventLog};
use crate::manifest::Report;
use crate::watch::Generation;

/// Arguments of `herder up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The manifest directory to run and watch.
    #[arg(default_value = "herder.d")]
    pub dir: PathBuf,
    /// The control socket (default: `$XDG_RUNTIME_DIR/herder/<instance>.sock`).
    #[arg(long, env = "HERDER_SOCKET")]
    pub socket: Option<PathBuf>,
    /// Where logs, events and the state file go (default: `$XDG_STATE_HOME/herder/<instance>`).
    #[arg(long, env = "HERDER_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Do not print the children's output (it is still captured in logs).
    #[arg(long, short)]
    pub quiet: bool,
    /// The optional TCP listeners (`--metrics`, `--web`).
    #[command(flatten)]
    pub listeners: super::listeners::ListenerArgs,
}

/// Why `herder up` could not run.
#[derive(Debug, thiserror::Error)]
enum UpError {
    #[error("cannot use manifest directory {}", .path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[error(transparent)]
    Listener(#[from] super::listeners::ListenerError),
    #[error("cannot print the manifest diagnostics")]
    Output(#[source] std::io::Error),
}

/// Runs herder in the foreground; returns the exit code.
pub fn run(args: &UpArgs) -> u8 {
    crate::supervise::os::limit_malloc_arenas();
    let dir = match std::fs::canonicalize(&args.dir) {
        Ok(dir) if dir.is_dir() => dir,
        Ok(_) => {
            let source = std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory");
            print_error(&UpError::Dir {
                path: args.dir.clone(),
                source,
            });
            return Exit::USAGE;
        }
        Err(source) => {
            print_error(&UpError::Dir {
                path: args.dir.clone(),
                source,
            });
            return Exit::USAGE;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(up(dir, args)),
        Err(source) => Err(UpError::Runtime(source)),
    };
    match result {
        Ok(code) => u8::try_from(code).unwrap_or(Exit::INVALID),
        Err(error) => {
            print_error(&error);
            Exit::USAGE
        }
    }
}

async fn up(dir: PathBuf, args: &UpArgs) -> Result<i32, UpError> {
    let daemon = Daemon::prepare(Config {
        dir: dir.clone(),
        socket: args.socket.clone(),
        state_dir: args.state_dir.clone(),
        foreground: !args.quiet,
    })
    .await?;
    let first = daemon.first_scan();
    if first.has_errors() {
        // Some errors of a scan are about watching itself (an inotify limit), which herder
        // survives by rescanning; whether the manifests are valid is `herder validate`'s call.
        let verdict = validate::run(&ValidateArgs {
            paths: vec![dir.clone()],
            format: Format::Human,
        });
        if verdict != Exit::OK {
            eprintln!("herder: refusing to start: fix the manifests above");
            return Ok(i32::from(verdict));
        }
    } else {
        validate::write_human(&report(first), color_enabled(&std::io::stderr()))
            .map_err(UpError::Output)?;
    }
    let running = daemon.start().await?;
    args.listeners
        .start(running.control(), running.socket(), running.closing())
        .await?;
    let printer = tokio::spawn(print_events(
        Arc::clone(running.events()),
        color_enabled(&std::io::stderr()),
        running.closing().clone(),
    ));
    eprintln!(
        "herder: watching {} (socket {}, state {})",
        dir.display(),
        running.socket().display(),
        running.state_dir().display()
    );
    let (outcome, server) = running.run().await?;
    // The printer ends once it has printed the last events; a panic in it changes nothing.
    let _ = printer.await;
    if let Ok(Err(error)) = server.await {
        print_error(&error);
    }
    Ok(i32::from(Exit::of(outcome)))
}

/// What `herder validate` says about a directory without errors, from the watcher's first
/// scan: its files, its manifests (a replicated manifest counts once) and its warnings.
fn report(first: &Generation) -> Report {
    let manifests = first
        .desired
        .children
        .values()
        .filter(|spec| spec.replica.unwrap_or(0) == 0)
        .count();
    Report::new(first.files.len(), manifests, first.diagnostics.clone())
}

/// Prints lifecycle events on stderr as they happen, `herder | web: spawned (pid 42)`.
async fn print_events(events: Arc<EventLog>, color: bool, done: CancellationToken) {
    let (backlog, mut live) = events.subscribe_since(0);
    let mut last = 0;
    for event in backlog {
        last = event.seq;
        eprintln!("{}", describe(&event, color));
    }
    loop {
        let received = tokio::select! {
            received = live.recv() => received,
            () = done.cancelled() => {
                // herder is exiting: print what the loop has not reached yet (after a
                // shutdown of thousands of children, thousands of lines), in one buffer
                // rather than a write per line.
                let mut out = std::io::BufWriter::new(std::io::stderr().lock());
                for event in events.since(last, usize::MAX) {
                    // Nothing to do about a closed stderr.
                    let _ = writeln!(out, "{}", describe(&event, color));
                }
                let _ = out.flush();
                return;
            }
        };
        match received {
            Ok(event) if event.seq > last => {
                last = event.seq;
                eprintln!("{}", describe(&event, color));
            }
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                eprintln!("herder | ({missed} events not shown; see `herder events`)");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// One event as a line for people.
fn describe(event: &Event, color: bool) -> String {
    let what = match &event.kind {
        EventKind::Spawned { pid } => format!("spawned (pid {pid})"),
        EventKind::SpawnFailed { error } => format!("cannot spawn: {error}"),
        EventKind::Ready => "ready".to_owned(),
        EventKind::Unhealthy { reason } => format!("unhealthy: {reason}"),
        EventKind::Exited {
            code: Some(code), ..
        } => format!("exited with code {code}"),
        EventKind::Exited {
            signal: Some(signal),
            ..
        } => format!("killed by signal {signal}"),
        EventKind::Exited { .. } => "exited".to_owned(),
        EventKind::Restarting { attempt, delay_ms } => {
            format!("restarting in {delay_ms} ms (attempt {attempt})")
        }
        EventKind::Failed { reason } => format!("failed: {reason}"),
        EventKind::Completed => "completed".to_owned(),
        EventKind::OomKilled { limit: Some(limit) } => {
            format!("killed by the kernel: out of memory (limit {limit})")
        }
        EventKind::OomKilled { limit: None } => "killed by the kernel: out of memory".to_owned(),
        EventKind::PidsLimit { limit } => format!(
            "a fork was refused at the processes limit{}",
            limit.map(|l| format!(" ({l})")).unwrap_or_default()
        ),
        EventKind::LimitRefused { limit, reason } => format!("{limit} limit not applied: {reason}"),
        EventKind::CgroupFallback { reason } => {
            format!("limits by fallback (no cgroup): {reason}")
        }
        EventKind::PortHeld { holder } => format!("waits to start: {holder}"),
        EventKind::Stopped { killed: true } => "stopped (killed after the stop timeout)".to_owned(),
        EventKind::Stopped { killed: false } => "stopped".to_owned(),
        EventKind::Reload {
            generation,
            operations,
        } if operations.is_empty() => format!("manifests generation {generation}: nothing to do"),
        EventKind::Reload {
            generation,
            operations,
        } => {
            const SHOWN: usize = 8;
            let mut text = format!(
                "manifests generation {generation}: {}",
                operations[..operations.len().min(SHOWN)].join(", ")
            );
            if operations.len() > SHOWN {
                text.push_str(&format!(" and {} more", operations.len() - SHOWN));
            }
            text
        }
        EventKind::ManifestError { location, message } => {
            format!("{location}: {message} (keeping the last good version)")
        }
        EventKind::Command {
            verb,
            uid,
            reason,
            allowed,
            ..
        } => format!(
            "{verb} by uid {uid}{}{}",
            if *allowed { "" } else { " refused" },
            reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
        EventKind::Shutdown { reason } => format!("shutting down ({reason})"),
        EventKind::Scheduled { slot, missed } => match missed {
            true => format!("scheduled for missed slot {slot}"),
            false => format!("scheduled for slot {slot}"),
        },
        EventKind::Skipped { slot, reason } => format!("skipped slot {slot}: {reason}"),
        EventKind::LogWriteFailed { error } => {
            format!("cannot write its log file ({error}); counting lost lines")
        }
        EventKind::LogWriteResumed { lost_lines } => {
            format!("writing its log file again ({lost_lines} lines lost)")
        }
    };
    let subject = event
        .child
        .as_deref()
        .map(|child| format!("{child}: "))
        .unwrap_or_default();
    if color {
        format!("\x1b[2mherder |\x1b[0m {subject}{what}")
    } else {
        format!("herder | {subject}{what}")
    }
}
