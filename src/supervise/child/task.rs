//! The actor: one tokio task per child incarnation, owning its processes, timers and probes.
//!
//! The loop waits on: commands from handles, the result of the spawn in flight, its own internal messages (probe
//! results, log-line matches, each tagged with the *run* that produced them), the exit of the current process, the
//! memory watchdog, the group-gone check while stopping, and at most one timer: the earliest of the deadlines
//! implied by the state (start timeout, stop deadline, backoff end, next probe, the next group check). A child
//! that runs without probes has no timer at all.
//!
//! An actor lives as long as its child, so its size is paid per child: the channel for internal messages exists
//! only once a probe or a log-line watch needs it (an unbounded channel allocates a block of 32 slots up front),
//! and the task's future holds the actor once (it is moved into [`Actor::run`], not captured and moved again).
//!
//! Every spawn starts a new *run* (a counter). Results from an earlier run (a probe that finished after its
//! process died, a late spawn reply) are ignored, so a restart can never be confused by its predecessor.
//! Decisions are made by the pure [`Machine`]; this file only turns the world into [`Input`]s and carries out
//! the [`Effect`]s.

use std::sync::Arc;
use std::time::Duration;

use std::os::fd::OwnedFd;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::Signal;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep_until};

use super::ChildContext;
use super::cgroup::ActorCgroup;
use super::command::{Ack, ChildCommand, CommandError};
use super::config::{self, RunConfig};
use super::handle::ChildHandle;
use super::notified::{self, NotifyView};
use super::state::{ChildState, Effect, Input, Machine};
use super::status::ChildStatus;
use crate::error_chain::ErrorChain;
use crate::manifest::ChildSpec;
use crate::supervise::backoff::{Backoff, FastRand};
use crate::supervise::cgroup::ChildCgroup;
use crate::supervise::cgroup::usage::Meter;
use crate::supervise::event::{ChildEvent, ChildEventKind};
use crate::supervise::limits::{self, LimitReport};
use crate::supervise::logs::ChildLog;
use crate::supervise::logs::pump::{self, LineWatch};
use crate::supervise::logs::redact;
use crate::supervise::memwatch::{self, MemoryWatch};
use crate::supervise::notify::NotifySocket;
use crate::supervise::os::{self, ExitStatus};
use crate::supervise::ports;
use crate::supervise::probe::{self, Check, Counter, ExecEnv, ProbeSpec, Verdict};
use crate::supervise::reaper::ExitReceiver;
use crate::supervise::spawn::{Spawned, Spawner};

/// While waiting for a stopped group's last member, re-check at least this often (members reaped by a parent
/// other than herder do not wake the reaper).
const GROUP_POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Readiness,
    Liveness,
}

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

/// How much a child may write to its notification descriptor before the newline.
const NOTIFICATION_BYTES: usize = 4096;

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

#[derive(Default)]
struct ProbeSlot {
    counter: Counter,
    next: Option<Instant>,
    in_flight: bool,
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
    /// Since when the watchdog counts: the last `WATCHDOG=1`, or becoming ready.
    watchdog_from: Option<Instant>,
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
    readiness: ProbeSlot,
    liveness: ProbeSlot,
    healthy: Option<bool>,
    paused: bool,
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
    let (commands, command_rx) = mpsc::unbounded_channel();
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
        watchdog_from: None,
        ready_early: false,
        exit: None,
        memory: None,
        cgroup: None,
        cgroup_tried: false,
        meter,
        recorded_pid: None,
        readiness: ProbeSlot::default(),
        liveness: ProbeSlot::default(),
        healthy: None,
        paused: false,
        inbox: None,
        status_tx,
        stop_acks: Vec::new(),
        closing: false,
    };
    tokio::spawn(actor.run(effects, now, command_rx));
    handle
}

