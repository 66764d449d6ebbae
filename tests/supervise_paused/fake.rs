//! The fake [`Launcher`] and the harness every test of this binary drives the real child actor with.
//!
//! The fake spawns nothing. A spawn of the child's command (`fake`) is a "process" that runs until the test
//! crashes it ([`Fake::crash`]) or herder stops it (SIGTERM or SIGKILL end it at once, as they would a process
//! that does not linger). Any other spawn is an `exec` probe, named by its program, whose outcome the test
//! scripts ([`Fake::script`]): passes, fails, or hangs (its exit never arrives).
//!
//! [`Run`] starts the actor on a fresh fake and stamps every event and every published status with the
//! (paused) instant it appeared at, so the tests can assert exact times relative to the start.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::future::BoxFuture;
use herder::manifest::{ChildSpec, Manifest};
use herder::supervise::child::{ChildContext, ChildHandle, ChildStatus, spawn_child};
use herder::supervise::event::ChildEventKind;
use herder::supervise::launcher::Launcher;
use herder::supervise::logs::LogBook;
use herder::supervise::os::ExitStatus;
use herder::supervise::spawn::{Command, SpawnRequest, Spawned};
use nix::sys::signal::Signal;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, timeout};

/// Far above any real pid (Linux's pid_max is at most 2^22): a signal can never reach a real process.
const FAKE_PID: i32 = 1 << 30;

/// The program of the child itself in every manifest of these tests; any other program is a probe.
pub const CHILD: &str = "fake";

/// What one attempt of an `exec` probe does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Exits 0 at once.
    Pass,
    /// Exits 1 at once.
    Fail,
    /// Never exits.
    Hang,
}

/// One spawn the fake was asked for.
#[derive(Debug, Clone)]
pub struct Spawn {
    /// When.
    pub at: Instant,
    /// The program (first word of the command).
    pub program: String,
    /// The pid the fake gave it.
    pub pid: i32,
}

#[derive(Debug, Default)]
struct State {
    spawns: Vec<Spawn>,
    /// The exits of the child's runs that have not ended yet, by pid.
    running: Vec<(i32, oneshot::Sender<ExitStatus>)>,
    /// Per probe program, its outcomes to come; the last one repeats. Unscripted probes pass.
    scripts: HashMap<String, VecDeque<Probe>>,
    /// Exits of hung probes, held so that they never arrive (a dropped sender is an exit "lost" at once).
    hung: Vec<oneshot::Sender<ExitStatus>>,
    signals: Vec<(Instant, i32, Signal)>,
}

/// Spawns nothing; see the module documentation.
#[derive(Debug, Default)]
pub struct Fake {
    state: Mutex<State>,
}

impl Fake {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("the fake's state is not poisoned")
    }

    /// The attempts of probe `program` will do `outcomes`, in order, the last one from then on.
    pub fn script(&self, program: &str, outcomes: impl IntoIterator<Item = Probe>) {
        let outcomes: VecDeque<Probe> = outcomes.into_iter().collect();
        assert!(!outcomes.is_empty(), "a script needs at least one outcome");
        self.state().scripts.insert(program.to_owned(), outcomes);
    }

    /// Every spawn of `program`, in order.
    pub fn spawns_of(&self, program: &str) -> Vec<Spawn> {
        let state = self.state();
        let spawns = state.spawns.iter().filter(|s| s.program == program);
        spawns.cloned().collect()
    }

    /// Every signal sent to a process group, with when.
    pub fn signals(&self) -> Vec<(Instant, i32, Signal)> {
        self.state().signals.clone()
    }

    /// The child's current run exits with `status`.
    pub fn crash(&self, status: ExitStatus) {
        let (_, exit) = self
            .state()
            .running
            .pop()
            .expect("a run of the child is up");
        exit.send(status).expect("the actor waits for the exit");
    }
}

impl Launcher for Fake {
    fn spawn(&self, request: SpawnRequest) -> BoxFuture<'static, Result<Spawned, String>> {
        let program = match &request.program.command {
            Command::Argv(argv) => argv.first().cloned().unwrap_or_default(),
            Command::Shell(line) => line.clone(),
        };
        let (tx, exit) = oneshot::channel();
        let mut state = self.state();
        let pid = FAKE_PID + state.spawns.len() as i32 + 1;
        state.spawns.push(Spawn {
            at: Instant::now(),
            program: program.clone(),
            pid,
        });
        if program == CHILD {
            state.running.push((pid, tx));
        } else {
            let outcome = match state.scripts.get_mut(&program) {
                Some(script) if script.len() > 1 => script.pop_front(),
                Some(script) => script.front().copied(),
                None => None,
            };
            match outcome.unwrap_or(Probe::Pass) {
                Probe::Pass => {
                    let _ = tx.send(ExitStatus::exited(0));
                }
                Probe::Fail => {
                    let _ = tx.send(ExitStatus::exited(1));
                }
                Probe::Hang => state.hung.push(tx),
            }
        }
        Box::pin(async move {
            Ok(Spawned {
                pid,
                start_time: None,
                exit,
                stdout: None,
                stderr: None,
            })
        })
    }

    fn signal_group(&self, pgid: i32, signal: Signal) -> io::Result<bool> {
        let mut state = self.state();
        state.signals.push((Instant::now(), pgid, signal));
        if matches!(signal, Signal::SIGTERM | Signal::SIGKILL)
            && let Some(i) = state.running.iter().position(|(pid, _)| *pid == pgid)
        {
            let (_, exit) = state.running.remove(i);
            let _ = exit.send(ExitStatus::signaled(signal as i32));
        }
        Ok(true)
    }

    fn group_exists(&self, _pgid: i32) -> bool {
        false
    }

    fn reaps(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}

