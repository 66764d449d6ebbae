//! Planning: the pure diff between what the manifests ask for and what is running.
//!
//! [`plan`] takes a [`DesiredSet`](crate::manifest::DesiredSet) (one generation from
//! `watch/`) and the reconciler's [`Observed`] map and returns a [`Plan`]: per child name,
//! one [`Operation`] with the [`FieldChange`]s that caused it, in an order the reconciler can
//! follow (retirements dependents-first, then starts, replacements and updates in dependency
//! order). It never sees the event that woke the reconciler and never touches the OS, so the
//! same function backs `herder plan` and the live loop (DESIGN.md §4), and is property-tested.
//!
//! * [`model`]: `Plan`, `Step`, `Operation`, `FieldChange`, `Observed`.
//! * [`diff`]: per-child classification (start / replace / update / retire / unchanged).
//! * [`order`]: the dependency graph and its topological order, cycle-tolerant.
//! * [`render`]: the human and JSON output of `herder plan`.

pub mod diff;
pub mod model;
pub mod order;
pub mod render;

pub use diff::{plan, plan_of};
pub use model::{FieldChange, Observed, ObservedChild, Operation, Plan, Step};
pub use render::{Format, render};
