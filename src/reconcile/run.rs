//! The reconciler task: the thin async shell around [`Reconciler`].
//!
//! One `select!` turns each arrival (a new desired set from the watcher, a child actor's
//! report, an API request, a signal) into an [`Input`], lets the synchronous core decide,
//! and carries out the [`Effect`]s. It is the only owner of the child handles; actors
//! report back on one channel, each report naming its incarnation. Requests from the API
//! are answered in [`requests`](super::requests), the views they ask for are built in
//! [`views`](super::views).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::control::{ControlError, Request};
use super::core::{Effect, Input, Observation, Reconciler};
use super::holds::HoldStore;
use super::outcome::Outcome;
use crate::events::{EventKind, EventLog};
use crate::manifest::diagnostic::Diagnostic;
use crate::manifest::model::Signal;
use crate::supervise::child::Ack;
use crate::supervise::child::{ChildContext, ChildHandle, spawn_child};
use crate::supervise::event::{ChildEvent, ChildEventKind};
use crate::watch::{Generation, WatchHandle};

/// A generation that changed at least this many files returns free heap memory to the
/// system once applied.
const TRIM_AFTER_FILES: usize = 64;

/// What the reconciler task needs from its surroundings.
pub struct Wiring {
    /// New desired sets from the watcher.
    pub generations: mpsc::Receiver<Generation>,
    /// Lets SIGHUP and `herder reload` ask the watcher for a rescan.
    pub watcher: WatchHandle,
    /// Requests from the control API.
    pub requests: mpsc::Receiver<Request>,
    /// The event log this task writes.
    pub events: Arc<EventLog>,
    /// What child actors need: the spawner, the log book, the report channel.
    pub context: ChildContext,
    /// The receiving end of the actors' report channel.
    pub child_events: mpsc::UnboundedReceiver<ChildEvent>,
    /// Where per-child log files are written, if anywhere.
    pub logs_dir: Option<PathBuf>,
    /// Where operator holds are kept across restarts of herder (`holds.json`), if anywhere.
    pub holds: Option<PathBuf>,
}

/// Runs until everything has stopped after a shutdown; returns how it ended.
pub async fn run(wiring: Wiring) -> std::io::Result<Outcome> {
    let Wiring {
        mut generations,
        watcher,
        mut requests,
        events,
        context,
        mut child_events,
        logs_dir,
        holds,
    } = wiring;
    let holds = HoldStore::open(holds);
    let mut core = Reconciler::new();
    core.restore_holds(holds.holds());
    let mut shell = Shell {
        core,
        holds,
        handles: HashMap::new(),
        events,
        context,
        watcher,
        logs_dir,
        errors: Vec::new(),
        reloads: 0,
        last_reload_ms: None,
        exit: None,
    };
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut watcher_open = true;
    let mut requests_open = true;
    while shell.exit.is_none() {
        tokio::select! {
            Some(event) = child_events.recv() => shell.child_event(event),
            generation = generations.recv(), if watcher_open => match generation {
                Some(generation) => shell.generation(generation),
                None => watcher_open = false,
            },
            request = requests.recv(), if requests_open => match request {
                Some(request) => shell.request(request),
                None => requests_open = false,
            },
            _ = interrupt.recv() => shell.shutdown("SIGINT"),
            _ = terminate.recv() => shell.shutdown("SIGTERM"),
            _ = hangup.recv() => shell.watcher.rescan_now(),
        }
    }
    Ok(shell.exit.unwrap_or(Outcome::Stopped))
}

/// The reconciler task's state: the core, the child handles and what the views report.
pub(super) struct Shell {
    pub(super) core: Reconciler,
    pub(super) holds: HoldStore,
    pub(super) handles: HashMap<(String, u64), ChildHandle>,
    pub(super) events: Arc<EventLog>,
    pub(super) context: ChildContext,
    pub(super) watcher: WatchHandle,
    pub(super) logs_dir: Option<PathBuf>,
    pub(super) errors: Vec<Diagnostic>,
    pub(super) reloads: u64,
    pub(super) last_reload_ms: Option<f64>,
    exit: Option<Outcome>,
}

