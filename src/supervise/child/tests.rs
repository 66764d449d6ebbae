//! The state machine without processes or clocks: each test feeds inputs at chosen instants and checks the
//! effects and states.

use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::time::Instant;

use super::state::{AfterStop, ChildState, Effect, Input, Machine, Policy};
use crate::manifest::model::{Kind, RestartPolicy};
use crate::supervise::backoff::{Backoff, BackoffPolicy, FastRand};
use crate::supervise::event::ChildEventKind;
use crate::supervise::os::ExitStatus;

fn policy(kind: Kind, restart: RestartPolicy) -> Policy {
    Policy {
        kind,
        restart,
        limit_count: 3,
        limit_window: Duration::from_secs(60),
        stop_signal: Signal::SIGTERM,
        stop_timeout: Duration::from_secs(10),
        has_readiness: false,
    }
}

fn machine(p: Policy, now: Instant) -> Machine {
    let backoff = BackoffPolicy {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
        multiplier: 2.0,
        jitter: 0.0,
    };
    let (m, fx) = Machine::start(p, Backoff::new(backoff, Box::new(FastRand::seeded(1))), now);
    assert_eq!(fx, vec![Effect::Spawn]);
    m
}

fn emitted(fx: &[Effect]) -> Vec<ChildEventKind> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Emit(k) => Some(k.clone()),
            _ => None,
        })
        .collect()
}

fn exited(code: i32) -> Input {
    Input::Exited {
        status: ExitStatus::exited(code),
        group_alive: false,
    }
}

