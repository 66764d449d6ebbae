//! The actor: one tokio task per child incarnation, owning its processes, timers and probes.
//!
//! The loop waits on: commands from handles, the result of the spawn in flight, its own internal messages (probe
//! results, log-line matches, each tagged with the *run* that produced them), the exit of the current process, the
//! memory watchdog, the group-gone check while stopping, and at most one timer: the earliest of the deadlines
//! implied by the state (start timeout, stop deadline, backoff end, next probe, the next group check). A child
//! that runs without probes has no timer at all.
//!
//! An actor lives as long as its child, so its size is paid per child: the channel for internal messages exists
//! only once a probe, a log-line watch, a notification descriptor or a declared port needs it, both channels are
//! futures-channel's (a node per queued message, nothing allocated up front), and the actor is boxed: an async
//! fn keeps its arguments apart from its locals (rust-lang/rust#62958), so an actor passed by value would be
//! stored twice in the task.
//!
//! Every spawn starts a new *run* (a counter). Results from an earlier run (a probe that finished after its
//! process died, a late spawn reply) are ignored, so a restart can never be confused by its predecessor.
//! Decisions are made by the pure [`Machine`] and, for probe timing and pauses, the pure [`Probes`]; this file
//! only turns the world into [`Input`]s and carries out the [`Effect`]s and the attempts that are due.

use std::sync::Arc;
use std::time::Duration;

use futures_channel::mpsc;
use futures_util::StreamExt as _;
use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, sleep_until};

use super::ChildContext;
use super::cgroup::ActorCgroup;
use super::command::{Ack, ChildCommand};
use super::config::RunConfig;
use super::handle::ChildHandle;
use super::notified::NotifyView;
use super::state::{ChildState, Due, Effect, Input, Machine, Probes, Which};
use super::status::ChildStatus;
use crate::manifest::ChildSpec;
use crate::supervise::backoff::{Backoff, FastRand};
use crate::supervise::cgroup::ChildCgroup;
use crate::supervise::cgroup::usage::Meter;
use crate::supervise::event::{ChildEvent, ChildEventKind};
use crate::supervise::limits;
use crate::supervise::logs::ChildLog;
use crate::supervise::memwatch::MemoryWatch;
use crate::supervise::os::ExitStatus;
use crate::supervise::reaper::ExitReceiver;
use crate::supervise::spawn::Spawned;

mod control;
mod group;
mod probes;
mod readiness;
mod spawning;
mod wait;

use wait::{
    cgroup_changed, changed, notify_changed, recv_internal, wait_exit, wait_memory, wait_spawn,
};

/// While waiting for a stopped group's last member, re-check at least this often (members reaped by a parent
/// other than herder do not wake the reaper).
const GROUP_POLL: Duration = Duration::from_millis(100);

/// The outcome of a spawn, for the run that asked for it.
struct SpawnOutcome {
    /// The process, or why not.
    result: Result<Spawned, String>,
    /// The incarnation's cgroup, when this spawn made it.
    made: Option<Arc<ChildCgroup>>,
    /// Why the cgroup could not be made (the child then runs with the fallback).
    fallback: Option<String>,
    /// A stop arrived while it waited for a declared port: nothing was spawned.
    cancelled: bool,
}

enum Internal {
    Probe {
        run: u64,
        which: Which,
        result: Result<(), String>,
    },
    LogMatched {
        run: u64,
    },
    /// The child wrote a newline to its notification descriptor.
    FdReady {
        run: u64,
    },
    /// Who holds a declared port the spawn waits for; `None` once free.
    PortHeld {
        run: u64,
        holder: Option<String>,
    },
}

enum Wake {
    Command(Option<ChildCommand>),
    Spawn(SpawnOutcome),
    Internal(Internal),
    Exit(ExitStatus),
    Memory(u64),
    Cgroup,
    GroupCheck,
    Notify,
    Timer,
}

