//! The composition root of `herder up`: every part of the pipeline, created and wired in
//! the one order that is safe, so that the CLI only parses arguments, presents, and calls
//! these three steps.
//!
//! 1. [`Daemon::prepare`] starts the watcher and waits for its first scan, which the caller
//!    judges (an invalid set never starts anything; some scan errors are about watching,
//!    not about the manifests).
//! 2. [`Daemon::start`] stops what a killed predecessor left running (also under the instance
//!    name herder 0.1 used, see [`paths::legacy_instance_name`]), starts the spawner and
//!    reaper (so herder is a subreaper before its first child), binds the control socket
//!    (refusing to run twice for one directory), and opens the event log and the log book.
//!    The caller may then start more listeners on [`Running::control`].
//! 3. [`Running::run`] serves the socket and runs the reconciler, with the first scan as
//!    its first desired set (a valid set is read once: the scan that validates it is
//!    applied), until everything has stopped; then it gives the log and event writers a
//!    moment to reach the disk.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api;
use crate::events::{EventKind, EventLog};
use crate::paths;
use crate::reconcile::Control;
use crate::reconcile::outcome::Outcome;
use crate::reconcile::run::{Wiring, run as reconcile};
use crate::supervise::cgroup;
use crate::supervise::child::ChildContext;
use crate::supervise::logs::{ForegroundSink, LogBook};
use crate::supervise::spawn::{SpawnError, Spawner};
use crate::supervise::statefile::{StateFile, kill_leftovers};
use crate::watch::{self, Generation, WatchConfig, WatchHandle};

/// How long herder waits at exit for its log and event files to take what is queued.
pub const EXIT_FLUSH: Duration = Duration::from_millis(500);
/// How long herder waits at exit for its children's cgroups to be removed before it removes what is left.
const CGROUP_REMOVAL: Duration = Duration::from_secs(1);

/// What `herder up` was asked to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The manifest directory, canonical.
    pub dir: PathBuf,
    /// The control socket; default `$XDG_RUNTIME_DIR/herder/<instance>.sock`.
    pub socket: Option<PathBuf>,
    /// Logs, events and the state file; default `$XDG_STATE_HOME/herder/<instance>`.
    pub state_dir: Option<PathBuf>,
    /// Print the children's output on herder's stdout.
    pub foreground: bool,
}

/// Why herder could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The state directory cannot be created or written.
    #[error("cannot prepare state directory {}", .path.display())]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The spawner thread cannot start.
    #[error(transparent)]
    Spawner(#[from] SpawnError),
    /// The control socket cannot be served.
    #[error(transparent)]
    Api(#[from] api::ApiError),
    /// Signal handlers cannot be installed.
    #[error("cannot install signal handlers")]
    Signals(#[source] std::io::Error),
    /// The watcher ended before its first scan.
    #[error("the manifest watcher ended before its first scan")]
    Watcher,
}

/// A watched directory whose first scan is in.
pub struct Daemon {
    config: Config,
    watcher: WatchHandle,
    scans: mpsc::Receiver<Generation>,
    first: Generation,
}

impl Daemon {
    /// Starts watching `config.dir` and waits for the first scan. Must be called inside a
    /// tokio runtime.
    pub async fn prepare(config: Config) -> Result<Self, DaemonError> {
        let (watcher, mut scans, _task) = watch::spawn(WatchConfig::new(&config.dir));
        let first = scans.recv().await.ok_or(DaemonError::Watcher)?;
        Ok(Self {
            config,
            watcher,
            scans,
            first,
        })
    }

    /// The first scan, for the caller to judge before anything starts.
    pub fn first_scan(&self) -> &Generation {
        &self.first
    }

    /// Stops leftovers, starts the spawner, binds the socket, opens the logs.
    pub async fn start(self) -> Result<Running, DaemonError> {
        let Self {
            config,
            watcher,
            mut scans,
            first,
        } = self;
        let instance = paths::instance_name(&config.dir);
        let state_dir = config
            .state_dir
            .clone()
            .unwrap_or_else(|| paths::state_dir(&instance));
        let state_error = |source| DaemonError::StateDir {
            path: state_dir.clone(),
            source,
        };
        let logs_dir = state_dir.join("logs");
        std::fs::create_dir_all(&logs_dir).map_err(state_error)?;
        let state_file = state_dir.join("children.json");
        let mut previous = vec![state_file.clone()];
        let legacy = paths::legacy_instance_name(&config.dir);
        if config.state_dir.is_none() && legacy != instance {
            previous.push(paths::state_dir(&legacy).join("children.json"));
        }
        for file in previous.iter().filter(|file| file.exists()) {
            match kill_leftovers(file) {
                Ok(leftovers) if !leftovers.is_empty() => eprintln!(
                    "herder: stopped {} process group(s) left running by a previous herder",
                    leftovers.len()
                ),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "cannot read the state file of a previous run");
                }
            }
        }
        Spawner::global()?;
        let socket = config
            .socket
            .clone()
            .unwrap_or_else(|| paths::socket_path(&instance));
        let listener = api::bind(&socket).await?;
        // After the bind: a second herder of this instance stops there, before it could touch our cgroups.
        let cgroups = cgroup::setup(&instance, cgroup::Preference::from_env());
        print_cgroups(&cgroups);
        let events = EventLog::open(Some(&state_dir.join("events.jsonl"))).map_err(state_error)?;
        let reporter = {
            let events = Arc::clone(&events);
            Arc::new(move |report| {
                let (child, kind) = EventKind::of_log_report(report);
                events.append(Some(&child), None, kind);
            })
        };
        let mut book = LogBook::with_reporter(Some(logs_dir.clone()), Some(reporter));
        if config.foreground {
            book = book.with_foreground(ForegroundSink::detect());
        }
        let logs = Arc::new(book);
        let (child_tx, child_events) = mpsc::unbounded_channel();
        let context = ChildContext::new(child_tx, Arc::clone(&logs))
            .with_state_file(StateFile::open(state_file).map_err(state_error)?)
            .with_cgroups(&cgroups);
        // The reconciler starts from the scan that was judged, then takes the watcher's.
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
            manifest_dir: config.dir.clone(),
        };
        let holds = state_dir.join("holds.json");
        Ok(Running {
            socket,
            state_dir,
            listener,
            control,
            logs,
            closing: CancellationToken::new(),
            cgroups: cgroups.tree,
            wiring: Wiring {
                generations,
                watcher,
                requests,
                events,
                context,
                child_events,
                logs_dir: Some(logs_dir),
                holds: Some(holds),
            },
        })
    }
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

