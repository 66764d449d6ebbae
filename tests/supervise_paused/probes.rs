//! Readiness and liveness probes under a paused clock: when attempts run and when their results count.

use std::time::Duration;

use herder::supervise::event::ChildEventKind;
use nix::sys::signal::Signal;
use serde_json::json;

use crate::fake::{CHILD, Probe, Run, at, secs};

/// What a failed `exec` probe of the fake reports.
const EXITED_1: &str = "exec: exited with code 1";

fn not_ready(reason: &str) -> ChildEventKind {
    ChildEventKind::NotReady {
        reason: reason.into(),
    }
}

fn unhealthy(reason: &str) -> ChildEventKind {
    ChildEventKind::Unhealthy {
        reason: reason.into(),
    }
}

fn is_ready(k: &ChildEventKind) -> bool {
    matches!(k, ChildEventKind::Ready)
}

#[tokio::test(start_paused = true)]
async fn readiness_passes_after_success_threshold_probes_one_interval_apart() {
    let manifest = json!({
        "name": "probed",
        "command": ["fake"],
        "readiness": {"exec": ["ready"], "interval": "2s", "timeout": "1s", "success_threshold": 3},
        "start_timeout": "1h",
    });
    let mut run = Run::start(manifest, |_| {});
    let seen = run.record_until("readiness", is_ready).await;
    assert_eq!(
        seen,
        [
            (secs(0), ChildEventKind::Spawned { pid: pid(&run, 0) }),
            (secs(4), ChildEventKind::Ready),
        ],
        "ready at the third probe"
    );
    assert_eq!(
        run.attempts("ready"),
        at([0, 2, 4]),
        "one probe per interval, the first at once"
    );
}

#[tokio::test(start_paused = true)]
async fn a_child_not_ready_in_time_is_failed_at_exactly_the_start_timeout() {
    let manifest = json!({
        "name": "slow",
        "command": ["fake"],
        // The fake has no output: this line never comes.
        "readiness": {"log_line": "^listening$"},
        "start_timeout": "30s",
    });
    let mut run = Run::start(manifest, |_| {});
    let (when, kind) = run
        .until("not ready", |k| {
            matches!(k, ChildEventKind::NotReady { .. })
        })
        .await;
    assert_eq!(
        kind,
        ChildEventKind::NotReady {
            reason: "not ready before the start timeout".into()
        }
    );
    assert_eq!(when, secs(30), "not a moment before or after");
}

/// The pid of the child's `n`th run (from 0).
fn pid(run: &Run, n: usize) -> i32 {
    run.fake.spawns_of(CHILD)[n].pid
}

#[tokio::test(start_paused = true)]
async fn readiness_fails_after_failure_threshold_failures_in_a_row_and_passes_after_success_threshold()
 {
    let manifest = json!({
        "name": "flaky",
        "command": ["fake"],
        "readiness": {"exec": ["ready"], "interval": "2s", "timeout": "1s",
                      "failure_threshold": 3, "success_threshold": 2},
        "start_timeout": "1h",
    });
    use Probe::{Fail, Pass};
    let mut run = Run::start(manifest, |fake| {
        // Two failures, a success between (which resets them), three failures, two successes.
        fake.script("ready", [Fail, Fail, Pass, Fail, Fail, Fail, Pass, Pass]);
    });
    let seen = run.record_until("readiness", is_ready).await;
    assert_eq!(
        seen,
        [
            (secs(0), ChildEventKind::Spawned { pid: pid(&run, 0) }),
            // Not at 2 s: the success at 4 s broke the run of failures; the third in a row is at 10 s.
            (secs(10), not_ready(EXITED_1)),
            // Not at 12 s: the second success in a row.
            (secs(14), ChildEventKind::Ready),
        ]
    );
    assert_eq!(run.attempts("ready"), at([0, 2, 4, 6, 8, 10, 12, 14]));
    assert_eq!(
        run.changes(|s| s.state.phase()),
        [
            (secs(0), "spawning"),
            (secs(0), "starting"),
            (secs(14), "running")
        ],
        "not ready is reported, the child stays starting until it passes"
    );
    assert_eq!(
        run.changes(|s| s.ready),
        [(secs(0), false), (secs(14), true)]
    );
    // A ready child is not probed for readiness any more.
    run.advance_to(secs(60)).await;
    assert_eq!(run.attempts("ready").len(), 8);
    assert_eq!(run.drain(), []);
}

