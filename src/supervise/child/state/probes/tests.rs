//! The probe schedule without processes or clocks: each test feeds states, results and instants, and checks
//! exactly when what is due.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::{Due, Finding, Probes, Which};
use crate::manifest::Manifest;
use crate::supervise::child::config::RunConfig;
use crate::supervise::child::state::{AfterStop, ChildState};

const PID: i32 = 42;

fn config(probes: serde_json::Value) -> RunConfig {
    let mut manifest = json!({"name": "c", "command": ["c"]});
    if let (Some(m), Some(p)) = (manifest.as_object_mut(), probes.as_object()) {
        m.extend(p.clone());
    }
    let manifest: Manifest = serde_json::from_value(manifest).unwrap_or_else(|e| panic!("{e}"));
    RunConfig::from_manifest(&manifest).unwrap_or_else(|e| panic!("{e}"))
}

fn failed() -> Result<(), String> {
    Err("exec: exited with code 1".into())
}

/// One run, spawned at `t0`, whose probes follow `state`.
struct Run {
    probes: Probes,
    cfg: RunConfig,
    state: ChildState,
    t0: Instant,
}

impl Run {
    /// Just spawned (readiness pending), or just ready (`running`); armed at the spawn.
    fn new(running: bool, manifest: serde_json::Value) -> Self {
        let t0 = Instant::now();
        let state = if running {
            ChildState::Running {
                pid: PID,
                since: t0,
            }
        } else {
            ChildState::Starting {
                pid: PID,
                since: t0,
            }
        };
        let mut run = Self {
            probes: Probes::default(),
            cfg: config(manifest),
            state,
            t0,
        };
        run.probes.on_state(&run.state, &run.cfg, t0);
        run
    }

    /// `secs` after the spawn.
    fn at(&self, secs: u64) -> Instant {
        self.t0 + Duration::from_secs(secs)
    }

