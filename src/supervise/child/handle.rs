//! The cheap, cloneable handle to a child actor.

use std::sync::Arc;

use futures_channel::mpsc;
use nix::sys::signal::Signal;
use tokio::sync::{oneshot, watch};

use super::command::{Ack, ChildCommand, CommandError};
use super::status::ChildStatus;
use crate::manifest::ChildSpec;
use crate::supervise::cgroup::usage::{Meter, Usage};

/// Sends commands to one child incarnation and reads its status. Dropping every handle makes the actor stop its
/// process (stop signal, then SIGKILL at the timeout) and end; to retire a child, `stop().await` first.
#[derive(Debug, Clone)]
pub struct ChildHandle {
    pub(super) name: String,
    pub(super) incarnation: u64,
    pub(super) commands: mpsc::UnboundedSender<ChildCommand>,
    pub(super) status: watch::Receiver<ChildStatus>,
    pub(super) meter: Arc<Meter>,
}

impl ChildHandle {
    /// The child's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The incarnation this handle drives.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// A receiver of the status, updated on every change.
    pub fn status(&self) -> watch::Receiver<ChildStatus> {
        self.status.clone()
    }

    /// The current status.
    pub fn snapshot(&self) -> ChildStatus {
        self.status.borrow().clone()
    }

    /// What the child uses now, read from its cgroup (or its main process without one). A few small reads.
    pub fn usage(&self) -> Usage {
        let pid = self.status.borrow().pid;
        self.meter.read(pid)
    }

    async fn ask(&self, make: impl FnOnce(oneshot::Sender<Ack>) -> ChildCommand) -> Ack {
        let (tx, rx) = oneshot::channel();
        self.commands
            .unbounded_send(make(tx))
            .map_err(|_| CommandError::Gone(self.name.clone()))?;
        rx.await
            .map_err(|_| CommandError::Gone(self.name.clone()))?
    }

    /// Stops the child: `stop.signal` to its process group, SIGKILL at `stop.timeout`. Resolves once the whole
    /// group is gone (or at once if nothing runs).
    pub async fn stop(&self) -> Ack {
        self.ask(ChildCommand::Stop).await
    }

    /// Restarts the child now (stop, then spawn without backoff); also starts a stopped, failed or completed
    /// child. Resolves once the restart is under way.
    pub async fn restart(&self) -> Ack {
        self.ask(ChildCommand::Restart).await
    }

    /// SIGKILL to the process group of the current process at once, without asking the actor (herder's own
    /// emergency exit, when there is no time for it). A group that is already gone is fine.
    pub fn kill_now(&self) {
        if let Some(pid) = self.snapshot().pid {
            let _ = crate::supervise::os::signal_group(pid, Signal::SIGKILL);
        }
    }

    /// Freezes the child's cgroup (else sends SIGSTOP to the process group) and suspends its probes.
    pub async fn pause(&self) -> Ack {
        self.ask(ChildCommand::Pause).await
    }

    /// Thaws the child's cgroup (else sends SIGCONT to the process group) and resumes its probes.
    pub async fn resume(&self) -> Ack {
        self.ask(ChildCommand::Resume).await
    }

    /// Sends `signal` to the process group.
    pub async fn signal(&self, signal: Signal) -> Ack {
        self.ask(|tx| ChildCommand::Signal(signal, tx)).await
    }

    /// Applies the fields of `spec` that need no new process: restart policy, backoff and limit, probes,
    /// timeouts, stop settings and log rotation. Fields that need a new process (command, environment, ...) are
    /// ignored here; the reconciler replaces the incarnation for those.
    pub async fn update(&self, spec: Arc<ChildSpec>) -> Ack {
        self.ask(|tx| ChildCommand::Update(spec, tx)).await
    }
}
