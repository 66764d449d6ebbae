//! The reconciler task: the thin async shell around [`Reconciler`].
//!
//! One `select!` turns each arrival (a new desired set from the watcher, a child actor's
//! report, an API request, a signal) into an [`Input`], lets the synchronous core decide,
//! and carries out the [`Effect`]s. It is the only owner of the child handles; actors
//! report back on one channel, each report naming its incarnation.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::control::{ChildDetail, ChildStatus, ControlError, LimitStatus, Request, StatusReport};
use super::core::{Command, CommandError, Effect, Hold, Input, Observation, Phase, Reconciler};
use crate::events::{EventKind, EventLog};
use crate::manifest::ChildSpec;
use crate::manifest::diagnostic::Diagnostic;
use crate::manifest::model::Signal;
use crate::plan::{self, Observed, ObservedChild};
use crate::supervise::child::{Ack, ChildState};
use crate::supervise::child::{ChildContext, ChildHandle, spawn_child};
use crate::supervise::event::{ChildEvent, ChildEventKind};
use crate::supervise::limits::LimitReport;
use crate::supervise::os::signal_group;
use crate::watch::{Generation, WatchHandle};

/// Exit code after a second shutdown signal killed everything at once.
pub const EXIT_KILLED: i32 = 130;

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
}

