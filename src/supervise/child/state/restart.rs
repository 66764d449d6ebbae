//! What follows an exit, a failure or a stop: respawn now, back off (within the crash-loop window), or stay down.

use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::time::Instant;

use super::{AfterStop, ChildState, Effect, Machine};
use crate::manifest::model::{Kind, RestartPolicy};
use crate::supervise::event::ChildEventKind;
use crate::supervise::os::ExitStatus;

impl Machine {
    /// Remembers how the process ended and reports it.
    pub(super) fn record_exit(&mut self, status: ExitStatus, fx: &mut Vec<Effect>) {
        self.last_exit = Some(status);
        fx.push(Effect::Emit(ChildEventKind::Exited {
            code: status.code,
            signal: status.signal,
        }));
    }

    pub(super) fn begin_stop(
        &mut self,
        pid: i32,
        since: Instant,
        now: Instant,
        then: AfterStop,
        fx: &mut Vec<Effect>,
    ) -> ChildState {
        let signal = self.policy.stop_signal;
        fx.push(Effect::SignalGroup { pgid: pid, signal });
        if signal != Signal::SIGKILL {
            // A paused (SIGSTOPped) group only acts on the stop signal once continued.
            fx.push(Effect::SignalGroup {
                pgid: pid,
                signal: Signal::SIGCONT,
            });
        }
        ChildState::Stopping {
            pid,
            deadline: now + self.policy.stop_timeout,
            killed: signal == Signal::SIGKILL,
            leader_exited: false,
            then,
            since,
        }
    }

    pub(super) fn after_stop(
        &mut self,
        killed: bool,
        then: AfterStop,
        since: Instant,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) -> ChildState {
        match then {
            AfterStop::Stay => {
                fx.push(Effect::Emit(ChildEventKind::Stopped { killed }));
                ChildState::Stopped { killed }
            }
            AfterStop::Respawn => self.respawn_now(now, fx),
            AfterStop::Fail(reason) => self.after_failure(reason, since, now, fx),
        }
    }

    pub(super) fn respawn_now(&mut self, now: Instant, fx: &mut Vec<Effect>) -> ChildState {
        self.backoff.reset();
        self.restarts += 1;
        fx.push(Effect::Emit(ChildEventKind::Restarting {
            attempt: self.restarts,
            delay: Duration::ZERO,
        }));
        fx.push(Effect::Spawn);
        ChildState::Spawning {
            since: now,
            stop_requested: false,
        }
    }

    pub(super) fn after_exit(
        &mut self,
        status: ExitStatus,
        since: Instant,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) -> ChildState {
        let success = status.success();
        if success && self.policy.restart != RestartPolicy::Always {
            return if self.policy.kind == Kind::Oneshot {
                fx.push(Effect::Emit(ChildEventKind::Completed));
                ChildState::Completed
            } else {
                ChildState::Exited { status }
            };
        }
        if success {
            self.schedule_restart(since, now, fx)
        } else {
            self.after_failure(status.to_string(), since, now, fx)
        }
    }

    pub(super) fn after_failure(
        &mut self,
        reason: String,
        since: Instant,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) -> ChildState {
        if self.policy.restart == RestartPolicy::Never {
            fx.push(Effect::Emit(ChildEventKind::Failed {
                reason: reason.clone(),
            }));
            return ChildState::Failed { reason };
        }
        self.schedule_restart(since, now, fx)
    }

    pub(super) fn schedule_restart(
        &mut self,
        since: Instant,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) -> ChildState {
        if now.saturating_duration_since(since) >= self.backoff.stable_after() {
            self.backoff.reset();
        }
        if let Err(e) =
            self.window
                .try_record(now, self.policy.limit_count, self.policy.limit_window)
        {
            let reason = e.to_string();
            fx.push(Effect::Emit(ChildEventKind::Failed {
                reason: reason.clone(),
            }));
            return ChildState::Failed { reason };
        }
        self.restarts += 1;
        let delay = self.backoff.next().unwrap_or(Duration::ZERO);
        fx.push(Effect::Emit(ChildEventKind::Restarting {
            attempt: self.restarts,
            delay,
        }));
        ChildState::Backoff {
            until: now + delay,
            attempt: self.restarts,
        }
    }
}
