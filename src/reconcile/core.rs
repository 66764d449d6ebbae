//! The reconciler's decision logic: a synchronous state machine, `step(input) -> effects`.
//!
//! It owns the desired set and what it knows of every child (one [`Slot`] per name), and
//! after every input it re-plans from scratch ([`crate::plan::plan`]) and emits the
//! effects that are runnable now: it never executes a queue of stale operations. Nothing
//! here awaits or touches the OS, so every decision is tested without processes.
//!
//! Observed state only changes on a confirmation from a child actor (spawned, ready,
//! exited, stopped), never optimistically when an effect is emitted, so a failed start is
//! simply planned again. Every observation carries the incarnation it belongs to;
//! observations of incarnations the slot no longer tracks are dropped first thing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::command::{Command, CommandError, Verb};
use super::control::ScheduledChild;
use super::outcome::Outcome;
use super::shutdown::{ShutdownOrder, replica_set};
use crate::manifest::ChildSpec;
use crate::manifest::DesiredSet;
use crate::manifest::model::{
    Condition, Criticality, DependencySpec, Kind, Signal, UpdateStrategy,
};
use crate::plan::{self, Observed, ObservedChild, Operation, Plan};

/// What a child actor reported about one incarnation.
#[derive(Clone, Debug, PartialEq)]
pub enum Observation {
    /// A process was spawned (first start or a restart by policy).
    Spawned,
    /// The readiness condition holds.
    Ready,
    /// Its readiness probe no longer passes; the process still runs.
    NotReady,
    /// The process exited (or could not be spawned); a restart may follow.
    Exited,
    /// A oneshot finished successfully; the actor is done.
    Completed,
    /// The actor gave up; the incarnation stays failed until replaced or restarted.
    Failed,
    /// The incarnation was stopped on request; the actor is gone.
    Stopped,
}

/// The phase of one incarnation, as far as dependents are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Asked to spawn; no process confirmed yet.
    Starting,
    /// A process runs; `ready` says whether its readiness condition holds.
    Running {
        /// Whether the readiness condition holds.
        ready: bool,
    },
    /// Exited and waiting for a restart (or spawning failed and will be retried).
    Down,
    /// A oneshot that completed.
    Completed,
    /// Gave up: crash loop, start timeout or a permanent error.
    Failed,
    /// A `kind: target`: no process. It meets a dependent's condition when its own
    /// dependencies meet theirs (see [`Reconciler::unmet_dependencies`]).
    Target,
}

impl Phase {
    fn meets(self, condition: Condition) -> bool {
        match condition {
            Condition::Started => matches!(self, Phase::Running { .. } | Phase::Completed),
            Condition::Ready => matches!(self, Phase::Running { ready: true } | Phase::Completed),
            Condition::Completed => self == Phase::Completed,
        }
    }
}

/// One incarnation the reconciler tracks.
#[derive(Clone, Debug)]
pub struct Run {
    /// Its incarnation number, unique across the whole herder process.
    pub incarnation: u64,
    /// The spec it runs.
    pub spec: Arc<ChildSpec>,
    /// Its phase.
    pub phase: Phase,
    /// Incremented each time a process is spawned for it (restarts included).
    pub spawns: u64,
}

/// Why an operator holds a child out of reconciliation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hold {
    /// `herder stop`: stays stopped until `herder start`.
    Stopped,
    /// `herder quarantine`: stays stopped until `herder release`.
    Quarantined {
        /// The reason given.
        reason: Option<String>,
    },
}

