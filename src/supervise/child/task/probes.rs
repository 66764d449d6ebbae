//! Readiness and liveness probes: launching an attempt that [`Probes`](super::Probes) found due off the actor,
//! and acting on what its result concludes.

use std::sync::Arc;

use tokio::time::Instant;

use super::{Actor, Internal, Which};
use crate::error_chain::ErrorChain;
use crate::supervise::child::config;
use crate::supervise::child::state::{Finding, Input};
use crate::supervise::event::ChildEventKind;
use crate::supervise::probe::{self, Check};

impl Actor {
    pub(super) fn launch_probe(&mut self, which: Which) {
        let spec = match which {
            Which::Readiness => self.cfg.readiness.clone(),
            Which::Liveness => self.cfg.liveness.clone(),
        };
        let Some(spec) = spec else {
            return;
        };
        let run = self.run;
        let tx = self.inbox_sender();
        let child = Arc::clone(&self.spec);
        let herder_env = Arc::clone(&self.ctx.herder_env);
        let launcher = Arc::clone(&self.ctx.launcher);
        tokio::spawn(async move {
            let result = match &spec.check {
                Check::Exec { .. } => match config::program(&child, &herder_env).await {
                    Ok(program) => {
                        probe::attempt(&spec.check, spec.timeout(), Some(program), &*launcher).await
                    }
                    Err(e) => Err(format!("exec: {}", ErrorChain::inline(&e))),
                },
                check => probe::attempt(check, spec.timeout(), None, &*launcher).await,
            };
            // The actor may have ended; the result is then moot.
            let _ = tx.unbounded_send(Internal::Probe { run, which, result });
        });
    }

    pub(super) fn on_probe(&mut self, which: Which, result: Result<(), String>, now: Instant) {
        let finding = (self.probes).record(which, result, self.machine.state(), &self.cfg, now);
        if let Some(finding) = finding {
            self.on_finding(finding, now);
        }
    }

    /// Carries out what a probe result or a watchdog notification concluded.
    pub(super) fn on_finding(&mut self, finding: Finding, now: Instant) {
        match finding {
            Finding::Ready => self.feed(Input::Ready, now),
            Finding::NotReady { reason } => self.emit(ChildEventKind::NotReady { reason }),
            Finding::Healthy { recovered } => {
                if recovered {
                    self.emit(ChildEventKind::Healthy);
                }
                self.publish();
            }
            Finding::Unhealthy { reason } => self.feed(Input::Unhealthy { reason }, now),
        }
    }
}
