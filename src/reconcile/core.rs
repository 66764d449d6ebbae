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
use crate::manifest::ChildSpec;
use crate::manifest::DesiredSet;
use crate::manifest::model::{Criticality, Kind, Signal};
use crate::plan::{self, Observed, ObservedChild, Operation, Plan};

mod around;
mod dependencies;
mod io;
mod lifecycle;
mod shutdown;
mod slot;

pub use io::{Effect, Input, Observation};
use lifecycle::promote_ready;
use shutdown::ShutdownState;
pub use slot::{Hold, Phase, Run, Slot};
use slot::{is_kept, retire_current};

/// The reconciler's state.
#[derive(Debug, Default)]
pub struct Reconciler {
    desired: DesiredSet,
    /// Every child some desired child depends on (replicas expanded): only their phases
    /// can unblock or restart another child.
    depended_on: BTreeSet<String>,
    /// A declared dependency name (a child or a replica set) → the children whose desired
    /// or live specs declare it: who a report can concern (see [`around`]).
    dependents: BTreeMap<String, BTreeSet<String>>,
    /// Children a reconciliation changed something for after it had planned them: the
    /// next reconciliation looks at them again.
    recheck: BTreeSet<String>,
    /// Tests compare against re-planning every child after every report.
    #[cfg(test)]
    pub(super) full_replan: bool,
    slots: BTreeMap<String, Slot>,
    next_incarnation: u64,
    shutdown: Option<ShutdownState>,
    /// The plan of the last reconciliation.
    plan: Plan,
    /// What the serving incarnations run, as of the last reconciliation: kept between
    /// reconciliations so that planning among thousands of children copies no names.
    observed: Observed,
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
                self.index_dependents();
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
                let quiet_stop =
                    observation == Observation::Stopped && self.is_quiet_stop(&name, incarnation);
                // What its processes depended on, before a confirmed stop forgets one.
                let declared_before = self.declared_dependencies(&name);
                self.observe(&name, incarnation, observation, &mut effects);
                if quiet_stop {
                    // The one decision it can change is this child's own: a new incarnation
                    // that waited for the old one to go (`start --all` after `stop --all`, a
                    // stop-first replacement). `start` refuses whatever the plan would not
                    // start (held, no longer desired, unmet dependencies).
                    self.start(&name, &mut effects);
                }
                if settled || quiet_stop {
                    // What the skipped reconciliation would have tidied up.
                    self.drop_if_idle(&name);
                    // Re-planning every child at the next report would look at this one
                    // and at what still runs a spec depending on it (a phase it reached
                    // can make a restart due): so does the next reconciliation, once,
                    // whichever child it is about.
                    self.recheck_with_dependents([&name]);
                    // Nothing can follow from it: skip the O(children) re-plan, which at
                    // start-up would otherwise run once per report of every child.
                    return Ok(effects);
                }
                if self.shutdown.as_ref().is_some_and(|s| s.order.is_some()) {
                    // Only this child's own departure can have changed the order.
                    self.drive_shutdown(Some(&name), &mut effects);
                    return Ok(effects);
                }
                #[cfg(test)]
                let local = self.shutdown.is_none() && !self.full_replan;
                #[cfg(not(test))]
                let local = self.shutdown.is_none();
                if local {
                    // Only this child's slot changed: plan it and whom it concerns.
                    self.reconcile_around(&name, &declared_before, &mut effects);
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
    /// no child depends on, outside a shutdown; or any report but `Stopped` on an
    /// incarnation that is neither serving nor starting (one being stopped reports its
    /// exit first: `observe` ignores it, and re-planning for each made `stop --all`
    /// quadratic). Failures and completions of a tracked incarnation always count; a
    /// confirmed stop is [`Reconciler::is_quiet_stop`]'s.
    fn is_inconsequential(&self, name: &str, incarnation: u64, observation: &Observation) -> bool {
        if *observation == Observation::Stopped {
            return false;
        }
        let tracked = self.slots.get(name).is_some_and(|slot| {
            (slot.current.iter().chain(slot.next.iter())).any(|run| run.incarnation == incarnation)
        });
        if !tracked {
            return true;
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

    /// Whether the confirmed stop of `incarnation` can unblock nothing but this child's own
    /// start, outside a shutdown: it was the child's only process, the child depends on
    /// nothing and nothing depends on it (no retirement waits for it, none of its
    /// dependencies waits for it to leave). Stopping, retiring or restarting many such
    /// children then costs no re-plan per child.
    fn is_quiet_stop(&self, name: &str, incarnation: u64) -> bool {
        let Some(slot) = self.slots.get(name) else {
            return false;
        };
        let Some(spec) = slot.stopping.get(&incarnation) else {
            return false;
        };
        let only_process =
            slot.current.is_none() && slot.next.is_none() && slot.stopping.len() == 1;
        self.shutdown.is_none()
            && only_process
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
        // This looks at every child: nothing is left over from earlier reconciliations.
        self.recheck.clear();
        let plan = plan::plan(&self.desired, &self.observed);
        self.carry_out(&plan, effects);
        self.plan = plan;
        self.settle_start_first(effects);
        self.restart_for_dependencies(effects);
        let desired = &self.desired;
        self.slots.retain(|name, slot| is_kept(name, slot, desired));
    }

    /// Carries out the steps of `plan`, in order. A step that did something may have more
    /// to do once that is done (a start-first replacement that stopped a stale one starts
    /// its own next time): its child is left to the next reconciliation
    /// ([`Reconciler::recheck`]), as re-planning every child would look at it again.
    fn carry_out(&mut self, plan: &Plan, effects: &mut Vec<Effect>) {
        let runs = |r: &Self, name: &str| {
            let slot = r.slots.get(name);
            let incarnation = |run: Option<&Run>| run.map(|run| run.incarnation);
            let current = slot.and_then(|s| incarnation(s.current.as_ref()));
            (current, slot.and_then(|s| incarnation(s.next.as_ref())))
        };
        for step in &plan.steps {
            let (before, emitted) = (runs(self, &step.name), effects.len());
            match step.operation {
                Operation::Start => self.start(&step.name, effects),
                Operation::Replace => self.replace(&step.name, effects),
                Operation::Update => self.update(&step.name, effects),
                Operation::Retire => self.retire(&step.name, effects),
                Operation::Unchanged => {}
            }
            if effects.len() != emitted || runs(self, &step.name) != before {
                self.recheck.insert(step.name.clone());
            }
        }
    }

    fn desired_spec(&self, name: &str) -> Option<Arc<ChildSpec>> {
        self.desired
            .children
            .get(name)
            .filter(|spec| spec.manifest.enabled)
            .cloned()
    }
}