#[tokio::test(start_paused = true)]
async fn liveness_fails_after_failure_threshold_failures_in_a_row_and_the_child_is_restarted() {
    let manifest = json!({
        "name": "sickly",
        "command": ["fake"],
        "health_check": {"exec": ["alive"], "interval": "5s", "timeout": "1s",
                         "failure_threshold": 3, "success_threshold": 2},
        "restart": {"policy": "always", "backoff": {"initial": "1s", "max": "1m", "multiplier": 2.0, "jitter": 0.0}},
    });
    use Probe::{Fail, Pass};
    let mut run = Run::start(manifest, |fake| {
        fake.script(
            "alive",
            [Pass, Pass, Fail, Fail, Pass, Fail, Fail, Fail, Pass],
        );
    });
    let seen = run
        .record_until("the restart", |k| {
            matches!(k, ChildEventKind::Restarting { .. })
        })
        .await;
    let first = pid(&run, 0);
    assert_eq!(
        seen,
        [
            (secs(0), ChildEventKind::Spawned { pid: first }),
            (secs(0), ChildEventKind::Ready),
            // The failures at 15 s and 20 s are broken by the success at 25 s: the third in a row is at 40 s.
            (secs(40), unhealthy(EXITED_1)),
            (
                secs(40),
                ChildEventKind::Exited {
                    code: None,
                    signal: Some(Signal::SIGTERM as i32)
                }
            ),
            (
                secs(40),
                ChildEventKind::Restarting {
                    attempt: 1,
                    delay: secs(1)
                }
            ),
        ]
    );
    assert_eq!(
        run.fake.signals(),
        [
            (run.t0 + secs(40), first, Signal::SIGTERM),
            (run.t0 + secs(40), first, Signal::SIGCONT),
        ],
        "stopped at the verdict"
    );
    let (when, _) = run.until("the next ready", is_ready).await;
    assert_eq!(when, secs(41));
    // The new run is probed one interval after it is ready; two successes make it healthy again.
    run.advance_to(secs(60)).await;
    assert_eq!(
        run.attempts("alive"),
        at([5, 10, 15, 20, 25, 30, 35, 40, 46, 51, 56])
    );
    assert_eq!(
        run.changes(|s| s.healthy),
        [
            (secs(0), None),
            // The second success in a row, not the first.
            (secs(10), Some(true)),
            (secs(40), Some(false)),
            // A new run starts without a verdict.
            (secs(41), None),
            (secs(51), Some(true)),
        ]
    );
    assert_eq!(run.drain(), [], "a new run's first verdict is no recovery");
}

#[tokio::test(start_paused = true)]
async fn readiness_failures_within_the_start_period_do_not_count() {
    let manifest = json!({
        "name": "warming",
        "command": ["fake"],
        "readiness": {"exec": ["ready"], "interval": "2s", "timeout": "1s",
                      "start_period": "4s", "failure_threshold": 2},
        "start_timeout": "1h",
    });
    use Probe::{Fail, Pass};
    let mut run = Run::start(manifest, |fake| {
        fake.script("ready", [Fail, Fail, Fail, Fail, Pass])
    });
    let seen = run.record_until("readiness", is_ready).await;
    assert_eq!(
        seen,
        [
            (secs(0), ChildEventKind::Spawned { pid: pid(&run, 0) }),
            // 0 s and 2 s are within the start period; 4 s (its end) counts, 6 s is the second in a row.
            (secs(6), not_ready(EXITED_1)),
            (secs(8), ChildEventKind::Ready),
        ]
    );
    assert_eq!(run.attempts("ready"), at([0, 2, 4, 6, 8]));
}

