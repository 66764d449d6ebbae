//! Classifying each child: start, replace, update in place, retire, or leave alone.
//!
//! The rules are DESIGN.md §4. What a running process cannot take without a restart (its
//! argv, working directory, environment, secret values, user/group, kind, replica index,
//! base directory) forces a **replace**. Everything herder itself interprets (restart policy,
//! probes, timeouts, criticality, permissions, labels, description, logs, dependency
//! conditions, stop settings, update strategy, the declaring file) is an **update in place**.
//!
//! Resource limits are all live here: `open_files` is applied to the running process with
//! `prlimit`, `memory` by a cgroup write or the RSS watchdog's new threshold, `cpu` and
//! `processes` by a cgroup write, or (without cgroup) they are only reported, which follows
//! the new value too. None of them needs a restart.
//!
//! A child is unchanged only when its spec is equal to the running one (the same value, not
//! merely "equivalent"), so applying a plan makes the observed set equal to the desired set
//! and re-planning is empty. Every field is compared through an exhaustive destructuring of
//! [`Manifest`], so a field added to the model does not compile until it is classified here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::model::{FieldChange, Observed, Operation, Plan, Step};
use super::order::dependency_order;
use crate::manifest::model::{DependencySpec, EnvVar, Manifest, Secret};
use crate::manifest::{ChildSpec, DesiredSet};

/// The plan that takes `observed` to `desired`: one step per child that needs an operation,
/// in execution order (see [`Plan`]). Children with `enabled: false` count as not wanted.
pub fn plan(desired: &DesiredSet, observed: &Observed) -> Plan {
    let mut sorted = Sorted::default();
    // Both maps are sorted by name: walk them together.
    let mut running = observed.children.iter().peekable();
    for (name, spec) in &desired.children {
        while let Some((gone, _)) = running.next_if(|(other, _)| other.as_str() < name.as_str()) {
            sorted.add(
                gone,
                Classified::Retiring(step(gone, Operation::Retire, Vec::new())),
            );
        }
        let current = running.next_if(|(other, _)| *other == name);
        let current = current.map(|(_, child)| &child.spec);
        sorted.add(name, classify(name, Some(spec), current));
    }
    for (gone, _) in running {
        sorted.add(
            gone,
            Classified::Retiring(step(gone, Operation::Retire, Vec::new())),
        );
    }
    sorted.into_plan(desired, observed)
}

/// [`plan`] for the children `names` alone: their steps, in the order [`plan`] would give
/// them among all steps. Costs what those children and their dependencies cost, whatever
/// the size of the sets.
pub fn plan_of<'a>(
    desired: &'a DesiredSet,
    observed: &'a Observed,
    names: impl IntoIterator<Item = &'a str>,
) -> Plan {
    let mut sorted = Sorted::default();
    for name in names {
        let spec = desired.children.get(name);
        let current = observed.children.get(name).map(|child| &child.spec);
        sorted.add(name, classify(name, spec, current));
    }
    sorted.into_plan(desired, observed)
}

/// The classified children of a plan in the making, by what they need.
#[derive(Default)]
struct Sorted<'a> {
    forward: BTreeMap<&'a str, Step>,
    retiring: BTreeMap<&'a str, Step>,
    unchanged: usize,
}

impl<'a> Sorted<'a> {
    fn add(&mut self, name: &'a str, classified: Classified) {
        match classified {
            Classified::Forward(step) => {
                self.forward.insert(name, step);
            }
            Classified::Retiring(step) => {
                self.retiring.insert(name, step);
            }
            Classified::Unchanged => self.unchanged += 1,
            Classified::Nothing => {}
        }
    }

    /// The plan of these steps, in execution order.
    fn into_plan(self, desired: &'a DesiredSet, observed: &'a Observed) -> Plan {
        let steps = in_order(desired, observed, self.forward, self.retiring);
        Plan {
            steps,
            unchanged: self.unchanged,
        }
    }
}

/// What one child needs.
enum Classified {
    /// A start, replacement or update.
    Forward(Step),
    /// A retirement.
    Retiring(Step),
    /// It runs what it should.
    Unchanged,
    /// Neither desired (enabled) nor running.
    Nothing,
}