/// Everything the reconciler knows about one child name.
#[derive(Clone, Debug, Default)]
pub struct Slot {
    /// The incarnation serving now.
    pub current: Option<Run>,
    /// A `start-first` replacement that is not ready yet.
    pub next: Option<Run>,
    /// Incarnations asked to stop, not yet confirmed stopped, with the spec they run.
    pub stopping: BTreeMap<u64, Arc<ChildSpec>>,
    /// An operator hold.
    pub hold: Option<Hold>,
    /// A `start-first` spec whose incarnation failed to become ready; not retried until
    /// the desired spec changes again.
    pub rejected: Option<Arc<ChildSpec>>,
    /// For dependencies declared with `restart: true`: the dependency's restart epoch
    /// when this child's process was last (re)started.
    pub seen_epochs: BTreeMap<String, u64>,
    /// Counts new processes of this name (new incarnations and restarts), for dependents
    /// declared with `restart: true`.
    pub epoch: u64,
    /// A scheduled oneshot starts only when a run was asked for (`herder run`, or its
    /// schedule's dispatcher); set by [`Verb::Run`], cleared by the start.
    pub run_requested: bool,
}

impl Slot {
    pub(super) fn is_idle(&self) -> bool {
        self.current.is_none() && self.next.is_none() && self.stopping.is_empty()
    }

    /// The specs of every process this slot may still have: serving, starting or stopping.
    pub(super) fn live_specs(&self) -> impl Iterator<Item = &Arc<ChildSpec>> {
        let runs = self
            .current
            .iter()
            .chain(self.next.iter())
            .map(|run| &run.spec);
        runs.chain(self.stopping.values())
    }

    /// Asks `run` to stop, remembering what it runs until it confirms.
    fn stop(&mut self, name: &str, run: Run, effects: &mut Vec<Effect>) {
        if run.phase == Phase::Target {
            return; // nothing runs, nothing to confirm
        }
        self.stopping.insert(run.incarnation, run.spec);
        effects.push(Effect::Stop {
            name: name.to_owned(),
            incarnation: run.incarnation,
        });
    }

    /// Stops the serving and the starting incarnation.
    pub(super) fn stop_all(&mut self, name: &str, effects: &mut Vec<Effect>) {
        for run in [self.current.take(), self.next.take()]
            .into_iter()
            .flatten()
        {
            self.stop(name, run, effects);
        }
    }
}

/// An input to the reconciler.
#[derive(Clone, Debug)]
pub enum Input {
    /// A new desired set from the manifest directory.
    Desired(DesiredSet),
    /// A child actor reported on an incarnation.
    Observed {
        /// The child name.
        name: String,
        /// The incarnation it is about.
        incarnation: u64,
        /// What happened.
        observation: Observation,
    },
    /// An operator command (already permission-checked by the caller).
    Command(Command),
    /// SIGINT/SIGTERM or `herder down`; a second one kills everything at once.
    Shutdown {
        /// Why (shown in the event log).
        reason: String,
    },
}

/// What the shell must do. Effects on an incarnation name it exactly.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Start a child actor for a new incarnation.
    Spawn {
        /// Child name.
        name: String,
        /// The new incarnation number.
        incarnation: u64,
        /// What to run.
        spec: Arc<ChildSpec>,
    },
    /// Stop an incarnation; its actor reports `Stopped` when the process group is gone.
    Stop {
        /// Child name.
        name: String,
        /// The incarnation.
        incarnation: u64,
    },
    /// Apply a changed spec to a running incarnation without restarting it.
    Update {
        /// Child name.
        name: String,
        /// The incarnation.
        incarnation: u64,
        /// The new spec.
        spec: Arc<ChildSpec>,
    },
    /// Restart the process of an incarnation (same incarnation, new process).
    Restart {
        /// Child name.
        name: String,
        /// The incarnation.
        incarnation: u64,
    },
    /// Send a signal to an incarnation's process group.
    Signal {
        /// Child name.
        name: String,
        /// The incarnation.
        incarnation: u64,
        /// The signal.
        signal: Signal,
    },
    /// Kill every process group now (second shutdown signal).
    KillAll,
    /// Everything has stopped: herder ends with this outcome.
    Exit(Outcome),
}

/// The reconciler's state.
#[derive(Debug, Default)]
pub struct Reconciler {
    desired: DesiredSet,
    /// Every child some desired child depends on (replicas expanded): only their phases
    /// can unblock or restart another child.
    depended_on: BTreeSet<String>,
    slots: BTreeMap<String, Slot>,
    next_incarnation: u64,
    shutdown: Option<ShutdownState>,
    /// The plan of the last reconciliation.
    plan: Plan,
    /// What the serving incarnations run, as of the last reconciliation: kept between
    /// reconciliations so that planning among thousands of children copies no names.
    observed: Observed,
}