    fn which(&self) -> Which {
        match self.state {
            ChildState::Starting { .. } => Which::Readiness,
            _ => Which::Liveness,
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.probes.deadline(&self.state, &self.cfg)
    }

    fn due(&mut self, at: Instant) -> Option<Due> {
        self.probes.due(&self.state, &self.cfg, at)
    }

    fn record(&mut self, at: Instant, result: Result<(), String>) -> Option<Finding> {
        let which = self.which();
        self.probes
            .record(which, result, &self.state, &self.cfg, at)
    }

    /// The next attempt must be due at `secs` exactly (not a millisecond before, once only); records `result`.
    fn attempt(&mut self, secs: u64, result: Result<(), String>) -> Option<Finding> {
        let at = self.at(secs);
        assert_eq!(self.deadline(), Some(at), "the next attempt is due then");
        assert_eq!(self.due(at - Duration::from_millis(1)), None, "not before");
        assert_eq!(self.due(at), Some(Due::Attempt(self.which())));
        assert_eq!(self.due(at), None, "one attempt in flight at a time");
        self.record(at, result)
    }
}

#[test]
fn readiness_is_attempted_at_once_then_an_interval_after_each_result() {
    let mut run = Run::new(
        false,
        json!({
            "readiness": {"exec": ["check"], "interval": "2s", "success_threshold": 3},
            "start_timeout": "1h",
        }),
    );
    assert_eq!(run.attempt(0, Ok(())), None);
    // The result came back at once: the next is one interval after it.
    assert_eq!(run.attempt(2, Ok(())), None);
    assert_eq!(
        run.attempt(4, Ok(())),
        Some(Finding::Ready),
        "the third success in a row passes"
    );
    // Ready: readiness is no longer attempted, and there is no liveness probe.
    run.state = ChildState::Running {
        pid: PID,
        since: run.t0,
    };
    run.probes.on_state(&run.state, &run.cfg, run.at(4));
    assert_eq!(run.deadline(), None);
}

#[test]
fn liveness_fails_after_exactly_failure_threshold_failures_in_a_row() {
    let mut run = Run::new(
        true,
        json!({"health_check": {"exec": ["check"], "interval": "5s", "failure_threshold": 3}}),
    );
    assert_eq!(run.attempt(5, failed()), None);
    // A success between failures starts the count over.
    assert_eq!(
        run.attempt(10, Ok(())),
        Some(Finding::Healthy { recovered: false })
    );
    assert_eq!(run.probes.healthy(), Some(true));
    assert_eq!(run.attempt(15, failed()), None);
    assert_eq!(run.attempt(20, failed()), None, "2 of 3");
    assert_eq!(
        run.attempt(25, failed()),
        Some(Finding::Unhealthy {
            reason: "exec: exited with code 1".into()
        }),
        "the third failure in a row"
    );
    assert_eq!(run.probes.healthy(), Some(false));
}

#[test]
fn failures_in_the_start_period_do_not_count() {
    let mut run = Run::new(
        true,
        json!({"health_check": {"exec": ["c"], "interval": "1s", "start_period": "3s", "failure_threshold": 1}}),
    );
    assert_eq!(run.attempt(1, failed()), None);
    assert_eq!(run.attempt(2, failed()), None);
    // The start period is [spawn, spawn + 3 s): a failure at 3 s counts.
    assert!(matches!(
        run.attempt(3, failed()),
        Some(Finding::Unhealthy { .. })
    ));
}

#[test]
fn the_start_timeout_is_due_at_exactly_its_instant_and_before_an_attempt() {
    let mut run = Run::new(
        false,
        json!({
            "readiness": {"exec": ["check"], "interval": "10s", "timeout": "1s", "failure_threshold": 1},
            "start_timeout": "15s",
        }),
    );
    assert_eq!(
        run.attempt(0, failed()),
        Some(Finding::NotReady {
            reason: "exec: exited with code 1".into()
        }),
        "failing readiness is reported, the start timeout still decides"
    );
    assert_eq!(run.attempt(10, failed()), None, "reported once");
    let timeout = run.at(15);
    assert_eq!(
        run.deadline(),
        Some(timeout),
        "the start timeout comes first"
    );
    assert_eq!(run.due(timeout - Duration::from_millis(1)), None);
    assert_eq!(run.due(timeout), Some(Due::StartTimeout));
}

#[test]
fn a_pause_stops_the_schedule_drops_the_attempt_in_flight_and_resume_restarts_it() {
    let mut run = Run::new(
        true,
        json!({"health_check": {"exec": ["check"], "interval": "5s", "failure_threshold": 1}}),
    );
    assert_eq!(run.due(run.at(5)), Some(Due::Attempt(Which::Liveness)));
    run.probes.pause(run.at(6));
    assert!(run.probes.paused());
    // The attempt times out because the child is frozen: that is no failure of the child.
    assert_eq!(run.record(run.at(7), failed()), None);
    assert_eq!(run.deadline(), None, "nothing is due while paused");
    assert_eq!(run.due(run.at(100)), None);
    run.probes.resume(&run.state, &run.cfg, run.at(100));
    assert!(!run.probes.paused());
    assert_eq!(
        run.probes.healthy(),
        None,
        "the dropped result decided nothing"
    );
    assert!(matches!(
        run.attempt(105, failed()),
        Some(Finding::Unhealthy { .. })
    ));
}

#[test]
fn resume_while_an_attempt_is_still_in_flight_waits_for_it() {
    let mut run = Run::new(
        true,
        json!({"health_check": {"exec": ["c"], "interval": "5s", "timeout": "30s", "failure_threshold": 1}}),
    );
    assert_eq!(run.due(run.at(5)), Some(Due::Attempt(Which::Liveness)));
    run.probes.pause(run.at(6));
    run.probes.resume(&run.state, &run.cfg, run.at(8));
    assert_eq!(
        run.deadline(),
        None,
        "the attempt of before the pause still runs"
    );
    assert_eq!(run.record(run.at(35), failed()), None, "dropped");
    assert_eq!(run.deadline(), Some(run.at(40)), "an interval after it");
}

#[test]
fn a_pause_holds_the_start_timeout_and_resume_moves_it_on() {
    let mut run = Run::new(
        false,
        json!({"readiness": {"log_line": "^up$"}, "start_timeout": "30s"}),
    );
    assert_eq!(
        run.deadline(),
        Some(run.at(30)),
        "log_line is never attempted"
    );
    run.probes.pause(run.at(10));
    assert_eq!(run.due(run.at(30)), None);
    run.probes.resume(&run.state, &run.cfg, run.at(50));
    // Issue 15: resume scheduled an attempt of a check the child reports itself, which then "passed".
    assert_eq!(
        run.deadline(),
        Some(run.at(70)),
        "30 s of starting, 40 s paused"
    );
    assert_eq!(run.due(run.at(70)), Some(Due::StartTimeout));
}

#[test]
fn the_watchdog_counts_from_ready_and_each_ping_and_stands_still_while_paused() {
    let mut run = Run::new(true, json!({"health_check": {"watchdog": "10s"}}));
    assert_eq!(
        run.deadline(),
        Some(run.at(10)),
        "a period after becoming ready"
    );
    let healthy = Some(Finding::Healthy { recovered: false });
    assert_eq!(run.probes.watchdog_ping(run.at(5)), healthy);
    assert_eq!(run.probes.watchdog_ping(run.at(6)), None, "already healthy");
    assert_eq!(run.deadline(), Some(run.at(16)));
    run.probes.pause(run.at(7));
    assert_eq!(run.due(run.at(60)), None);
    run.probes.resume(&run.state, &run.cfg, run.at(60));
    assert_eq!(
        run.deadline(),
        Some(run.at(70)),
        "a whole period after the resume"
    );
    let reason = "no WATCHDOG=1 within the watchdog period of 10s".to_owned();
    assert_eq!(run.due(run.at(70)), Some(Due::Unhealthy { reason }));
    assert_eq!(run.probes.healthy(), Some(false));
    assert_eq!(run.deadline(), None, "reported once");
    assert_eq!(
        run.probes.watchdog_ping(run.at(71)),
        None,
        "no longer counted"
    );
}

#[test]
fn a_replaced_probe_starts_over_and_the_old_result_is_dropped() {
    let mut run = Run::new(
        true,
        json!({"health_check": {"exec": ["old"], "interval": "5s", "failure_threshold": 1}}),
    );
    assert_eq!(run.due(run.at(5)), Some(Due::Attempt(Which::Liveness)));
    run.cfg = config(json!({"health_check": {"exec": ["new"], "interval": "2s"}}));
    let (state, cfg, at) = (run.state.clone(), run.cfg.clone(), run.at(6));
    run.probes.replace(Which::Liveness, &state, &cfg, at);
    assert_eq!(run.record(run.at(6), failed()), None);
    assert_eq!(run.deadline(), Some(run.at(8)));
}

#[test]
fn a_state_without_the_probe_disarms_it_and_drops_its_result() {
    let mut run = Run::new(
        true,
        json!({"health_check": {"exec": ["check"], "interval": "5s", "failure_threshold": 1}}),
    );
    assert_eq!(run.due(run.at(5)), Some(Due::Attempt(Which::Liveness)));
    run.state = ChildState::Stopping {
        pid: PID,
        deadline: run.at(20),
        killed: false,
        leader_exited: false,
        then: AfterStop::Stay,
        since: run.t0,
    };
    run.probes.on_state(&run.state, &run.cfg, run.at(6));
    let result = run
        .probes
        .record(Which::Liveness, failed(), &run.state, &run.cfg, run.at(6));
    assert_eq!(result, None);
    assert_eq!(run.deadline(), None);
}