/// The step for the child `name`, desired as `spec` and running `current`.
fn classify(
    name: &str,
    spec: Option<&Arc<ChildSpec>>,
    current: Option<&Arc<ChildSpec>>,
) -> Classified {
    let wanted = spec.filter(|spec| spec.manifest.enabled);
    match (wanted, current) {
        (Some(_), None) => Classified::Forward(step(name, Operation::Start, Vec::new())),
        (Some(spec), Some(current)) => match diff_child(current, spec) {
            (Operation::Unchanged, _) => Classified::Unchanged,
            (operation, changes) => Classified::Forward(step(name, operation, changes)),
        },
        (None, Some(_)) if spec.is_some() => {
            let disabled = FieldChange::shown("enabled", Some("true".into()), Some("false".into()));
            Classified::Retiring(step(name, Operation::Retire, vec![disabled]))
        }
        (None, Some(_)) => Classified::Retiring(step(name, Operation::Retire, Vec::new())),
        (None, None) => Classified::Nothing,
    }
}

/// The steps in execution order: retirements dependents-first, then the rest in
/// dependency order.
fn in_order<'a>(
    desired: &'a DesiredSet,
    observed: &'a Observed,
    mut forward: BTreeMap<&'a str, Step>,
    mut retiring: BTreeMap<&'a str, Step>,
) -> Vec<Step> {
    let wanted = |spec: &Arc<ChildSpec>| spec.manifest.enabled;
    let mut steps = Vec::with_capacity(retiring.len() + forward.len());
    // One step needs no order (the common case after a child's report): skip walking its
    // dependencies.
    if retiring.len() > 1 {
        let order = dependency_order(&observed.children, retiring.keys().copied(), |_| true);
        for name in order.into_iter().rev() {
            steps.extend(retiring.remove(name));
        }
    }
    steps.extend(retiring.into_values());
    if forward.len() > 1 {
        let order = dependency_order(&desired.children, forward.keys().copied(), wanted);
        for name in order {
            steps.extend(forward.remove(name));
        }
    }
    steps.extend(forward.into_values());
    steps
}

fn step(name: &str, operation: Operation, changes: Vec<FieldChange>) -> Step {
    Step {
        name: name.to_owned(),
        operation,
        changes,
    }
}

/// The operation and field changes for a child that runs `old` and should run `new`.
pub fn diff_child(old: &ChildSpec, new: &ChildSpec) -> (Operation, Vec<FieldChange>) {
    if old.same_as(new) {
        return (Operation::Unchanged, Vec::new());
    }
    let mut diff = Diff::default();
    diff_spec(old, new, &mut diff);
    if diff.changes.is_empty() {
        // Unreachable while every field is compared above; kept so that a spec that differs
        // is never reported as unchanged, which would break convergence.
        diff.update(FieldChange::shown("spec", None, None));
    }
    let operation = if diff.replace {
        Operation::Replace
    } else {
        Operation::Update
    };
    (operation, diff.changes)
}

/// Changes found so far, and whether any of them needs a new process.
#[derive(Default)]
struct Diff {
    changes: Vec<FieldChange>,
    replace: bool,
}

impl Diff {
    fn replace(&mut self, change: FieldChange) {
        self.replace = true;
        self.changes.push(change);
    }

    fn update(&mut self, change: FieldChange) {
        self.changes.push(change);
    }

    /// Compares two serializable values leaf by leaf under `field`.
    fn values<T: Serialize + PartialEq>(&mut self, field: &str, old: &T, new: &T, replace: bool) {
        if old == new {
            return;
        }
        let mut found = Vec::new();
        leaf_changes(field, Some(&to_json(old)), Some(&to_json(new)), &mut found);
        self.replace |= replace && !found.is_empty();
        self.changes.extend(found);
    }
}

fn diff_spec(old: &ChildSpec, new: &ChildSpec, diff: &mut Diff) {
    let ChildSpec {
        name: _,
        replica,
        manifest,
        source,
        base_dir,
        secret_digests: _,
    } = old;
    diff.values("replica", replica, &new.replica, true);
    diff.values("source", source, &new.source, false);
    if *base_dir != new.base_dir {
        // The base directory matters to the process only through a relative (or default)
        // working directory; secret files are covered by their digests.
        let absolute = |spec: &ChildSpec| {
            spec.manifest
                .working_dir
                .as_deref()
                .is_some_and(Path::is_absolute)
        };
        diff.values(
            "base_dir",
            base_dir,
            &new.base_dir,
            !(absolute(old) && absolute(new)),
        );
    }
    if !Arc::ptr_eq(manifest, &new.manifest) && manifest != &new.manifest {
        diff_manifest(manifest, &new.manifest, diff);
    }
    diff_secrets(old, new, diff);
}

