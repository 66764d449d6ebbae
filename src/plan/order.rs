//! Dependency order over a set of children.
//!
//! A dependency names a child or a replicated manifest's base name (`db` when `db` has
//! replicas means every `db-i`). Validation rejects cycles before a set reaches the planner,
//! but this module must still terminate on one (a stale observed set, a future bug): Kahn's
//! algorithm places everything it can, then appends whatever a cycle left over, by name.
//! Ties are broken by name, so the order is deterministic.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::manifest::ChildSpec;

/// The children `spec` depends on, resolved against `children`: the exact child of that name,
/// plus every replica of a manifest of that name. Names that resolve to nothing are skipped.
pub fn resolve_dependencies<'a>(
    spec: &'a ChildSpec,
    children: &'a BTreeMap<String, Arc<ChildSpec>>,
    by_manifest: &BTreeMap<&'a str, Vec<&'a str>>,
) -> BTreeSet<&'a str> {
    let mut resolved = BTreeSet::new();
    for dependency in spec.dependency_names() {
        if let Some((name, _)) = children.get_key_value(dependency) {
            resolved.insert(name.as_str());
        }
        if let Some(replicas) = by_manifest.get(dependency) {
            resolved.extend(replicas.iter().copied());
        }
    }
    resolved.remove(spec.name.as_str());
    resolved
}

/// Child names grouped by the name of the manifest that declared them.
pub fn by_manifest(children: &BTreeMap<String, Arc<ChildSpec>>) -> BTreeMap<&str, Vec<&str>> {
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, spec) in children {
        groups
            .entry(spec.manifest.name.as_str())
            .or_default()
            .push(name.as_str());
    }
    groups
}

/// Every child of `children`, each after all of its dependencies (when there is no cycle).
pub fn dependency_order(children: &BTreeMap<String, Arc<ChildSpec>>) -> Vec<&str> {
    let groups = by_manifest(children);
    let mut waiting_on: BTreeMap<&str, usize> = BTreeMap::new();
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, spec) in children {
        let dependencies = resolve_dependencies(spec, children, &groups);
        waiting_on.insert(name.as_str(), dependencies.len());
        for dependency in dependencies {
            dependents
                .entry(dependency)
                .or_default()
                .push(name.as_str());
        }
    }

    let mut ready: BTreeSet<&str> = waiting_on
        .iter()
        .filter(|(_, count)| **count == 0)
        .map(|(name, _)| *name)
        .collect();
    let mut order = Vec::with_capacity(children.len());
    while let Some(name) = ready.pop_first() {
        order.push(name);
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
    order.extend(waiting_on.keys().copied());
    order
}
