//! One child incarnation: its actor ([`task`]), handle, commands and state machine.
//!
//! The reconciler calls [`spawn_child`] once per incarnation and keeps the returned [`ChildHandle`]. The actor
//! reports every transition as a [`ChildEvent`] on the shared channel of
//! [`ChildContext`] and publishes a [`ChildStatus`] snapshot on a `watch` channel.

pub(crate) mod cgroup;
pub(crate) mod command;
pub(crate) mod config;
pub mod handle;
pub(crate) mod notified;
pub(crate) mod state;
pub mod status;
pub(crate) mod task;

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::supervise::cgroup::{Detection, Tree};
use crate::supervise::event::ChildEvent;
use crate::supervise::launcher::{Launcher, Real};
use crate::supervise::logs::LogBook;
use crate::supervise::statefile::StateFile;

pub use command::{Ack, CommandError};
pub use handle::ChildHandle;
pub use state::ChildState;
pub use status::ChildStatus;
pub use task::spawn_child;

/// What every child actor shares: where to report, where output goes, the state file, herder's environment.
#[derive(Debug, Clone)]
pub struct ChildContext {
    /// The reconciler's event channel.
    pub events: mpsc::UnboundedSender<ChildEvent>,
    /// Captured output of every child.
    pub logs: Arc<LogBook>,
    /// The record of live children, if herder keeps one.
    pub state_file: Option<StateFile>,
    /// herder's own environment, passed on with `inherit_environment` and used by `env` secrets.
    pub herder_env: Arc<Vec<(String, String)>>,
    /// Seed for backoff jitter (tests); `None` seeds from the clock.
    pub seed: Option<u64>,
    /// herder's cgroup subtrees; `None`: every child gets the fallback (rlimits, the RSS watchdog).
    pub cgroups: Option<Arc<Tree>>,
    /// What cgroup detection found, for the status view.
    pub cgroup_detection: Option<Arc<Detection>>,
    /// Starts and signals the processes ([`Real`] unless a test fakes them).
    pub launcher: Arc<dyn Launcher>,
}

impl ChildContext {
    /// A context with herder's current environment, no state file and random jitter.
    pub fn new(events: mpsc::UnboundedSender<ChildEvent>, logs: Arc<LogBook>) -> Self {
        let herder_env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Self {
            events,
            logs,
            state_file: None,
            herder_env: Arc::new(herder_env),
            seed: None,
            cgroups: None,
            cgroup_detection: None,
            launcher: Arc::new(Real),
        }
    }

    /// Gives every child a cgroup in `setup`'s subtrees (when it has any) and reports its detection.
    pub fn with_cgroups(mut self, setup: &crate::supervise::cgroup::Setup) -> Self {
        self.cgroups = setup.tree.clone().map(Arc::new);
        self.cgroup_detection = Some(Arc::new(setup.detection.clone()));
        self
    }

    /// Records live children in `state_file`.
    pub fn with_state_file(mut self, state_file: StateFile) -> Self {
        self.state_file = Some(state_file);
        self
    }
}

#[cfg(test)]
mod tests;
