//! Example-based tests for `plan`: the classification table of DESIGN.md §4, secret
//! redaction, replica scaling, ordering, and the human and JSON renderings.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use herder::manifest::{ChildSpec, DesiredSet, Manifest};
use herder::plan::{Format, Observed, Operation, Plan, plan, render};
use serde_json::{Value, json};

fn spec_with(value: Value, digests: &[(&str, u64)]) -> Vec<Arc<ChildSpec>> {
    let manifest: Arc<Manifest> =
        Arc::new(serde_json::from_value(value).expect("test manifests are valid"));
    let secret_digests: BTreeMap<String, u64> = digests
        .iter()
        .map(|(name, digest)| ((*name).to_owned(), *digest))
        .collect();
    let names: Vec<(String, Option<u32>)> = if manifest.replicas == 1 {
        vec![(manifest.name.clone(), None)]
    } else {
        (0..manifest.replicas)
            .map(|i| (format!("{}-{i}", manifest.name), Some(i)))
            .collect()
    };
    names
        .into_iter()
        .map(|(name, replica)| {
            Arc::new(ChildSpec {
                name,
                replica,
                manifest: manifest.clone(),
                source: PathBuf::from(format!("/d/{}.yaml", manifest.name)),
                base_dir: PathBuf::from("/d"),
                secret_digests: secret_digests.clone(),
            })
        })
        .collect()
}

fn set(manifests: Vec<Vec<Arc<ChildSpec>>>) -> DesiredSet {
    DesiredSet {
        generation: 1,
        children: manifests
            .into_iter()
            .flatten()
            .map(|spec| (spec.name.clone(), spec))
            .collect(),
    }
}

fn plan_between(before: DesiredSet, after: &DesiredSet) -> Plan {
    plan(after, &Observed::converged(&before))
}

fn basic(name: &str) -> Value {
    json!({"name": name, "command": ["a"]})
}

#[test]
fn empty_observed_starts_everything_in_dependency_order() {
    let desired = set(vec![
        spec_with(
            json!({"name": "web", "command": ["w"], "dependencies": ["api"]}),
            &[],
        ),
        spec_with(
            json!({"name": "api", "command": ["a"], "dependencies": ["db"]}),
            &[],
        ),
        spec_with(json!({"name": "db", "command": ["d"], "replicas": 2}), &[]),
    ]);
    let plan = plan(&desired, &Observed::default());
    let order: Vec<(&str, Operation)> = plan
        .steps
        .iter()
        .map(|step| (step.name.as_str(), step.operation))
        .collect();
    assert_eq!(
        order,
        [
            ("db-0", Operation::Start),
            ("db-1", Operation::Start),
            ("api", Operation::Start),
            ("web", Operation::Start),
        ]
    );
}

#[test]
fn retirement_goes_dependents_first() {
    let before = set(vec![
        spec_with(
            json!({"name": "web", "command": ["w"], "dependencies": ["api"]}),
            &[],
        ),
        spec_with(
            json!({"name": "api", "command": ["a"], "dependencies": ["db"]}),
            &[],
        ),
        spec_with(basic("db"), &[]),
    ]);
    let plan = plan_between(before, &DesiredSet::default());
    let names: Vec<&str> = plan.steps.iter().map(|step| step.name.as_str()).collect();
    assert_eq!(names, ["web", "api", "db"]);
    assert!(plan.steps.iter().all(|s| s.operation == Operation::Retire));
}

#[test]
fn command_change_replaces_and_shows_values() {
    let before = set(vec![spec_with(basic("web"), &[])]);
    let after = set(vec![spec_with(
        json!({"name": "web", "command": ["b"]}),
        &[],
    )]);
    let plan = plan_between(before, &after);
    assert_eq!(plan.operation("web"), Operation::Replace);
    assert_eq!(
        render(&plan, Format::Human),
        "~ replace web: command [\"a\"] → [\"b\"]\n0 to start, 1 to replace, 0 to update, 0 to retire, 0 unchanged\n"
    );
}

#[test]
fn restart_policy_probe_and_limits_update_in_place() {
    let before = set(vec![spec_with(
        json!({"name": "worker", "command": ["a"], "restart": "always",
               "readiness": {"tcp": {"port": 80}}, "resource_limits": {"memory": "64Mi"}}),
        &[],
    )]);
    let after = set(vec![spec_with(
        json!({"name": "worker", "command": ["a"], "restart": "never",
               "readiness": {"tcp": {"port": 80}, "interval": "5s"},
               "resource_limits": {"memory": "128Mi", "open_files": 100}}),
        &[],
    )]);
    let plan = plan_between(before, &after);
    assert_eq!(plan.operation("worker"), Operation::Update);
    let text = render(&plan, Format::Human);
    assert_eq!(
        text,
        "• update worker:\n    restart.policy always → never\n    readiness.interval (unset) → 5s\n    resource_limits.memory 64Mi → 128Mi\n    resource_limits.open_files (unset) → 100\n0 to start, 0 to replace, 1 to update, 0 to retire, 0 unchanged\n"
    );
}