impl Actor {
    /// Carries out the first effects, then serves until the child is stopped and every handle is gone.
    async fn run(
        mut self,
        effects: Vec<Effect>,
        now: Instant,
        mut commands: mpsc::UnboundedReceiver<ChildCommand>,
    ) {
        self.apply(effects, now);
        let mut reaps = Spawner::global().ok().map(|s| s.reaper().reaps());
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
                cmd = commands.recv(), if !self.closing => Wake::Command(cmd),
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
                        self.cgroup = Some(ActorCgroup::new(cgroup, &self.spec.name));
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
                        None => self.machine.state().pid().is_some_and(os::group_exists),
                    };
                    if status.signal == Some(libc::SIGKILL)
                        && self.cgroup.as_ref().is_some_and(ActorCgroup::oom_in_run)
                    {
                        status.oom_limit = self.spec.manifest.resource_limits.memory.map(|m| m.0);
                    }
                    self.paused = false;
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

    /// Feeds `GroupGone` once nothing of the run is left: its cgroup is empty, else its process group is gone.
    fn group_check(&mut self, now: Instant) {
        let Some(pid) = self.machine.state().pid() else {
            return;
        };
        let alive = match &self.cgroup {
            Some(cg) => cg.is_populated(),
            None => os::group_exists(pid),
        };
        if !alive {
            self.feed(Input::GroupGone, now);
        }
    }

    /// Reports OOM kills and pids-limit refusals the cgroup counted since the last look.
    fn cgroup_news(&mut self) {
        let Some(cg) = self.cgroup.as_mut() else {
            return;
        };
        let news = cg.news();
        let limits = &self.spec.manifest.resource_limits;
        if news.oom_kills > 0 {
            self.emit(ChildEventKind::OomKilled {
                limit: limits.memory.map(|m| m.0),
            });
        }
        if news.pids_max > 0 {
            self.emit(ChildEventKind::PidsLimit {
                limit: limits.processes,
            });
        }
    }

