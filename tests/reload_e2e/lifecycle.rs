//! Edits that touch more than the edited child: secret rotation, replicas, start-first replacement, dependents.

use super::*;

#[test]
fn rotating_a_secret_replaces_only_its_user_and_never_shows_the_value() {
    const OLD: &str = "hunter2-OLD-c0ffee";
    const NEW: &str = "hunter2-NEW-bada55";
    const OTHER: &str = "hunter2-ALT-f00d";
    let mut instance = Instance::prepare(&[("bystander.yaml", BYSTANDER)]);
    let root = instance.root.path().to_owned();
    let secrets = root.join("secrets");
    fs::create_dir(&secrets).unwrap();
    fs::write(secrets.join("token"), OLD).unwrap();
    let api = format!(
        r#"name: api
command: ["sh", "-c", "printf %s \"$API_TOKEN\" > {root}/seen-$$; exec sleep 1000"]
secrets: [{{name: token, file: ../secrets/token}}]
environment:
  - {{name: API_TOKEN, secret_ref: token}}
stop: {{timeout: 2s}}
"#,
        root = root.display()
    );
    fs::write(instance.dir.join("api.yaml"), &api).unwrap();
    fs::write(instance.dir.join("worker.yaml"), sleeper("worker", 1006)).unwrap();
    instance.launch();
    let bystander = pid(&instance.ready("bystander"));
    let before = pid(&instance.ready("api"));
    let worker = pid(&instance.ready("worker"));
    let seen = |pid: i64| {
        wait_until(
            &format!("api (pid {pid}) to write the token it got"),
            String::new,
            || {
                fs::read_to_string(root.join(format!("seen-{pid}")))
                    .ok()
                    .filter(|s| !s.is_empty())
            },
        )
    };
    assert_eq!(seen(before), OLD);

    let since = instance.last_seq();
    write_atomic(&secrets, "token", NEW);
    let after = pid(&instance.ready_with_new_pid(
        "api",
        before,
        "a rotated secret must replace the child that uses it",
    ));
    assert_eq!(seen(after), NEW, "the new process got the old secret");
    wait_dead(before, "the process with the old secret");
    assert_eq!(
        pid(&instance.child("worker")),
        worker,
        "worker uses no secret"
    );
    assert!(reload_operations(&instance.events_since(since)).contains(&"replace api".to_owned()));

    // What a plan of another directory shows: the secret changed, not its value.
    let alt = root.join("alt");
    fs::create_dir_all(alt.join("herder.d")).unwrap();
    fs::create_dir_all(alt.join("secrets")).unwrap();
    fs::write(alt.join("secrets/token"), OTHER).unwrap();
    fs::write(alt.join("herder.d/api.yaml"), &api).unwrap();
    let alt_dir = alt.join("herder.d");
    let plan_human = instance
        .herder(&["plan", alt_dir.to_str().unwrap()])
        .expect_code(0)
        .stdout;
    assert!(
        plan_human.contains("secret changed"),
        "the plan does not say the secret changed: {plan_human}"
    );
    let plan_json = instance
        .herder(&["plan", alt_dir.to_str().unwrap(), "--format", "json"])
        .expect_code(0)
        .stdout;

    let outputs = [
        ("events", instance.herder(&["events", "-n", "10000"]).stdout),
        (
            "events json",
            instance
                .herder(&["events", "--format", "json", "-n", "10000"])
                .stdout,
        ),
        ("status", instance.herder(&["status"]).stdout),
        ("status json", instance.status().to_string()),
        (
            "child detail",
            instance.api_get("/v1/children/api").1.to_string(),
        ),
        ("plan", instance.herder(&["plan"]).stdout),
        ("plan json", instance.api_get("/v1/plan").1.to_string()),
        ("alt plan", plan_human),
        ("alt plan json", plan_json),
        ("herder up stderr", instance.stderr.all()),
        (
            "events.jsonl",
            fs::read_to_string(instance.state_dir().join("events.jsonl")).unwrap(),
        ),
    ];
    for (what, text) in &outputs {
        for value in [OLD, NEW, OTHER] {
            assert!(
                !text.contains(value),
                "the secret value leaked into {what}:\n{text}"
            );
        }
    }
    assert_bystander(&instance, bystander);
}

