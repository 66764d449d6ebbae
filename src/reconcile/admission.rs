//! Whether an operator command may reach the core: a pure decision over the reconciler's
//! state, so that it is tested without a socket, a task or a process.
//!
//! The shell audits every command with the verdict this returns (allowed or refused), then
//! feeds the admitted ones to [`Reconciler::step`] or [`Reconciler::commands`].

use super::command::{Command, CommandError, Verb};
use super::control::ControlError;
use super::core::Reconciler;

/// The verdict on one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admission {
    /// Whether the audit records it as allowed: the child exists and its
    /// `command_permissions` permit the verb.
    pub allowed: bool,
    /// `Ok` when the core may see it.
    pub verdict: Result<(), ControlError>,
}

/// Decides on `command`: the child must exist (desired or still running), its
/// `command_permissions` must permit the verb, and herder must not be shutting down.
pub fn admit(core: &Reconciler, command: &Command) -> Admission {
    let name = command.child.as_str();
    let known = core.desired().children.contains_key(name) || core.slots().contains_key(name);
    let allowed = known && permitted(core, command);
    let verdict = if !known {
        Err(CommandError::UnknownChild(name.to_owned()).into())
    } else if !allowed {
        Err(ControlError::Forbidden {
            name: name.to_owned(),
            verb: command.verb.name(),
        })
    } else if core.is_shutting_down() {
        Err(ControlError::ShuttingDown)
    } else {
        Ok(())
    };
    Admission { allowed, verdict }
}

/// `command_permissions` of the child's spec in force (desired, else running).
fn permitted(core: &Reconciler, command: &Command) -> bool {
    let name = command.child.as_str();
    let spec = core.desired().children.get(name).or_else(|| {
        core.slots()
            .get(name)?
            .current
            .as_ref()
            .map(|run| &run.spec)
    });
    let Some(spec) = spec else {
        return false;
    };
    let permissions = &spec.manifest.command_permissions;
    match &command.verb {
        Verb::Restart | Verb::Run => permissions.restart,
        Verb::Stop | Verb::Pause | Verb::Quarantine(_) => permissions.stop,
        Verb::Signal(signal) => permissions.signals.contains(signal),
        Verb::Start | Verb::Resume | Verb::Release => true,
    }
}