struct Actor {
    spec: Arc<ChildSpec>,
    incarnation: u64,
    ctx: ChildContext,
    cfg: RunConfig,
    machine: Machine,
    log: Arc<ChildLog>,
    run: u64,
    run_started: Instant,
    /// The result of the current run's spawn, while it is in flight.
    spawning: Option<oneshot::Receiver<SpawnOutcome>>,
    /// Gives up the spawn in flight while it waits for a declared port (a stop arrived).
    spawn_cancel: Option<oneshot::Sender<()>>,
    /// Who holds a declared port the spawn in flight waits for.
    port_holder: Option<String>,
    /// What the current run's notify socket heard, and the view last acted on.
    notify: Option<watch::Receiver<NotifyView>>,
    notify_seen: NotifyView,
    /// The notification descriptor was written to before the spawn was seen to finish.
    ready_early: bool,
    exit: Option<ExitReceiver>,
    memory: Option<(MemoryWatch, oneshot::Receiver<u64>)>,
    /// The incarnation's cgroup, once made.
    cgroup: Option<ActorCgroup>,
    /// Whether making it was attempted (once per incarnation).
    cgroup_tried: bool,
    /// Shared with the handles, which read the usage.
    meter: Arc<Meter>,
    recorded_pid: Option<i32>,
    /// The probe schedule, the watchdog and the paused flag of the current run.
    probes: Probes,
    /// Internal messages (probe results, log-line matches), created on first use.
    inbox: Option<(
        mpsc::UnboundedSender<Internal>,
        mpsc::UnboundedReceiver<Internal>,
    )>,
    status_tx: watch::Sender<ChildStatus>,
    stop_acks: Vec<oneshot::Sender<Ack>>,
    closing: bool,
}

/// Starts the actor of one incarnation of `spec` and returns its handle. Must be called inside a tokio runtime.
///
/// The first spawn is requested at once. Events go to `ctx.events`, output to `ctx.logs`.
pub fn spawn_child(spec: Arc<ChildSpec>, incarnation: u64, ctx: &ChildContext) -> ChildHandle {
    let now = Instant::now();
    let (commands, command_rx) = mpsc::unbounded();
    let (cfg, config_error) = RunConfig::lenient(&spec.manifest);
    let random = Box::new(match ctx.seed {
        Some(seed) => FastRand::seeded(seed ^ incarnation),
        None => FastRand::from_entropy(),
    });
    let backoff = Backoff::new(cfg.backoff, random);
    let (machine, effects) = match &config_error {
        None => Machine::start(cfg.policy.clone(), backoff, now),
        Some(e) => {
            let reason = format!("invalid probe: {e}");
            (
                Machine::failed(cfg.policy.clone(), backoff, reason.clone()),
                vec![Effect::Emit(ChildEventKind::Failed { reason })],
            )
        }
    };
    let log = ctx.logs.child(&spec.name, cfg.rotation);
    let status = ChildStatus {
        name: spec.name.clone(),
        incarnation,
        state: machine.state().clone(),
        pid: None,
        restarts: 0,
        last_exit: None,
        ready: false,
        healthy: None,
        paused: false,
        started: None,
        limits: limits::report(&spec.manifest.resource_limits, None),
        waiting: None,
        notify_status: None,
        notify_state: None,
        run: 0,
    };
    let (status_tx, status_rx) = watch::channel(status);
    let meter = Arc::new(Meter::default());
    let handle = ChildHandle {
        name: spec.name.clone(),
        incarnation,
        commands,
        status: status_rx,
        meter: Arc::clone(&meter),
    };
    let actor = Actor {
        spec,
        incarnation,
        ctx: ctx.clone(),
        cfg,
        machine,
        log,
        run: 0,
        run_started: now,
        spawning: None,
        spawn_cancel: None,
        port_holder: None,
        notify: None,
        notify_seen: NotifyView::default(),
        ready_early: false,
        exit: None,
        memory: None,
        cgroup: None,
        cgroup_tried: false,
        meter,
        recorded_pid: None,
        probes: Probes::default(),
        inbox: None,
        status_tx,
        stop_acks: Vec::new(),
        closing: false,
    };
    tokio::spawn(Box::new(actor).run(effects, now, command_rx));
    handle
}

