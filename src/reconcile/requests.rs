//! Requests from the control API: status and detail views, operator commands (audited,
//! then admitted by the pure [`admission`](super::admission) decision), batches, reloads,
//! plans and shutdown.

use super::admission::{self, Admission};
use super::command::Command;
use super::control::{ControlError, Request};
use super::core::Input;
use super::run::Shell;
use crate::events::EventKind;
use crate::plan;

impl Shell {
    /// Answers one request.
    pub(super) fn request(&mut self, request: Request) {
        // A requester that went away does not care about the answer.
        match request {
            Request::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Request::Child { name, reply } => {
                let _ = reply.send(self.detail(&name));
            }
            Request::Command {
                command,
                peer,
                reason,
                reply,
            } => {
                let verdict = self.command(command, peer.uid, peer.pid, reason.clone());
                self.keep_holds(reason.as_deref());
                let _ = reply.send(verdict);
            }
            Request::Batch {
                verb,
                children,
                peer,
                reason,
                reply,
            } => {
                // Every child without a list: targets aside (no process for a verb to act on).
                let names = children.unwrap_or_else(|| self.process_names());
                let mut verdicts = Vec::with_capacity(names.len());
                let mut admitted = Vec::new();
                for name in names {
                    let command = verb.on(name.clone());
                    let verdict = self.admit(&command, peer.uid, peer.pid, reason.clone());
                    if verdict.is_ok() {
                        admitted.push((verdicts.len(), command));
                    }
                    verdicts.push((name, verdict));
                }
                // One pass of the core for the whole batch: it plans once, not per child.
                let (slots, commands): (Vec<usize>, Vec<Command>) = admitted.into_iter().unzip();
                let (outcomes, effects) = self.core.commands(commands);
                for (slot, outcome) in slots.into_iter().zip(outcomes) {
                    verdicts[slot].1 = outcome.map_err(ControlError::from);
                }
                for effect in effects {
                    self.effect(effect);
                }
                self.keep_holds(reason.as_deref());
                let _ = reply.send(verdicts);
            }
            Request::Scheduled { reply } => {
                let _ = reply.send(self.core.scheduled());
            }
            Request::Reloads { reply } => {
                let _ = reply.send((self.reloads, self.last_reload_ms));
            }
            Request::Reload { peer, reply } => {
                self.audit(None, "reload", (peer.uid, peer.pid), None, true);
                self.watcher.rescan_now();
                let _ = reply.send(());
            }
            Request::Plan { desired, reply } => {
                let desired = desired.as_ref().unwrap_or(self.core.desired());
                let _ = reply.send(plan::plan(desired, &self.observed()));
            }
            Request::Shutdown {
                peer,
                reason,
                reply,
            } => {
                self.audit(None, "down", (peer.uid, peer.pid), reason.clone(), true);
                self.shutdown(reason.as_deref().unwrap_or("herder down"));
                let _ = reply.send(());
            }
        }
    }

    /// Mirrors the holds to the state directory after commands.
    fn keep_holds(&mut self, reason: Option<&str>) {
        if let Err(error) = self.holds.sync(self.core.slots(), reason) {
            tracing::warn!(%error, "cannot keep the operator holds in the state directory");
        }
    }

    /// Records an operator command, on `child` if it names one.
    fn audit(
        &self,
        child: Option<&str>,
        verb: &str,
        peer: (u32, Option<i32>),
        reason: Option<String>,
        allowed: bool,
    ) {
        let (uid, pid) = peer;
        self.events.append(
            child,
            None,
            EventKind::Command {
                verb: verb.to_owned(),
                uid,
                pid,
                reason,
                allowed,
            },
        );
    }

    fn command(
        &mut self,
        command: Command,
        uid: u32,
        pid: Option<i32>,
        reason: Option<String>,
    ) -> Result<(), ControlError> {
        self.admit(&command, uid, pid, reason)?;
        self.apply(Input::Command(command))
    }

    /// Audits an operator command and decides whether the core may see it
    /// ([`admission::admit`]).
    fn admit(
        &mut self,
        command: &Command,
        uid: u32,
        pid: Option<i32>,
        reason: Option<String>,
    ) -> Result<(), ControlError> {
        let Admission { allowed, verdict } = admission::admit(&self.core, command);
        let verb = command.verb.name();
        self.audit(
            Some(&command.child),
            verb.as_str(),
            (uid, pid),
            reason,
            allowed,
        );
        verdict
    }
}
