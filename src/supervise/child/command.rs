//! The protocol between a [`super::ChildHandle`] and its actor: commands with a reply channel each.

use std::sync::Arc;

use nix::sys::signal::Signal;
use tokio::sync::oneshot;

use crate::manifest::ChildSpec;

/// Why a command was not carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The command needs a live process and there is none.
    #[error("`{0}` has no running process")]
    NotRunning(String),
    /// Sending the signal failed.
    #[error("cannot signal `{name}`: {message}")]
    Signal {
        /// The child.
        name: String,
        /// The OS error.
        message: String,
    },
    /// The in-place update is invalid (the reconciler should have validated it).
    #[error("cannot update `{name}` in place: {message}")]
    Update {
        /// The child.
        name: String,
        /// Why.
        message: String,
    },
    /// The actor has ended.
    #[error("the supervisor of `{0}` has ended")]
    Gone(String),
}

/// Result of a command.
pub type Ack = Result<(), CommandError>;

/// A request to the actor; each variant carries where to send its result.
#[derive(Debug)]
pub enum ChildCommand {
    /// For [`super::ChildHandle::stop`]: answered once the whole process group is gone.
    Stop(oneshot::Sender<Ack>),
    /// For [`super::ChildHandle::restart`]: answered once the restart is under way.
    Restart(oneshot::Sender<Ack>),
    /// For [`super::ChildHandle::pause`].
    Pause(oneshot::Sender<Ack>),
    /// For [`super::ChildHandle::resume`].
    Resume(oneshot::Sender<Ack>),
    /// For [`super::ChildHandle::signal`].
    Signal(Signal, oneshot::Sender<Ack>),
    /// For [`super::ChildHandle::update`].
    Update(Arc<ChildSpec>, oneshot::Sender<Ack>),
}
