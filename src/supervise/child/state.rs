//! The state machine of one child incarnation, as a pure function of (state, input).
//!
//! [`Machine::step`] never touches the OS or the clock: the actor ([`super::task`]) feeds it observations
//! (a spawn result, an exit, a probe verdict, a timer that fired, a command) together with `now`, and carries out
//! the returned [`Effect`]s. Which timers are armed follows from the state alone: `Starting` arms the start
//! timeout and readiness probes, `Running` the liveness probe, `Stopping` the kill deadline, `Backoff` the restart
//! delay. That keeps every restart, crash-loop and stop-escalation decision unit-testable without processes.

use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::time::Instant;

use crate::manifest::model::{Kind, RestartPolicy};
use crate::supervise::backoff::Backoff;
use crate::supervise::crashloop::RestartWindow;
use crate::supervise::event::ChildEventKind;
use crate::supervise::os::ExitStatus;

mod phase;
mod probes;
mod restart;

pub use phase::ChildState;
pub(crate) use probes::{Due, Finding, Probes, Which};

/// What follows once a stopping child's process group is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterStop {
    /// Stay stopped (the `stop` command).
    Stay,
    /// Spawn again at once (the `restart` command).
    Respawn,
    /// Treat as a failure and restart by policy (liveness failure, start timeout, memory limit).
    Fail(String),
}

/// An observation or command fed to the machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The spawner started the process.
    Spawned {
        /// Its pid.
        pid: i32,
    },
    /// The spawner could not start it.
    SpawnFailed {
        /// Why (already free of secret values).
        error: String,
    },
    /// The spawn was given up before a process existed: a stop arrived while it waited
    /// for a declared port.
    SpawnCancelled,
    /// The readiness probe passed (or there is none).
    Ready,
    /// The start timeout elapsed before readiness.
    StartTimeout,
    /// The liveness probe failed `failure_threshold` times in a row.
    Unhealthy {
        /// The last failure.
        reason: String,
    },
    /// The process group exceeded its memory limit (RSS watchdog).
    MemoryExceeded {
        /// Description, e.g. `memory limit exceeded: 300Mi > 256Mi`.
        reason: String,
    },
    /// The group leader exited.
    Exited {
        /// How.
        status: ExitStatus,
        /// Whether other members of its process group are still alive.
        group_alive: bool,
    },
    /// The last member of a stopping process group is gone.
    GroupGone,
    /// The stop deadline passed.
    StopDeadline,
    /// The backoff delay passed.
    BackoffElapsed,
    /// `stop` command.
    Stop,
    /// `restart` command (also starts a stopped, failed or completed child).
    Restart,
}

/// Something the actor must do after a step.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Ask the spawner for a new process (a new run).
    Spawn,
    /// Send `signal` to process group `pgid`.
    SignalGroup {
        /// Group.
        pgid: i32,
        /// The signal.
        signal: Signal,
    },
    /// Report to the reconciler.
    Emit(ChildEventKind),
}

/// The parameters of the machine that an in-place update may change.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Service or oneshot.
    pub kind: Kind,
    /// When to restart.
    pub restart: RestartPolicy,
    /// Crash-loop limit: restarts allowed per window.
    pub limit_count: u32,
    /// Crash-loop window.
    pub limit_window: Duration,
    /// First stop signal.
    pub stop_signal: Signal,
    /// Time between the stop signal and SIGKILL.
    pub stop_timeout: Duration,
    /// Whether readiness is gated by a probe (else ready = started).
    pub has_readiness: bool,
}

/// The state plus the restart bookkeeping that survives runs.
#[derive(Debug)]
pub struct Machine {
    state: ChildState,
    policy: Policy,
    backoff: Backoff,
    window: RestartWindow,
    restarts: u32,
    last_exit: Option<ExitStatus>,
}

impl Machine {
    /// A machine that immediately asks for the first spawn: returns it with the initial effects.
    pub fn start(policy: Policy, backoff: Backoff, now: Instant) -> (Self, Vec<Effect>) {
        let m = Self {
            state: ChildState::Spawning {
                since: now,
                stop_requested: false,
            },
            policy,
            backoff,
            window: RestartWindow::default(),
            restarts: 0,
            last_exit: None,
        };
        (m, vec![Effect::Spawn])
    }

