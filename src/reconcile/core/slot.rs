//! What the reconciler knows of one child name: its [`Slot`] (the serving [`Run`], the
//! incarnations being stopped, a hold) and the [`Phase`] a run is in.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::manifest::ChildSpec;
use crate::manifest::DesiredSet;
use crate::manifest::model::Condition;

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
    pub(super) fn meets(self, condition: Condition) -> bool {
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
    pub(super) fn stop(&mut self, name: &str, run: Run, effects: &mut Vec<Effect>) {
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

/// Whether a slot is worth keeping: it tracks a process, or holds a desired child stopped.
pub(super) fn is_kept(name: &str, slot: &Slot, desired: &DesiredSet) -> bool {
    !slot.is_idle()
        || (slot.hold.is_some() || slot.run_requested) && desired.children.contains_key(name)
}

/// Asks the current incarnation to stop and forgets it as serving.
pub(super) fn retire_current(name: &str, slot: &mut Slot, effects: &mut Vec<Effect>) {
    if let Some(run) = slot.current.take() {
        slot.stop(name, run, effects);
    }
}
