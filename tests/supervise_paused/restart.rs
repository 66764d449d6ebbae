//! Restarts under a paused clock: the backoff delay between a crash and the next spawn.

use std::time::Duration;

use herder::supervise::event::ChildEventKind;
use herder::supervise::os::ExitStatus;
use serde_json::json;

use crate::fake::{Run, at, secs};

#[tokio::test(start_paused = true)]
async fn a_crash_is_respawned_after_exactly_the_backoff_delay() {
    let manifest = json!({
        "name": "crasher",
        "command": ["fake"],
        "restart": {"policy": "always", "backoff": {"initial": "7s", "max": "60s", "multiplier": 2.0, "jitter": 0.0}},
    });
    let mut run = Run::start(manifest, |_| {});
    run.until("the first spawn", |k| {
        matches!(k, ChildEventKind::Spawned { .. })
    })
    .await;
    run.fake.crash(ExitStatus::exited(1));
    let (_, restarting) = run
        .until("the restart", |k| {
            matches!(k, ChildEventKind::Restarting { .. })
        })
        .await;
    assert_eq!(
        restarting,
        ChildEventKind::Restarting {
            attempt: 1,
            delay: secs(7)
        },
        "the first backoff is `initial`"
    );
    let (when, _) = run
        .until("the second spawn", |k| {
            matches!(k, ChildEventKind::Spawned { .. })
        })
        .await;
    assert_eq!(
        when,
        secs(7),
        "respawned when the backoff ended, not before or later"
    );
    assert_eq!(run.runs(), at([0, 7]));
}

/// Waits for the child's next spawn; returns its time since the start.
async fn spawned(run: &mut Run) -> Duration {
    let (when, _) = run
        .until("a spawn", |k| matches!(k, ChildEventKind::Spawned { .. }))
        .await;
    when
}

/// Crashes the current run `up` after it was spawned at `since`; returns the time of the event that follows
/// (a restart or the failure) with the event.
async fn crash(run: &mut Run, since: Duration, up: Duration) -> (Duration, ChildEventKind) {
    run.advance_to(since + up).await;
    run.fake.crash(ExitStatus::exited(1));
    run.until("a restart or the failure", |k| {
        matches!(
            k,
            ChildEventKind::Restarting { .. } | ChildEventKind::Failed { .. }
        )
    })
    .await
}

fn restarting(attempt: u32, delay: Duration) -> ChildEventKind {
    ChildEventKind::Restarting { attempt, delay }
}

#[tokio::test(start_paused = true)]
async fn the_delay_grows_per_crash_up_to_max_and_a_stable_run_resets_it() {
    let manifest = json!({
        "name": "crasher",
        "command": ["fake"],
        "restart": {
            "policy": "always",
            "backoff": {"initial": "1s", "max": "8s", "multiplier": 2.0, "jitter": 0.0},
            "limit": {"count": 100, "window": "1h"},
        },
    });
    // A run counts as stable after max(10 s, max) = 10 s.
    let ms = Duration::from_millis;
    let mut run = Run::start(manifest, |_| {});
    let mut seen = Vec::new();
    // Crash loop: 1, 2, 4, 8, then capped at 8; the run before the last stays up 1 ms short of stable.
    for up in [0, 0, 0, 0, 0, 9_999] {
        let since = spawned(&mut run).await;
        seen.push(crash(&mut run, since, ms(up)).await);
    }
    // Stable at exactly 10 s: the next delay is `initial` again, and grows from there.
    for up in [10_000, 0] {
        let since = spawned(&mut run).await;
        seen.push(crash(&mut run, since, ms(up)).await);
    }
    let since = spawned(&mut run).await;
    assert_eq!(
        seen,
        [
            (secs(0), restarting(1, secs(1))),
            (secs(1), restarting(2, secs(2))),
            (secs(3), restarting(3, secs(4))),
            (secs(7), restarting(4, secs(8))),
            (secs(15), restarting(5, secs(8))),
            (ms(32_999), restarting(6, secs(8))),
            (ms(50_999), restarting(7, secs(1))),
            (ms(51_999), restarting(8, secs(2))),
        ]
    );
    assert_eq!(since, ms(53_999));
    assert_eq!(
        run.runs(),
        [
            0, 1_000, 3_000, 7_000, 15_000, 23_000, 40_999, 51_999, 53_999
        ]
        .map(ms),
        "each spawn exactly its delay after the crash"
    );
    assert_eq!(run.child.snapshot().restarts, 8);
}

#[tokio::test(start_paused = true)]
async fn more_restarts_than_the_limit_within_the_window_fail_the_child() {
    let manifest = json!({
        "name": "looping",
        "command": ["fake"],
        "restart": {
            "policy": "always",
            "backoff": {"initial": "1s", "max": "1s", "multiplier": 1.0, "jitter": 0.0},
            "limit": {"count": 3, "window": "10s"},
        },
    });
    let mut run = Run::start(manifest, |_| {});
    let mut seen = Vec::new();
    // Restarts at 0 s and 1 s; the run from 2 s stays up until 10 s, when the one at 0 s has left the window;
    // at 12 s the one at 1 s has too.
    for up in [0, 0, 8, 0, 0, 0] {
        let since = spawned(&mut run).await;
        seen.push(crash(&mut run, since, secs(up)).await);
    }
    let reason = "crash loop: 3 restarts in 10s".to_owned();
    assert_eq!(
        seen,
        [
            (secs(0), restarting(1, secs(1))),
            (secs(1), restarting(2, secs(1))),
            (secs(10), restarting(3, secs(1))),
            (secs(11), restarting(4, secs(1))),
            (secs(12), restarting(5, secs(1))),
            // 10 s, 11 s and 12 s are within 10 s of 13 s: a fourth would be more than the limit.
            (secs(13), ChildEventKind::Failed { reason }),
        ]
    );
    assert_eq!(run.runs(), at([0, 1, 2, 11, 12, 13]));
    assert_eq!(run.child.snapshot().state.phase(), "failed");
}
