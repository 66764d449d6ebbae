//! Pauses under a paused clock: while a child is paused nothing is attempted and neither the start timeout nor
//! the watchdog runs; on resume the probe is next due one interval later, the watchdog counts a whole period
//! again, and the start timeout has moved on by the time spent paused.

use herder::supervise::event::ChildEventKind;
use herder::supervise::os::ExitStatus;
use nix::sys::signal::Signal;
use serde_json::json;

use crate::fake::{CHILD, Probe, Run, at, secs};

fn not_ready(reason: &str) -> ChildEventKind {
    ChildEventKind::NotReady {
        reason: reason.into(),
    }
}

const START_TIMEOUT: &str = "not ready before the start timeout";

async fn pause(run: &Run) {
    run.child.pause().await.expect("the child can be paused");
}

async fn resume(run: &Run) {
    run.child.resume().await.expect("the child can be resumed");
}

#[tokio::test(start_paused = true)]
async fn readiness_probes_and_the_start_timeout_stand_still_while_paused() {
    let manifest = json!({
        "name": "frozen",
        "command": ["fake"],
        "readiness": {"exec": ["ready"], "interval": "2s", "timeout": "1s", "failure_threshold": 1},
        "start_timeout": "10s",
    });
    let mut run = Run::start(manifest, |fake| fake.script("ready", [Probe::Fail]));
    run.advance_to(secs(5)).await;
    assert_eq!(run.attempts("ready"), at([0, 2, 4]));
    pause(&run).await;
    run.advance_to(secs(15)).await;
    assert_eq!(run.attempts("ready"), at([0, 2, 4]), "nothing while paused");
    resume(&run).await;
    run.advance_to(secs(18)).await;
    pause(&run).await;
    run.advance_to(secs(28)).await;
    resume(&run).await;
    let seen = run
        .record_until("the start timeout", |k| *k == not_ready(START_TIMEOUT))
        .await;
    let child = run.fake.spawns_of(CHILD)[0].pid;
    assert_eq!(
        seen,
        [
            (secs(0), ChildEventKind::Spawned { pid: child }),
            (secs(0), not_ready("exec: exited with code 1")),
            // 10 s, moved on by the two pauses of 10 s each.
            (secs(30), not_ready(START_TIMEOUT)),
        ]
    );
    // One interval after the first resume; the one due at 19 s is held by the second pause and would be due
    // one interval after it, at 30 s, when the start timeout ends the wait first.
    assert_eq!(run.attempts("ready"), at([0, 2, 4, 17]));
    assert_eq!(
        run.changes(|s| s.paused),
        [
            (secs(0), false),
            (secs(5), true),
            (secs(15), false),
            (secs(18), true),
            (secs(28), false),
        ]
    );
    let signals: Vec<_> = run
        .fake
        .signals()
        .into_iter()
        .map(|(t, _, s)| (t - run.t0, s))
        .collect();
    assert_eq!(
        signals,
        [
            (secs(5), Signal::SIGSTOP),
            (secs(15), Signal::SIGCONT),
            (secs(18), Signal::SIGSTOP),
            (secs(28), Signal::SIGCONT),
            (secs(30), Signal::SIGTERM),
            (secs(30), Signal::SIGCONT),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_result_of_an_attempt_begun_before_a_long_pause_is_dropped() {
    let manifest = json!({
        "name": "frozen",
        "command": ["fake"],
        "readiness": {"exec": ["ready"], "interval": "2s", "timeout": "3s", "failure_threshold": 1},
        "start_timeout": "1h",
    });
    let mut run = Run::start(manifest, |fake| {
        fake.script("ready", [Probe::Hang, Probe::Pass])
    });
    run.advance_to(secs(1)).await;
    pause(&run).await;
    // The hung attempt times out at 3 s, while paused: a frozen child cannot answer, so that is no failure.
    run.advance_to(secs(10)).await;
    resume(&run).await;
    let seen = run
        .record_until("readiness", |k| *k == ChildEventKind::Ready)
        .await;
    let child = run.fake.spawns_of(CHILD)[0].pid;
    assert_eq!(
        seen,
        [
            (secs(0), ChildEventKind::Spawned { pid: child }),
            (secs(12), ChildEventKind::Ready),
        ],
        "no not-ready from the attempt the pause interrupted"
    );
    assert_eq!(
        run.attempts("ready"),
        at([0, 12]),
        "one interval after the resume"
    );
}

#[tokio::test(start_paused = true)]
async fn the_result_of_an_attempt_still_running_at_the_resume_is_dropped_and_the_next_follows_it() {
    let manifest = json!({
        "name": "frozen",
        "command": ["fake"],
        "readiness": {"exec": ["ready"], "interval": "2s", "timeout": "3s", "failure_threshold": 1},
        "start_timeout": "1h",
    });
    use Probe::{Fail, Hang, Pass};
    let mut run = Run::start(manifest, |fake| fake.script("ready", [Hang, Fail, Pass]));
    run.advance_to(secs(1)).await;
    pause(&run).await;
    run.advance_to(secs(2)).await;
    resume(&run).await;
    let seen = run
        .record_until("readiness", |k| *k == ChildEventKind::Ready)
        .await;
    let child = run.fake.spawns_of(CHILD)[0].pid;
    assert_eq!(
        seen,
        [
            (secs(0), ChildEventKind::Spawned { pid: child }),
            // The timeout at 3 s of the attempt the pause came between counts for nothing; the next attempt
            // follows it by one interval and is the first failure.
            (secs(5), not_ready("exec: exited with code 1")),
            (secs(7), ChildEventKind::Ready),
        ]
    );
    assert_eq!(run.attempts("ready"), at([0, 5, 7]));
}

#[tokio::test(start_paused = true)]
async fn liveness_probes_stand_still_while_paused_and_resume_one_interval_later() {
    let manifest = json!({
        "name": "frozen",
        "command": ["fake"],
        "health_check": {"exec": ["alive"], "interval": "5s", "timeout": "1s"},
    });
    let run = Run::start(manifest, |_| {});
    run.advance_to(secs(7)).await;
    pause(&run).await;
    run.advance_to(secs(20)).await;
    assert_eq!(run.attempts("alive"), at([5]), "nothing while paused");
    resume(&run).await;
    run.advance_to(secs(31)).await;
    assert_eq!(run.attempts("alive"), at([5, 25, 30]));
    assert_eq!(
        run.changes(|s| s.healthy),
        [(secs(0), None), (secs(5), Some(true))]
    );
}

#[tokio::test(start_paused = true)]
async fn the_watchdog_stands_still_while_paused_and_counts_a_whole_period_after_the_resume() {
    let manifest = json!({
        "name": "frozen",
        "command": ["fake"],
        "health_check": {"watchdog": "10s"},
        "restart": "never",
    });
    let mut run = Run::start(manifest, |_| {});
    run.advance_to(secs(4)).await;
    pause(&run).await;
    // Unpaused, the watchdog would have fired at 10 s.
    run.advance_to(secs(30)).await;
    resume(&run).await;
    let seen = run
        .record_until("the failure", |k| {
            matches!(k, ChildEventKind::Failed { .. })
        })
        .await;
    let child = run.fake.spawns_of(CHILD)[0].pid;
    let reason = "no WATCHDOG=1 within the watchdog period of 10s".to_owned();
    assert_eq!(
        seen,
        [
            (secs(0), ChildEventKind::Spawned { pid: child }),
            (secs(0), ChildEventKind::Ready),
            // A whole period from the resume, not the 6 s that were left at the pause.
            (
                secs(40),
                ChildEventKind::Unhealthy {
                    reason: reason.clone()
                }
            ),
            (
                secs(40),
                ChildEventKind::Exited {
                    code: None,
                    signal: Some(Signal::SIGTERM as i32)
                }
            ),
            (secs(40), ChildEventKind::Failed { reason }),
        ]
    );
    assert_eq!(
        run.changes(|s| s.healthy),
        [(secs(0), None), (secs(40), Some(false))]
    );
}

#[tokio::test(start_paused = true)]
async fn a_paused_child_that_exits_is_paused_no_more_and_restarts_on_schedule() {
    let manifest = json!({
        "name": "frozen",
        "command": ["fake"],
        "health_check": {"exec": ["alive"], "interval": "5s", "timeout": "1s"},
        "restart": {"policy": "always", "backoff": {"initial": "2s", "max": "1m", "multiplier": 2.0, "jitter": 0.0}},
    });
    let mut run = Run::start(manifest, |_| {});
    run.advance_to(secs(3)).await;
    pause(&run).await;
    run.advance_to(secs(6)).await;
    // Killed from outside while stopped, say.
    run.fake.crash(ExitStatus::signaled(Signal::SIGKILL as i32));
    let (when, restart) = run
        .until("the restart", |k| {
            matches!(k, ChildEventKind::Restarting { .. })
        })
        .await;
    assert_eq!(
        (when, restart),
        (
            secs(6),
            ChildEventKind::Restarting {
                attempt: 1,
                delay: secs(2)
            }
        ),
        "the backoff is not held by the pause of a run that is gone"
    );
    let (when, _) = run
        .until("the next ready", |k| *k == ChildEventKind::Ready)
        .await;
    assert_eq!(when, secs(8));
    run.advance_to(secs(19)).await;
    assert_eq!(
        run.attempts("alive"),
        at([13, 18]),
        "none while paused, then the new run's schedule"
    );
    assert_eq!(
        run.changes(|s| s.paused),
        [(secs(0), false), (secs(3), true), (secs(6), false)]
    );
}