fn diff_manifest(old: &Manifest, new: &Manifest, diff: &mut Diff) {
    let Manifest {
        name,
        description,
        labels,
        enabled,
        kind,
        command,
        working_dir,
        environment: _,
        inherit_environment,
        secrets,
        dependencies,
        restart,
        criticality,
        start_timeout,
        readiness,
        health_check,
        resource_limits,
        stop,
        update,
        replicas,
        command_permissions,
        user,
        group,
        logs,
        schedule,
        ports,
        // Read by `herder export` only: nothing to do to a running child.
        export: _,
    } = old;
    // Needs a new process.
    diff.values("name", name, &new.name, true);
    diff.values("kind", kind, &new.kind, true);
    diff.values("command", command, &new.command, true);
    diff.values("working_dir", working_dir, &new.working_dir, true);
    diff.values(
        "inherit_environment",
        inherit_environment,
        &new.inherit_environment,
        true,
    );
    diff.values("user", user, &new.user, true);
    diff.values("group", group, &new.group, true);
    // Applied in place.
    diff.values("enabled", enabled, &new.enabled, false);
    diff.values("description", description, &new.description, false);
    diff.values("labels", labels, &new.labels, false);
    diff.values("restart", &restart.0, &new.restart.0, false);
    diff.values("criticality", criticality, &new.criticality, false);
    diff.values("start_timeout", start_timeout, &new.start_timeout, false);
    diff.values("readiness", readiness, &new.readiness, false);
    diff.values("health_check", health_check, &new.health_check, false);
    diff.values(
        "resource_limits",
        resource_limits,
        &new.resource_limits,
        false,
    );
    diff.values("stop", stop, &new.stop, false);
    diff.values("update", update, &new.update, false);
    diff.values("replicas", replicas, &new.replicas, false);
    diff.values(
        "command_permissions",
        command_permissions,
        &new.command_permissions,
        false,
    );
    diff.values("logs", logs, &new.logs, false);
    // The schedule is applied in place by the scheduler; ports are checked before a start.
    diff.values("schedule", schedule, &new.schedule, false);
    diff.values("ports", ports, &new.ports, false);
    diff_dependencies(dependencies, &new.dependencies, diff);
    diff_secret_declarations(secrets, &new.secrets, diff);
}

/// Dependencies by name; a changed condition or `restart` flag is an in-place update.
fn diff_dependencies(
    old: &[crate::manifest::model::Dependency],
    new: &[crate::manifest::model::Dependency],
    diff: &mut Diff,
) {
    let index = |deps: &[crate::manifest::model::Dependency]| -> BTreeMap<String, String> {
        deps.iter()
            .map(|dep| (dep.0.name.clone(), describe_dependency(&dep.0)))
            .collect()
    };
    let (old, new) = (index(old), index(new));
    for name in old.keys().chain(new.keys()).collect::<BTreeSet<_>>() {
        let (before, after) = (old.get(name), new.get(name));
        if before != after {
            diff.update(FieldChange::shown(
                format!("dependencies.{name}"),
                before.cloned(),
                after.cloned(),
            ));
        }
    }
}

fn describe_dependency(dep: &DependencySpec) -> String {
    let condition = to_json(&dep.condition);
    let condition = render(&condition);
    if dep.restart {
        format!("{condition} (restart: true)")
    } else {
        condition
    }
}

/// Secret declarations (where a value comes from, never the value) by name.
fn diff_secret_declarations(old: &[Secret], new: &[Secret], diff: &mut Diff) {
    let index = |secrets: &[Secret]| -> BTreeMap<String, Value> {
        secrets
            .iter()
            .map(|secret| (secret.name.clone(), to_json(secret)))
            .collect()
    };
    let (old, new) = (index(old), index(new));
    let mut found = Vec::new();
    for name in old.keys().chain(new.keys()).collect::<BTreeSet<_>>() {
        leaf_changes(
            &format!("secrets.{name}"),
            old.get(name),
            new.get(name),
            &mut found,
        );
    }
    diff.changes.extend(found);
}

