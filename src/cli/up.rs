//! `herder up [DIR]`: run the manifest set in the foreground and apply every saved edit.
//!
//! Start-up order matters: the watcher starts and its first scan validates the manifests (an
//! invalid set never starts anything; a scan with errors is checked again by `herder
//! validate`, since some are about watching, not about the manifests), then leftovers of a
//! previous herder that was killed are stopped, then the spawner and reaper start (so herder
//! is a subreaper before its first child), then the control socket is bound (refusing to run
//! twice for one directory), and only then does the reconciler begin, with that first scan as
//! its first desired set. A valid set is read once: the scan that validates it is applied.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::exit::Exit;
use super::validate::{self, ValidateArgs};
use super::{Format, color_enabled, print_error};
use crate::api;
use crate::events::{Event, EventKind, EventLog};
use crate::manifest::Report;
use crate::paths;
use crate::reconcile::Control;
use crate::reconcile::run::{Wiring, run as reconcile};
use crate::supervise::cgroup;
use crate::supervise::child::ChildContext;
use crate::supervise::logs::{ForegroundSink, LogBook};
use crate::supervise::spawn::Spawner;
use crate::supervise::statefile::{StateFile, kill_leftovers};
use crate::watch::{self, Generation, WatchConfig};

/// How long herder waits at exit for its log and event files to take what is queued.
const EXIT_FLUSH: std::time::Duration = std::time::Duration::from_millis(500);

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
    #[error("cannot prepare state directory {}", .path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Spawner(#[from] crate::supervise::spawn::SpawnError),
    #[error(transparent)]
    Api(#[from] api::ApiError),
    #[error(transparent)]
    Listener(#[from] super::listeners::ListenerError),
    #[error("cannot install signal handlers")]
    Signals(#[source] std::io::Error),
    #[error("cannot print the manifest diagnostics")]
    Output(#[source] std::io::Error),
    #[error("the manifest watcher ended before its first scan")]
    Watcher,
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
    let (watcher, mut scans, _watch_task) = watch::spawn(WatchConfig::new(&dir));
    let first = scans.recv().await.ok_or(UpError::Watcher)?;
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
        let report = report(&first);
        validate::write_human(&report, color_enabled(&std::io::stderr()))
            .map_err(UpError::Output)?;
    }
    let instance = paths::instance_name(&dir);
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| paths::state_dir(&instance));
    let logs_dir = state_dir.join("logs");
    std::fs::create_dir_all(&logs_dir).map_err(|source| UpError::StateDir {
        path: logs_dir.clone(),
        source,
    })?;
    let state_file = state_dir.join("children.json");
    match kill_leftovers(&state_file) {
        Ok(leftovers) if !leftovers.is_empty() => eprintln!(
            "herder: stopped {} process group(s) left running by a previous herder",
            leftovers.len()
        ),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot read the state file of a previous run"),
    }
    Spawner::global()?;
    let socket = args
        .socket
        .clone()
        .unwrap_or_else(|| paths::socket_path(&instance));
    let listener = api::bind(&socket).await?;
    // After the bind: a second herder of this instance stops there, before it could touch our cgroups.
    let cgroups = cgroup::setup(&instance, cgroup::Preference::from_env());
    print_cgroups(&cgroups);
    let state_error = |source| UpError::StateDir {
        path: state_dir.clone(),
        source,
    };
    let events = EventLog::open(Some(&state_dir.join("events.jsonl"))).map_err(state_error)?;
    let reporter = {
        let events = Arc::clone(&events);
        Arc::new(move |report| {
            let (child, kind) = EventKind::of_log_report(report);
            events.append(Some(&child), None, kind);
        })
    };
    let mut book = LogBook::with_reporter(Some(logs_dir.clone()), Some(reporter));
    if !args.quiet {
        book = book.with_foreground(ForegroundSink::detect());
    }
    let logs = Arc::new(book);
    let (child_tx, child_events) = mpsc::unbounded_channel();
    let context = ChildContext::new(child_tx, Arc::clone(&logs))
        .with_state_file(StateFile::open(state_file).map_err(state_error)?)
        .with_cgroups(&cgroups);
    // The reconciler starts from the scan that was validated, then takes the watcher's.
    let (generations_tx, generations) = mpsc::channel(1);
    tokio::spawn(async move {
        let mut next = Some(first);
        while let Some(generation) = next {
            if generations_tx.send(generation).await.is_err() {
                return;
            }
            next = scans.recv().await;
        }
    });
    let (requests_tx, requests) = mpsc::channel(256);
    let control = Control {
        requests: requests_tx,
        events: Arc::clone(&events),
        manifest_dir: dir.clone(),
    };
    let closing = CancellationToken::new();
    args.listeners.start(&control, &socket, &closing).await?;
    // Ends with the reconciler (its requests fail then).
    tokio::spawn(crate::schedule::dispatch::run(
        control.clone(),
        Some(state_dir.join("schedule.json")),
    ));
    let server = tokio::spawn(api::serve(
        listener,
        control,
        Arc::clone(&logs),
        closing.clone().cancelled_owned(),
    ));
    let printer = tokio::spawn(print_events(
        Arc::clone(&events),
        color_enabled(&std::io::stderr()),
        closing.clone(),
    ));
    eprintln!(
        "herder: watching {} (socket {}, state {})",
        dir.display(),
        socket.display(),
        state_dir.display()
    );
    let outcome = reconcile(Wiring {
        generations,
        watcher,
        requests,
        events: Arc::clone(&events),
        context,
        child_events,
        logs_dir: Some(logs_dir),
        holds: Some(state_dir.join("holds.json")),
    })
    .await
    .map_err(UpError::Signals)?;
    closing.cancel();
    // The printer ends once it has printed the last events; a panic in it changes nothing.
    let _ = printer.await;
    // What the writer threads still hold goes to disk before herder exits, if the disk
    // takes it within a moment.
    logs.flush(EXIT_FLUSH);
    events.flush(EXIT_FLUSH);
    if let Ok(Err(error)) = server.await {
        print_error(&error);
    }
    Ok(i32::from(Exit::of(outcome)))
}

/// The cgroup detection, and the leftovers of a killed predecessor that were removed.
fn print_cgroups(setup: &cgroup::Setup) {
    let d = &setup.detection;
    let layout = serde_json::to_value(d.layout).unwrap_or_default();
    let controllers: Vec<String> = d
        .controllers
        .iter()
        .filter_map(|c| serde_json::to_value(c).ok()?.as_str().map(str::to_owned))
        .collect();
    eprintln!(
        "herder: cgroups: {} ({}): {}",
        layout.as_str().unwrap_or("?"),
        if controllers.is_empty() {
            "nothing usable".to_owned()
        } else {
            controllers.join(", ")
        },
        d.detail
    );
    let left = &setup.leftovers;
    if left.cgroups > 0 {
        eprintln!(
            "herder: removed {} cgroup(s) left by a previous herder ({} process(es) killed)",
            left.cgroups, left.processes
        );
    }
    for failure in &left.failed {
        eprintln!("herder: {failure}");
    }
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
                // herder is exiting: print what the loop has not reached yet.
                for event in events.since(last, usize::MAX) {
                    eprintln!("{}", describe(&event, color));
                }
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
        EventKind::CgroupFallback { reason } => {
            format!("limits by fallback (no cgroup): {reason}")
        }
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
