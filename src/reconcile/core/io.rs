//! What goes into the reconciler ([`Input`], with the [`Observation`]s of child actors) and
//! what comes out ([`Effect`]s for the runtime to carry out).

use std::sync::Arc;

use crate::manifest::ChildSpec;
use crate::manifest::DesiredSet;
use crate::manifest::model::Signal;
use crate::reconcile::command::Command;
use crate::reconcile::outcome::Outcome;

/// What a child actor reported about one incarnation.
#[derive(Clone, Debug, PartialEq)]
pub enum Observation {
    /// A process was spawned (first start or a restart by policy).
    Spawned,
    /// The readiness condition holds.
    Ready,
    /// Its readiness probe no longer passes; the process still runs.
    NotReady,
    /// The process exited (or could not be spawned); a restart may follow.
    Exited,
    /// A oneshot finished successfully; the actor is done.
    Completed,
    /// The actor gave up; the incarnation stays failed until replaced or restarted.
    Failed,
    /// The incarnation was stopped on request; the actor is gone.
    Stopped,
}

/// An input to the reconciler.
#[derive(Clone, Debug)]
pub enum Input {
    /// A new desired set from the manifest directory.
    Desired(DesiredSet),
    /// A child actor reported on an incarnation.
    Observed {
        /// The child name.
        name: String,
        /// The incarnation it is about.
        incarnation: u64,
        /// What happened.
        observation: Observation,
    },
    /// An operator command (already permission-checked by the caller).
    Command(Command),
    /// SIGINT/SIGTERM or `herder down`; a second one kills everything at once.
    Shutdown {
        /// Why (shown in the event log).
        reason: String,
    },
}

/// What the shell must do. Effects on an incarnation name it exactly.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Start a child actor for a new incarnation.
    Spawn {
        /// Child name.
        name: String,
        /// The new incarnation number.
        incarnation: u64,
        /// What to run.
        spec: Arc<ChildSpec>,
    },
    /// Stop an incarnation; its actor reports `Stopped` when the process group is gone.
    Stop {
        /// Child name.
        name: String,
        /// The incarnation.
        incarnation: u64,
    },
    /// Apply a changed spec to a running incarnation without restarting it.
    Update {
        /// Child name.
        name: String,
        /// The incarnation.
        incarnation: u64,
        /// The new spec.
        spec: Arc<ChildSpec>,
    },
    /// Restart the process of an incarnation (same incarnation, new process).
    Restart {
        /// Child name.
        name: String,
        /// The incarnation.
        incarnation: u64,
    },
    /// Send a signal to an incarnation's process group.
    Signal {
        /// Child name.
        name: String,
        /// The incarnation.
        incarnation: u64,
        /// The signal.
        signal: Signal,
    },
    /// Kill every process group now (second shutdown signal).
    KillAll,
    /// Everything has stopped: herder ends with this outcome.
    Exit(Outcome),
}