impl Shell {
    pub(super) fn apply(&mut self, input: Input) -> Result<(), ControlError> {
        let effects = self.core.step(input)?;
        for effect in effects {
            self.effect(effect);
        }
        Ok(())
    }

    pub(super) fn effect(&mut self, effect: Effect) {
        match effect {
            Effect::Spawn {
                name,
                incarnation,
                spec,
            } => {
                let handle = spawn_child(spec, incarnation, &self.context);
                self.handles.insert((name, incarnation), handle);
            }
            // The actor acknowledges a stop only once its process group is gone; the loop
            // must not wait for that, the actor's `Stopped` report is what counts. An actor
            // that is already gone cannot report, so its stop is confirmed here.
            Effect::Stop { name, incarnation } => {
                let reports = self.context.events.clone();
                let gone = ChildEvent {
                    name: name.clone(),
                    incarnation,
                    kind: ChildEventKind::Stopped { killed: false },
                };
                match self.handles.get(&(name, incarnation)).cloned() {
                    Some(handle) => {
                        tokio::spawn(async move {
                            if handle.stop().await.is_err() {
                                // The receiver lives as long as the reconciler loop.
                                let _ = reports.send(gone);
                            }
                        });
                    }
                    None => {
                        let _ = reports.send(gone);
                    }
                }
            }
            Effect::Update {
                name,
                incarnation,
                spec,
            } => self.send(&name, incarnation, |handle| async move {
                handle.update(spec).await
            }),
            Effect::Restart { name, incarnation } => {
                self.send(&name, incarnation, |handle| async move {
                    handle.restart().await
                });
            }
            Effect::Signal {
                name,
                incarnation,
                signal,
            } => self.send(&name, incarnation, move |handle| async move {
                match signal {
                    Signal::Sigstop => handle.pause().await,
                    Signal::Sigcont => handle.resume().await,
                    other => handle.signal(other.into()).await,
                }
            }),
            Effect::KillAll => {
                for handle in self.handles.values() {
                    handle.kill_now();
                }
                self.exit = Some(Outcome::Killed);
            }
            Effect::Exit(outcome) => self.exit = Some(outcome),
        }
    }

    /// Runs a command on an incarnation's actor in the background.
    fn send<F, Fut>(&self, name: &str, incarnation: u64, command: F)
    where
        F: FnOnce(ChildHandle) -> Fut,
        Fut: std::future::Future<Output = Ack> + Send + 'static,
    {
        let Some(handle) = self.handles.get(&(name.to_owned(), incarnation)) else {
            return;
        };
        let pending = command(handle.clone());
        tokio::spawn(async move {
            if let Err(error) = pending.await {
                tracing::debug!(%error, "child command not carried out");
            }
        });
    }

    fn generation(&mut self, generation: Generation) {
        let started = Instant::now();
        for error in generation
            .diagnostics
            .iter()
            .filter(|e| !self.errors.contains(e))
        {
            self.events.append(
                None,
                None,
                EventKind::ManifestError {
                    location: format!("{}:{}:{}", error.file.display(), error.line, error.column),
                    message: error.message.clone(),
                },
            );
        }
        self.errors = generation.diagnostics;
        if generation.desired.same_children(self.core.desired()) {
            return;
        }
        let number = generation.desired.generation;
        // A desired set is always accepted; commands are the only inputs that can be refused.
        // Its effects only start actors and send stops: every report they cause arrives
        // later, so the reload event still precedes them in the log.
        let _ = self.apply(Input::Desired(generation.desired));
        let operations = self
            .core
            .plan()
            .steps
            .iter()
            .map(|step| format!("{} {}", step.operation.verb(), step.name))
            .collect();
        self.events.append(
            None,
            None,
            EventKind::Reload {
                generation: number,
                operations,
            },
        );
        self.reloads += 1;
        self.last_reload_ms = Some(started.elapsed().as_secs_f64() * 1e3);
        // Loading many manifests is herder's memory peak: give it back, off this task. A
        // small edit leaves little to return and is not worth a walk of the heap.
        if generation.files.len() >= TRIM_AFTER_FILES {
            tokio::task::spawn_blocking(crate::supervise::release_free_memory);
        }
    }

