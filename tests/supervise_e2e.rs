//! Supervision end to end: a real `herder up` with real children (and their grandchildren),
//! real signals, and `/proc` as the witness of what is left running. Facts come from the
//! CLI, the event log (`events.jsonl` once herder has exited) and `/proc`; every wait is a
//! bounded deadline loop whose failure names the suspected bug.

mod api_support;

use std::collections::BTreeSet;
use std::fs;
use std::time::Duration;

use api_support::{
    Instance, alive, group_members, proc_stat, wait_dead, wait_until, zombie_children,
};
use nix::sys::signal::Signal;
use serde_json::Value;

fn pid(child: &Value) -> i64 {
    child["pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("no pid in {child:#}"))
}

/// The event log herder wrote to its state directory (readable after it exited).
fn logged_events(instance: &Instance) -> Vec<Value> {
    fs::read_to_string(instance.state_dir().join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The sequence number of the first event of `child` with type `kind`.
fn seq_of(events: &[Value], child: &str, kind: &str) -> u64 {
    events
        .iter()
        .find(|e| e["child"] == child && e["type"] == kind)
        .and_then(|e| e["seq"].as_u64())
        .unwrap_or_else(|| panic!("no {kind} event of {child}: {events:#?}"))
}

/// Waits until the process group `pgid` has at least `count` live members; returns them.
fn wait_group(pgid: i64, count: usize, what: &str) -> Vec<i32> {
    let pgid = i32::try_from(pgid).unwrap();
    wait_until(
        &format!("process group {pgid} to have {count} members ({what})"),
        || format!("members: {:?}", group_members(pgid)),
        || {
            let members = group_members(pgid);
            (members.len() >= count).then_some(members)
        },
    )
}

/// Waits until no process of `pids` runs any more.
fn wait_all_dead(pids: &[i32], what: &str) {
    wait_until(
        &format!("every process of {pids:?} to be gone ({what})"),
        || {
            let left: Vec<_> = pids
                .iter()
                .filter(|p| alive(i64::from(**p)))
                .map(|p| proc_stat(*p))
                .collect();
            format!("still running: {left:?}")
        },
        || pids.iter().all(|p| !alive(i64::from(*p))).then_some(()),
    );
}

#[test]
fn dependents_start_after_readiness_and_after_oneshot_completion() {
    let mut instance = Instance::prepare(&[]);
    let root = instance.root.path().to_owned();
    let flag = root.join("db-up");
    let db = format!(
        r#"name: db
command: ["sh", "-c", "sleep 0.3; touch {flag}; exec sleep 1000"]
readiness:
  exec: {{command: ["test", "-f", "{flag}"]}}
  interval: 50ms
"#,
        flag = flag.display()
    );
    let migrate = r#"name: migrate
kind: oneshot
command: ["sh", "-c", "sleep 0.3; exit 0"]
dependencies: [db]
"#;
    let app = r#"name: app
command: ["sleep", "1000"]
dependencies:
  - db
  - {name: migrate, condition: completed}
"#;
    for (name, yaml) in [
        ("db.yaml", db.as_str()),
        ("migrate.yaml", migrate),
        ("app.yaml", app),
    ] {
        fs::write(instance.dir.join(name), yaml).unwrap();
    }
    instance.launch();
    instance.ready("app");
    let events = instance.events_since(0);
    let db_ready = seq_of(&events, "db", "ready");
    let migrate_spawned = seq_of(&events, "migrate", "spawned");
    let migrate_completed = seq_of(&events, "migrate", "completed");
    let app_spawned = seq_of(&events, "app", "spawned");
    assert!(
        seq_of(&events, "db", "spawned") < db_ready,
        "ready before spawned? {events:#?}"
    );
    assert!(
        db_ready < migrate_spawned,
        "migrate (needs db ready) spawned before db was ready: {events:#?}"
    );
    assert!(
        migrate_completed < app_spawned,
        "app (needs migrate completed) spawned before migrate completed: {events:#?}"
    );
    assert_eq!(instance.child("migrate")["state"], "completed");
}

#[test]
fn a_crash_looping_critical_child_shuts_herder_down_in_order_with_a_non_zero_exit() {
    let crasher = r#"name: crasher
command: ["sh", "-c", "exit 1"]
criticality: critical
restart:
  policy: always
  backoff: {initial: 10ms, max: 10ms}
  limit: {count: 3, window: 60s}
"#;
    let base = "name: base\ncommand: [\"sleep\", \"1000\"]\nstop: {timeout: 2s}\n";
    let top =
        "name: top\ncommand: [\"sleep\", \"1000\"]\ndependencies: [base]\nstop: {timeout: 2s}\n";
    let mut instance = Instance::start_explicit(&[
        ("crasher.yaml", crasher),
        ("base.yaml", base),
        ("top.yaml", top),
    ]);
    let status = instance.wait_exit();
    let events = logged_events(&instance);
    assert_eq!(
        status.code(),
        Some(3), // reconcile::core::EXIT_CRITICAL_FAILED
        "a critical child's crash loop must end herder with a non-zero code: {status:?}; {events:#?}"
    );
    let failed = seq_of(&events, "crasher", "failed");
    let shutdown = events
        .iter()
        .find(|e| e["type"] == "shutdown")
        .unwrap_or_else(|| panic!("no shutdown event: {events:#?}"));
    assert!(shutdown["seq"].as_u64().unwrap() > failed, "{events:#?}");
    assert!(
        shutdown["reason"]
            .as_str()
            .unwrap_or("")
            .contains("crasher"),
        "the shutdown does not name its cause: {shutdown:#}"
    );
    assert!(
        seq_of(&events, "top", "stopped") < seq_of(&events, "base", "stopped"),
        "base stopped before top, which depends on it: {events:#?}"
    );
    let pids: Vec<i32> = events
        .iter()
        .filter(|e| e["type"] == "spawned")
        .map(|e| i32::try_from(e["pid"].as_i64().unwrap()).unwrap())
        .collect();
    assert!(pids.len() >= 3, "{events:#?}");
    wait_all_dead(&pids, "herder exited after the critical failure");
}

#[test]
fn sigterm_stops_everything_in_reverse_dependency_order_and_exits_zero() {
    // Each child forks a grandchild into its process group.
    let family = |name: &str, deps: &str| {
        format!(
            "name: {name}\ncommand: [\"sh\", \"-c\", \"sleep 1000 & exec sleep 1001\"]\ndependencies: {deps}\nstop: {{timeout: 5s}}\n"
        )
    };
    let mut instance = Instance::start_explicit(&[
        ("base.yaml", &family("base", "[]")),
        ("mid.yaml", &family("mid", "[base]")),
        ("top.yaml", &family("top", "[mid]")),
    ]);
    let mut everyone = Vec::new();
    for name in ["base", "mid", "top"] {
        let leader = pid(&instance.ready(name));
        everyone.extend(wait_group(leader, 2, "the child and its grandchild"));
    }
    instance.signal(Signal::SIGTERM);
    let status = instance.wait_exit();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM is an ordered shutdown, exit 0: {status:?}\n{}",
        instance.stderr.all()
    );
    let events = logged_events(&instance);
    let stopped = |name| seq_of(&events, name, "stopped");
    assert!(
        stopped("top") < stopped("mid") && stopped("mid") < stopped("base"),
        "not stopped in reverse dependency order: {events:#?}"
    );
    // herder exits only once every group is gone: nothing may be left at all.
    let left: Vec<i32> = everyone
        .iter()
        .copied()
        .filter(|p| alive(i64::from(*p)))
        .collect();
    assert!(
        left.is_empty(),
        "herder exited leaving {left:?} running: {:?}",
        left.iter().map(|p| proc_stat(*p)).collect::<Vec<_>>()
    );
}

/// Entries of the state file (`children.json`).
fn state_file_pids(instance: &Instance) -> BTreeSet<i64> {
    herder::supervise::statefile::read(&instance.state_dir().join("children.json"))
        .unwrap_or_default()
        .into_iter()
        .map(|entry| i64::from(entry.pid))
        .collect()
}

#[test]
fn sigkill_of_herder_leaves_no_child_alive_once_the_next_herder_starts() {
    let family = |name: &str| {
        format!(
            "name: {name}\ncommand: [\"sh\", \"-c\", \"sleep 1000 & sleep 1000 & wait\"]\nstop: {{timeout: 2s}}\n"
        )
    };
    let mut instance = Instance::start_explicit(&[
        ("fam-a.yaml", &family("fam-a")),
        ("fam-b.yaml", &family("fam-b")),
    ]);
    let leaders = [pid(&instance.ready("fam-a")), pid(&instance.ready("fam-b"))];
    let mut grandchildren = Vec::new();
    for leader in leaders {
        let members = wait_group(leader, 3, "sh and its two sleeps");
        grandchildren.extend(members.into_iter().filter(|p| i64::from(*p) != leader));
    }
    wait_until(
        "the state file to record both children (written by a coalescing thread)",
        || format!("state file pids: {:?}", state_file_pids(&instance)),
        || {
            let recorded = state_file_pids(&instance);
            leaders.iter().all(|p| recorded.contains(p)).then_some(())
        },
    );

    instance.kill();
    // PR_SET_PDEATHSIG: the direct children die with herder.
    for leader in leaders {
        wait_dead(
            leader,
            "a direct child must get its death signal when herder is killed",
        );
    }
    // Grandchildren have no death signal: they may outlive herder until the next start.
    let survivors: Vec<i32> = grandchildren
        .iter()
        .copied()
        .filter(|p| alive(i64::from(*p)))
        .collect();
    eprintln!(
        "after SIGKILL of herder: {} of {} grandchildren still running",
        survivors.len(),
        grandchildren.len()
    );

    // The next herder on the same state directory stops whatever was left.
    instance.launch();
    if !survivors.is_empty() {
        let stderr = instance.stderr.all();
        assert!(
            stderr.contains("left running by a previous herder"),
            "the new herder did not report the leftovers it stopped: {stderr}"
        );
    }
    wait_all_dead(
        &grandchildren,
        "the next `herder up` must kill what the previous one left (state file)",
    );
    for leader in leaders {
        let name = if leader == leaders[0] {
            "fam-a"
        } else {
            "fam-b"
        };
        let now = instance.ready_with_new_pid(name, leader, "the new herder starts it afresh");
        assert!(alive(pid(&now)));
    }
}

#[test]
fn no_zombies_after_churn() {
    // Short-lived children restarted with zero backoff, each leaving an orphaned grandchild
    // for herder (the subreaper) to reap; exec probes add more short-lived processes.
    let churn = |name: &str, code: u8| {
        format!(
            r#"name: {name}
command: ["sh", "-c", "sleep 0.05 & exit {code}"]
restart:
  policy: always
  backoff: {{initial: 0s, max: 0s}}
  limit: {{count: 1000000, window: 1s}}
"#
        )
    };
    let probed = r#"name: probed
command: ["sleep", "1000"]
health_check:
  exec: {command: ["true"]}
  interval: 50ms
"#;
    let instance = Instance::start_explicit(&[
        ("churn-a.yaml", &churn("churn-a", 0)),
        ("churn-b.yaml", &churn("churn-b", 1)),
        ("churn-c.yaml", &churn("churn-c", 0)),
        ("probed.yaml", probed),
    ]);
    let herder = i32::try_from(instance.pid()).unwrap();
    let restarts = || -> u64 {
        instance.status()["children"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["restarts"].as_u64())
            .sum()
    };
    wait_until(
        "300 restarts of the churning children",
        || instance.context(),
        || (restarts() >= 300).then_some(()),
    );

    // While they churn, zombies come and go; a leaked one stays. Two samples 300 ms apart
    // with nothing in common prove none is stuck.
    let persistent = || {
        let first: BTreeSet<(i32, u64)> = zombie_children(herder)
            .into_iter()
            .map(|z| (z.pid, z.start_time))
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let second: BTreeSet<(i32, u64)> = zombie_children(herder)
            .into_iter()
            .map(|z| (z.pid, z.start_time))
            .collect();
        first.intersection(&second).copied().collect::<Vec<_>>()
    };
    wait_until(
        "no zombie of herder to persist while children churn (a reaping leak)",
        || format!("zombies of herder: {:?}", zombie_children(herder)),
        || persistent().is_empty().then_some(()),
    );

    // Once the churn is retired, there is no zombie at all.
    for name in ["churn-a", "churn-b", "churn-c"] {
        fs::remove_file(instance.dir.join(format!("{name}.yaml"))).unwrap();
    }
    for name in ["churn-a", "churn-b", "churn-c"] {
        instance.wait_gone(name, "a removed churning child retires");
    }
    wait_until(
        "herder to have no zombie children once the churn stopped",
        || format!("zombies of herder: {:?}", zombie_children(herder)),
        || zombie_children(herder).is_empty().then_some(()),
    );
    assert!(alive(pid(&instance.child("probed"))));
}

#[test]
fn a_child_that_ignores_sigterm_and_forks_is_killed_as_a_group_at_the_stop_timeout() {
    let stubborn = r#"name: stubborn
command: ["sh", "-c", "trap '' TERM; sleep 1000 & sleep 1000 & while :; do sleep 1; done"]
stop: {timeout: 1s}
command_permissions: {stop: true}
"#;
    let bystander = "name: bystander\ncommand: [\"sleep\", \"1000\"]\n";
    let instance =
        Instance::start_explicit(&[("stubborn.yaml", stubborn), ("bystander.yaml", bystander)]);
    let bystander_pid = pid(&instance.ready("bystander"));
    let leader = pid(&instance.ready("stubborn"));
    let members = wait_group(leader, 3, "sh and its sleeps");
    let since = instance.last_seq();
    instance.herder(&["stop", "stubborn"]).expect_code(0);
    let stopped = instance.wait_event(since, "stubborn to be stopped", |e| {
        e["child"] == "stubborn" && e["type"] == "stopped"
    });
    assert_eq!(
        stopped["killed"], true,
        "a child ignoring SIGTERM must be SIGKILLed at stop.timeout: {stopped:#}"
    );
    wait_all_dead(
        &members,
        "SIGKILL at the stop timeout goes to the whole process group",
    );
    assert!(
        group_members(i32::try_from(leader).unwrap()).is_empty(),
        "members of the group survived"
    );
    assert_eq!(instance.child("stubborn")["state"], "stopped");
    assert_eq!(pid(&instance.child("bystander")), bystander_pid);
}