/// Runs until everything has stopped after a shutdown; returns herder's exit code.
pub async fn run(wiring: Wiring) -> std::io::Result<i32> {
    let Wiring {
        mut generations,
        watcher,
        mut requests,
        events,
        context,
        mut child_events,
        logs_dir,
    } = wiring;
    let mut shell = Shell {
        core: Reconciler::new(),
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
    Ok(shell.exit.unwrap_or(0))
}

struct Shell {
    core: Reconciler,
    handles: HashMap<(String, u64), ChildHandle>,
    events: Arc<EventLog>,
    context: ChildContext,
    watcher: WatchHandle,
    logs_dir: Option<PathBuf>,
    errors: Vec<Diagnostic>,
    reloads: u64,
    last_reload_ms: Option<f64>,
    exit: Option<i32>,
}

impl Shell {
    fn apply(&mut self, input: Input) -> Result<(), ControlError> {
        let effects = self.core.step(input)?;
        for effect in effects {
            self.effect(effect);
        }
        Ok(())
    }

    fn effect(&mut self, effect: Effect) {
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
                    other => handle.signal(other.number()).await,
                }
            }),
            Effect::KillAll => {
                for handle in self.handles.values() {
                    if let Some(pid) = handle.snapshot().pid {
                        // Already gone is fine: we are killing everything anyway.
                        let _ = signal_group(pid, nix::sys::signal::Signal::SIGKILL);
                    }
                }
                self.exit = Some(EXIT_KILLED);
            }
            Effect::Exit(code) => self.exit = Some(code),
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
            tokio::task::spawn_blocking(crate::supervise::os::release_free_memory);
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
            ChildEventKind::CgroupFallback { reason } => {
                (Some(EventKind::CgroupFallback { reason }), None)
            }
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

    fn shutdown(&mut self, reason: &str) {
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

    fn request(&mut self, request: Request) {
        // A requester that went away does not care about the answer.
        match request {
            Request::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Request::Child { name, reply } => {
                let _ = reply.send(self.detail(&name));
            }
            Request::Command {
                command,
                peer,
                reason,
                reply,
            } => {
                let verdict = self.command(command, peer.uid, peer.pid, reason);
                let _ = reply.send(verdict);
            }
            Request::Batch {
                verb,
                children,
                peer,
                reason,
                reply,
            } => {
                let names = children.unwrap_or_else(|| self.names());
                let mut verdicts = Vec::with_capacity(names.len());
                let mut admitted = Vec::new();
                for name in names {
                    let command = verb.on(name.clone());
                    let verdict = self.admit(&command, peer.uid, peer.pid, reason.clone());
                    if verdict.is_ok() {
                        admitted.push((verdicts.len(), command));
                    }
                    verdicts.push((name, verdict));
                }
                // One pass of the core for the whole batch: it plans once, not per child.
                let (slots, commands): (Vec<usize>, Vec<Command>) = admitted.into_iter().unzip();
                let (outcomes, effects) = self.core.commands(commands);
                for (slot, outcome) in slots.into_iter().zip(outcomes) {
                    verdicts[slot].1 = outcome.map_err(ControlError::from);
                }
                for effect in effects {
                    self.effect(effect);
                }
                let _ = reply.send(verdicts);
            }
            Request::Reload { peer, reply } => {
                self.audit(None, "reload", (peer.uid, peer.pid), None, true);
                self.watcher.rescan_now();
                let _ = reply.send(());
            }
            Request::Plan { desired, reply } => {
                let desired = desired.as_ref().unwrap_or(self.core.desired());
                let _ = reply.send(plan::plan(desired, &self.observed()));
            }
            Request::Shutdown {
                peer,
                reason,
                reply,
            } => {
                self.audit(None, "down", (peer.uid, peer.pid), reason.clone(), true);
                self.shutdown(reason.as_deref().unwrap_or("herder down"));
                let _ = reply.send(());
            }
        }
    }

    /// Records an operator command, on `child` if it names one.
    fn audit(
        &self,
        child: Option<&str>,
        verb: &str,
        peer: (u32, Option<i32>),
        reason: Option<String>,
        allowed: bool,
    ) {
        let (uid, pid) = peer;
        self.events.append(
            child,
            None,
            EventKind::Command {
                verb: verb.to_owned(),
                uid,
                pid,
                reason,
                allowed,
            },
        );
    }

    fn command(
        &mut self,
        command: Command,
        uid: u32,
        pid: Option<i32>,
        reason: Option<String>,
    ) -> Result<(), ControlError> {
        self.admit(&command, uid, pid, reason)?;
        self.apply(Input::Command(command))
    }

    /// Audits an operator command and decides whether the core may see it: the child must
    /// exist, the peer must be permitted, and herder must not be shutting down.
    fn admit(
        &mut self,
        command: &Command,
        uid: u32,
        pid: Option<i32>,
        reason: Option<String>,
    ) -> Result<(), ControlError> {
        let (verb, name) = command.describe();
        let known =
            self.core.desired().children.contains_key(name) || self.core.slots().contains_key(name);
        let allowed = known && self.permitted(command);
        self.audit(Some(name), verb, (uid, pid), reason, allowed);
        if !known {
            return Err(CommandError::UnknownChild(name.to_owned()).into());
        }
        if !allowed {
            return Err(ControlError::Forbidden {
                name: name.to_owned(),
                verb: verb.to_owned(),
            });
        }
        if self.core.is_shutting_down() {
            return Err(ControlError::ShuttingDown);
        }
        Ok(())
    }

    /// `command_permissions` of the child's spec in force (desired, else running).
    fn permitted(&self, command: &Command) -> bool {
        let (_, name) = command.describe();
        let spec = self.core.desired().children.get(name).or_else(|| {
            self.core
                .slots()
                .get(name)?
                .current
                .as_ref()
                .map(|run| &run.spec)
        });
        let Some(spec) = spec else {
            return false;
        };
        let permissions = &spec.manifest.command_permissions;
        match command {
            Command::Restart(_) => permissions.restart,
            Command::Stop(_) | Command::Pause(_) | Command::Quarantine(..) => permissions.stop,
            Command::Signal(_, signal) => permissions.signals.contains(signal),
            Command::Start(_) | Command::Resume(_) | Command::Release(_) => true,
        }
    }

    fn observed(&self) -> Observed {
        Observed {
            children: self
                .core
                .slots()
                .iter()
                .filter_map(|(name, slot)| {
                    let spec = Arc::clone(&slot.current.as_ref()?.spec);
                    Some((name.clone(), ObservedChild { spec }))
                })
                .collect(),
        }
    }

    /// Every child the reconciler knows (desired or still running), by name.
    fn names(&self) -> Vec<String> {
        let desired = self.core.desired().children.keys();
        let running = self.core.slots().keys();
        let mut names: Vec<String> = desired.chain(running).cloned().collect();
        names.sort();
        names.dedup();
        names
    }

    fn status(&self) -> StatusReport {
        StatusReport {
            generation: self.core.desired().generation,
            children: self
                .names()
                .iter()
                .map(|name| self.child_status(name))
                .collect(),
            errors: self.errors.clone(),
            reloads: self.reloads,
            last_reload_ms: self.last_reload_ms,
            shutting_down: self.core.is_shutting_down(),
            cgroups: self.context.cgroup_detection.as_deref().cloned(),
        }
    }

    fn child_status(&self, name: &str) -> ChildStatus {
        let desired = self.core.desired().children.get(name);
        let slot = self.core.slots().get(name);
        let run = slot.and_then(|slot| slot.current.as_ref());
        let spec = run.map(|run| &run.spec).or(desired);
        let mut status = ChildStatus {
            name: name.to_owned(),
            source: spec.map(|spec| spec.source.clone()),
            description: spec.and_then(|spec| spec.manifest.description.clone()),
            labels: spec
                .map(|spec| spec.manifest.labels.clone())
                .unwrap_or_default(),
            incarnation: run.map(|run| run.incarnation),
            ..ChildStatus::default()
        };
        let handle = run.and_then(|run| self.handles.get(&(name.to_owned(), run.incarnation)));
        if let (Some(handle), Some(spec)) = (handle, spec) {
            let live = handle.snapshot();
            status.pid = live.pid;
            status.restarts = live.restarts;
            status.ready = live.ready;
            status.healthy = live.healthy;
            status.last_exit = live.last_exit.map(|exit| exit.to_string());
            status.state = if live.paused {
                "paused".to_owned()
            } else if live.state.is_ready() && !live.ready {
                "unhealthy".to_owned()
            } else if live.ready && live.state.is_ready() {
                "ready".to_owned()
            } else {
                live.state.phase().to_owned()
            };
            status.reason = state_reason(&live.state);
            if live.pid.is_some() {
                status.uptime_secs = live.since.elapsed().ok().map(|age| age.as_secs_f64());
            }
            status.limits = limit_statuses(spec, &live.limits);
            status.usage = live.pid.map(|_| handle.usage());
        }
        let hold = slot.and_then(|slot| slot.hold.as_ref());
        match (hold, run) {
            (Some(Hold::Quarantined { reason }), _) => {
                status.state = "quarantined".into();
                status.reason = reason.clone();
            }
            (Some(Hold::Stopped), None) => status.state = "stopped".into(),
            (_, Some(run)) if handle.is_none() && run.phase == Phase::Starting => {
                status.state = "starting".into();
            }
            (_, None) if desired.is_some_and(|spec| !spec.manifest.enabled) => {
                status.state = "disabled".into();
            }
            (_, None) if slot.is_some_and(|slot| !slot.stopping.is_empty()) => {
                status.state = "stopping".into();
            }
            (_, None) => {
                status.state = "waiting".into();
                status.reason = desired.and_then(|spec| self.waiting_for(spec));
            }
            _ => {}
        }
        status
    }

    /// "waiting for db (ready), migrate (completed)": the unmet dependencies.
    fn waiting_for(&self, spec: &crate::manifest::ChildSpec) -> Option<String> {
        let unmet: Vec<String> = self
            .core
            .unmet_dependencies(spec)
            .map(|dep| format!("{} ({:?})", dep.name, dep.condition).to_lowercase())
            .collect();
        (!unmet.is_empty()).then(|| format!("waiting for {}", unmet.join(", ")))
    }

    fn detail(&self, name: &str) -> Option<ChildDetail> {
        let known =
            self.core.desired().children.contains_key(name) || self.core.slots().contains_key(name);
        if !known {
            return None;
        }
        let spec = self
            .core
            .slots()
            .get(name)
            .and_then(|slot| slot.current.as_ref().map(|run| Arc::clone(&run.spec)))
            .or_else(|| self.core.desired().children.get(name).cloned());
        Some(ChildDetail {
            status: self.child_status(name),
            spec: spec.map(|spec| (*spec.manifest).clone()),
            log_file: self
                .logs_dir
                .as_ref()
                .map(|dir| dir.join(format!("{name}.log"))),
        })
    }
}

/// The reason carried by a failed or exited state, if any.
fn state_reason(state: &ChildState) -> Option<String> {
    match state {
        ChildState::Failed { reason } => Some(reason.clone()),
        _ => None,
    }
}

/// Each configured limit, its value as written, and how it is enforced here.
fn limit_statuses(spec: &ChildSpec, report: &LimitReport) -> Vec<LimitStatus> {
    let limits = &spec.manifest.resource_limits;
    let entries = [
        (
            "memory",
            limits.memory.map(|v| v.to_string()),
            report.memory,
        ),
        ("cpu", limits.cpu.map(|v| v.to_string()), report.cpu),
        (
            "open_files",
            limits.open_files.map(|v| v.to_string()),
            report.open_files,
        ),
        (
            "processes",
            limits.processes.map(|v| v.to_string()),
            report.processes,
        ),
    ];
    entries
        .into_iter()
        .filter_map(|(name, value, enforcement)| {
            Some(LimitStatus {
                name: name.to_owned(),
                value: value?,
                enforcement: enforcement?,
            })
        })
        .collect()
}
