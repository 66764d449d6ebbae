//! Property tests for `plan`: over random sequences of desired sets (random names,
//! dependencies forming a DAG, replicas, random field edits), applying each plan to the
//! observed set yields exactly the desired set, nothing starts before its dependencies,
//! retirement goes dependents first, unchanged children get no step, and re-planning after
//! applying is empty.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use herder::manifest::{ChildSpec, DesiredSet, Manifest};
use herder::plan::order::dependency_order;
use herder::plan::{Observed, ObservedChild, Operation, Plan, Step, plan};
use proptest::prelude::*;
use serde_json::json;

/// The knobs one generated manifest turns.
#[derive(Clone, Debug)]
struct Knobs {
    enabled: bool,
    replicas: u32,
    /// Indices of lower-numbered manifests this one depends on (a DAG by construction).
    dependencies: Vec<usize>,
    command: u8,
    port: u8,
    token_digest: u8,
    unused_digest: u8,
    restart: u8,
    readiness_interval: u8,
    memory: u8,
    source: u8,
}

fn knobs(index: usize) -> impl Strategy<Value = Knobs> {
    (
        (any::<bool>(), any::<bool>(), 1u32..=3),
        proptest::collection::vec(0..index.max(1), 0..=index.min(3)),
        (0u8..3, 0u8..3, 0u8..3, 0u8..2),
        (0u8..3, 0u8..3, 0u8..3, 0u8..2),
    )
        .prop_map(
            move |(
                (enabled, enabled_again, replicas),
                dependencies,
                (command, port, token_digest, unused_digest),
                (restart, readiness_interval, memory, source),
            )| Knobs {
                // Mostly enabled, so that there is something to order.
                enabled: enabled || enabled_again,
                replicas,
                dependencies: if index == 0 { Vec::new() } else { dependencies },
                command,
                port,
                token_digest,
                unused_digest,
                restart,
                readiness_interval,
                memory,
                source,
            },
        )
}

/// A directory of up to 6 manifests, each present or not.
fn directory() -> impl Strategy<Value = Vec<Option<Knobs>>> {
    (0..6usize)
        .map(|index| proptest::option::weighted(0.8, knobs(index)))
        .collect::<Vec<_>>()
}

fn manifest(index: usize, knobs: &Knobs, present: &[bool]) -> Manifest {
    let dependencies: Vec<String> = knobs
        .dependencies
        .iter()
        .filter(|dep| present[**dep])
        .map(|dep| format!("m{dep}"))
        .collect();
    let restart = ["always", "on-failure", "never"][usize::from(knobs.restart)];
    let value = json!({
        "name": format!("m{index}"),
        "enabled": knobs.enabled,
        "command": ["/bin/app", format!("--variant={}", knobs.command)],
        "environment": [
            {"name": "PORT", "value": format!("80{}", knobs.port)},
            {"name": "TOKEN", "secret_ref": "token"},
        ],
        "secrets": [
            {"name": "token", "file": "token.txt"},
            {"name": "unused", "file": "unused.txt"},
        ],
        "dependencies": dependencies,
        "restart": restart,
        "readiness": {"tcp": {"port": 8000}, "interval": format!("{}s", knobs.readiness_interval + 1)},
        "resource_limits": {"memory": format!("{}Mi", 64 << knobs.memory)},
        "replicas": knobs.replicas,
    });
    serde_json::from_value(value).expect("generated manifests are valid")
}

fn desired(directory: &[Option<Knobs>], generation: u64) -> DesiredSet {
    let present: Vec<bool> = directory.iter().map(Option::is_some).collect();
    let mut children = BTreeMap::new();
    for (index, knobs) in directory.iter().enumerate() {
        let Some(knobs) = knobs else { continue };
        let manifest = Arc::new(manifest(index, knobs, &present));
        let digests = BTreeMap::from([
            ("token".to_owned(), u64::from(knobs.token_digest)),
            ("unused".to_owned(), u64::from(knobs.unused_digest)),
        ]);
        let replicas: Vec<(String, Option<u32>)> = if knobs.replicas == 1 {
            vec![(format!("m{index}"), None)]
        } else {
            (0..knobs.replicas)
                .map(|i| (format!("m{index}-{i}"), Some(i)))
                .collect()
        };
        for (name, replica) in replicas {
            let spec = ChildSpec {
                name: name.clone(),
                replica,
                manifest: manifest.clone(),
                source: PathBuf::from(format!("/d/m{index}-{}.yaml", knobs.source)),
                base_dir: PathBuf::from("/d"),
                secret_digests: digests.clone(),
            };
            children.insert(name, Arc::new(spec));
        }
    }
    DesiredSet {
        generation,
        children,
    }
}

/// The children `name` depends on within `children` (base names expanded to replicas).
fn dependencies_of(name: &str, children: &BTreeMap<String, Arc<ChildSpec>>) -> Vec<String> {
    let Some(spec) = children.get(name) else {
        return Vec::new();
    };
    spec.dependency_names()
        .flat_map(|dep| {
            children
                .values()
                .filter(move |other| other.name == dep || other.manifest.name == dep)
                .map(|other| other.name.clone())
        })
        .collect()
}