/// Everything wired; nothing served yet.
pub struct Running {
    socket: PathBuf,
    state_dir: PathBuf,
    listener: api::socket::Listener,
    control: Control,
    logs: Arc<LogBook>,
    closing: CancellationToken,
    wiring: Wiring,
    /// herder's cgroup subtrees, removed at the end.
    cgroups: Option<cgroup::Tree>,
}

impl Running {
    /// The reconciler's front door, for more listeners (metrics, web).
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// Cancelled once the reconciler has ended: listeners and printers stop.
    pub fn closing(&self) -> &CancellationToken {
        &self.closing
    }

    /// The event log.
    pub fn events(&self) -> &Arc<EventLog> {
        &self.control.events
    }

    /// The control socket bound.
    pub fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    /// The state directory in use.
    pub fn state_dir(&self) -> &std::path::Path {
        &self.state_dir
    }

    /// Serves the socket and runs the reconciler until everything has stopped. Returns how
    /// it ended and the socket server's task (its error, if any, is the caller's to show).
    pub async fn run(
        self,
    ) -> Result<(Outcome, JoinHandle<Result<(), api::ApiError>>), DaemonError> {
        let Self {
            listener,
            control,
            logs,
            closing,
            wiring,
            state_dir,
            cgroups,
            ..
        } = self;
        let events = Arc::clone(&control.events);
        match crate::sd_notify::Notifier::from_env() {
            Ok(Some(notifier)) => {
                tokio::spawn(crate::sd_notify::run(notifier, control.clone()));
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "NOTIFY_SOCKET is set but unusable"),
        }
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
        let outcome = reconcile(wiring).await.map_err(DaemonError::Signals)?;
        closing.cancel();
        if let Some(tree) = cgroups {
            let removal = tokio::task::spawn_blocking(move || {
                cgroup::cleanup::remove_bases(&tree, CGROUP_REMOVAL)
            });
            if let Ok(removed) = removal.await
                && !removed.failed.is_empty()
            {
                tracing::warn!(failed = ?removed.failed, "cannot remove herder's cgroups; the next start removes them");
            }
        }
        // What the writer threads still hold goes to disk before herder exits, if the disk
        // takes it within a moment.
        logs.flush(EXIT_FLUSH);
        events.flush(EXIT_FLUSH);
        Ok((outcome, server))
    }
}