/// Paused clock: this bound is virtual time, reached only if the actor waits for nothing else.
const BOUND: Duration = Duration::from_secs(3600);

/// The actor of one child on a fresh fake, and what it reported, stamped with when.
pub struct Run {
    /// The launcher the actor uses.
    pub fake: Arc<Fake>,
    /// Keeps the actor alive.
    pub child: ChildHandle,
    /// When the actor was started (and the first spawn asked for: the fake answers at once).
    pub t0: Instant,
    events: mpsc::UnboundedReceiver<(Instant, ChildEventKind)>,
    statuses: Arc<Mutex<Vec<(Instant, ChildStatus)>>>,
}

fn spec(dir: &std::path::Path, manifest: serde_json::Value) -> Arc<ChildSpec> {
    let manifest: Manifest = serde_json::from_value(manifest).expect("manifest");
    Arc::new(ChildSpec {
        name: manifest.name.clone(),
        replica: None,
        manifest: Arc::new(manifest),
        source: dir.join("m.yaml"),
        base_dir: dir.to_path_buf(),
        secret_digests: Default::default(),
    })
}

impl Run {
    /// Starts the child of `manifest` (whose command is [`CHILD`]); `script` runs on the fake first.
    pub fn start(manifest: serde_json::Value, script: impl FnOnce(&Fake)) -> Self {
        let fake = Arc::new(Fake::default());
        script(&fake);
        let (tx, mut raw) = mpsc::unbounded_channel();
        let mut ctx = ChildContext::new(tx, Arc::new(LogBook::new(None)));
        ctx.launcher = fake.clone();
        ctx.seed = Some(0);
        let t0 = Instant::now();
        // Nothing is read from the directory: the fake runs no command and the manifests hold no files.
        let child = spawn_child(spec(&std::env::temp_dir(), manifest), 1, &ctx);
        // Stamped as they come: the clock only moves on once every task is idle, so these instants are exact.
        let (stamped, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(ev) = raw.recv().await {
                if stamped.send((Instant::now(), ev.kind)).is_err() {
                    break;
                }
            }
        });
        let mut rx = child.status();
        let statuses = Arc::new(Mutex::new(vec![(t0, rx.borrow_and_update().clone())]));
        let log = Arc::clone(&statuses);
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let status = rx.borrow_and_update().clone();
                log.lock()
                    .expect("the status log is not poisoned")
                    .push((Instant::now(), status));
            }
        });
        Self {
            fake,
            child,
            t0,
            events,
            statuses,
        }
    }

    /// Waits (bounded) for the next event that `pred` accepts; returns it with its time since the start.
    pub async fn until(
        &mut self,
        what: &str,
        pred: impl Fn(&ChildEventKind) -> bool,
    ) -> (Duration, ChildEventKind) {
        let mut seen = self.record_until(what, pred).await;
        seen.pop().expect("the last one is the match")
    }

    /// Every event up to and including the next one `pred` accepts (bounded), with times since the start.
    pub async fn record_until(
        &mut self,
        what: &str,
        pred: impl Fn(&ChildEventKind) -> bool,
    ) -> Vec<(Duration, ChildEventKind)> {
        let mut seen = Vec::new();
        loop {
            match timeout(BOUND, self.events.recv()).await {
                Ok(Some((at, kind))) => {
                    let done = pred(&kind);
                    seen.push((at - self.t0, kind));
                    if done {
                        return seen;
                    }
                }
                Ok(None) => panic!("event channel closed while waiting for {what}; saw {seen:?}"),
                Err(_) => panic!("timed out waiting for {what}; saw {seen:?}"),
            }
        }
    }

    /// Every event already reported, with times since the start (waits for nothing).
    pub fn drain(&mut self) -> Vec<(Duration, ChildEventKind)> {
        let mut seen = Vec::new();
        while let Ok((at, kind)) = self.events.try_recv() {
            seen.push((at - self.t0, kind));
        }
        seen
    }

    /// Lets virtual time run until `offset` after the start.
    pub async fn advance_to(&self, offset: Duration) {
        tokio::time::sleep_until(self.t0 + offset).await;
    }

    /// The successive values of `field` in the published status, each with when it took it (the first is
    /// the initial status at 0); a value repeated by later statuses is listed once.
    pub fn changes<T: PartialEq>(&self, field: impl Fn(&ChildStatus) -> T) -> Vec<(Duration, T)> {
        let statuses = self
            .statuses
            .lock()
            .expect("the status log is not poisoned");
        let mut out: Vec<(Duration, T)> = Vec::new();
        for (at, status) in statuses.iter() {
            let value = field(status);
            if out.last().is_none_or(|(_, last)| *last != value) {
                out.push((*at - self.t0, value));
            }
        }
        out
    }

    /// The instants of every attempt of probe `program`, as times since the start.
    pub fn attempts(&self, program: &str) -> Vec<Duration> {
        let spawns = self.fake.spawns_of(program);
        spawns.iter().map(|s| s.at - self.t0).collect()
    }

    /// The instants of every run of the child, as times since the start.
    pub fn runs(&self) -> Vec<Duration> {
        self.attempts(CHILD)
    }
}

/// `n` whole seconds.
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A list of whole seconds.
pub fn at<const N: usize>(offsets: [u64; N]) -> Vec<Duration> {
    offsets.into_iter().map(secs).collect()
}
