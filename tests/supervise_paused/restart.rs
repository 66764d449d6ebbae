//! Restarts under a paused clock: the backoff delay between a crash and the next spawn.

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
