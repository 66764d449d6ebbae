//! The watch task: events in, quiet window, rescan, generations out.
//!
//! One task owns the [`Scanner`] and the [`Watches`]. It sleeps on a single deadline, the
//! earliest of: the end of the current burst's quiet window, the settle rescan that confirms
//! pending removals, and the safety rescan (60 s; a few seconds while watching is broken).
//! A burst whose events all name manifest files reads those files only
//! ([`Scanner::scan_paths`]), as does the settle rescan (it re-reads the files on hold);
//! any other event, the safety rescan and [`WatchHandle::rescan_now`] scan the whole
//! directory.
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
use super::scan::{DEFAULT_SETTLE, Scan, ScanIo, Scanner};
use super::watcher::{Hints, Signals, Watches};

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
    io: Arc<Mutex<ScanIo>>,
}

impl WatchHandle {
    /// Asks for a full rescan now, skipping the quiet window (SIGHUP, `herder reload`). A
    /// generation follows only if something changed.
    pub fn rescan_now(&self) {
        self.requests.notify_one();
    }

    /// The file-system work of the scans so far (as of the last scan).
    pub fn io(&self) -> ScanIo {
        *self.io.lock().unwrap_or_else(PoisonError::into_inner)
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
    let io = Arc::default();
    let handle = WatchHandle {
        requests: Arc::clone(&requests),
        io: Arc::clone(&io),
    };
    let task = tokio::spawn(run(config, requests, sender, io));
    (handle, receiver, task)
}

async fn run(
    config: WatchConfig,
    requests: Arc<Notify>,
    sender: mpsc::Sender<Generation>,
    io: Arc<Mutex<ScanIo>>,
) {
    let dir = std::path::absolute(&config.dir).unwrap_or_else(|_| config.dir.clone());
    let signals = Arc::new(Signals::default());
    let state = Arc::new(Mutex::new(State {
        scanner: Scanner::new(dir.clone(), config.settle),
        watches: Watches::new(dir, Arc::clone(&signals)),
        secret_dirs: BTreeSet::new(),
    }));

    let mut burst: Option<Burst> = None;
    let mut hints = Hints::default();
    let mut settle_at: Option<Instant> = None;
    let mut safety_at = Instant::now();
    loop {
        let now = Instant::now();
        let burst_due = burst.is_some_and(|b| b.deadline(&config.quiet) <= now);
        let settle_due = settle_at.is_some_and(|at| at <= now);
        let safety_due = safety_at <= now;
        if burst_due || settle_due || safety_due {
            burst = None;
            let what = if safety_due {
                None
            } else {
                let taken = std::mem::take(&mut hints);
                (!taken.full).then_some(taken.files)
            };
            let Some(scan) = rescan(&state, now, what).await else {
                return;
            };
            *io.lock().unwrap_or_else(PoisonError::into_inner) = state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .scanner
                .io();
            settle_at = scan.scan.settle_at;
            let interval = if scan.healthy {
                config.safety
            } else {
                config.degraded
            };
            safety_at = Instant::now() + interval;
            if scan.rescan_again {
                // A change may have slipped in before the new watch: look at everything.
                hints.full = true;
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
                hints.merge(signals.take_hints());
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

/// Syncs the watches, scans (only `paths` when the events named nothing else and watching
/// works), and syncs the watches again with the secret folders the scan found. `None` if
/// the blocking pool is gone (runtime shutting down).
async fn rescan(
    state: &Arc<Mutex<State>>,
    now: Instant,
    paths: Option<BTreeSet<PathBuf>>,
) -> Option<Rescan> {
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
        let scan = match &paths {
            Some(paths) if watches.healthy() => scanner.scan_paths(now, watches.problems(), paths),
            _ => scanner.scan(now, watches.problems()),
        };
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