#[tokio::test(start_paused = true)]
async fn liveness_failures_within_the_start_period_do_not_count() {
    let manifest = json!({
        "name": "warming",
        "command": ["fake"],
        "health_check": {"exec": ["alive"], "interval": "2s", "timeout": "1s",
                         "start_period": "5s", "failure_threshold": 1},
        "restart": "never",
    });
    let mut run = Run::start(manifest, |fake| fake.script("alive", [Probe::Fail]));
    let seen = run
        .record_until("the failure", |k| {
            matches!(k, ChildEventKind::Failed { .. })
        })
        .await;
    // The failure that follows the stop is the probe's.
    let reason = EXITED_1.to_owned();
    assert_eq!(
        seen,
        [
            (secs(0), ChildEventKind::Spawned { pid: pid(&run, 0) }),
            (secs(0), ChildEventKind::Ready),
            // The start period counts from the spawn: 2 s and 4 s are within it, 6 s is not.
            (secs(6), unhealthy(EXITED_1)),
            (
                secs(6),
                ChildEventKind::Exited {
                    code: None,
                    signal: Some(Signal::SIGTERM as i32)
                }
            ),
            (secs(6), ChildEventKind::Failed { reason }),
        ]
    );
    assert_eq!(run.attempts("alive"), at([2, 4, 6]));
    assert_eq!(
        run.changes(|s| s.healthy),
        [(secs(0), None), (secs(6), Some(false))]
    );
}

#[tokio::test(start_paused = true)]
async fn a_readiness_probe_that_never_finishes_fails_at_exactly_its_timeout() {
    let manifest = json!({
        "name": "hung",
        "command": ["fake"],
        "readiness": {"exec": ["ready"], "interval": "2s", "timeout": "3s", "failure_threshold": 1},
        "start_timeout": "1h",
    });
    let mut run = Run::start(manifest, |fake| {
        fake.script("ready", [Probe::Hang, Probe::Pass])
    });
    let seen = run.record_until("readiness", is_ready).await;
    assert_eq!(
        seen,
        [
            (secs(0), ChildEventKind::Spawned { pid: pid(&run, 0) }),
            (secs(3), not_ready("exec: timed out after 3s")),
            // The next attempt one interval after the timed-out one ended.
            (secs(5), ChildEventKind::Ready),
        ]
    );
    assert_eq!(run.attempts("ready"), at([0, 5]));
    let hung = run.fake.spawns_of("ready")[0].pid;
    assert_eq!(
        run.fake.signals(),
        [(run.t0 + secs(3), hung, Signal::SIGKILL)],
        "the hung check's group is killed at the timeout"
    );
}

#[tokio::test(start_paused = true)]
async fn a_liveness_probe_that_never_finishes_fails_at_exactly_its_timeout() {
    let manifest = json!({
        "name": "hung",
        "command": ["fake"],
        "health_check": {"exec": ["alive"], "interval": "2s", "timeout": "1500ms", "failure_threshold": 2},
        "restart": "never",
    });
    use Probe::{Hang, Pass};
    let mut run = Run::start(manifest, |fake| fake.script("alive", [Pass, Hang]));
    let (when, kind) = run
        .until("unhealthy", |k| {
            matches!(k, ChildEventKind::Unhealthy { .. })
        })
        .await;
    let ms = Duration::from_millis;
    // 2 s passes; 4 s hangs until 5.5 s; the next at 7.5 s hangs until 9 s: the second failure in a row.
    assert_eq!(when, ms(9000));
    assert_eq!(kind, unhealthy("exec: timed out after 1s 500ms"));
    assert_eq!(run.attempts("alive"), [secs(2), secs(4), ms(7500)]);
    let probes = run.fake.spawns_of("alive");
    let kills: Vec<_> = run
        .fake
        .signals()
        .into_iter()
        .filter(|(_, _, signal)| *signal == Signal::SIGKILL)
        .collect();
    assert_eq!(
        kills,
        [
            (run.t0 + ms(5500), probes[1].pid, Signal::SIGKILL),
            (run.t0 + ms(9000), probes[2].pid, Signal::SIGKILL),
        ]
    );
    assert_eq!(
        run.changes(|s| s.healthy),
        [
            (secs(0), None),
            (secs(2), Some(true)),
            (ms(9000), Some(false))
        ]
    );
}
