//! Readiness and liveness probes under a paused clock: when attempts run and when their results count.

use herder::supervise::event::ChildEventKind;
use serde_json::json;

use crate::fake::{Run, at, secs};

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
            (
                secs(0),
                ChildEventKind::Spawned {
                    pid: seen_pid(&run)
                }
            ),
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

/// The pid of the child's first run.
fn seen_pid(run: &Run) -> i32 {
    run.fake.spawns_of(crate::fake::CHILD)[0].pid
}
