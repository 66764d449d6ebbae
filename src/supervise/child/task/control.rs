//! Commands from the handles: stop, restart, pause and resume, signals, and live updates of the manifest.

use std::sync::Arc;

use nix::sys::signal::Signal;
use tokio::time::Instant;

use super::{Actor, Which};
use crate::manifest::ChildSpec;
use crate::supervise::child::command::{Ack, ChildCommand, CommandError};
use crate::supervise::child::config::RunConfig;
use crate::supervise::child::state::{ChildState, Input};
use crate::supervise::limits;
use crate::supervise::memwatch;
use crate::supervise::os;

impl Actor {
    pub(super) fn command(&mut self, cmd: ChildCommand, now: Instant) {
        let name = self.spec.name.clone();
        match cmd {
            ChildCommand::Stop(reply) => {
                if self.machine.state().is_terminal() {
                    // Nothing runs: the machine confirms with `Stopped` at once.
                    self.feed(Input::Stop, now);
                    // The receiver may have given up waiting.
                    let _ = reply.send(Ok(()));
                } else {
                    self.stop_acks.push(reply);
                    self.feed(Input::Stop, now);
                }
            }
            ChildCommand::Restart(reply) => {
                self.feed(Input::Restart, now);
                let _ = reply.send(Ok(()));
            }
            ChildCommand::Pause(reply) => {
                let ack = self.freeze(true).map(|()| {
                    self.probes.pause(now);
                    self.publish();
                });
                let _ = reply.send(ack);
            }
            ChildCommand::Resume(reply) => {
                let ack = self.freeze(false).map(|()| {
                    (self.probes).resume(self.machine.state(), &self.cfg, now);
                    self.publish();
                });
                let _ = reply.send(ack);
            }
            ChildCommand::Signal(sig, reply) => {
                let _ = reply.send(self.signal_live(sig));
            }
            ChildCommand::Update(spec, reply) => {
                let ack = match RunConfig::from_manifest(&spec.manifest) {
                    Ok(cfg) => {
                        self.apply_update(spec, cfg, now);
                        Ok(())
                    }
                    Err(e) => Err(CommandError::Update {
                        name,
                        message: e.to_string(),
                    }),
                };
                let _ = reply.send(ack);
            }
        }
    }

    pub(super) fn apply_update(&mut self, spec: Arc<ChildSpec>, cfg: RunConfig, now: Instant) {
        let backoff_changed = cfg.backoff != self.cfg.backoff;
        let readiness_changed = cfg.readiness != self.cfg.readiness;
        let liveness_changed = cfg.liveness != self.cfg.liveness;
        self.log.set_rotation(cfg.rotation);
        let memory_changed = cfg.memory_limit != self.cfg.memory_limit;
        let open_files = spec.manifest.resource_limits.open_files;
        let open_files_changed = open_files != self.spec.manifest.resource_limits.open_files;
        let effects = self
            .machine
            .update(cfg.policy.clone(), backoff_changed.then_some(cfg.backoff));
        self.cfg = cfg;
        self.spec = spec;
        for (changed, which) in [
            (readiness_changed, Which::Readiness),
            (liveness_changed, Which::Liveness),
        ] {
            if changed {
                (self.probes).replace(which, self.machine.state(), &self.cfg, now);
            }
        }
        if let Some(cg) = self.cgroup.as_mut() {
            cg.limits_changed(&self.spec.name, &self.spec.manifest.resource_limits);
        }
        self.write_limits();
        if memory_changed
            && limits::memory_by_watchdog(&self.limit_report())
            && let Some(pid) = self.machine.state().pid()
        {
            self.memory = self
                .cfg
                .memory_limit
                .and_then(|limit| memwatch::watch(pid, limit));
        }
        if open_files_changed
            && let (Some(pid), Some(limit)) = (self.machine.state().pid(), open_files)
            && let Err(error) = os::set_open_files(pid, limit)
        {
            tracing::warn!(child = %self.spec.name, %error, "cannot apply open_files to the running process");
        }
        // A result of a replaced probe may still arrive; it is dropped.
        self.apply(effects, now);
        self.publish();
    }

    /// Pause (`true`) or resume: the cgroup's freezer where there is one, else SIGSTOP / SIGCONT to the group.
    pub(super) fn freeze(&mut self, frozen: bool) -> Ack {
        let live = self.machine.state().pid().is_some();
        match self.cgroup.as_mut() {
            Some(cg) if live && cg.can_freeze() => {
                cg.set_frozen(frozen).map_err(|e| CommandError::Signal {
                    name: self.spec.name.clone(),
                    message: format!("cannot freeze the cgroup: {e}"),
                })
            }
            _ => self.signal_live(if frozen {
                Signal::SIGSTOP
            } else {
                Signal::SIGCONT
            }),
        }
    }

    pub(super) fn signal_live(&self, signal: Signal) -> Ack {
        let name = self.spec.name.clone();
        let pid = match self.machine.state() {
            ChildState::Starting { pid, .. }
            | ChildState::Running { pid, .. }
            | ChildState::Stopping { pid, .. } => *pid,
            _ => return Err(CommandError::NotRunning(name)),
        };
        match self.ctx.launcher.signal_group(pid, signal) {
            Ok(true) => Ok(()),
            Ok(false) => Err(CommandError::NotRunning(name)),
            Err(e) => Err(CommandError::Signal {
                name,
                message: e.to_string(),
            }),
        }
    }
}
