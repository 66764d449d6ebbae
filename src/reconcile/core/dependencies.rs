//! Dependencies: which conditions hold (through targets), who still needs a departing
//! child, and replica sets.

use super::*;
use crate::manifest::ChildSpec;
use crate::manifest::model::{Condition, DependencySpec};

impl Reconciler {
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
    pub(super) fn dependency_met(&self, dep: &DependencySpec, depth: usize) -> bool {
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

    pub(super) fn dependencies_met(&self, spec: &ChildSpec) -> bool {
        self.unmet_dependencies(spec).next().is_none()
    }

    /// Whether another child that has a process and is going away (all of them, during
    /// shutdown) still needs `name`: dependents stop first. Only the children the
    /// [`Reconciler::dependents`] index names are looked at, not every slot.
    pub(super) fn needed_by_departing(&self, name: &str) -> bool {
        let replica_set = self.replica_set(name);
        self.dependents_of(name).any(|other| {
            (self.shutdown.is_some() || self.desired_spec(other).is_none())
                && self.slots.get(other).is_some_and(|slot| {
                    slot.live_specs()
                        .any(|spec| depends_on(spec, name, replica_set))
                })
        })
    }

    /// The replica set `name` belongs to (`web` for the replica `web-3`), from the spec it
    /// runs or is desired with: a standalone child named `db-2` belongs to none.
    pub(super) fn replica_set(&self, name: &str) -> Option<&str> {
        replica_set(name, &self.slots, &self.desired)
    }
}

/// [`Reconciler::replica_set`] over the parts it reads, for callers that hold one of the
/// reconciler's fields mutably.
pub(super) fn replica_set<'a>(
    name: &str,
    slots: &'a BTreeMap<String, Slot>,
    desired: &'a DesiredSet,
) -> Option<&'a str> {
    let running = slots.get(name).into_iter().flat_map(Slot::live_specs);
    running
        .chain(desired.children.get(name))
        .find(|spec| spec.replica.is_some())
        .map(|spec| spec.manifest.name.as_str())
}

/// Whether `spec` declares a dependency on `name` or on `replica_set`, the set `name` is a
/// replica of.
pub(super) fn depends_on(spec: &ChildSpec, name: &str, replica_set: Option<&str>) -> bool {
    spec.manifest
        .dependencies
        .iter()
        .any(|dep| dep.0.name == name || Some(dep.0.name.as_str()) == replica_set)
}