impl Actor {
    /// Carries out the first effects, then serves until the child is stopped and every handle is gone.
    async fn run(
        mut self: Box<Self>,
        effects: Vec<Effect>,
        now: Instant,
        mut commands: mpsc::UnboundedReceiver<ChildCommand>,
    ) {
        self.apply(effects, now);
        let mut reaps = self.ctx.launcher.reaps();
        loop {
            if self.closing && self.machine.state().is_terminal() {
                break;
            }
            let deadline = self.next_deadline();
            let waiting_group = matches!(
                self.machine.state(),
                ChildState::Stopping {
                    leader_exited: true,
                    ..
                }
            );
            // One timer for both: the state's deadline and, while waiting for the group, its next check
            // (unless the cgroup says when it is empty).
            let notified = self
                .cgroup
                .as_ref()
                .is_some_and(ActorCgroup::notifies_empty);
            let check_at = (waiting_group && !notified).then(|| Instant::now() + GROUP_POLL);
            let wake_at = deadline.into_iter().chain(check_at).min();
            let wake = tokio::select! {
                cmd = commands.next(), if !self.closing => Wake::Command(cmd),
                result = wait_spawn(&mut self.spawning), if self.spawning.is_some() => Wake::Spawn(result),
                Some(msg) = recv_internal(&mut self.inbox), if self.inbox.is_some() => Wake::Internal(msg),
                status = wait_exit(&mut self.exit), if self.exit.is_some() => Wake::Exit(status),
                rss = wait_memory(&mut self.memory), if self.memory.is_some() => Wake::Memory(rss),
                _ = cgroup_changed(&mut self.cgroup) => Wake::Cgroup,
                _ = notify_changed(&mut self.notify), if self.notify.is_some() => Wake::Notify,
                _ = changed(&mut reaps), if waiting_group => Wake::GroupCheck,
                _ = sleep_until(wake_at.unwrap_or_else(Instant::now)), if wake_at.is_some() => {
                    match deadline {
                        Some(deadline) if Instant::now() >= deadline => Wake::Timer,
                        _ => Wake::GroupCheck,
                    }
                }
            };
            let now = Instant::now();
            match wake {
                Wake::Command(Some(cmd)) => self.command(cmd, now),
                Wake::Spawn(outcome) => {
                    self.spawning = None;
                    self.spawn_cancel = None;
                    self.port_holder = None;
                    if let Some(cgroup) = outcome.made {
                        self.meter.set(Arc::clone(&cgroup));
                        self.cgroup = Some(ActorCgroup::new(
                            cgroup,
                            &self.spec.name,
                            &self.spec.manifest.resource_limits,
                        ));
                        // What the child did before the subscription.
                        self.cgroup_news();
                    }
                    if let Some(reason) = outcome.fallback {
                        self.emit(ChildEventKind::CgroupFallback { reason });
                    }
                    match outcome.result {
                        Ok(spawned) => self.on_spawned(spawned, now),
                        Err(_) if outcome.cancelled => self.feed(Input::SpawnCancelled, now),
                        Err(error) => self.feed(Input::SpawnFailed { error }, now),
                    }
                }
                Wake::Command(None) => {
                    // Every handle is gone: stop whatever runs, then end.
                    self.closing = true;
                    self.feed(Input::Stop, now);
                }
                Wake::Internal(msg) => self.internal(msg, now),
                Wake::Exit(mut status) => {
                    self.exit = None;
                    self.end_run_resources();
                    self.cgroup_news();
                    let group_alive = match &self.cgroup {
                        Some(cg) => cg.is_populated(),
                        None => self
                            .machine
                            .state()
                            .pid()
                            .is_some_and(|pid| self.ctx.launcher.group_exists(pid)),
                    };
                    if status.signal == Some(libc::SIGKILL)
                        && self.cgroup.as_ref().is_some_and(ActorCgroup::oom_in_run)
                    {
                        status.oom_limit = self.spec.manifest.resource_limits.memory.map(|m| m.0);
                    }
                    self.probes.leader_exited();
                    self.feed(
                        Input::Exited {
                            status,
                            group_alive,
                        },
                        now,
                    );
                }
                Wake::Memory(rss) => {
                    self.memory = None;
                    let limit = self.cfg.memory_limit.unwrap_or(0);
                    let reason = format!("memory limit exceeded: {} > {}", mib(rss), mib(limit));
                    self.feed(Input::MemoryExceeded { reason }, now);
                }
                Wake::Cgroup => {
                    self.cgroup_news();
                    if waiting_group {
                        self.group_check(now);
                    }
                }
                Wake::GroupCheck => self.group_check(now),
                Wake::Notify => self.on_notify(now),
                Wake::Timer => self.timer(now),
            }
        }
        if let Some(cgroup) = self.cgroup.take() {
            // Removal waits (bounded) for the last members to exit: off the async threads.
            tokio::task::spawn_blocking(move || cgroup.finish());
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        match self.machine.state() {
            state @ (ChildState::Starting { .. } | ChildState::Running { .. }) => {
                self.probes.deadline(state, &self.cfg)
            }
            ChildState::Stopping {
                deadline,
                killed: false,
                ..
            } => Some(*deadline),
            ChildState::Backoff { until, .. } => Some(*until),
            _ => None,
        }
    }

    fn timer(&mut self, now: Instant) {
        match self.machine.state() {
            state @ (ChildState::Starting { .. } | ChildState::Running { .. }) => {
                match self.probes.due(state, &self.cfg, now) {
                    Some(Due::StartTimeout) => self.feed(Input::StartTimeout, now),
                    Some(Due::Unhealthy { reason }) => self.feed(Input::Unhealthy { reason }, now),
                    Some(Due::Attempt(which)) => self.launch_probe(which),
                    None => {}
                }
            }
            ChildState::Stopping { .. } => self.feed(Input::StopDeadline, now),
            ChildState::Backoff { .. } => self.feed(Input::BackoffElapsed, now),
            _ => {}
        }
    }

    /// A sender of internal messages, creating the channel on first use.
    fn inbox_sender(&mut self) -> mpsc::UnboundedSender<Internal> {
        let (tx, _) = self.inbox.get_or_insert_with(mpsc::unbounded);
        tx.clone()
    }

    fn internal(&mut self, msg: Internal, now: Instant) {
        match msg {
            Internal::Probe { run, which, result } if run == self.run => {
                self.on_probe(which, result, now)
            }
            Internal::LogMatched { run } if run == self.run => {
                if matches!(self.machine.state(), ChildState::Starting { .. }) {
                    self.feed(Input::Ready, now);
                }
            }
            Internal::FdReady { run } if run == self.run => match self.machine.state() {
                ChildState::Starting { .. } => self.feed(Input::Ready, now),
                // Written before this actor saw the spawn finish: ready once it has.
                ChildState::Spawning { .. } => self.ready_early = true,
                _ => {}
            },
            Internal::PortHeld { run, holder } if run == self.run => {
                if let Some(holder) = &holder {
                    self.emit(ChildEventKind::PortHeld {
                        holder: holder.clone(),
                    });
                }
                self.port_holder = holder;
                self.publish();
            }
            _ => tracing::trace!(child = %self.spec.name, "ignored a result of an earlier run"),
        }
    }

    fn feed(&mut self, input: Input, now: Instant) {
        let effects = self.machine.step(input, now);
        self.apply(effects, now);
    }

    fn apply(&mut self, effects: Vec<Effect>, now: Instant) {
        let mut events = Vec::new();
        for effect in effects {
            match effect {
                Effect::Spawn => self.start_run(),
                Effect::SignalGroup { pgid, signal } => {
                    if let Some(cg) = self.cgroup.as_mut() {
                        // The whole tree, escapees of the process group included.
                        cg.signal(signal);
                    } else if let Err(e) = self.ctx.launcher.signal_group(pgid, signal) {
                        tracing::warn!(child = %self.spec.name, pgid, error = %e, "cannot signal the process group");
                    }
                }
                Effect::Emit(kind) => events.push(kind),
            }
        }
        // The status first, then the events: whoever acts on an event (a `--wait`, the
        // reconciler's view) then finds the state it announces already published.
        self.on_state(now);
        for kind in events {
            self.emit(kind);
        }
    }

    fn on_state(&mut self, now: Instant) {
        self.probes.on_state(self.machine.state(), &self.cfg, now);
        if matches!(
            self.machine.state(),
            ChildState::Spawning {
                stop_requested: true,
                ..
            }
        ) && let Some(cancel) = self.spawn_cancel.take()
        {
            // Ends a wait for a port; a spawn past that wait goes on, and is stopped.
            let _ = cancel.send(());
        }
        if self.machine.state().pid().is_none() {
            self.end_run_resources();
        }
        if self.machine.state().is_terminal() {
            for ack in self.stop_acks.drain(..) {
                // The requester may have given up waiting.
                let _ = ack.send(Ok(()));
            }
        }
        self.publish();
    }

    fn emit(&self, kind: ChildEventKind) {
        let event = ChildEvent {
            name: self.spec.name.clone(),
            incarnation: self.incarnation,
            kind,
        };
        // The reconciler may be shutting down; events are then of no interest.
        let _ = self.ctx.events.send(event);
    }

    fn publish(&self) {
        let state = self.machine.state().clone();
        let status = ChildStatus {
            name: self.spec.name.clone(),
            incarnation: self.incarnation,
            pid: state.pid(),
            ready: state.is_ready(),
            restarts: self.machine.restarts(),
            last_exit: self.machine.last_exit(),
            healthy: self.probes.healthy(),
            paused: self.probes.paused(),
            started: state.pid().map(|_| self.run_started.into_std()),
            limits: self.limit_report(),
            waiting: self.port_holder.clone(),
            notify_status: self.notify_seen.status.clone(),
            notify_state: self.notify_seen.phase,
            run: self.run,
            state,
        };
        self.status_tx.send_if_modified(|old| {
            let changed = old.state != status.state
                || old.healthy != status.healthy
                || old.paused != status.paused
                || old.limits != status.limits
                || old.restarts != status.restarts
                || old.waiting != status.waiting
                || old.notify_status != status.notify_status
                || old.notify_state != status.notify_state
                || old.run != status.run;
            if changed {
                *old = status;
            }
            changed
        });
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1}Mi", bytes as f64 / (1024.0 * 1024.0))
}
