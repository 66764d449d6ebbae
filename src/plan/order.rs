//! Dependency order over a set of children.
//!
//! A dependency names a child or a replicated manifest's base name (`db` when `db` has
//! replicas means every `db-i`). Validation rejects cycles before a set reaches the planner,
//! but this module must still terminate on one (a stale observed set, a future bug): Kahn's
//! algorithm places everything it can, then appends whatever a cycle left over, by name.
//! Ties are broken by name, so the order is deterministic.
//!
//! Only the children being ordered and their dependencies (transitively) are looked at, so
//! ordering the one child a reload adds costs the same among ten children as among ten
//! thousand. Kahn's algorithm over a set closed under dependencies places its members in
//! the same relative order as over the whole set: a member becomes ready only once its
//! dependencies, all members too, are placed, whatever else is placed in between.

use std::collections::{BTreeMap, BTreeSet};

use crate::manifest::ChildSpec;
use crate::manifest::desired::expand;

/// The children `spec` depends on among `children` (those `include` accepts): the exact
/// child of that name, plus every replica of a manifest of that name.
fn dependencies<'a, V: AsRef<ChildSpec>>(
    spec: &'a ChildSpec,
    children: &'a BTreeMap<String, V>,
    include: &impl Fn(&V) -> bool,
) -> BTreeSet<&'a str> {
    let mut resolved: BTreeSet<&str> = spec
        .dependency_names()
        .flat_map(|dependency| expand(children, dependency))
        .filter(|name| children.get(*name).is_some_and(include))
        .collect();
    resolved.remove(spec.name.as_str());
    resolved
}

/// `names` (children of `children`), each after all of its dependencies (when there is no
/// cycle). Dependencies on children `include` rejects, or that do not exist, are ignored.
pub fn dependency_order<'a, V: AsRef<ChildSpec>>(
    children: &'a BTreeMap<String, V>,
    names: impl IntoIterator<Item = &'a str>,
    include: impl Fn(&V) -> bool,
) -> Vec<&'a str> {
    let wanted: BTreeSet<&str> = names.into_iter().collect();

    // The closure of `wanted` under dependencies, with its edges.
    let mut waiting_on: BTreeMap<&str, usize> = BTreeMap::new();
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut stack: Vec<&str> = wanted.iter().copied().collect();
    while let Some(name) = stack.pop() {
        if waiting_on.contains_key(name) {
            continue;
        }
        let Some((name, spec)) = children.get_key_value(name) else {
            continue;
        };
        let dependencies = dependencies(spec.as_ref(), children, &include);
        waiting_on.insert(name.as_str(), dependencies.len());
        for dependency in dependencies {
            dependents
                .entry(dependency)
                .or_default()
                .push(name.as_str());
            stack.push(dependency);
        }
    }

    let mut ready: BTreeSet<&str> = waiting_on
        .iter()
        .filter(|(_, count)| **count == 0)
        .map(|(name, _)| *name)
        .collect();
    let mut order = Vec::with_capacity(wanted.len());
    while let Some(name) = ready.pop_first() {
        if wanted.contains(name) {
            order.push(name);
        }
        waiting_on.remove(name);
        for dependent in dependents.get(name).into_iter().flatten() {
            if let Some(count) = waiting_on.get_mut(dependent) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    ready.insert(dependent);
                }
            }
        }
    }
    // Whatever is still waiting sits on (or behind) a cycle.
    order.extend(waiting_on.keys().filter(|name| wanted.contains(*name)));
    order
}