    fn child_event(&mut self, event: ChildEvent) {
        let ChildEvent {
            name,
            incarnation,
            kind,
        } = event;
        let (public, observation) = match kind {
            ChildEventKind::Spawned { pid } => {
                (Some(EventKind::Spawned { pid }), Some(Observation::Spawned))
            }
            ChildEventKind::SpawnFailed { error } => (
                Some(EventKind::SpawnFailed { error }),
                Some(Observation::Exited),
            ),
            ChildEventKind::Ready => (Some(EventKind::Ready), Some(Observation::Ready)),
            ChildEventKind::NotReady { reason } => (
                Some(EventKind::Unhealthy { reason }),
                Some(Observation::NotReady),
            ),
            ChildEventKind::Unhealthy { reason } => (Some(EventKind::Unhealthy { reason }), None),
            ChildEventKind::Healthy => (None, None),
            ChildEventKind::Exited { code, signal } => (
                Some(EventKind::Exited { code, signal }),
                Some(Observation::Exited),
            ),
            ChildEventKind::Restarting { attempt, delay } => (
                Some(EventKind::Restarting {
                    attempt,
                    delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                }),
                None,
            ),
            ChildEventKind::Failed { reason } => (
                Some(EventKind::Failed { reason }),
                Some(Observation::Failed),
            ),
            ChildEventKind::Completed => (Some(EventKind::Completed), Some(Observation::Completed)),
            ChildEventKind::OomKilled { limit } => (
                Some(EventKind::OomKilled {
                    limit: limit.map(|l| crate::manifest::units::ByteSize(l).to_string()),
                }),
                None,
            ),
            ChildEventKind::PidsLimit { limit } => (Some(EventKind::PidsLimit { limit }), None),
            ChildEventKind::LimitRefused { limit, reason } => {
                (Some(EventKind::LimitRefused { limit, reason }), None)
            }
            ChildEventKind::CgroupFallback { reason } => {
                (Some(EventKind::CgroupFallback { reason }), None)
            }
            ChildEventKind::PortHeld { holder } => (Some(EventKind::PortHeld { holder }), None),
            ChildEventKind::Stopped { killed } => {
                self.handles.remove(&(name.clone(), incarnation));
                (
                    Some(EventKind::Stopped { killed }),
                    Some(Observation::Stopped),
                )
            }
        };
        if let Some(public) = public {
            self.events.append(Some(&name), Some(incarnation), public);
        }
        if let Some(observation) = observation {
            let was_shutting_down = self.core.is_shutting_down();
            let failed = observation == Observation::Failed;
            // Observations are never refused.
            let _ = self.apply(Input::Observed {
                name: name.clone(),
                incarnation,
                observation,
            });
            if failed && !was_shutting_down && self.core.is_shutting_down() {
                // A critical child's permanent failure began the shutdown: say so, as a
                // signal or `herder down` does.
                self.events.append(
                    None,
                    None,
                    EventKind::Shutdown {
                        reason: format!("critical child {name} failed"),
                    },
                );
            }
        }
    }

    pub(super) fn shutdown(&mut self, reason: &str) {
        if !self.core.is_shutting_down() {
            self.events.append(
                None,
                None,
                EventKind::Shutdown {
                    reason: reason.to_owned(),
                },
            );
        }
        let _ = self.apply(Input::Shutdown {
            reason: reason.to_owned(),
        });
    }
}
