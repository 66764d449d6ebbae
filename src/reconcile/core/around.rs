//! The reconciliation after a child's report, limited to the children the report can
//! concern: the child itself, the children whose decisions read its phase (its
//! dependents), and, when it lets go of a process, what that process depended on (a
//! departing dependency waits for its dependents to leave). A `kind: target` stands for
//! its own dependencies, so the walk goes on through targets.
//!
//! A report changes the slot of its own child only. Every other child's plan step reads
//! its own slot and the slots of its dependencies (or, to retire, of its dependents), so
//! a child outside that set would take the same decision as at the last reconciliation:
//! none. Re-planning every child instead cost O(children) per report, quadratic at
//! start-up and for any batch of reports among thousands of children.
//!
//! Who depends on whom comes from [`Reconciler::dependents`], an index rebuilt with every
//! desired set over the desired specs and the specs still running: every spec a slot can
//! hold was desired when its process started, so the index is a superset of the live
//! declarations until the next desired set.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

use super::*;

impl Reconciler {
    /// Rebuilds [`Reconciler::dependents`]: a declared dependency name → the children whose
    /// desired or live specs declare it.
    pub(super) fn index_dependents(&mut self) {
        let mut index: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let desired = self.desired.children.iter();
        let live = (self.slots.iter())
            .flat_map(|(name, slot)| slot.live_specs().map(move |spec| (name, spec)));
        for (name, spec) in desired.chain(live) {
            for dependency in spec.dependency_names() {
                (index.entry(dependency.to_owned()).or_default()).insert(name.clone());
            }
        }
        self.dependents = index;
    }