#[test]
fn rotated_secret_replaces_without_showing_values() {
    let manifest = json!({"name": "api", "command": ["a"],
        "secrets": [{"name": "api-token", "file": "token"}],
        "environment": [{"name": "API_TOKEN", "secret_ref": "api-token"}]});
    let before = set(vec![spec_with(manifest.clone(), &[("api-token", 1)])]);
    let after = set(vec![spec_with(manifest, &[("api-token", 2)])]);
    let plan = plan_between(before, &after);
    assert_eq!(plan.operation("api"), Operation::Replace);
    let text = render(&plan, Format::Human);
    assert!(text.starts_with("~ replace api: environment.API_TOKEN (secret changed)\n"));
    let json = render(&plan, Format::Json);
    let value: Value = serde_json::from_str(&json).expect("plan JSON parses");
    assert_eq!(
        value["steps"][0]["changes"][0],
        json!({"field": "environment.API_TOKEN", "before": null, "after": null, "redacted": true})
    );
}

#[test]
fn literal_replaced_by_secret_ref_hides_the_old_literal() {
    let before = set(vec![spec_with(
        json!({"name": "api", "command": ["a"], "environment": {"API_TOKEN": "hunter2"}}),
        &[],
    )]);
    let after = set(vec![spec_with(
        json!({"name": "api", "command": ["a"],
               "secrets": [{"name": "t", "env": "T"}],
               "environment": [{"name": "API_TOKEN", "secret_ref": "t"}]}),
        &[("t", 9)],
    )]);
    let plan = plan_between(before, &after);
    assert_eq!(plan.operation("api"), Operation::Replace);
    for format in [Format::Human, Format::Json] {
        assert!(!render(&plan, format).contains("hunter2"));
    }
}

#[test]
fn unreferenced_secret_rotation_is_an_update() {
    let manifest = json!({"name": "api", "command": ["a"], "secrets": [{"name": "s", "env": "S"}]});
    let before = set(vec![spec_with(manifest.clone(), &[("s", 1)])]);
    let after = set(vec![spec_with(manifest, &[("s", 2)])]);
    let plan = plan_between(before, &after);
    assert_eq!(plan.operation("api"), Operation::Update);
    assert_eq!(plan.steps[0].changes[0].field, "secrets.s");
    assert!(plan.steps[0].changes[0].redacted);
}

#[test]
fn scaling_up_starts_only_the_new_replicas() {
    let before = set(vec![spec_with(
        json!({"name": "api", "command": ["a"], "replicas": 2}),
        &[],
    )]);
    let after = set(vec![spec_with(
        json!({"name": "api", "command": ["a"], "replicas": 4}),
        &[],
    )]);
    let plan = plan_between(before, &after);
    assert_eq!(plan.operation("api-2"), Operation::Start);
    assert_eq!(plan.operation("api-3"), Operation::Start);
    // The running replicas only learn the new count: no restart.
    assert_eq!(plan.operation("api-0"), Operation::Update);
    assert_eq!(plan.operation("api-1"), Operation::Update);
}

#[test]
fn scaling_down_retires_only_the_highest_replicas() {
    let before = set(vec![spec_with(
        json!({"name": "api", "command": ["a"], "replicas": 3}),
        &[],
    )]);
    let after = set(vec![spec_with(
        json!({"name": "api", "command": ["a"], "replicas": 2}),
        &[],
    )]);
    let plan = plan_between(before, &after);
    assert_eq!(plan.operation("api-2"), Operation::Retire);
    assert_ne!(plan.operation("api-0"), Operation::Replace);
    assert_ne!(plan.operation("api-1"), Operation::Replace);
}

#[test]
fn disabling_retires_and_enabling_starts() {
    let on = set(vec![spec_with(basic("job"), &[])]);
    let off = set(vec![spec_with(
        json!({"name": "job", "command": ["a"], "enabled": false}),
        &[],
    )]);
    let plan = plan_between(on.clone(), &off);
    assert_eq!(plan.operation("job"), Operation::Retire);
    assert_eq!(plan.steps[0].changes[0].field, "enabled");
    let plan = herder::plan::plan(&on, &Observed::converged(&off));
    assert_eq!(plan.operation("job"), Operation::Start);
}

#[test]
fn unchanged_children_have_no_step() {
    let desired = set(vec![spec_with(basic("a"), &[]), spec_with(basic("b"), &[])]);
    let plan = plan_between(desired.clone(), &desired);
    assert!(plan.is_empty());
    assert_eq!(plan.unchanged, 2);
    assert_eq!(render(&plan, Format::Human), "no changes, 2 unchanged\n");
}

#[test]
fn a_cycle_does_not_hang_or_panic() {
    let desired = set(vec![
        spec_with(
            json!({"name": "a", "command": ["a"], "dependencies": ["b"]}),
            &[],
        ),
        spec_with(
            json!({"name": "b", "command": ["b"], "dependencies": ["a"]}),
            &[],
        ),
        spec_with(basic("c"), &[]),
    ]);
    let plan = plan(&desired, &Observed::default());
    assert_eq!(plan.steps.len(), 3);
    assert_eq!(plan.steps[0].name, "c");
}

#[test]
fn json_field_names_are_stable() {
    let before = set(vec![spec_with(basic("old"), &[])]);
    let after = set(vec![spec_with(basic("new"), &[])]);
    let value: Value = serde_json::from_str(&render(&plan_between(before, &after), Format::Json))
        .expect("plan JSON parses");
    assert_eq!(
        value,
        json!({
            "steps": [
                {"name": "old", "operation": "retire", "changes": []},
                {"name": "new", "operation": "start", "changes": []}
            ],
            "summary": {"start": 1, "replace": 0, "update": 0, "retire": 1, "unchanged": 0}
        })
    );
}