fn apply(plan: &Plan, desired: &DesiredSet, observed: &mut Observed) {
    for Step {
        name, operation, ..
    } in &plan.steps
    {
        match operation {
            Operation::Start | Operation::Replace | Operation::Update => {
                let spec = desired.children[name].clone();
                observed
                    .children
                    .insert(name.clone(), ObservedChild { spec });
            }
            Operation::Retire => {
                observed.children.remove(name);
            }
            Operation::Unchanged => panic!("unchanged children must not have a step"),
        }
    }
}

fn needs_new_process(old: &ChildSpec, new: &ChildSpec) -> bool {
    old.manifest.command != new.manifest.command
        || old.manifest.environment != new.manifest.environment
        || old.secret_digests.get("token") != new.secret_digests.get("token")
        || old.replica != new.replica
}

fn check_step(plan: &Plan, desired: &DesiredSet, observed: &Observed) -> Result<(), TestCaseError> {
    let position: BTreeMap<&str, usize> = plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| (step.name.as_str(), i))
        .collect();
    let running: BTreeMap<String, Arc<ChildSpec>> = observed
        .children
        .iter()
        .map(|(name, child)| (name.clone(), child.spec.clone()))
        .collect();
    let wanted: BTreeMap<String, Arc<ChildSpec>> = desired
        .children
        .iter()
        .filter(|(_, spec)| spec.manifest.enabled)
        .map(|(name, spec)| (name.clone(), spec.clone()))
        .collect();

    for (i, step) in plan.steps.iter().enumerate() {
        match step.operation {
            Operation::Start | Operation::Replace => {
                for dep in dependencies_of(&step.name, &wanted) {
                    if let Some(&at) = position.get(dep.as_str()) {
                        let op = plan.steps[at].operation;
                        if matches!(op, Operation::Start | Operation::Replace) {
                            prop_assert!(
                                at < i,
                                "{} starts before its dependency {dep}",
                                step.name
                            );
                        }
                    }
                }
            }
            Operation::Retire => {
                for other in running.keys() {
                    let depends = dependencies_of(other, &running).contains(&step.name);
                    if depends && plan.operation(other) == Operation::Retire {
                        prop_assert!(
                            position[other.as_str()] < i,
                            "{} retires before its dependent {other}",
                            step.name
                        );
                    }
                }
            }
            Operation::Update | Operation::Unchanged => {}
        }
    }

    for (name, spec) in &wanted {
        match observed.children.get(name) {
            None => prop_assert_eq!(plan.operation(name), Operation::Start),
            Some(old) if *old.spec == **spec => {
                prop_assert_eq!(plan.operation(name), Operation::Unchanged)
            }
            Some(old) => {
                let expected = if needs_new_process(&old.spec, spec) {
                    Operation::Replace
                } else {
                    Operation::Update
                };
                prop_assert_eq!(plan.operation(name), expected, "{}", name);
                prop_assert!(!plan.step(name).is_none_or(|s| s.changes.is_empty()));
            }
        }
    }
    for name in observed.children.keys() {
        if !wanted.contains_key(name) {
            prop_assert_eq!(plan.operation(name), Operation::Retire);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn applying_plans_converges(directories in proptest::collection::vec(directory(), 1..6)) {
        let mut observed = Observed::default();
        for (generation, directory) in directories.iter().enumerate() {
            let desired = desired(directory, generation as u64 + 1);
            let plan = plan(&desired, &observed);
            check_step(&plan, &desired, &observed)?;
            prop_assert_eq!(
                plan.unchanged + plan.steps.iter().filter(|s| s.operation != Operation::Retire).count(),
                desired.children.values().filter(|s| s.manifest.enabled).count()
            );

            apply(&plan, &desired, &mut observed);
            prop_assert_eq!(&observed, &Observed::converged(&desired));
            let again = herder::plan::plan(&desired, &observed);
            prop_assert!(again.is_empty(), "re-planning is not empty: {:?}", again.steps);
        }
    }

    #[test]
    fn secrets_never_rendered(directories in proptest::collection::vec(directory(), 2..4)) {
        let mut observed = Observed::default();
        for (generation, directory) in directories.iter().enumerate() {
            let desired = desired(directory, generation as u64 + 1);
            let plan = plan(&desired, &observed);
            for step in &plan.steps {
                for change in &step.changes {
                    if change.field.starts_with("environment.TOKEN") || change.field.starts_with("secrets.") && !change.field.contains(".file") {
                        prop_assert!(change.redacted && change.before.is_none() && change.after.is_none());
                    }
                }
            }
            apply(&plan, &desired, &mut observed);
        }
    }

    #[test]
    fn ordering_a_few_children_agrees_with_ordering_them_all(
        directory in directory(),
        picks in proptest::collection::vec(any::<bool>(), 18),
    ) {
        let desired = desired(&directory, 1);
        let everyone: Vec<&str> = desired.children.keys().map(String::as_str).collect();
        let picked: Vec<&str> = everyone
            .iter()
            .zip(picks.iter().cycle())
            .filter(|(_, pick)| **pick)
            .map(|(name, _)| *name)
            .collect();
        let enabled = |spec: &Arc<ChildSpec>| spec.manifest.enabled;
        let all = dependency_order(&desired.children, everyone.iter().copied(), enabled);
        let expected: Vec<&str> = all.into_iter().filter(|name| picked.contains(name)).collect();
        prop_assert_eq!(
            dependency_order(&desired.children, picked.iter().copied(), enabled),
            expected
        );
    }
}