    /// The children that may declare a dependency on `name` or on the replica set it
    /// belongs to (a superset: see the module documentation), `name` itself aside.
    pub(super) fn dependents_of(&self, name: &str) -> impl Iterator<Item = &String> + '_ {
        let set = self.replica_set(name).map(str::to_owned);
        let name = name.to_owned();
        let by_name = self.dependents.get(&name).into_iter().flatten();
        let by_set = set
            .and_then(|set| self.dependents.get(&set))
            .into_iter()
            .flatten();
        by_name.chain(by_set).filter(move |other| **other != name)
    }

    /// The dependency names `name`'s desired and live specs declare.
    pub(super) fn declared_dependencies(&self, name: &str) -> BTreeSet<String> {
        let live = self.slots.get(name).into_iter().flat_map(Slot::live_specs);
        (live.chain(self.desired.children.get(name)))
            .flat_map(|spec| spec.dependency_names())
            .map(str::to_owned)
            .collect()
    }

    /// Adds the children a dependency named `dependency` stands for, desired or not: the
    /// child of that name and the replicas of a set of that name.
    fn add_dependency_targets(&self, dependency: &str, into: &mut BTreeSet<String>) {
        into.extend(self.desired.expand(dependency).map(str::to_owned));
        if self.slots.contains_key(dependency) {
            into.insert(dependency.to_owned());
        }
        let prefix = format!("{dependency}-");
        let replicas = (self.slots)
            .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
            .take_while(|(other, _)| other.starts_with(&prefix))
            .filter(|(other, _)| self.replica_set(other) == Some(dependency));
        into.extend(replicas.map(|(other, _)| other.clone()));
    }

    /// Whether `name` is a `kind: target` (desired as one, or serving as one).
    fn is_target(&self, name: &str) -> bool {
        let desired = (self.desired.children.get(name)).is_some_and(|s| s.manifest.is_target());
        let serving = (self.slots.get(name))
            .and_then(|slot| slot.current.as_ref())
            .is_some_and(|run| run.phase == Phase::Target);
        desired || serving
    }

    /// The children a report on `name` can concern: `name`, its dependents, the children
    /// its processes depended on (`declared_before`, read before the report was applied),
    /// what an earlier reconciliation left to look at again ([`Reconciler::recheck`]), and
    /// through targets the same again.
    fn concerned(&mut self, name: &str, declared_before: &BTreeSet<String>) -> BTreeSet<String> {
        let mut concerned = std::mem::take(&mut self.recheck);
        let mut queue: Vec<(String, BTreeSet<String>)> = (concerned.iter())
            .filter(|other| self.is_target(other))
            .map(|other| (other.clone(), self.declared_dependencies(other)))
            .collect();
        concerned.insert(name.to_owned());
        queue.push((name.to_owned(), declared_before.clone()));
        while let Some((next, declared)) = queue.pop() {
            let mut found: BTreeSet<String> = self.dependents_of(&next).cloned().collect();
            for dependency in &declared {
                self.add_dependency_targets(dependency, &mut found);
            }
            for other in found {
                if concerned.insert(other.clone()) && self.is_target(&other) {
                    let declared = self.declared_dependencies(&other);
                    queue.push((other, declared));
                }
            }
        }
        concerned
    }

    /// Reconciles the children a report on `name` can concern, as [`Reconciler::reconcile`]
    /// does all of them: the same plan steps in the same order, the same promotions of
    /// start-first replacements and restarts for `restart: true` dependencies.
    pub(super) fn reconcile_around(
        &mut self,
        name: &str,
        declared_before: &BTreeSet<String>,
        effects: &mut Vec<Effect>,
    ) {
        let concerned = self.concerned(name, declared_before);
        for n in &concerned {
            self.refresh_observed_of(n);
        }
        let plan = plan::plan_of(
            &self.desired,
            &self.observed,
            concerned.iter().map(String::as_str),
        );
        self.carry_out(&plan, effects);
        let promoted: Vec<&String> = (concerned.iter())
            .filter(|n| {
                (self.slots.get_mut(n.as_str())).is_some_and(|slot| promote_ready(n, slot, effects))
            })
            .collect();
        self.recheck_with_dependents(promoted);
        for n in &concerned {
            self.restart_if_stale(n, effects);
        }
        for n in &concerned {
            self.drop_if_idle(n);
        }
    }

    /// Brings `name`'s entry of [`Reconciler::observed`] in line with its serving
    /// incarnation.
    fn refresh_observed_of(&mut self, name: &str) {
        let serving = (self.slots.get(name)).and_then(|slot| slot.current.as_ref());
        match serving {
            Some(run) => match self.observed.children.get_mut(name) {
                Some(child) if Arc::ptr_eq(&child.spec, &run.spec) => {}
                Some(child) => child.spec = Arc::clone(&run.spec),
                None => {
                    let spec = Arc::clone(&run.spec);
                    (self.observed.children).insert(name.to_owned(), ObservedChild { spec });
                }
            },
            None => {
                self.observed.children.remove(name);
            }
        }
    }

    /// Leaves `names` and their dependents to the next reconciliation: what their plan
    /// steps read changed after this reconciliation planned them (a start-first
    /// replacement was promoted), or without one (a report that skipped it).
    pub(super) fn recheck_with_dependents<'a>(
        &mut self,
        names: impl IntoIterator<Item = &'a String>,
    ) {
        // Inserted one by one: `BTreeSet::append` rebuilds the whole set, which made each
        // skipped report cost O(children) at start-up.
        let mut recheck = Vec::new();
        for name in names {
            recheck.push(name.clone());
            recheck.extend(self.dependents_of(name).cloned());
        }
        self.recheck.extend(recheck);
    }

    /// Leaves the children `declared` stands for to the next reconciliation: a process no
    /// longer declares them (an update in place changed its dependencies), which may let a
    /// departing one go.
    pub(super) fn recheck_dependencies(&mut self, declared: &BTreeSet<String>) {
        let mut recheck = BTreeSet::new();
        for dependency in declared {
            self.add_dependency_targets(dependency, &mut recheck);
        }
        self.recheck.extend(recheck);
    }
}