fn replica_pids(instance: &Instance) -> BTreeMap<String, i64> {
    instance.status()["children"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"].as_str().unwrap().starts_with("r-") && c["state"] == "ready")
        .map(|c| (c["name"].as_str().unwrap().to_owned(), pid(c)))
        .collect()
}

fn wait_replicas(instance: &Instance, names: &[&str]) -> BTreeMap<String, i64> {
    wait_until(
        &format!("exactly the replicas {names:?} to be ready"),
        || instance.context(),
        || {
            let pids = replica_pids(instance);
            let listed = instance.status()["children"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["name"].as_str().unwrap().starts_with("r-"))
                .count();
            (pids.keys().map(String::as_str).eq(names.iter().copied()) && listed == names.len())
                .then_some(pids)
        },
    )
}

#[test]
fn scaling_replicas_starts_and_retires_only_the_highest() {
    let replicas = |n: u32| {
        format!("name: r\ncommand: [\"sleep\", \"1007\"]\nreplicas: {n}\nstop: {{timeout: 2s}}\n")
    };
    let (instance, bystander) = start(&[("r.yaml", &replicas(3))]);
    let three = wait_replicas(&instance, &["r-0", "r-1", "r-2"]);

    write_atomic(&instance.dir, "r.yaml", &replicas(5));
    let five = wait_replicas(&instance, &["r-0", "r-1", "r-2", "r-3", "r-4"]);
    for (name, pid) in &three {
        assert_eq!(five[name], *pid, "scaling up restarted {name}");
    }

    write_atomic(&instance.dir, "r.yaml", &replicas(2));
    let two = wait_replicas(&instance, &["r-0", "r-1"]);
    for (name, pid) in &two {
        assert_eq!(three[name], *pid, "scaling down restarted {name}");
    }
    for name in ["r-2", "r-3", "r-4"] {
        wait_dead(five[name], "a retired replica");
    }
    assert_bystander(&instance, bystander);
}

#[test]
fn start_first_keeps_the_old_process_serving_until_the_new_one_is_ready() {
    let mut instance = Instance::prepare(&[("bystander.yaml", BYSTANDER)]);
    let root = instance.root.path().to_owned();
    let web = |seconds: u32, probe: &str, timeout: &str| {
        format!(
            r#"name: web
command: ["sleep", "{seconds}"]
update: start-first
start_timeout: {timeout}
readiness:
  exec: {{command: {probe}}}
  interval: 100ms
  timeout: 1s
stop: {{timeout: 2s}}
"#
        )
    };
    let gate = |n: u32| {
        format!(
            "[\"test\", \"-f\", \"{}\"]",
            root.join(format!("go-{n}")).display()
        )
    };
    fs::write(root.join("go-1"), "").unwrap();
    fs::write(instance.dir.join("web.yaml"), web(1001, &gate(1), "30s")).unwrap();
    instance.launch();
    let bystander = pid(&instance.ready("bystander"));
    let first = instance.ready("web");

    // The new incarnation starts beside the old one and is not ready (go-2 missing).
    let since = instance.last_seq();
    write_atomic(&instance.dir, "web.yaml", &web(1002, &gate(2), "60s"));
    let spawned = instance.wait_event(since, "start-first to spawn the new incarnation", |e| {
        e["child"] == "web" && e["type"] == "spawned"
    });
    let new_pid = spawned["pid"].as_i64().unwrap();
    assert!(spawned["incarnation"].as_u64().unwrap() > incarnation(&first));
    assert_ne!(new_pid, pid(&first));
    // Both run, and the old one is what the status serves while the new one is not ready.
    assert!(alive(new_pid), "the new incarnation is gone");
    assert!(
        alive(pid(&first)),
        "start-first stopped the old process before the new one was ready"
    );
    let now = instance.child("web");
    assert_eq!(pid(&now), pid(&first), "{now:#}");
    assert!(
        events_of(&instance.events_since(since), "web", "stopped").is_empty(),
        "start-first stopped something before the new incarnation was ready"
    );

    // Ready: the new one takes over and the old one stops.
    fs::write(root.join("go-2"), "").unwrap();
    let second =
        instance.ready_with_new_pid("web", pid(&first), "the ready replacement takes over");
    assert_eq!(pid(&second), new_pid);
    wait_dead(
        pid(&first),
        "the old incarnation once its replacement is ready",
    );

    // A replacement that never becomes ready is given up and the old one keeps serving.
    let since = instance.last_seq();
    write_atomic(&instance.dir, "web.yaml", &web(1003, "[\"false\"]", "1s"));
    let spawned = instance.wait_event(since, "the doomed incarnation to spawn", |e| {
        e["child"] == "web" && e["type"] == "spawned"
    });
    let doomed = spawned["incarnation"].as_u64().unwrap();
    let doomed_pid = spawned["pid"].as_i64().unwrap();
    instance.wait_event(
        since,
        "the never-ready incarnation to be given up and stopped (restarted by policy instead?)",
        |e| e["type"] == "stopped" && e["incarnation"] == doomed,
    );
    let events = instance.events_since(since);
    assert!(
        events.iter().any(|e| e["incarnation"] == doomed
            && e["type"] == "unhealthy"
            && e["reason"].as_str().unwrap_or("").contains("start timeout")),
        "the doomed incarnation did not reach its start timeout: {events:#?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["incarnation"] == doomed && e["type"] == "spawned")
            .count(),
        1,
        "a start-first replacement that never became ready was restarted: {events:#?}"
    );
    wait_dead(doomed_pid, "the never-ready incarnation");
    let serving = instance.child("web");
    assert_eq!(
        pid(&serving),
        pid(&second),
        "the old incarnation must keep serving: {serving:#}"
    );
    assert_eq!(serving["state"], "ready");
    assert!(alive(pid(&second)));
    assert_bystander(&instance, bystander);
}

#[test]
fn dependents_with_restart_true_restart_after_their_dependency_is_replaced() {
    let app = "name: app\ncommand: [\"sleep\", \"1011\"]\ndependencies:\n  - {name: db, restart: true}\nstop: {timeout: 2s}\n";
    let peer =
        "name: peer\ncommand: [\"sleep\", \"1012\"]\ndependencies: [db]\nstop: {timeout: 2s}\n";
    let (instance, bystander) = start(&[
        ("db.yaml", &sleeper("db", 1010)),
        ("app.yaml", app),
        ("peer.yaml", peer),
    ]);
    let db = instance.ready("db");
    let app_pid = pid(&instance.ready("app"));
    let peer_pid = pid(&instance.ready("peer"));
    let since = instance.last_seq();

    write_atomic(&instance.dir, "db.yaml", &sleeper("db", 1013));
    let new_db = instance.ready_with_new_pid("db", pid(&db), "db's command changed");
    let new_app = instance.ready_with_new_pid(
        "app",
        app_pid,
        "app declares `restart: true` on db, which was replaced",
    );
    wait_dead(app_pid, "app's old process");
    let events = instance.events_since(since);
    let db_ready = events
        .iter()
        .find(|e| {
            e["child"] == "db" && e["type"] == "ready" && e["incarnation"] == new_db["incarnation"]
        })
        .unwrap_or_else(|| panic!("no ready event of the new db: {events:#?}"));
    let app_spawn = events
        .iter()
        .find(|e| e["child"] == "app" && e["type"] == "spawned" && e["pid"] == new_app["pid"])
        .unwrap_or_else(|| panic!("no spawn event of the new app: {events:#?}"));
    assert!(
        app_spawn["seq"].as_u64() > db_ready["seq"].as_u64(),
        "app restarted before the new db was ready: {events:#?}"
    );
    assert_eq!(
        pid(&instance.child("peer")),
        peer_pid,
        "peer (no `restart: true`) must keep its process"
    );
    assert_bystander(&instance, bystander);
}