#[derive(Debug)]
struct ShutdownState {
    outcome: Outcome,
    exited: bool,
    /// Built by the first reconciliation of the shutdown.
    order: Option<ShutdownOrder>,
}

impl Reconciler {
    /// An empty reconciler: nothing desired, nothing running.
    pub fn new() -> Self {
        Self::default()
    }

    /// The desired set in force.
    pub fn desired(&self) -> &DesiredSet {
        &self.desired
    }

    /// Every slot, by child name.
    pub fn slots(&self) -> &BTreeMap<String, Slot> {
        &self.slots
    }

    /// The plan the last input was reconciled with: what a new desired set asked for
    /// (held and blocked children included). Empty during a shutdown.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Puts back holds kept from an earlier run of herder (before the first desired set, so
    /// that a held child is not started).
    pub fn restore_holds(&mut self, holds: impl IntoIterator<Item = (String, Hold)>) {
        for (name, hold) in holds {
            self.slots.entry(name).or_default().hold = Some(hold);
        }
    }

    /// The enabled oneshots with a schedule, and whether a run of each is going.
    pub fn scheduled(&self) -> Vec<ScheduledChild> {
        self.desired
            .children
            .iter()
            .filter(|(_, spec)| spec.manifest.enabled)
            .filter_map(|(name, spec)| {
                let schedule = spec.manifest.schedule.clone()?;
                let running = self
                    .slots
                    .get(name)
                    .and_then(|slot| slot.current.as_ref())
                    .is_some_and(|run| !matches!(run.phase, Phase::Completed | Phase::Failed));
                Some(ScheduledChild {
                    name: name.clone(),
                    schedule,
                    running,
                })
            })
            .collect()
    }

