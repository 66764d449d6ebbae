//! Commands that wait and label selectors, end to end through the binary: `restart --wait`
//! returns only once the new process is ready and fails with the reason on a crash loop;
//! `-l key=value` selects the children of a batch command and of `status`, and a selector
//! that matches nothing exits 1.

mod api_support;

use api_support::Instance;

const WEB: &str = "name: web\nlabels: {team: core}\ncommand: \"sleep 0.3; echo listening; exec sleep 60\"\nreadiness: {log_line: listening, interval: 100ms}\n";
const CRASHY: &str = "name: crashy\nlabels: {team: edge}\ncommand: \"sleep 0.2; exit 1\"\nreadiness: {log_line: never-printed}\nrestart: {policy: always, backoff: {initial: 10ms, max: 20ms}, limit: {count: 2, window: 60s}}\n";

#[test]
fn restart_wait_returns_when_ready_and_fails_on_a_crash_loop() {
    let instance = Instance::start_explicit(&[("web.yaml", WEB), ("crashy.yaml", CRASHY)]);
    let before = instance.ready("web")["pid"].as_i64().unwrap();
    let done = instance
        .herder(&["restart", "web", "--wait", "--timeout", "20s"])
        .expect_code(0);
    assert!(
        done.stdout.contains("web: restart done, ready"),
        "{}",
        done.stdout
    );
    // Right after --wait returns, without waiting: ready, with the new process.
    let after = instance.child("web");
    assert_eq!(after["state"], "ready", "{after:#}");
    assert_ne!(after["pid"].as_i64(), Some(before), "{after:#}");

    instance.wait_state("crashy", "failed");
    let failed = instance
        .herder(&["restart", "crashy", "--wait", "--timeout", "20s"])
        .expect_code(1);
    assert!(
        failed.stderr.contains("did not get there") && failed.stderr.contains("crash loop"),
        "{}",
        failed.stderr
    );
    let stop = instance.herder(&["stop", "web", "--wait"]).expect_code(0);
    assert!(
        stop.stdout.contains("web: stop done, stopped"),
        "{}",
        stop.stdout
    );
}

#[test]
fn selectors_pick_children_and_say_when_none_match() {
    let instance = Instance::start_explicit(&[
        ("web.yaml", WEB),
        (
            "api.yaml",
            "name: api\nlabels: {team: core, tier: back}\ncommand: [\"sleep\", \"60\"]\n",
        ),
        (
            "other.yaml",
            "name: other\nlabels: {team: edge}\ncommand: [\"sleep\", \"60\"]\n",
        ),
    ]);
    instance.ready("web");
    instance.ready("api");
    instance.ready("other");
    let status = instance
        .herder(&["status", "-l", "team=core", "--format", "json"])
        .expect_code(0)
        .json();
    let names: Vec<&str> = status["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api", "web"]);
    let stopped = instance
        .herder(&["stop", "-l", "team=core", "-l", "tier!=back"])
        .expect_code(0);
    assert_eq!(stopped.stdout, "web: stop requested\n");
    instance.wait_state("web", "stopped");
    assert_eq!(instance.child("other")["state"], "ready");
    assert_eq!(instance.child("api")["state"], "ready");
    let none = instance
        .herder(&["restart", "-l", "team=nobody"])
        .expect_code(1);
    assert!(
        none.stderr
            .contains("no child matches the selector `team=nobody`"),
        "{}",
        none.stderr
    );
    instance
        .herder(&["status", "-l", "team=nobody"])
        .expect_code(1);
}

#[test]
fn a_quarantine_and_a_stop_survive_a_restart_of_herder() {
    let mut instance = Instance::start_explicit(&[
        ("web.yaml", "name: web\ncommand: [\"sleep\", \"60\"]\n"),
        ("api.yaml", "name: api\ncommand: [\"sleep\", \"60\"]\n"),
        ("db.yaml", "name: db\ncommand: [\"sleep\", \"60\"]\n"),
    ]);
    instance.ready("web");
    instance.ready("api");
    instance.ready("db");
    instance
        .herder(&["quarantine", "web", "--reason", "disk full"])
        .expect_code(0);
    instance
        .herder(&["stop", "api", "--reason", "maintenance", "--wait"])
        .expect_code(0);
    instance.wait_state("web", "quarantined");
    instance.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(instance.wait_exit().success());
    instance.launch();
    instance.ready("db");
    let web = instance.wait_state("web", "quarantined");
    assert_eq!(web["reason"], "disk full", "{web:#}");
    assert!(
        web["held_since"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{web:#}"
    );
    assert!(
        web.get("pid").is_none(),
        "a held child is not started: {web:#}"
    );
    let api = instance.wait_state("api", "stopped");
    assert_eq!(api["reason"], "maintenance", "{api:#}");
    // Until released or started.
    instance
        .herder(&["release", "web", "--wait"])
        .expect_code(0);
    instance.herder(&["start", "api", "--wait"]).expect_code(0);
    instance.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(instance.wait_exit().success());
    instance.launch();
    instance.ready("web");
    instance.ready("api");
}
