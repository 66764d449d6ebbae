//! Readiness and liveness probes: launching an attempt off the actor and counting its result.

use std::sync::Arc;

use tokio::time::Instant;

use super::{Actor, Internal, ProbeSlot, Which};
use crate::error_chain::ErrorChain;
use crate::supervise::child::config;
use crate::supervise::child::state::{ChildState, Input};
use crate::supervise::event::ChildEventKind;
use crate::supervise::probe::{self, Check, ProbeSpec, Verdict};

impl Actor {
    pub(super) fn probe_spec(&self, which: Which) -> Option<&ProbeSpec> {
        match which {
            Which::Readiness => self.cfg.readiness.as_ref(),
            Which::Liveness => self.cfg.liveness.as_ref(),
        }
    }

    pub(super) fn slot(&mut self, which: Which) -> &mut ProbeSlot {
        match which {
            Which::Readiness => &mut self.readiness,
            Which::Liveness => &mut self.liveness,
        }
    }

    pub(super) fn launch_probe(&mut self, which: Which) {
        let Some(spec) = self.probe_spec(which).cloned() else {
            self.slot(which).next = None;
            return;
        };
        let slot = self.slot(which);
        slot.next = None;
        slot.in_flight = true;
        let run = self.run;
        let tx = self.inbox_sender();
        let child = Arc::clone(&self.spec);
        let herder_env = Arc::clone(&self.ctx.herder_env);
        let launcher = Arc::clone(&self.ctx.launcher);
        tokio::spawn(async move {
            let result = match &spec.check {
                Check::Exec { .. } => match config::program(&child, &herder_env).await {
                    Ok(program) => {
                        probe::attempt(&spec.check, spec.timeout, Some(program), &*launcher).await
                    }
                    Err(e) => Err(format!("exec: {}", ErrorChain::inline(&e))),
                },
                check => probe::attempt(check, spec.timeout, None, &*launcher).await,
            };
            // The actor may have ended; the result is then moot.
            let _ = tx.send(Internal::Probe { run, which, result });
        });
    }

    pub(super) fn on_probe(&mut self, which: Which, result: Result<(), String>, now: Instant) {
        let Some(spec) = self.probe_spec(which).cloned() else {
            return;
        };
        let in_start_period = now < self.run_started + spec.start_period;
        let slot = self.slot(which);
        slot.in_flight = false;
        let verdict = slot.counter.record(result.is_ok(), in_start_period, &spec);
        let live = match which {
            Which::Readiness => matches!(self.machine.state(), ChildState::Starting { .. }),
            Which::Liveness => matches!(self.machine.state(), ChildState::Running { .. }),
        };
        if live {
            self.slot(which).next = Some(now + spec.interval);
        }
        let reason = result.err().unwrap_or_default();
        match (which, verdict) {
            (Which::Readiness, Some(Verdict::Passed)) if live => self.feed(Input::Ready, now),
            (Which::Readiness, Some(Verdict::Failed)) if live => {
                self.emit(ChildEventKind::NotReady { reason });
            }
            (Which::Liveness, Some(Verdict::Passed)) => {
                if self.healthy == Some(false) {
                    self.emit(ChildEventKind::Healthy);
                }
                self.healthy = Some(true);
                self.publish();
            }
            (Which::Liveness, Some(Verdict::Failed)) if live => {
                self.healthy = Some(false);
                self.feed(Input::Unhealthy { reason }, now);
            }
            _ => {}
        }
    }
}
