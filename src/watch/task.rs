//! The watch task: events in, quiet window, rescan, generations out.
//!
//! One task owns the [`Scanner`] and the [`Watches`]. It sleeps on a single deadline, the
//! earliest of: the end of the current burst's quiet window, the settle rescan that confirms
//! pending removals, and the safety rescan (60 s; a few seconds while watching is broken).
//! Wake-ups come from the notify callback, from [`WatchHandle::rescan_now`] (SIGHUP, `herder
//! reload`) and from that deadline; nothing polls. Scans run on the blocking pool, since they
//! stat and read files.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use super::debounce::{Burst, QuietWindow};
use super::generation::Generation;
use super::scan::{DEFAULT_SETTLE, Scan, Scanner};
use super::watcher::{Signals, Watches};

/// How the watcher behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchConfig {
    /// The manifest directory.
    pub dir: PathBuf,
    /// The quiet window applied to bursts of events.
    pub quiet: QuietWindow,
    /// How long a removal must hold before its children retire.
    pub settle: Duration,
    /// Rescan this often even without events (missed events, network filesystems).
    pub safety: Duration,
    /// Rescan this often while watching is broken (inotify limits).
    pub degraded: Duration,
}

impl WatchConfig {
    /// The defaults for `dir`: 2 ms quiet window, 150 ms settle, 60 s safety rescan, 2 s in
    /// degraded mode.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            quiet: QuietWindow::default(),
            settle: DEFAULT_SETTLE,
            safety: Duration::from_secs(60),
            degraded: Duration::from_secs(2),
        }
    }
}

/// Controls a running watch task. Cheap to clone.
#[derive(Clone, Debug)]
pub struct WatchHandle {
    requests: Arc<Notify>,
}

impl WatchHandle {
    /// Asks for a full rescan now, skipping the quiet window (SIGHUP, `herder reload`). A
    /// generation follows only if something changed.
    pub fn rescan_now(&self) {
        self.requests.notify_one();
    }
}

/// The state the blocking scans work on.
struct State {
    scanner: Scanner,
    watches: Watches,
    secret_dirs: BTreeSet<PathBuf>,
}

/// Starts watching `config.dir` and returns the handle, the stream of generations and the
/// task. The first generation (the initial scan) is sent once the watches are in place, so
/// any change made after receiving it is seen. The task ends when the receiver is dropped.
///
/// Must be called within a tokio runtime.
pub fn spawn(config: WatchConfig) -> (WatchHandle, mpsc::Receiver<Generation>, JoinHandle<()>) {
    let (sender, receiver) = mpsc::channel(16);
    let requests = Arc::new(Notify::new());
    let handle = WatchHandle {
        requests: Arc::clone(&requests),
    };
    let task = tokio::spawn(run(config, requests, sender));
    (handle, receiver, task)
}

async fn run(config: WatchConfig, requests: Arc<Notify>, sender: mpsc::Sender<Generation>) {
    let dir = std::path::absolute(&config.dir).unwrap_or_else(|_| config.dir.clone());
    let signals = Arc::new(Signals::default());
    let state = Arc::new(Mutex::new(State {
        scanner: Scanner::new(dir.clone(), config.settle),
        watches: Watches::new(dir, Arc::clone(&signals)),
        secret_dirs: BTreeSet::new(),
    }));

    let mut burst: Option<Burst> = None;
    let mut settle_at: Option<Instant> = None;
    let mut safety_at = Instant::now();
    loop {
        let now = Instant::now();
        let due = burst.is_some_and(|b| b.deadline(&config.quiet) <= now)
            || settle_at.is_some_and(|at| at <= now)
            || safety_at <= now;
        if due {
            burst = None;
            let Some(scan) = rescan(&state, now).await else {
                return;
            };
            settle_at = scan.scan.settle_at;
            let interval = if scan.healthy {
                config.safety
            } else {
                config.degraded
            };
            safety_at = Instant::now() + interval;
            if scan.rescan_again {
                burst = Some(Burst::start(Instant::now(), 0));
            }
            if let Some(generation) = scan.scan.generation
                && sender.send(generation).await.is_err()
            {
                return;
            }
            continue;
        }

        let deadline = [
            burst.map(|b| b.deadline(&config.quiet)),
            settle_at,
            Some(safety_at),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(safety_at);
        tokio::select! {
            () = sender.closed() => return,
            () = signals.wake.notified() => {
                let events = signals.take_events();
                if events > 0 {
                    let now = Instant::now();
                    match &mut burst {
                        Some(burst) => burst.record(now, events),
                        None => burst = Some(Burst::start(now, events)),
                    }
                }
            }
            () = requests.notified() => safety_at = Instant::now(),
            () = sleep_until(deadline) => {}
        }
    }
}

/// The outcome of one rescan on the blocking pool.
struct Rescan {
    scan: Scan,
    healthy: bool,
    /// A watch was added after the scan: rescan once more, in case a change slipped in
    /// between the scan and the watch.
    rescan_again: bool,
}

/// Syncs the watches, scans, and syncs the watches again with the secret folders the scan
/// found. `None` if the blocking pool is gone (runtime shutting down).
async fn rescan(state: &Arc<Mutex<State>>, now: Instant) -> Option<Rescan> {
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || {
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        let State {
            scanner,
            watches,
            secret_dirs,
        } = &mut *state;
        // Watch first, then list: a file created in between is in the listing.
        watches.sync(secret_dirs);
        let scan = scanner.scan(now, watches.problems());
        let rescan_again = scan.secret_dirs != *secret_dirs && watches.sync(&scan.secret_dirs);
        secret_dirs.clone_from(&scan.secret_dirs);
        Rescan {
            scan,
            healthy: watches.healthy(),
            rescan_again,
        }
    })
    .await
    .ok()
}