    /// Whether an ordered shutdown is in progress.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_some()
    }

    /// Feeds one input and returns the effects to carry out, in order.
    pub fn step(&mut self, input: Input) -> Result<Vec<Effect>, CommandError> {
        let mut effects = Vec::new();
        match input {
            Input::Desired(desired) => {
                self.desired = desired;
                self.depended_on = self
                    .desired
                    .children
                    .values()
                    .flat_map(|spec| spec.manifest.dependencies.iter())
                    .flat_map(|dep| self.desired.expand(&dep.0.name))
                    .map(str::to_owned)
                    .collect();
                for slot in self.slots.values_mut() {
                    slot.rejected = None;
                }
            }
            Input::Observed {
                name,
                incarnation,
                observation,
            } => {
                let settled = self.is_inconsequential(&name, incarnation, &observation);
                self.observe(&name, incarnation, observation, &mut effects);
                if settled {
                    // What the skipped reconciliation would have tidied up.
                    self.drop_if_idle(&name);
                    // Nothing can follow from it: skip the O(children) re-plan, which at
                    // start-up would otherwise run once per report of every child.
                    return Ok(effects);
                }
                if self.shutdown.as_ref().is_some_and(|s| s.order.is_some()) {
                    // Only this child's own departure can have changed the order.
                    self.drive_shutdown(Some(&name), &mut effects);
                    return Ok(effects);
                }
            }
            Input::Command(command) => self.command(command, &mut effects)?,
            Input::Shutdown { .. } => match &mut self.shutdown {
                Some(_) => {
                    effects.push(Effect::KillAll);
                }
                None => {
                    self.shutdown = Some(ShutdownState {
                        outcome: Outcome::Stopped,
                        exited: false,
                        order: None,
                    });
                }
            },
        }
        self.reconcile(&mut effects);
        Ok(effects)
    }

    /// Applies several operator commands (already permission-checked), then reconciles
    /// once: one verdict per command, in order, and the effects of all of them. Stopping
    /// every child this way plans once, not once per child.
    pub fn commands(
        &mut self,
        commands: Vec<Command>,
    ) -> (Vec<Result<(), CommandError>>, Vec<Effect>) {
        let mut effects = Vec::new();
        let verdicts = commands
            .into_iter()
            .map(|command| self.command(command, &mut effects))
            .collect();
        self.reconcile(&mut effects);
        (verdicts, effects)
    }

    /// Whether a report cannot change any decision: a phase change of a serving child that
    /// no child depends on, outside a shutdown; or the end of a process that nothing waits
    /// for (see [`Reconciler::is_quiet_stop`]). Failures and completions always count.
    fn is_inconsequential(&self, name: &str, incarnation: u64, observation: &Observation) -> bool {
        if *observation == Observation::Stopped {
            return self.is_quiet_stop(name, incarnation);
        }
        let phase_only = matches!(
            observation,
            Observation::Spawned | Observation::Ready | Observation::NotReady | Observation::Exited
        );
        let serving = self
            .slots
            .get(name)
            .and_then(|slot| slot.current.as_ref())
            .is_some_and(|run| run.incarnation == incarnation);
        phase_only && serving && self.shutdown.is_none() && !self.depended_on.contains(name)
    }

    /// Whether the confirmed stop of `incarnation` can unblock nothing, outside a shutdown:
    /// the child depends on nothing and nothing depends on it (no retirement waits for it,
    /// none of its dependencies waits for it to leave), and no new incarnation of it is
    /// wanted (it is held, or no longer desired), so no start waits for it either. Stopping
    /// or retiring many such children then costs no re-plan per child.
    fn is_quiet_stop(&self, name: &str, incarnation: u64) -> bool {
        let Some(slot) = self.slots.get(name) else {
            return false;
        };
        let Some(spec) = slot.stopping.get(&incarnation) else {
            return false;
        };
        let only_process =
            slot.current.is_none() && slot.next.is_none() && slot.stopping.len() == 1;
        let unwanted = slot.hold.is_some() || !self.desired.children.contains_key(name);
        self.shutdown.is_none()
            && only_process
            && unwanted
            && spec.manifest.dependencies.is_empty()
            && !self.depended_on.contains(name)
    }

    fn observe(
        &mut self,
        name: &str,
        incarnation: u64,
        observation: Observation,
        effects: &mut Vec<Effect>,
    ) {
        // A new process of a child already sees the current processes of its `restart:
        // true` dependencies: it must not be restarted for them later.
        let fresh_epochs = match (&observation, self.slots.get(name)) {
            (Observation::Spawned, Some(slot)) => slot
                .current
                .iter()
                .chain(slot.next.iter())
                .find(|run| run.incarnation == incarnation)
                .map(|run| self.dependency_epochs(&run.spec)),
            _ => None,
        };
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        if let Some(epochs) = fresh_epochs {
            slot.seen_epochs = epochs;
        }
        if observation == Observation::Stopped {
            slot.stopping.remove(&incarnation);
            // An actor can also end on its own (a failed or completed run we then stopped).
            for run in [&mut slot.current, &mut slot.next] {
                if run.as_ref().is_some_and(|r| r.incarnation == incarnation) {
                    *run = None;
                }
            }
            return;
        }
        let is_next = slot
            .next
            .as_ref()
            .is_some_and(|r| r.incarnation == incarnation);
        let run = match (&mut slot.current, &mut slot.next) {
            (Some(run), _) if run.incarnation == incarnation => run,
            (_, Some(run)) if run.incarnation == incarnation => run,
            _ => return, // a stale report from an incarnation no longer tracked
        };
        match observation {
            Observation::Spawned => {
                run.phase = Phase::Running { ready: false };
                run.spawns += 1;
                slot.epoch += 1;
            }
            Observation::Ready => run.phase = Phase::Running { ready: true },
            Observation::NotReady => {
                if let Phase::Running { .. } = run.phase {
                    run.phase = Phase::Running { ready: false };
                }
            }
            Observation::Exited => {
                run.phase = Phase::Down;
                if is_next {
                    // start-first: a replacement that went down before it was ever ready (it
                    // crashed, or the actor stopped it at its start timeout) did not make it.
                    // Restarting it by policy would keep an unready twin beside the serving
                    // incarnation until the crash-loop limit; give it up now (DESIGN §4).
                    slot.rejected = Some(Arc::clone(&run.spec));
                    if let Some(failed) = slot.next.take() {
                        slot.stop(name, failed, effects);
                    }
                }
            }
            Observation::Completed => run.phase = Phase::Completed,
            Observation::Failed => {
                run.phase = Phase::Failed;
                if is_next {
                    // start-first: the new incarnation did not make it; the old one keeps serving.
                    slot.rejected = Some(Arc::clone(&run.spec));
                    if let Some(failed) = slot.next.take() {
                        slot.stop(name, failed, effects);
                    }
                } else if run.spec.manifest.criticality == Criticality::Critical {
                    let shutdown = self.shutdown.get_or_insert(ShutdownState {
                        outcome: Outcome::CriticalFailed,
                        exited: false,
                        order: None,
                    });
                    shutdown.outcome = Outcome::CriticalFailed;
                }
            }
            Observation::Stopped => {}
        }
    }

    fn command(&mut self, command: Command, effects: &mut Vec<Effect>) -> Result<(), CommandError> {
        let Command { child: name, verb } = command;
        if !self.desired.children.contains_key(&name) && !self.slots.contains_key(&name) {
            return Err(CommandError::UnknownChild(name));
        }
        let kind = self.desired.children.get(&name).map(|s| s.manifest.kind);
        if kind == Some(Kind::Target) {
            return Err(CommandError::Target(name));
        }
        let oneshot = kind == Some(Kind::Oneshot);
        let slot = self.slots.entry(name.clone()).or_default();
        let quarantined = matches!(slot.hold, Some(Hold::Quarantined { .. }));
        if quarantined && !matches!(verb, Verb::Release | Verb::Quarantine(_)) {
            return Err(CommandError::Quarantined(name));
        }
        let live = |slot: &Slot| {
            slot.current
                .as_ref()
                .filter(|run| !matches!(run.phase, Phase::Completed | Phase::Failed))
                .map(|run| run.incarnation)
        };
        let signal = match verb {
            Verb::Restart => {
                slot.hold = None;
                match live(slot) {
                    Some(incarnation) => effects.push(Effect::Restart { name, incarnation }),
                    // Completed or failed: start a fresh incarnation.
                    None => retire_current(&name, slot, effects),
                }
                return Ok(());
            }
            Verb::Run => {
                if !oneshot {
                    return Err(CommandError::NotOneshot(name));
                }
                if live(slot).is_some() {
                    return Err(CommandError::AlreadyRunning(name));
                }
                slot.hold = None;
                slot.run_requested = true;
                retire_current(&name, slot, effects);
                return Ok(());
            }
            Verb::Stop => {
                slot.hold = Some(Hold::Stopped);
                retire_current(&name, slot, effects);
                return Ok(());
            }
            Verb::Quarantine(reason) => {
                slot.hold = Some(Hold::Quarantined { reason });
                retire_current(&name, slot, effects);
                return Ok(());
            }
            Verb::Start | Verb::Release => {
                slot.hold = None;
                if slot
                    .current
                    .as_ref()
                    .is_some_and(|run| run.phase == Phase::Failed)
                {
                    retire_current(&name, slot, effects);
                }
                return Ok(());
            }
            Verb::Pause => Signal::Sigstop,
            Verb::Resume => Signal::Sigcont,
            Verb::Signal(signal) => signal,
        };
        let incarnation = live(slot).ok_or_else(|| CommandError::NotRunning(name.clone()))?;
        effects.push(Effect::Signal {
            name,
            incarnation,
            signal,
        });
        Ok(())
    }

    /// Brings [`Reconciler::observed`] in line with the slots' serving incarnations. Both
    /// are sorted by name, so one walk over both finds the few entries that changed.
    fn refresh_observed(&mut self) {
        let mut gone = Vec::new();
        let mut new = Vec::new();
        let mut cached = self.observed.children.iter_mut().peekable();
        let serving = self
            .slots
            .iter()
            .filter_map(|(name, slot)| Some((name, &slot.current.as_ref()?.spec)));
        for (name, spec) in serving {
            while let Some((old, _)) = cached.next_if(|(old, _)| old.as_str() < name.as_str()) {
                gone.push(old.clone());
            }
            match cached.next_if(|(old, _)| *old == name) {
                Some((_, child)) if Arc::ptr_eq(&child.spec, spec) => {}
                Some((_, child)) => child.spec = Arc::clone(spec),
                None => new.push((name.clone(), Arc::clone(spec))),
            }
        }
        gone.extend(cached.map(|(old, _)| old.clone()));
        for name in gone {
            self.observed.children.remove(&name);
        }
        for (name, spec) in new {
            self.observed.children.insert(name, ObservedChild { spec });
        }
    }

    /// Forgets `name`'s slot if it tracks nothing and keeps no hold on a desired child.
    fn drop_if_idle(&mut self, name: &str) {
        if self
            .slots
            .get(name)
            .is_some_and(|slot| !is_kept(name, slot, &self.desired))
        {
            self.slots.remove(name);
        }
    }

    /// Re-plans from scratch and emits what is runnable now.
    fn reconcile(&mut self, effects: &mut Vec<Effect>) {
        if self.shutdown.is_some() {
            self.plan = Plan::default();
            self.drive_shutdown(None, effects);
            return;
        }
        self.refresh_observed();
        let plan = plan::plan(&self.desired, &self.observed);
        for step in &plan.steps {
            match step.operation {
                Operation::Start => self.start(&step.name, effects),
                Operation::Replace => self.replace(&step.name, effects),
                Operation::Update => self.update(&step.name, effects),
                Operation::Retire => self.retire(&step.name, effects),
                Operation::Unchanged => {}
            }
        }
        self.plan = plan;
        self.settle_start_first(effects);
        self.restart_for_dependencies(effects);
        let desired = &self.desired;
        self.slots.retain(|name, slot| is_kept(name, slot, desired));
    }

    fn desired_spec(&self, name: &str) -> Option<Arc<ChildSpec>> {
        self.desired
            .children
            .get(name)
            .filter(|spec| spec.manifest.enabled)
            .cloned()
    }

    /// The dependencies of `spec` whose condition does not hold yet.
    pub fn unmet_dependencies<'a>(
        &'a self,
        spec: &'a ChildSpec,
    ) -> impl Iterator<Item = &'a DependencySpec> + 'a {
        spec.manifest
            .dependencies
            .iter()
            .map(|dep| &dep.0)
            .filter(|dep| !self.dependency_met(dep, 0))
    }

    /// Whether every child `dep` names meets its condition. A target meets `started` and
    /// `ready` once its own dependencies meet theirs; `depth` bounds that recursion by the
    /// number of slots (validation rejects cycles; this keeps one from looping anyway).
    fn dependency_met(&self, dep: &DependencySpec, depth: usize) -> bool {
        let mut targets = self.desired.expand(&dep.name).peekable();
        targets.peek().is_some()
            && targets.all(|target| {
                let Some(run) = self
                    .slots
                    .get(target)
                    .and_then(|slot| slot.current.as_ref())
                else {
                    return false;
                };
                if run.phase != Phase::Target {
                    return run.phase.meets(dep.condition);
                }
                dep.condition != Condition::Completed
                    && depth < self.slots.len()
                    && (run.spec.manifest.dependencies.iter())
                        .all(|inner| self.dependency_met(&inner.0, depth + 1))
            })
    }

    fn dependencies_met(&self, spec: &ChildSpec) -> bool {
        self.unmet_dependencies(spec).next().is_none()
    }

    fn new_run(&mut self, spec: Arc<ChildSpec>) -> Run {
        self.next_incarnation += 1;
        Run {
            incarnation: self.next_incarnation,
            spec,
            phase: Phase::Starting,
            spawns: 0,
        }
    }

    fn dependency_epochs(&self, spec: &ChildSpec) -> BTreeMap<String, u64> {
        spec.manifest
            .dependencies
            .iter()
            .filter(|dep| dep.0.restart)
            .flat_map(|dep| {
                self.desired
                    .expand(&dep.0.name)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .map(|target| {
                let epoch = self.slots.get(&target).map_or(0, |slot| slot.epoch);
                (target, epoch)
            })
            .collect()
    }

    fn start(&mut self, name: &str, effects: &mut Vec<Effect>) {
        let Some(spec) = self.desired_spec(name) else {
            return;
        };
        let slot = self.slots.get(name);
        let blocked = slot.is_some_and(|slot| {
            slot.hold.is_some() || !slot.stopping.is_empty() || slot.current.is_some()
        });
        let unrequested =
            spec.manifest.schedule.is_some() && !slot.is_some_and(|slot| slot.run_requested);
        if spec.manifest.is_target() {
            // A target is "running" as soon as it is desired: its phase never changes, what
            // it meets follows its dependencies. No process, so no effect.
            if !blocked {
                let mut run = self.new_run(spec);
                run.phase = Phase::Target;
                self.slots.entry(name.to_owned()).or_default().current = Some(run);
            }
            return;
        }
        if blocked || unrequested || !self.dependencies_met(&spec) {
            return;
        }
        let epochs = self.dependency_epochs(&spec);
        let run = self.new_run(Arc::clone(&spec));
        effects.push(Effect::Spawn {
            name: name.to_owned(),
            incarnation: run.incarnation,
            spec,
        });
        let slot = self.slots.entry(name.to_owned()).or_default();
        slot.seen_epochs = epochs;
        slot.current = Some(run);
        slot.run_requested = false;
    }

    fn replace(&mut self, name: &str, effects: &mut Vec<Effect>) {
        let Some(spec) = self.desired_spec(name) else {
            return;
        };
        let Some(slot) = self.slots.get(name) else {
            return;
        };
        if slot.hold.is_some() || slot.rejected.as_deref() == Some(&*spec) {
            return;
        }
        if slot
            .current
            .as_ref()
            .is_some_and(|run| run.phase == Phase::Target)
        {
            // Nothing to stop first: the new spec (a target again, or a process) starts now.
            if let Some(slot) = self.slots.get_mut(name) {
                retire_current(name, slot, effects);
            }
            self.start(name, effects);
            return;
        }
        let current_is_live = slot.current.as_ref().is_some_and(|run| {
            matches!(
                run.phase,
                Phase::Running { .. } | Phase::Starting | Phase::Down
            )
        });
        let start_first = spec.manifest.update == UpdateStrategy::StartFirst && current_is_live;
        if !start_first {
            if let Some(slot) = self.slots.get_mut(name) {
                retire_current(name, slot, effects);
            }
            return;
        }
        // start-first: bring up the new incarnation beside the old one.
        match &slot.next {
            Some(next) if next.spec == spec => {}
            Some(_) => {
                if let Some(slot) = self.slots.get_mut(name)
                    && let Some(stale) = slot.next.take()
                {
                    slot.stop(name, stale, effects);
                }
            }
            None => {
                if !self.dependencies_met(&spec) {
                    return;
                }
                let run = self.new_run(Arc::clone(&spec));
                effects.push(Effect::Spawn {
                    name: name.to_owned(),
                    incarnation: run.incarnation,
                    spec,
                });
                if let Some(slot) = self.slots.get_mut(name) {
                    slot.next = Some(run);
                }
            }
        }
    }

    /// Promotes a `start-first` replacement once it is ready, stopping the old incarnation.
    fn settle_start_first(&mut self, effects: &mut Vec<Effect>) {
        for (name, slot) in &mut self.slots {
            let ready = slot
                .next
                .as_ref()
                .is_some_and(|run| run.phase.meets(Condition::Ready));
            if !ready {
                continue;
            }
            if let Some(old) = slot.current.take() {
                slot.stop(name, old, effects);
            }
            slot.current = slot.next.take();
        }
    }

    fn update(&mut self, name: &str, effects: &mut Vec<Effect>) {
        let Some(spec) = self.desired_spec(name) else {
            return;
        };
        let Some(run) = self
            .slots
            .get_mut(name)
            .and_then(|slot| slot.current.as_mut())
        else {
            return;
        };
        run.spec = Arc::clone(&spec);
        if run.phase == Phase::Target {
            return;
        }
        effects.push(Effect::Update {
            name: name.to_owned(),
            incarnation: run.incarnation,
            spec,
        });
    }

    /// Whether another child that has a process and is going away (all of them, during
    /// shutdown) still needs `name`: dependents stop first.
    fn needed_by_departing(&self, name: &str) -> bool {
        let replica_set = replica_set(name, &self.slots, &self.desired);
        self.slots.iter().any(|(other, slot)| {
            other != name
                && (self.shutdown.is_some() || self.desired_spec(other).is_none())
                && slot
                    .live_specs()
                    .any(|spec| depends_on(spec, name, replica_set))
        })
    }

    fn retire(&mut self, name: &str, effects: &mut Vec<Effect>) {
        if self.needed_by_departing(name) {
            return;
        }
        if let Some(slot) = self.slots.get_mut(name) {
            slot.stop_all(name, effects);
        }
    }

    /// Restarts children whose `restart: true` dependencies got a new process that is ready.
    fn restart_for_dependencies(&mut self, effects: &mut Vec<Effect>) {
        let mut restarts = Vec::new();
        for (name, slot) in &self.slots {
            let Some(run) = slot
                .current
                .as_ref()
                .filter(|run| matches!(run.phase, Phase::Running { .. }))
            else {
                continue;
            };
            let stale = slot.seen_epochs.iter().any(|(dep, seen)| {
                self.slots.get(dep).is_some_and(|dep_slot| {
                    dep_slot.epoch > *seen
                        && dep_slot
                            .current
                            .as_ref()
                            .is_some_and(|dep_run| dep_run.phase.meets(Condition::Ready))
                })
            });
            if stale {
                restarts.push((
                    name.clone(),
                    run.incarnation,
                    self.dependency_epochs(&run.spec),
                ));
            }
        }
        for (name, incarnation, epochs) in restarts {
            if let Some(slot) = self.slots.get_mut(&name) {
                slot.seen_epochs = epochs;
            }
            effects.push(Effect::Restart { name, incarnation });
        }
    }

    /// Stops what may depart now, after a report on `changed` or (with `None`, or at the
    /// first call) over every slot; emits the exit once every child is gone.
    fn drive_shutdown(&mut self, changed: Option<&str>, effects: &mut Vec<Effect>) {
        let Some(shutdown) = &mut self.shutdown else {
            return;
        };
        let (slots, desired) = (&mut self.slots, &self.desired);
        let order = match (&mut shutdown.order, changed) {
            (Some(order), Some(name)) => {
                order.changed(name, slots, desired, effects);
                order
            }
            (order, _) => order.insert(ShutdownOrder::begin(slots, desired, effects)),
        };
        if order.is_done() && !shutdown.exited {
            shutdown.exited = true;
            effects.push(Effect::Exit(shutdown.outcome));
        }
    }
}

/// Whether a slot is worth keeping: it tracks a process, or holds a desired child stopped.
fn is_kept(name: &str, slot: &Slot, desired: &DesiredSet) -> bool {
    !slot.is_idle()
        || (slot.hold.is_some() || slot.run_requested) && desired.children.contains_key(name)
}

/// Whether `spec` declares a dependency on `name` or on `replica_set`, the set `name` is a
/// replica of.
fn depends_on(spec: &ChildSpec, name: &str, replica_set: Option<&str>) -> bool {
    spec.manifest
        .dependencies
        .iter()
        .any(|dep| dep.0.name == name || Some(dep.0.name.as_str()) == replica_set)
}

/// Asks the current incarnation to stop and forgets it as serving.
fn retire_current(name: &str, slot: &mut Slot, effects: &mut Vec<Effect>) {
    if let Some(run) = slot.current.take() {
        slot.stop(name, run, effects);
    }
}
