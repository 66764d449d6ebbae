//! The plan's data: what is running ([`Observed`]) and what to do about it ([`Plan`]).
//!
//! A plan is a value, not a queue: the reconciler recomputes it from scratch whenever the
//! desired set or a child's status changes, and carries out only the steps that are runnable
//! now (DESIGN.md §1, "level-triggered"). Its serde names are the `herder plan --format json`
//! wire format, so they are stable.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::manifest::{ChildSpec, DesiredSet};

/// What the reconciler has applied: one entry per child incarnation it runs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// The running children, by name.
    pub children: BTreeMap<String, ObservedChild>,
}

impl Observed {
    /// The state reached once every child of `desired` (the enabled ones) has been applied:
    /// what a reconciler that just converged observes.
    pub fn converged(desired: &DesiredSet) -> Self {
        let children = desired
            .children
            .iter()
            .filter(|(_, spec)| spec.manifest.enabled)
            .map(|(name, spec)| (name.clone(), ObservedChild { spec: spec.clone() }))
            .collect();
        Self { children }
    }
}

/// One running child, as far as planning is concerned.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedChild {
    /// The spec the running incarnation was started (or last updated in place) with.
    pub spec: Arc<ChildSpec>,
}

impl AsRef<ChildSpec> for ObservedChild {
    fn as_ref(&self) -> &ChildSpec {
        &self.spec
    }
}

/// What to do with one child.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    /// Not running, wanted: start it once its dependencies meet their conditions.
    Start,
    /// Running with a spec that cannot be applied to the live process: replace it by its
    /// `update` strategy (`stop-first` or `start-first`).
    Replace,
    /// Running with a spec whose changes apply without a restart (policies, probes, live
    /// resource limits, metadata): adopt the new spec in place.
    Update,
    /// Running, no longer wanted (file gone, child no longer declared, `enabled: false`):
    /// stop it, dependents first.
    Retire,
    /// Running exactly as wanted: never touched. Never stored in [`Plan::steps`]; returned by
    /// [`Plan::operation`] for any name without a step.
    Unchanged,
}

impl Operation {
    /// The verb used in human output (`start`, `replace`, …).
    pub fn verb(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Replace => "replace",
            Self::Update => "update",
            Self::Retire => "retire",
            Self::Unchanged => "unchanged",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.verb())
    }
}

/// One changed field of a child, as shown by `herder plan`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// Dotted path of the field: `command`, `environment.API_TOKEN`, `readiness.interval`.
    pub field: String,
    /// The value before, rendered; `None` when the field was unset (or when `redacted`).
    pub before: Option<String>,
    /// The value after, rendered; `None` when the field is now unset (or when `redacted`).
    pub after: Option<String>,
    /// The field holds a secret (a secret's value, or an environment variable fed by
    /// `secret_ref`): the values are never shown, only that it changed.
    pub redacted: bool,
}

impl FieldChange {
    /// A change whose values may be shown.
    pub fn shown(field: impl Into<String>, before: Option<String>, after: Option<String>) -> Self {
        Self {
            field: field.into(),
            before,
            after,
            redacted: false,
        }
    }

    /// A change to a secret: `(secret changed)`, no values.
    pub fn secret(field: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            before: None,
            after: None,
            redacted: true,
        }
    }
}

/// One child's step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The child's name.
    pub name: String,
    /// What to do.
    pub operation: Operation,
    /// The fields that differ between the running and the wanted spec (empty for a plain
    /// start or retirement).
    pub changes: Vec<FieldChange>,
}

/// The steps that take the observed set to the desired set.
///
/// `steps` holds every child that needs an operation, in execution order: first the
/// retirements, dependents before their dependencies; then starts, replacements and updates in
/// dependency order (a child after everything it depends on). Unchanged children have no step;
/// their number is in `unchanged`, and [`Plan::operation`] answers
/// [`Operation::Unchanged`] for them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The operations, in execution order.
    pub steps: Vec<Step>,
    /// How many wanted children are already running exactly as wanted.
    pub unchanged: usize,
}

/// How many steps of each kind a plan holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Children to start.
    pub start: usize,
    /// Children to replace.
    pub replace: usize,
    /// Children to update in place.
    pub update: usize,
    /// Children to retire.
    pub retire: usize,
    /// Children left alone.
    pub unchanged: usize,
}

impl Plan {
    /// `true` when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The step for `name`, if it has one.
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|step| step.name == name)
    }

    /// The operation for `name`: its step's, or [`Operation::Unchanged`] without a step.
    pub fn operation(&self, name: &str) -> Operation {
        self.step(name)
            .map_or(Operation::Unchanged, |step| step.operation)
    }

    /// The number of steps of each kind.
    pub fn summary(&self) -> Summary {
        let mut summary = Summary {
            unchanged: self.unchanged,
            ..Summary::default()
        };
        for step in &self.steps {
            match step.operation {
                Operation::Start => summary.start += 1,
                Operation::Replace => summary.replace += 1,
                Operation::Update => summary.update += 1,
                Operation::Retire => summary.retire += 1,
                Operation::Unchanged => summary.unchanged += 1,
            }
        }
        summary
    }
}
