//! The state a child reports in `herder status`, the API, `/metrics` and the docs: one enum,
//! so that no list of state names can drift from the others.
//!
//! It is a view, not the child machine's state ([`crate::supervise::child::ChildState`]): it
//! folds in what the reconciler knows (a dependency not met yet, an operator hold, a disabled
//! manifest) and what the probes say (ready, unhealthy).

use serde::{Deserialize, Serialize};

/// What a child is doing, as reported to operators. Serialized in kebab-case
/// (`"ready"`, `"backoff"`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Desired, but its dependencies do not meet their conditions yet.
    #[default]
    Waiting,
    /// Asked to start; no process exists yet.
    Spawning,
    /// A process runs and its readiness condition does not hold yet.
    Starting,
    /// A process runs (a oneshot, or a service between readiness checks).
    Running,
    /// A process runs and its readiness condition holds.
    Ready,
    /// A process runs but its readiness probe stopped passing.
    Unhealthy,
    /// The process exited; a restart follows after a delay.
    Backoff,
    /// The process exited and no restart is due (restart policy).
    Exited,
    /// The process group is being stopped.
    Stopping,
    /// Stopped by an operator (`herder stop`) or on request; stays stopped.
    Stopped,
    /// A oneshot that exited with code 0.
    Completed,
    /// Gave up: crash loop, start timeout or a permanent error.
    Failed,
    /// Its process group is stopped with SIGSTOP (`herder pause`).
    Paused,
    /// Held stopped by `herder quarantine` until `herder release`.
    Quarantined,
    /// Its manifest says `enabled: false`.
    Disabled,
}

impl State {
    /// Every state, in the order above: `/metrics` reports each, even at zero.
    pub const ALL: [State; 15] = [
        State::Waiting,
        State::Spawning,
        State::Starting,
        State::Running,
        State::Ready,
        State::Unhealthy,
        State::Backoff,
        State::Exited,
        State::Stopping,
        State::Stopped,
        State::Completed,
        State::Failed,
        State::Paused,
        State::Quarantined,
        State::Disabled,
    ];

    /// The name as serialized: `"ready"`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Spawning => "spawning",
            State::Starting => "starting",
            State::Running => "running",
            State::Ready => "ready",
            State::Unhealthy => "unhealthy",
            State::Backoff => "backoff",
            State::Exited => "exited",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::Completed => "completed",
            State::Failed => "failed",
            State::Paused => "paused",
            State::Quarantined => "quarantined",
            State::Disabled => "disabled",
        }
    }

    /// How it reads at a glance: serving, on the way, in trouble, or at rest.
    pub fn tone(self) -> Tone {
        match self {
            State::Ready | State::Running | State::Completed => Tone::Serving,
            State::Waiting
            | State::Spawning
            | State::Starting
            | State::Backoff
            | State::Stopping
            | State::Paused => Tone::Transient,
            State::Failed | State::Unhealthy | State::Quarantined => Tone::Trouble,
            State::Exited | State::Stopped | State::Disabled => Tone::Resting,
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The four groups of [`State::tone`], which the CLI and the web console colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// Doing its job (green).
    Serving,
    /// On its way somewhere (yellow).
    Transient,
    /// Needs attention (red).
    Trouble,
    /// Deliberately not running (dim).
    Resting,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_serde_and_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for state in State::ALL {
            let json = serde_json::to_value(state).expect("serializes");
            assert_eq!(json, state.as_str());
            assert!(seen.insert(state.as_str()), "{state} twice");
        }
        let back: State = serde_json::from_str("\"quarantined\"").expect("parses");
        assert_eq!(back, State::Quarantined);
    }

    #[test]
    fn the_api_docs_explain_every_state() {
        let docs = include_str!("../../docs/api.md");
        for state in State::ALL {
            let row = format!("| `{state}` |");
            assert!(docs.contains(&row), "docs/api.md has no row for {state}");
        }
    }
}