/// The environment variable by variable, and the secret values behind it.
///
/// A variable fed by `secret_ref` is compared by (secret name, digest of its value) and never
/// shows a value, not even a literal it replaced. A rotated secret that no variable uses is
/// reported under `secrets.<name>` as an update: the process cannot see it.
fn diff_secrets(old: &ChildSpec, new: &ChildSpec, diff: &mut Diff) {
    let (old_env, new_env) = (environment(old), environment(new));
    if old_env != new_env {
        for name in old_env
            .keys()
            .chain(new_env.keys())
            .collect::<BTreeSet<_>>()
        {
            let (before, after) = (old_env.get(name), new_env.get(name));
            if before == after {
                continue;
            }
            let field = format!("environment.{name}");
            let secret = |value: Option<&EnvValue>| matches!(value, Some(EnvValue::Secret(..)));
            if secret(before) || secret(after) {
                diff.replace(FieldChange::secret(field));
            } else {
                let literal = |value: Option<&EnvValue>| match value {
                    Some(EnvValue::Literal(text)) => text.clone(),
                    _ => None,
                };
                diff.replace(FieldChange::shown(field, literal(before), literal(after)));
            }
        }
    } else if old.manifest.environment != new.manifest.environment {
        // Same variables and values, written in another order.
        let names = |spec: &ChildSpec| {
            let names: Vec<&str> = spec
                .manifest
                .environment
                .0
                .iter()
                .map(|var| var.name.as_str())
                .collect();
            names.join(", ")
        };
        diff.update(FieldChange::shown(
            "environment",
            Some(names(old)),
            Some(names(new)),
        ));
    }

    if old.secret_digests != new.secret_digests {
        let referenced: BTreeSet<&str> = [old, new]
            .iter()
            .flat_map(|spec| spec.manifest.environment.0.iter())
            .filter_map(|var| var.secret_ref.as_deref())
            .collect();
        let names: BTreeSet<&String> = old
            .secret_digests
            .keys()
            .chain(new.secret_digests.keys())
            .collect();
        for name in names {
            if !referenced.contains(name.as_str())
                && old.secret_digests.get(name) != new.secret_digests.get(name)
            {
                diff.update(FieldChange::secret(format!("secrets.{name}")));
            }
        }
    }
}

/// The value an environment variable gets, as far as comparing goes.
#[derive(PartialEq, Eq)]
enum EnvValue {
    /// A literal value (`None`: declared without a value).
    Literal(Option<String>),
    /// A secret's value: the secret's name and the digest of its current value.
    Secret(String, Option<u64>),
}

/// The environment a child's variables resolve to (the last declaration of a name wins).
fn environment(spec: &ChildSpec) -> BTreeMap<&str, EnvValue> {
    spec.manifest
        .environment
        .0
        .iter()
        .map(
            |EnvVar {
                 name,
                 value,
                 secret_ref,
             }| {
                let resolved = match secret_ref {
                    Some(secret) => {
                        EnvValue::Secret(secret.clone(), spec.secret_digests.get(secret).copied())
                    }
                    None => EnvValue::Literal(value.clone()),
                };
                (name.as_str(), resolved)
            },
        )
        .collect()
}

fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The leaves that differ between `before` and `after`, as dotted paths under `field`.
/// Objects are walked key by key (a missing side counts as unset); anything else is compared
/// whole.
fn leaf_changes(
    field: &str,
    before: Option<&Value>,
    after: Option<&Value>,
    out: &mut Vec<FieldChange>,
) {
    let before = before.filter(|value| !value.is_null());
    let after = after.filter(|value| !value.is_null());
    if before == after {
        return;
    }
    let object = |value: Option<&Value>| match value {
        Some(Value::Object(map)) => Some(map.clone()),
        None => Some(serde_json::Map::new()),
        Some(_) => None,
    };
    if let (Some(old), Some(new)) = (object(before), object(after)) {
        let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        for key in keys {
            leaf_changes(&format!("{field}.{key}"), old.get(key), new.get(key), out);
        }
        return;
    }
    out.push(FieldChange::shown(
        field,
        before.map(render),
        after.map(render),
    ));
}

/// A value as `herder plan` shows it: strings bare, everything else as compact JSON.
fn render(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