#[test]
fn crash_backs_off_exponentially_then_fails_as_a_crash_loop() {
    let mut t = Instant::now();
    let mut m = machine(policy(Kind::Service, RestartPolicy::Always), t);
    let mut delays = Vec::new();
    for pid in 1..=4 {
        m.step(Input::Spawned { pid }, t);
        let fx = m.step(exited(1), t);
        match m.state() {
            ChildState::Backoff { until, attempt } => {
                delays.push(*until - t);
                assert_eq!(*attempt, pid as u32);
                t = *until;
                assert_eq!(m.step(Input::BackoffElapsed, t), vec![Effect::Spawn]);
            }
            ChildState::Failed { reason } => {
                assert_eq!(reason, "crash loop: 3 restarts in 1m");
                assert!(emitted(&fx).contains(&ChildEventKind::Failed {
                    reason: reason.clone()
                }));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        delays,
        vec![
            Duration::from_millis(100),
            Duration::from_millis(200),
            Duration::from_millis(400)
        ]
    );
}

#[test]
fn a_stable_run_resets_the_backoff() {
    let t0 = Instant::now();
    let mut m = machine(policy(Kind::Service, RestartPolicy::Always), t0);
    m.step(Input::Spawned { pid: 1 }, t0);
    m.step(exited(1), t0);
    m.step(Input::BackoffElapsed, t0 + Duration::from_millis(100));
    let t1 = t0 + Duration::from_millis(100);
    m.step(Input::Spawned { pid: 2 }, t1);
    // Runs for longer than max(10s, backoff.max): the next delay is the initial one again.
    let t2 = t1 + Duration::from_secs(11);
    m.step(exited(1), t2);
    assert_eq!(
        m.state(),
        &ChildState::Backoff {
            until: t2 + Duration::from_millis(100),
            attempt: 2
        }
    );
}

#[test]
fn policies_decide_after_an_exit() {
    let t = Instant::now();
    let mut m = machine(policy(Kind::Oneshot, RestartPolicy::Never), t);
    m.step(Input::Spawned { pid: 1 }, t);
    let fx = m.step(exited(0), t);
    assert_eq!(m.state(), &ChildState::Completed);
    assert!(emitted(&fx).contains(&ChildEventKind::Completed));

    let mut m = machine(policy(Kind::Service, RestartPolicy::OnFailure), t);
    m.step(Input::Spawned { pid: 1 }, t);
    m.step(exited(0), t);
    assert_eq!(
        m.state(),
        &ChildState::Exited {
            status: ExitStatus::exited(0)
        }
    );

    let mut m = machine(policy(Kind::Service, RestartPolicy::Never), t);
    m.step(Input::Spawned { pid: 1 }, t);
    m.step(
        Input::Exited {
            status: ExitStatus::signaled(libc::SIGSEGV),
            group_alive: true,
        },
        t,
    );
    assert_eq!(
        m.state(),
        &ChildState::Failed {
            reason: "killed by SIGSEGV".into()
        }
    );
}

#[test]
fn stop_escalates_and_waits_for_the_group() {
    let t = Instant::now();
    let mut m = machine(policy(Kind::Service, RestartPolicy::Always), t);
    m.step(Input::Spawned { pid: 42 }, t);
    let fx = m.step(Input::Stop, t);
    assert_eq!(
        fx,
        vec![
            Effect::SignalGroup {
                pgid: 42,
                signal: Signal::SIGTERM
            },
            Effect::SignalGroup {
                pgid: 42,
                signal: Signal::SIGCONT
            },
        ]
    );
    assert!(
        m.step(Input::StopDeadline, t).is_empty(),
        "too early: ignored"
    );
    let late = t + Duration::from_secs(10);
    assert_eq!(
        m.step(Input::StopDeadline, late),
        vec![Effect::SignalGroup {
            pgid: 42,
            signal: Signal::SIGKILL
        }]
    );
    m.step(
        Input::Exited {
            status: ExitStatus::signaled(libc::SIGKILL),
            group_alive: true,
        },
        late,
    );
    assert!(matches!(
        m.state(),
        ChildState::Stopping {
            leader_exited: true,
            killed: true,
            then: AfterStop::Stay,
            ..
        }
    ));
    let fx = m.step(Input::GroupGone, late);
    assert_eq!(m.state(), &ChildState::Stopped { killed: true });
    assert!(emitted(&fx).contains(&ChildEventKind::Stopped { killed: true }));
}

#[test]
fn stop_during_spawn_is_carried_out_once_the_pid_is_known() {
    let t = Instant::now();
    let mut m = machine(policy(Kind::Service, RestartPolicy::Always), t);
    assert!(m.step(Input::Stop, t).is_empty());
    let fx = m.step(Input::Spawned { pid: 7 }, t);
    assert!(fx.contains(&Effect::SignalGroup {
        pgid: 7,
        signal: Signal::SIGTERM
    }));
    assert!(matches!(m.state(), ChildState::Stopping { .. }));
}

#[test]
fn readiness_gates_running_and_start_timeout_fails_by_policy() {
    let t = Instant::now();
    let mut p = policy(Kind::Service, RestartPolicy::Never);
    p.has_readiness = true;
    let mut m = machine(p, t);
    m.step(Input::Spawned { pid: 5 }, t);
    assert!(matches!(m.state(), ChildState::Starting { .. }));
    m.step(Input::StartTimeout, t);
    assert!(matches!(
        m.state(),
        ChildState::Stopping {
            then: AfterStop::Fail(_),
            ..
        }
    ));
    m.step(exited(143), t);
    assert_eq!(
        m.state(),
        &ChildState::Failed {
            reason: "not ready before the start timeout".into()
        }
    );
}

#[test]
fn liveness_failure_restarts_and_restart_command_respawns_without_delay() {
    let t = Instant::now();
    let mut m = machine(policy(Kind::Service, RestartPolicy::Always), t);
    m.step(Input::Spawned { pid: 5 }, t);
    m.step(
        Input::Unhealthy {
            reason: "exec: exited with code 1".into(),
        },
        t,
    );
    m.step(
        Input::Exited {
            status: ExitStatus::signaled(libc::SIGTERM),
            group_alive: false,
        },
        t,
    );
    assert!(matches!(m.state(), ChildState::Backoff { attempt: 1, .. }));
    let fx = m.step(Input::Restart, t);
    assert!(fx.contains(&Effect::Spawn));
    assert_eq!(m.restarts(), 2);
}

#[test]
fn spawn_failure_counts_as_a_failure() {
    let t = Instant::now();
    let mut m = machine(policy(Kind::Service, RestartPolicy::OnFailure), t);
    let fx = m.step(
        Input::SpawnFailed {
            error: "command not found: `x`".into(),
        },
        t,
    );
    assert!(emitted(&fx).contains(&ChildEventKind::SpawnFailed {
        error: "command not found: `x`".into()
    }));
    assert!(matches!(m.state(), ChildState::Backoff { .. }));
}

#[test]
fn memory_limit_kills_at_once_and_restarts() {
    let t = Instant::now();
    let mut m = machine(policy(Kind::Service, RestartPolicy::Always), t);
    m.step(Input::Spawned { pid: 9 }, t);
    let fx = m.step(
        Input::MemoryExceeded {
            reason: "memory limit exceeded".into(),
        },
        t,
    );
    assert_eq!(
        fx,
        vec![Effect::SignalGroup {
            pgid: 9,
            signal: Signal::SIGKILL
        }]
    );
    m.step(
        Input::Exited {
            status: ExitStatus::signaled(libc::SIGKILL),
            group_alive: false,
        },
        t,
    );
    assert!(matches!(m.state(), ChildState::Backoff { .. }));
}
