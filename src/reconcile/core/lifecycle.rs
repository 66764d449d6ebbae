//! The operations of a plan carried out on the slots: start, replace (stop-first or
//! start-first), update in place, retire, and restarts for `restart: true` dependencies.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::manifest::ChildSpec;
use crate::manifest::model::{Condition, UpdateStrategy};

impl Reconciler {
    pub(super) fn new_run(&mut self, spec: Arc<ChildSpec>) -> Run {
        self.next_incarnation += 1;
        Run {
            incarnation: self.next_incarnation,
            spec,
            phase: Phase::Starting,
            spawns: 0,
        }
    }

    pub(super) fn dependency_epochs(&self, spec: &ChildSpec) -> BTreeMap<String, u64> {
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

    pub(super) fn start(&mut self, name: &str, effects: &mut Vec<Effect>) {
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

    pub(super) fn replace(&mut self, name: &str, effects: &mut Vec<Effect>) {
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

    /// Promotes every `start-first` replacement that is ready, stopping the old
    /// incarnations; leaves the dependents of the promoted children to the next
    /// reconciliation.
    pub(super) fn settle_start_first(&mut self, effects: &mut Vec<Effect>) {
        let promoted: Vec<String> = (self.slots.iter_mut())
            .filter_map(|(name, slot)| promote_ready(name, slot, effects).then(|| name.clone()))
            .collect();
        self.recheck_with_dependents(&promoted);
    }

    pub(super) fn update(&mut self, name: &str, effects: &mut Vec<Effect>) {
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
        let old = std::mem::replace(&mut run.spec, Arc::clone(&spec));
        let phase = run.phase;
        let incarnation = run.incarnation;
        if !old.dependency_names().eq(spec.dependency_names()) {
            let declared = old.dependency_names().map(str::to_owned).collect();
            self.recheck_dependencies(&declared);
        }
        if phase == Phase::Target {
            return;
        }
        effects.push(Effect::Update {
            name: name.to_owned(),
            incarnation,
            spec,
        });
    }

    pub(super) fn retire(&mut self, name: &str, effects: &mut Vec<Effect>) {
        if self.needed_by_departing(name) {
            return;
        }
        if let Some(slot) = self.slots.get_mut(name) {
            slot.stop_all(name, effects);
        }
    }

    /// Restarts children whose `restart: true` dependencies got a new process that is ready.
    pub(super) fn restart_for_dependencies(&mut self, effects: &mut Vec<Effect>) {
        let restarts: Vec<_> = (self.slots.iter())
            .filter_map(|(name, slot)| self.stale_restart(name, slot))
            .collect();
        for restart in restarts {
            self.restart(restart, effects);
        }
    }

    /// [`Reconciler::restart_for_dependencies`] for the one child `name`.
    pub(super) fn restart_if_stale(&mut self, name: &str, effects: &mut Vec<Effect>) {
        let stale = (self.slots.get_key_value(name))
            .and_then(|(name, slot)| self.stale_restart(name, slot));
        if let Some(restart) = stale {
            self.restart(restart, effects);
        }
    }

    /// The restart `name` is due, when one of its `restart: true` dependencies got a new
    /// process that is ready since its own process started.
    fn stale_restart(&self, name: &str, slot: &Slot) -> Option<StaleRestart> {
        let run =
            (slot.current.as_ref()).filter(|run| matches!(run.phase, Phase::Running { .. }))?;
        let stale = slot.seen_epochs.iter().any(|(dep, seen)| {
            self.slots.get(dep).is_some_and(|dep_slot| {
                dep_slot.epoch > *seen
                    && dep_slot
                        .current
                        .as_ref()
                        .is_some_and(|dep_run| dep_run.phase.meets(Condition::Ready))
            })
        });
        stale.then(|| StaleRestart {
            name: name.to_owned(),
            incarnation: run.incarnation,
            epochs: self.dependency_epochs(&run.spec),
        })
    }

    fn restart(&mut self, restart: StaleRestart, effects: &mut Vec<Effect>) {
        let StaleRestart {
            name,
            incarnation,
            epochs,
        } = restart;
        if let Some(slot) = self.slots.get_mut(&name) {
            slot.seen_epochs = epochs;
        }
        effects.push(Effect::Restart { name, incarnation });
    }
}

/// A restart for `restart: true` dependencies, and the epochs the child then has seen.
struct StaleRestart {
    name: String,
    incarnation: u64,
    epochs: BTreeMap<String, u64>,
}

/// Promotes `slot`'s `start-first` replacement if it is ready, stopping the old
/// incarnation; says whether it did.
pub(super) fn promote_ready(name: &str, slot: &mut Slot, effects: &mut Vec<Effect>) -> bool {
    let ready = (slot.next.as_ref()).is_some_and(|run| run.phase.meets(Condition::Ready));
    if !ready {
        return false;
    }
    if let Some(old) = slot.current.take() {
        slot.stop(name, old, effects);
    }
    slot.current = slot.next.take();
    true
}