    /// How each limit is enforced for this incarnation.
    fn limit_report(&self) -> LimitReport {
        limits::report(
            &self.spec.manifest.resource_limits,
            self.cgroup.as_ref().map(|cg| &*cg.cgroup),
        )
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
            }
        };
        match self.machine.state() {
            ChildState::Starting { .. } => {
                consider(Some(self.run_started + self.cfg.start_timeout));
                if !self.paused {
                    consider(self.readiness.next);
                }
            }
            ChildState::Running { .. } if !self.paused => {
                consider(self.liveness.next);
                consider(self.watchdog_deadline());
            }
            ChildState::Stopping {
                deadline,
                killed: false,
                ..
            } => consider(Some(*deadline)),
            ChildState::Backoff { until, .. } => consider(Some(*until)),
            _ => {}
        }
        earliest
    }

    fn timer(&mut self, now: Instant) {
        match self.machine.state().clone() {
            ChildState::Starting { .. } => {
                if now >= self.run_started + self.cfg.start_timeout {
                    self.feed(Input::StartTimeout, now);
                } else if self.readiness.next.is_some_and(|t| now >= t) {
                    self.launch_probe(Which::Readiness);
                }
            }
            ChildState::Running { .. } if self.watchdog_deadline().is_some_and(|t| now >= t) => {
                let period = self.cfg.watchdog().unwrap_or_default();
                let reason = format!(
                    "no WATCHDOG=1 within the watchdog period of {}",
                    humantime::format_duration(period)
                );
                self.watchdog_from = None;
                self.healthy = Some(false);
                self.feed(Input::Unhealthy { reason }, now);
            }
            ChildState::Running { .. } if self.liveness.next.is_some_and(|t| now >= t) => {
                self.launch_probe(Which::Liveness);
            }
            ChildState::Stopping { .. } => self.feed(Input::StopDeadline, now),
            ChildState::Backoff { .. } => self.feed(Input::BackoffElapsed, now),
            _ => {}
        }
    }

    fn probe_spec(&self, which: Which) -> Option<&ProbeSpec> {
        match which {
            Which::Readiness => self.cfg.readiness.as_ref(),
            Which::Liveness => self.cfg.liveness.as_ref(),
        }
    }

    fn slot(&mut self, which: Which) -> &mut ProbeSlot {
        match which {
            Which::Readiness => &mut self.readiness,
            Which::Liveness => &mut self.liveness,
        }
    }

    fn launch_probe(&mut self, which: Which) {
        let Some(spec) = self.probe_spec(which).cloned() else {
            self.slot(which).next = None;
            return;
        };
        let slot = self.slot(which);
        slot.next = None;
        slot.in_flight = true;
        let run = self.run;
        let tx = self.inbox_sender();
        let child = Arc::clone(&self.spec);
        let herder_env = Arc::clone(&self.ctx.herder_env);
        tokio::spawn(async move {
            let result = match &spec.check {
                Check::Exec { .. } => match config::exec_env(&child, &herder_env).await {
                    Ok(exec_env) => probe::attempt(&spec.check, spec.timeout, &exec_env).await,
                    Err(e) => Err(format!("exec: {}", ErrorChain::inline(&e))),
                },
                check => probe::attempt(check, spec.timeout, &ExecEnv::default()).await,
            };
            // The actor may have ended; the result is then moot.
            let _ = tx.send(Internal::Probe { run, which, result });
        });
    }

    /// A sender of internal messages, creating the channel on first use.
    fn inbox_sender(&mut self) -> mpsc::UnboundedSender<Internal> {
        let (tx, _) = self.inbox.get_or_insert_with(mpsc::unbounded_channel);
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

    fn on_spawned(&mut self, spawned: Spawned, now: Instant) {
        let pid = spawned.pid;
        self.run_started = now;
        self.exit = Some(spawned.exit);
        if let (Some(sf), Some(start)) = (&self.ctx.state_file, spawned.start_time) {
            sf.record(&self.spec.name, pid, start);
            self.recorded_pid = Some(pid);
        }
        if let Some(cg) = self.cgroup.as_mut() {
            cg.begin_run();
        }
        if let Some(limit) = self.cfg.memory_limit
            && limits::memory_by_watchdog(&self.limit_report())
        {
            self.memory = memwatch::watch(pid, limit);
        }
        let line_regex = match self.cfg.readiness.as_ref().map(|r| &r.check) {
            Some(Check::LogLine(regex)) => Some(regex.clone()),
            _ => None,
        };
        let watch = match line_regex {
            Some(regex) => {
                let (tx, rx) = oneshot::channel();
                let run = self.run;
                let internal = self.inbox_sender();
                tokio::spawn(async move {
                    if rx.await.is_ok() {
                        // The actor may have ended; the match is then moot.
                        let _ = internal.send(Internal::LogMatched { run });
                    }
                });
                Some(LineWatch { regex, matched: tx })
            }
            None => None,
        };
        tokio::spawn(pump::pump(
            spawned.stdout,
            spawned.stderr,
            Arc::clone(&self.log),
            self.incarnation,
            watch,
        ));
        self.feed(Input::Spawned { pid }, now);
        if std::mem::take(&mut self.ready_early)
            && matches!(self.machine.state(), ChildState::Starting { .. })
        {
            self.feed(Input::Ready, now);
        }
    }

    fn on_probe(&mut self, which: Which, result: Result<(), String>, now: Instant) {
        let Some(spec) = self.probe_spec(which).cloned() else {
            return;
        };
        let in_start_period = now < self.run_started + spec.start_period;
        let slot = self.slot(which);
        slot.in_flight = false;
        let verdict = slot.counter.record(result.is_ok(), in_start_period, &spec);
        let live = match which {
            Which::Readiness => matches!(self.machine.state(), ChildState::Starting { .. }),
            Which::Liveness => matches!(self.machine.state(), ChildState::Running { .. }),
        };
        if live {
            self.slot(which).next = Some(now + spec.interval);
        }
        let reason = result.err().unwrap_or_default();
        match (which, verdict) {
            (Which::Readiness, Some(Verdict::Passed)) if live => self.feed(Input::Ready, now),
            (Which::Readiness, Some(Verdict::Failed)) if live => {
                self.emit(ChildEventKind::NotReady { reason });
            }
            (Which::Liveness, Some(Verdict::Passed)) => {
                if self.healthy == Some(false) {
                    self.emit(ChildEventKind::Healthy);
                }
                self.healthy = Some(true);
                self.publish();
            }
            (Which::Liveness, Some(Verdict::Failed)) if live => {
                self.healthy = Some(false);
                self.feed(Input::Unhealthy { reason }, now);
            }
            _ => {}
        }
    }

    fn command(&mut self, cmd: ChildCommand, now: Instant) {
        let name = self.spec.name.clone();
        match cmd {
            ChildCommand::Stop(reply) => {
                if self.machine.state().is_terminal() {
                    // Nothing runs: the machine confirms with `Stopped` at once.
                    self.feed(Input::Stop, now);
                    // The receiver may have given up waiting.
                    let _ = reply.send(Ok(()));
                } else {
                    self.stop_acks.push(reply);
                    self.feed(Input::Stop, now);
                }
            }
            ChildCommand::Restart(reply) => {
                self.feed(Input::Restart, now);
                let _ = reply.send(Ok(()));
            }
            ChildCommand::Pause(reply) => {
                let ack = self.freeze(true).map(|()| {
                    self.paused = true;
                    self.publish();
                });
                let _ = reply.send(ack);
            }
            ChildCommand::Resume(reply) => {
                let ack = self.freeze(false).map(|()| {
                    self.paused = false;
                    let interval = |p: &Option<ProbeSpec>| p.as_ref().map(|p| now + p.interval);
                    if !self.readiness.in_flight && self.readiness.next.is_none() {
                        self.readiness.next = interval(&self.cfg.readiness);
                    }
                    if !self.liveness.in_flight && self.liveness.next.is_none() {
                        self.liveness.next = interval(&self.cfg.liveness);
                    }
                    self.publish();
                });
                let _ = reply.send(ack);
            }
            ChildCommand::Signal(sig, reply) => {
                let _ = reply.send(self.signal_live(sig));
            }
            ChildCommand::Update(spec, reply) => {
                let ack = match RunConfig::from_manifest(&spec.manifest) {
                    Ok(cfg) => {
                        self.apply_update(spec, cfg, now);
                        Ok(())
                    }
                    Err(e) => Err(CommandError::Update {
                        name,
                        message: e.to_string(),
                    }),
                };
                let _ = reply.send(ack);
            }
        }
    }

    fn apply_update(&mut self, spec: Arc<ChildSpec>, cfg: RunConfig, now: Instant) {
        let limits_before = self.spec.manifest.resource_limits.clone();
        let backoff_changed = cfg.backoff != self.cfg.backoff;
        let readiness_changed = cfg.readiness != self.cfg.readiness;
        let liveness_changed = cfg.liveness != self.cfg.liveness;
        self.log.set_rotation(cfg.rotation);
        let memory_changed = cfg.memory_limit != self.cfg.memory_limit;
        let open_files = spec.manifest.resource_limits.open_files;
        let open_files_changed = open_files != self.spec.manifest.resource_limits.open_files;
        let effects = self
            .machine
            .update(cfg.policy.clone(), backoff_changed.then_some(cfg.backoff));
        self.cfg = cfg;
        self.spec = spec;
        if readiness_changed {
            self.readiness = ProbeSlot::default();
            if matches!(self.machine.state(), ChildState::Starting { .. }) {
                self.readiness.next = self.cfg.readiness.as_ref().map(|_| now);
            }
        }
        if liveness_changed {
            self.liveness = ProbeSlot::default();
            self.healthy = None;
            if matches!(self.machine.state(), ChildState::Running { .. }) {
                self.liveness.next = self.cfg.liveness.as_ref().map(|p| now + p.interval);
            }
        }
        if let Some(cg) = &self.cgroup
            && let Err(error) = crate::supervise::cgroup::limits::apply(
                &cg.cgroup,
                &self.spec.manifest.resource_limits,
                &limits_before,
            )
        {
            tracing::warn!(child = %self.spec.name, error = %ErrorChain::inline(&error).to_string(), "cannot apply the new limits");
            self.emit(ChildEventKind::CgroupFallback {
                reason: ErrorChain::inline(&error).to_string(),
            });
        }
        if memory_changed
            && limits::memory_by_watchdog(&self.limit_report())
            && let Some(pid) = self.machine.state().pid()
        {
            self.memory = self
                .cfg
                .memory_limit
                .and_then(|limit| memwatch::watch(pid, limit));
        }
        if open_files_changed
            && let (Some(pid), Some(limit)) = (self.machine.state().pid(), open_files)
            && let Err(error) = os::set_open_files(pid, limit)
        {
            tracing::warn!(child = %self.spec.name, %error, "cannot apply open_files to the running process");
        }
        // A probe result of the old probe may still arrive; it is counted against the new one, which is harmless.
        self.apply(effects, now);
        self.publish();
    }

    /// Pause (`true`) or resume: the cgroup's freezer where there is one, else SIGSTOP / SIGCONT to the group.
    fn freeze(&mut self, frozen: bool) -> Ack {
        let live = self.machine.state().pid().is_some();
        match self.cgroup.as_mut() {
            Some(cg) if live && cg.can_freeze() => {
                cg.set_frozen(frozen).map_err(|e| CommandError::Signal {
                    name: self.spec.name.clone(),
                    message: format!("cannot freeze the cgroup: {e}"),
                })
            }
            _ => self.signal_live(if frozen { libc::SIGSTOP } else { libc::SIGCONT }),
        }
    }

    fn signal_live(&self, sig: i32) -> Ack {
        let name = self.spec.name.clone();
        let pid = match self.machine.state() {
            ChildState::Starting { pid, .. }
            | ChildState::Running { pid, .. }
            | ChildState::Stopping { pid, .. } => *pid,
            _ => return Err(CommandError::NotRunning(name)),
        };
        let signal = Signal::try_from(sig).map_err(|e| CommandError::Signal {
            name: name.clone(),
            message: e.to_string(),
        })?;
        match os::signal_group(pid, signal) {
            Ok(true) => Ok(()),
            Ok(false) => Err(CommandError::NotRunning(name)),
            Err(e) => Err(CommandError::Signal {
                name,
                message: e.to_string(),
            }),
        }
    }

    fn feed(&mut self, input: Input, now: Instant) {
        let effects = self.machine.step(input, now);
        self.apply(effects, now);
    }

    fn apply(&mut self, effects: Vec<Effect>, now: Instant) {
        for effect in effects {
            match effect {
                Effect::Spawn => self.start_run(),
                Effect::SignalGroup { pgid, signal } => match Signal::try_from(signal) {
                    Ok(s) => {
                        if let Some(cg) = self.cgroup.as_mut() {
                            // The whole tree, escapees of the process group included.
                            cg.signal(s);
                        } else if let Err(e) = os::signal_group(pgid, s) {
                            tracing::warn!(child = %self.spec.name, pgid, error = %e, "cannot signal the process group");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(child = %self.spec.name, signal, error = %e, "invalid signal")
                    }
                },
                Effect::Emit(kind) => self.emit(kind),
            }
        }
        self.on_state(now);
    }

    fn on_state(&mut self, now: Instant) {
        match self.machine.state() {
            ChildState::Starting { .. } => {
                if !self.readiness.in_flight && self.readiness.next.is_none() {
                    self.readiness.next = match self.cfg.readiness.as_ref().map(|r| &r.check) {
                        Some(check) if !check.is_pushed() => Some(now),
                        _ => None,
                    };
                }
            }
            ChildState::Running { .. } => {
                self.readiness.next = None;
                if !self.liveness.in_flight && self.liveness.next.is_none() {
                    self.liveness.next = (self.cfg.liveness.as_ref())
                        .filter(|p| !p.check.is_pushed())
                        .map(|p| now + p.interval);
                }
                if self.cfg.watchdog().is_some() && self.watchdog_from.is_none() {
                    self.watchdog_from = Some(now);
                }
            }
            _ => {
                self.readiness.next = None;
                self.liveness.next = None;
                self.watchdog_from = None;
            }
        }
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

    /// Releases what belongs to a run whose process is gone.
    fn end_run_resources(&mut self) {
        self.memory = None;
        if let (Some(sf), Some(pid)) = (&self.ctx.state_file, self.recorded_pid.take()) {
            sf.forget(pid);
        }
    }

    fn start_run(&mut self) {
        self.run += 1;
        self.exit = None;
        self.memory = None;
        self.readiness = ProbeSlot::default();
        self.liveness = ProbeSlot::default();
        self.healthy = None;
        self.paused = false;
        let spec = Arc::clone(&self.spec);
        let herder_env = Arc::clone(&self.ctx.herder_env);
        let existing = self.cgroup.as_ref().map(|cg| Arc::clone(&cg.cgroup));
        let tree = match (&existing, self.cgroup_tried) {
            (None, false) => self.ctx.cgroups.clone(),
            _ => None,
        };
        self.cgroup_tried = true;
        let incarnation = self.incarnation;
        // Replacing the receiver of an earlier run's spawn makes that spawn's process unowned: it is killed below.
        let (tx, rx) = oneshot::channel();
        self.spawning = Some(rx);
        let (cancel_tx, mut cancel) = oneshot::channel();
        self.spawn_cancel = Some(cancel_tx);
        let notify_env = self.open_notify_socket();
        self.ready_early = false;
        let notification_fd = self.open_notification_fd();
        self.port_holder = None;
        let inbox = self.inbox_sender();
        let run = self.run;
        let log = Arc::clone(&self.log);
        tokio::spawn(async move {
            let mut outcome = SpawnOutcome {
                result: Err(String::new()),
                made: None,
                fallback: None,
                cancelled: false,
            };
            // Nothing is made while a declared port is held by someone else.
            let manifest = &spec.manifest;
            if !manifest.ports.is_empty() {
                let report = |holder| {
                    let _ = inbox.send(Internal::PortHeld { run, holder });
                };
                let ports = manifest.ports.iter().map(|port| port.0.clone()).collect();
                let name = manifest.name.clone();
                if !ports::wait_until_free(ports, name, manifest.replicas, report, &mut cancel)
                    .await
                {
                    outcome.cancelled = true;
                    let _ = tx.send(outcome);
                    return;
                }
            }
            if let Some(tree) = tree {
                match make_cgroup(&tree, &spec, incarnation) {
                    Ok(cgroup) => outcome.made = Some(cgroup),
                    Err(reason) => outcome.fallback = Some(reason),
                }
            }
            let cgroup = existing.or_else(|| outcome.made.clone());
            outcome.result = async {
                let mut request = config::request(&spec, &herder_env)
                    .await
                    .map_err(|e| ErrorChain::inline(&e).to_string())?;
                request.env.extend(notify_env?);
                request.extra_fd = notification_fd?;
                if let Some(cgroup) = &cgroup {
                    request.cgroups = cgroup
                        .procs_files()
                        .map_err(|e| format!("cannot open the child's cgroup: {e}"))?;
                }
                // Before the process exists: its first line is redacted already.
                log.add_secrets(redact::secret_values(&spec.manifest, &request.env));
                let spawner = Spawner::global().map_err(|e| e.to_string())?;
                let spawned = spawner
                    .spawn(request)
                    .await
                    .map_err(|e| ErrorChain::inline(&e).to_string())?;
                Ok(spawned)
            }
            .await;
            if let Err(SpawnOutcome {
                result: Ok(spawned),
                made,
                ..
            }) = tx.send(outcome)
            {
                // The actor is gone or has moved on to another run: nobody would ever stop this process.
                let _ = os::signal_group(spawned.pid, Signal::SIGKILL);
                if let Some(cgroup) = made {
                    cgroup.dirs.kill();
                }
            }
        });
    }

    /// Binds this run's notify socket when the child speaks sd_notify and starts its
    /// reader; returns the variables that name it to the child, or why it cannot have one.
    fn open_notify_socket(&mut self) -> Result<Vec<(String, String)>, String> {
        self.notify = None;
        self.notify_seen = NotifyView::default();
        if !self.cfg.uses_notify() {
            return Ok(Vec::new());
        }
        let socket = NotifySocket::bind(&self.spec.name, self.incarnation, self.run)
            .map_err(|e| format!("cannot make the notify socket: {e}"))?;
        let mut env = vec![("NOTIFY_SOCKET".to_owned(), socket.env_value())];
        if let Some(period) = self.cfg.watchdog() {
            env.push(("WATCHDOG_USEC".to_owned(), period.as_micros().to_string()));
        }
        let (tx, rx) = watch::channel(NotifyView::default());
        self.notify = Some(rx);
        tokio::spawn(notified::read(
            socket,
            self.status_tx.subscribe(),
            self.run,
            self.log.redactor(),
            tx,
        ));
        Ok(env)
    }

    /// With `readiness: {notification_fd: N}`: a pipe whose write end the child gets at N,
    /// and a task that reports the first newline on its read end.
    fn open_notification_fd(&mut self) -> Result<Option<(OwnedFd, u32)>, String> {
        let Some(Check::NotificationFd(target)) = self.cfg.readiness.as_ref().map(|r| &r.check)
        else {
            return Ok(None);
        };
        let target = *target;
        let cannot = |e: nix::Error| format!("cannot make the notification pipe: {e}");
        let (read, write) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(cannot)?;
        // Only the read end is ours to poll; the child's end blocks as a pipe normally does.
        let flags = OFlag::from_bits_truncate(fcntl(&write, FcntlArg::F_GETFL).map_err(cannot)?);
        fcntl(&write, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK)).map_err(cannot)?;
        let receiver = pipe::Receiver::from_owned_fd(read)
            .map_err(|e| format!("cannot watch the notification pipe: {e}"))?;
        let (run, inbox, name) = (self.run, self.inbox_sender(), self.spec.name.clone());
        tokio::spawn(async move {
            let mut receiver = receiver;
            let mut seen = 0usize;
            let mut buf = [0u8; 512];
            // At most NOTIFICATION_BYTES before the newline; end of file (the child closed it) is no.
            while seen < NOTIFICATION_BYTES {
                match receiver.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) if buf[..n].contains(&b'\n') => {
                        let _ = inbox.send(Internal::FdReady { run });
                        return;
                    }
                    Ok(n) => seen += n,
                }
            }
            tracing::warn!(child = %name, fd = target, "the notification descriptor ended without a newline: not ready by it");
        });
        Ok(Some((write, target)))
    }

    /// Acts on what the notify socket heard since the last look.
    fn on_notify(&mut self, now: Instant) {
        let Some(view) = self
            .notify
            .as_mut()
            .map(|rx| rx.borrow_and_update().clone())
        else {
            return;
        };
        let seen = std::mem::replace(&mut self.notify_seen, view.clone());
        if (seen.refused + 1..=view.refused).any(u64::is_power_of_two) {
            // 1st, 2nd, 4th, 8th…: a flood of refusals costs a few log lines, not one each.
            tracing::warn!(
                child = %self.spec.name,
                refused = view.refused,
                reason = view.last_refusal.as_deref().unwrap_or_default(),
                "refused a notification"
            );
        }
        let by_notify = matches!(
            self.cfg.readiness.as_ref().map(|r| &r.check),
            Some(Check::Notify)
        );
        if view.ready && by_notify && matches!(self.machine.state(), ChildState::Starting { .. }) {
            self.feed(Input::Ready, now);
        }
        if view.pings > seen.pings && self.watchdog_from.is_some() {
            self.watchdog_from = Some(now);
            if self.healthy != Some(true) {
                if self.healthy == Some(false) {
                    self.emit(ChildEventKind::Healthy);
                }
                self.healthy = Some(true);
            }
        }
        if view.triggered && !seen.triggered && self.cfg.watchdog().is_some() {
            let reason = "the child asked to be restarted (WATCHDOG=trigger)".to_owned();
            self.watchdog_from = None;
            self.healthy = Some(false);
            self.feed(Input::Unhealthy { reason }, now);
        }
        self.publish();
    }

    /// When the watchdog fires unless a `WATCHDOG=1` comes first.
    fn watchdog_deadline(&self) -> Option<Instant> {
        Some(self.watchdog_from? + self.cfg.watchdog()?)
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
            healthy: self.healthy,
            paused: self.paused,
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

/// Makes the incarnation's cgroup and writes its limits; the error is the reason the child falls back.
fn make_cgroup(
    tree: &crate::supervise::cgroup::Tree,
    spec: &ChildSpec,
    incarnation: u64,
) -> Result<Arc<ChildCgroup>, String> {
    let cgroup = ChildCgroup::create(tree, &spec.name, incarnation)
        .map_err(|e| ErrorChain::inline(&e).to_string())?;
    let none = crate::manifest::model::ResourceLimits::default();
    if let Err(e) =
        crate::supervise::cgroup::limits::apply(&cgroup, &spec.manifest.resource_limits, &none)
    {
        let reason = ErrorChain::inline(&e).to_string();
        // Nothing was started in it yet.
        let _ = cgroup.dirs.remove_when_empty();
        return Err(reason);
    }
    Ok(Arc::new(cgroup))
}

async fn wait_spawn(spawning: &mut Option<oneshot::Receiver<SpawnOutcome>>) -> SpawnOutcome {
    match spawning {
        Some(rx) => rx.await.unwrap_or_else(|_| SpawnOutcome {
            result: Err("the spawn task ended without an answer".to_owned()),
            made: None,
            fallback: None,
            cancelled: false,
        }),
        None => std::future::pending().await,
    }
}

async fn cgroup_changed(cgroup: &mut Option<ActorCgroup>) {
    match cgroup.as_mut().and_then(ActorCgroup::changes) {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

async fn recv_internal(
    inbox: &mut Option<(
        mpsc::UnboundedSender<Internal>,
        mpsc::UnboundedReceiver<Internal>,
    )>,
) -> Option<Internal> {
    match inbox {
        Some((_, rx)) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn notify_changed(notify: &mut Option<watch::Receiver<NotifyView>>) {
    match notify {
        Some(rx) => {
            if rx.changed().await.is_err() {
                // The reader ended (its socket failed): nothing more will come.
                *notify = None;
            }
        }
        None => std::future::pending().await,
    }
}

async fn wait_exit(exit: &mut Option<ExitReceiver>) -> ExitStatus {
    match exit {
        Some(rx) => rx.await.unwrap_or_else(|_| ExitStatus::unknown()),
        None => std::future::pending().await,
    }
}

async fn wait_memory(memory: &mut Option<(MemoryWatch, oneshot::Receiver<u64>)>) -> u64 {
    match memory {
        Some((_, rx)) => match rx.await {
            Ok(rss) => rss,
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

async fn changed(rx: &mut Option<watch::Receiver<u64>>) {
    match rx {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}