    /// A machine that starts out failed (its manifest cannot be run) and waits for a `restart`.
    pub fn failed(policy: Policy, backoff: Backoff, reason: String) -> Self {
        Self {
            state: ChildState::Failed { reason },
            policy,
            backoff,
            window: RestartWindow::default(),
            restarts: 0,
            last_exit: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> &ChildState {
        &self.state
    }

    /// Restarts so far (automatic and requested).
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// The last exit of the process.
    pub fn last_exit(&self) -> Option<ExitStatus> {
        self.last_exit
    }

    /// Applies an in-place update. A change of `has_readiness` takes effect with the next run, except that a
    /// child still `Starting` whose readiness probe was removed becomes ready now.
    pub fn update(
        &mut self,
        policy: Policy,
        backoff: Option<crate::supervise::backoff::BackoffPolicy>,
    ) -> Vec<Effect> {
        if let Some(b) = backoff {
            self.backoff.set_policy(b);
        }
        let now_ungated = !policy.has_readiness;
        self.policy = policy;
        if now_ungated && let ChildState::Starting { pid, since } = self.state {
            self.state = ChildState::Running { pid, since };
            return vec![Effect::Emit(ChildEventKind::Ready)];
        }
        Vec::new()
    }

    /// Feeds one input; returns what to do. Inputs that make no sense in the current state are ignored.
    pub fn step(&mut self, input: Input, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        let state = std::mem::replace(&mut self.state, ChildState::Completed);
        self.state = match (state, input) {
            (ChildState::Spawning { stop_requested, .. }, Input::Spawned { pid }) => {
                fx.push(Effect::Emit(ChildEventKind::Spawned { pid }));
                if stop_requested {
                    self.begin_stop(pid, now, now, AfterStop::Stay, &mut fx)
                } else if self.policy.has_readiness {
                    ChildState::Starting { pid, since: now }
                } else {
                    fx.push(Effect::Emit(ChildEventKind::Ready));
                    ChildState::Running { pid, since: now }
                }
            }
            (
                ChildState::Spawning {
                    stop_requested,
                    since,
                },
                Input::SpawnFailed { error },
            ) => {
                fx.push(Effect::Emit(ChildEventKind::SpawnFailed {
                    error: error.clone(),
                }));
                if stop_requested {
                    fx.push(Effect::Emit(ChildEventKind::Stopped { killed: false }));
                    ChildState::Stopped { killed: false }
                } else {
                    self.after_failure(error, since, now, &mut fx)
                }
            }
            (ChildState::Spawning { .. }, Input::SpawnCancelled) => {
                fx.push(Effect::Emit(ChildEventKind::Stopped { killed: false }));
                ChildState::Stopped { killed: false }
            }
            (ChildState::Spawning { since, .. }, Input::Stop) => ChildState::Spawning {
                since,
                stop_requested: true,
            },
            (ChildState::Starting { pid, since }, Input::Ready) => {
                fx.push(Effect::Emit(ChildEventKind::Ready));
                ChildState::Running { pid, since }
            }
            (ChildState::Starting { pid, since }, Input::StartTimeout) => {
                let reason = "not ready before the start timeout".to_string();
                fx.push(Effect::Emit(ChildEventKind::NotReady {
                    reason: reason.clone(),
                }));
                self.begin_stop(pid, since, now, AfterStop::Fail(reason), &mut fx)
            }
            (ChildState::Running { pid, since }, Input::Unhealthy { reason }) => {
                fx.push(Effect::Emit(ChildEventKind::Unhealthy {
                    reason: reason.clone(),
                }));
                self.begin_stop(pid, since, now, AfterStop::Fail(reason), &mut fx)
            }
            (
                ChildState::Starting { pid, since } | ChildState::Running { pid, since },
                Input::MemoryExceeded { reason },
            ) => {
                // Like the OOM killer: no grace period.
                fx.push(Effect::SignalGroup {
                    pgid: pid,
                    signal: Signal::SIGKILL,
                });
                ChildState::Stopping {
                    pid,
                    deadline: now,
                    killed: true,
                    leader_exited: false,
                    then: AfterStop::Fail(reason),
                    since,
                }
            }
            (
                ChildState::Starting { pid, since } | ChildState::Running { pid, since },
                Input::Exited {
                    status,
                    group_alive,
                },
            ) => {
                self.record_exit(status, &mut fx);
                if group_alive {
                    // The leader is gone; leftovers of its group must not outlive it.
                    fx.push(Effect::SignalGroup {
                        pgid: pid,
                        signal: Signal::SIGKILL,
                    });
                }
                self.after_exit(status, since, now, &mut fx)
            }
            (
                ChildState::Starting { pid, since } | ChildState::Running { pid, since },
                Input::Stop,
            ) => self.begin_stop(pid, since, now, AfterStop::Stay, &mut fx),
            (
                ChildState::Starting { pid, since } | ChildState::Running { pid, since },
                Input::Restart,
            ) => self.begin_stop(pid, since, now, AfterStop::Respawn, &mut fx),
            (
                ChildState::Stopping {
                    pid,
                    deadline,
                    killed,
                    then,
                    since,
                    ..
                },
                Input::Exited {
                    status,
                    group_alive,
                },
            ) => {
                self.record_exit(status, &mut fx);
                if group_alive {
                    ChildState::Stopping {
                        pid,
                        deadline,
                        killed,
                        leader_exited: true,
                        then,
                        since,
                    }
                } else {
                    self.after_stop(killed, then, since, now, &mut fx)
                }
            }
            (
                ChildState::Stopping {
                    leader_exited: true,
                    killed,
                    then,
                    since,
                    ..
                },
                Input::GroupGone,
            ) => self.after_stop(killed, then, since, now, &mut fx),
            (
                ChildState::Stopping {
                    pid,
                    deadline,
                    killed: false,
                    leader_exited,
                    then,
                    since,
                },
                Input::StopDeadline,
            ) if now >= deadline => {
                fx.push(Effect::SignalGroup {
                    pgid: pid,
                    signal: Signal::SIGKILL,
                });
                ChildState::Stopping {
                    pid,
                    deadline,
                    killed: true,
                    leader_exited,
                    then,
                    since,
                }
            }
            (
                ChildState::Stopping {
                    pid,
                    deadline,
                    killed,
                    leader_exited,
                    since,
                    ..
                },
                Input::Stop,
            ) => {
                // A stop overrides a pending restart or failure handling.
                ChildState::Stopping {
                    pid,
                    deadline,
                    killed,
                    leader_exited,
                    then: AfterStop::Stay,
                    since,
                }
            }
            (ChildState::Backoff { until, attempt }, Input::BackoffElapsed) => {
                if now >= until {
                    fx.push(Effect::Spawn);
                    ChildState::Spawning {
                        since: now,
                        stop_requested: false,
                    }
                } else {
                    ChildState::Backoff { until, attempt }
                }
            }
            (ChildState::Backoff { .. }, Input::Stop) => {
                fx.push(Effect::Emit(ChildEventKind::Stopped { killed: false }));
                ChildState::Stopped { killed: false }
            }
            (ChildState::Backoff { .. }, Input::Restart) => self.respawn_now(now, &mut fx),
            // Retiring a child that has no process: confirm at once, so the reconciler's
            // stop is always answered by exactly one `Stopped`.
            (
                ChildState::Exited { .. } | ChildState::Completed | ChildState::Failed { .. },
                Input::Stop,
            ) => {
                fx.push(Effect::Emit(ChildEventKind::Stopped { killed: false }));
                ChildState::Stopped { killed: false }
            }
            (
                ChildState::Exited { .. }
                | ChildState::Completed
                | ChildState::Failed { .. }
                | ChildState::Stopped { .. },
                Input::Restart,
            ) => {
                self.window.clear();
                self.respawn_now(now, &mut fx)
            }
            (state, _) => state,
        };
        fx
    }
}
