//! The one place that reaps processes: a `waitpid(-1, WNOHANG)` loop woken by `SIGCHLD`.
//!
//! herder is a child subreaper (`PR_SET_CHILD_SUBREAPER`), so orphaned grandchildren are re-parented to it and
//! must be reaped too, or they stay zombies. A `waitpid(-1)` loop cannot coexist with another reaper
//! (`tokio::process`, `std::process::Child::wait`): whoever calls `waitpid` first steals the other's status.
//! Hence the rules: nothing in herder waits for a process except this module, and every process is spawned by
//! [`super::spawn`], which registers the new pid here *while holding the routing lock*. The loop takes the same
//! lock around its `waitpid` calls, so a child that exits immediately cannot be reaped before its owner is
//! registered, and std's own `waitpid` on a failed `exec` (inside `Command::spawn`) never races with us.
//!
//! `SIGCHLD` is coalesced by the kernel, so every wake-up drains *all* terminated children. Each status is sent
//! to the registered owner of its pid; unknown pids (adopted orphans) are logged and discarded. Every reap also
//! bumps a counter that stop paths watch to notice that the last member of a process group has gone.
//!
//! The loop runs on its own thread with a single-threaded tokio runtime rather than as a task of the caller's
//! runtime: the reaper is process-wide and must outlive any runtime (the test harness creates one per test).

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{oneshot, watch};

use super::os::{self, ExitStatus};

/// Resolves to the exit status of one process once the reaper has collected it.
pub type ExitReceiver = oneshot::Receiver<ExitStatus>;

/// Owners waiting for the exit of a pid. Held locked by the spawner across `fork` + registration.
#[derive(Debug, Default)]
pub struct Routes {
    owners: HashMap<i32, oneshot::Sender<ExitStatus>>,
}

impl Routes {
    /// Registers `pid` and returns the receiver of its exit status.
    pub fn register(&mut self, pid: i32) -> ExitReceiver {
        let (tx, rx) = oneshot::channel();
        self.owners.insert(pid, tx);
        rx
    }

    fn route(&mut self, pid: i32, status: ExitStatus) {
        match self.owners.remove(&pid) {
            Some(owner) => {
                // The owner may have been dropped (its actor ended); the status is then of no interest.
                let _ = owner.send(status);
            }
            None => tracing::debug!(pid, %status, "reaped an adopted orphan"),
        }
    }

    /// Number of processes whose exit is awaited.
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    /// `true` when no exit is awaited.
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }
}

/// The process-wide reaper.
#[derive(Debug)]
pub struct Reaper {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    routes: Mutex<Routes>,
    reaps: watch::Sender<u64>,
}

static REAPER: OnceLock<Result<Reaper, String>> = OnceLock::new();

/// Why the process-wide reaper could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the process reaper: {0}")]
pub struct ReaperError(String);

impl Reaper {
    /// The process-wide reaper, started on first use: makes this process a subreaper and starts the loop.
    pub fn global() -> Result<&'static Reaper, ReaperError> {
        let slot = REAPER.get_or_init(|| Reaper::start().map_err(|e| e.to_string()));
        match slot {
            Ok(r) => Ok(r),
            Err(msg) => Err(ReaperError(msg.clone())),
        }
    }

    fn start() -> io::Result<Reaper> {
        os::become_subreaper()?;
        let (reaps, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            routes: Mutex::new(Routes::default()),
            reaps,
        });
        let loop_shared = Arc::clone(&shared);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
        std::thread::Builder::new()
            .name("herder-reaper".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        // The receiver waits for exactly this message.
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    // Register the SIGCHLD handler before the first drain, so no exit can slip between them.
                    let mut sigchld = match signal(SignalKind::child()) {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    // The receiver waits for exactly this message.
                    let _ = ready_tx.send(Ok(()));
                    loop {
                        loop_shared.drain();
                        if sigchld.recv().await.is_none() {
                            tracing::error!(
                                "SIGCHLD stream ended; no more processes will be reaped"
                            );
                            return;
                        }
                    }
                });
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Reaper { shared }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::other("reaper thread ended during start-up")),
        }
    }

    /// Locks the routing table. The spawner holds this across `fork`, `exec` and registration.
    pub fn lock(&self) -> MutexGuard<'_, Routes> {
        self.shared.lock()
    }

    /// A receiver that changes every time any process is reaped (including adopted orphans).
    pub fn reaps(&self) -> watch::Receiver<u64> {
        self.shared.reaps.subscribe()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Routes> {
        // A panic while holding the lock cannot leave the map inconsistent (single insert/remove calls).
        self.routes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn drain(&self) {
        let mut reaped = 0u64;
        {
            let mut routes = self.lock();
            loop {
                match os::reap_one() {
                    Ok(Some(r)) => {
                        reaped += 1;
                        routes.route(r.pid, r.status);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "waitpid failed");
                        break;
                    }
                }
            }
        }
        if reaped > 0 {
            self.reaps.send_modify(|n| *n = n.wrapping_add(reaped));
        }
    }
}
