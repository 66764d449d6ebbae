//! The uptime a child reports is the time since its process was spawned, on the monotonic
//! clock: a change of its state (pause, resume) does not reset it (issue 11).

mod api_support;

use api_support::{Instance, WEB, wait_until};

#[test]
fn uptime_survives_state_changes_and_restarts_with_the_process() {
    let instance = Instance::start(&[("web.yaml", WEB)]);
    let first = instance.ready("web");
    let pid = first["pid"].as_i64().expect("a ready child has a pid");
    let uptime = |child: &serde_json::Value| child["uptime_secs"].as_f64();
    let before = wait_until(
        "web's uptime to pass one second",
        || instance.context(),
        || uptime(&instance.child("web")).filter(|secs| *secs >= 1.0),
    );
    instance.herder(&["pause", "web"]).expect_code(0);
    instance.wait_state("web", "paused");
    instance.herder(&["resume", "web"]).expect_code(0);
    let resumed = instance.ready("web");
    assert_eq!(resumed["pid"].as_i64(), Some(pid), "same process");
    let after = uptime(&resumed).expect("a running child has an uptime");
    assert!(
        after >= before,
        "uptime went from {before} s to {after} s across a pause: it was reset"
    );

    instance.herder(&["restart", "web"]).expect_code(0);
    let restarted = instance.ready_with_new_pid("web", pid, "restart");
    let fresh = uptime(&restarted).expect("a running child has an uptime");
    assert!(
        fresh < before,
        "a new process starts its uptime afresh: {fresh} s after a restart"
    );
}
