//! The state machine of one child incarnation, as a pure function of (state, input).
//!
//! [`Machine::step`] never touches the OS or the clock: the actor ([`super::task`]) feeds it observations
//! (a spawn result, an exit, a probe verdict, a timer that fired, a command) together with `now`, and carries out
//! the returned [`Effect`]s. Which timers are armed follows from the state alone: `Starting` arms the start
//! timeout and readiness probes, `Running` the liveness probe, `Stopping` the kill deadline, `Backoff` the restart
//! delay. That keeps every restart, crash-loop and stop-escalation decision unit-testable without processes.

use std::time::Duration;

use tokio::time::Instant;

use crate::manifest::model::{Kind, RestartPolicy};
use crate::supervise::backoff::Backoff;
use crate::supervise::crashloop::RestartWindow;
use crate::supervise::event::ChildEventKind;
use crate::supervise::os::ExitStatus;

/// Where a child incarnation is in its life.
#[derive(Debug, Clone, PartialEq)]
pub enum ChildState {
    /// A spawn request is with the spawner; no pid yet.
    Spawning {
        /// When the request was made.
        since: Instant,
        /// A stop arrived meanwhile; it is carried out as soon as the pid is known.
        stop_requested: bool,
    },
    /// Running, not ready yet (readiness probe pending).
    Starting {
        /// Process (and process group) id.
        pid: i32,
        /// When it was spawned.
        since: Instant,
    },
    /// Running and ready.
    Running {
        /// Process (and process group) id.
        pid: i32,
        /// When it was spawned.
        since: Instant,
    },
    /// Being stopped: the stop signal was sent; SIGKILL follows at `deadline`.
    Stopping {
        /// Process group id.
        pid: i32,
        /// When SIGKILL is sent to the group (if not sent yet).
        deadline: Instant,
        /// Whether SIGKILL was sent.
        killed: bool,
        /// Whether the group leader has already exited (the rest of the group may linger).
        leader_exited: bool,
        /// What happens once the whole group is gone.
        then: AfterStop,
        /// When the (current) run was spawned, for the stable-run backoff reset.
        since: Instant,
    },
    /// Waiting before the next spawn.
    Backoff {
        /// When the next spawn happens.
        until: Instant,
        /// Restart number (1 for the first restart).
        attempt: u32,
    },
    /// A service exited on its own with code 0 and its policy does not restart it.
    Exited {
        /// How it exited.
        status: ExitStatus,
    },
    /// A oneshot finished successfully.
    Completed,
    /// Permanently failed (crash loop, failure without restart).
    Failed {
        /// Why.
        reason: String,
    },
    /// Stopped on request.
    Stopped {
        /// Whether SIGKILL was needed.
        killed: bool,
    },
}

impl ChildState {
    /// A short lowercase name: `starting`, `running`, `backoff`, ...
    pub fn phase(&self) -> &'static str {
        match self {
            Self::Spawning { .. } => "spawning",
            Self::Starting { .. } => "starting",
            Self::Running { .. } => "running",
            Self::Stopping { .. } => "stopping",
            Self::Backoff { .. } => "backoff",
            Self::Exited { .. } => "exited",
            Self::Completed => "completed",
            Self::Failed { .. } => "failed",
            Self::Stopped { .. } => "stopped",
        }
    }

    /// The live process, if any.
    pub fn pid(&self) -> Option<i32> {
        match self {
            Self::Starting { pid, .. } | Self::Running { pid, .. } | Self::Stopping { pid, .. } => {
                Some(*pid)
            }
            _ => None,
        }
    }

    /// `true` in `Running`.
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Running { .. })
    }

    /// `true` when the actor waits for a command only (no process, no timer).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Exited { .. } | Self::Completed | Self::Failed { .. } | Self::Stopped { .. }
        )
    }
}

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
        /// Signal number.
        signal: i32,
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
    pub stop_signal: i32,
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

    /// The parameters in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
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
                    signal: libc::SIGKILL,
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
                        signal: libc::SIGKILL,
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
                    signal: libc::SIGKILL,
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

    /// Remembers how the process ended and reports it.
    fn record_exit(&mut self, status: ExitStatus, fx: &mut Vec<Effect>) {
        self.last_exit = Some(status);
        fx.push(Effect::Emit(ChildEventKind::Exited {
            code: status.code,
            signal: status.signal,
        }));
    }

    fn begin_stop(
        &mut self,
        pid: i32,
        since: Instant,
        now: Instant,
        then: AfterStop,
        fx: &mut Vec<Effect>,
    ) -> ChildState {
        let signal = self.policy.stop_signal;
        fx.push(Effect::SignalGroup { pgid: pid, signal });
        if signal != libc::SIGKILL {
            // A paused (SIGSTOPped) group only acts on the stop signal once continued.
            fx.push(Effect::SignalGroup {
                pgid: pid,
                signal: libc::SIGCONT,
            });
        }
        ChildState::Stopping {
            pid,
            deadline: now + self.policy.stop_timeout,
            killed: signal == libc::SIGKILL,
            leader_exited: false,
            then,
            since,
        }
    }

    fn after_stop(
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

    fn respawn_now(&mut self, now: Instant, fx: &mut Vec<Effect>) -> ChildState {
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

    fn after_exit(
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

    fn after_failure(
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

    fn schedule_restart(
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
