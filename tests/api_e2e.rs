//! End to end through the `herder` binary against a running `herder up`: the socket's
//! hygiene, status, logs, events with resume, every command and its audit record,
//! permission denial, reload, plan, metrics and `down`.

mod api_support;

use std::time::Duration;

use api_support::{Instance, LOCKED, WEB, events, mode, wait_dead};
use serde_json::Value;

fn command_events<'a>(all: &'a [Value], verb: &str) -> Vec<&'a Value> {
    all.iter()
        .filter(|e| e["type"] == "command" && e["verb"] == verb)
        .collect()
}

#[test]
fn the_socket_is_private_single_and_stale_sockets_are_replaced() {
    let mut instance = Instance::start(&[("web.yaml", WEB)]);
    assert_eq!(mode(&instance.socket), 0o600, "socket mode");
    assert_eq!(
        mode(&instance.runtime_dir().join("herder")),
        0o700,
        "runtime dir mode"
    );

    // A second instance for the same directory is refused and leaves the first intact.
    let second = instance.herder(&["up", "--quiet", instance.dir.to_str().unwrap()]);
    assert_ne!(second.code, 0, "{second:#?}");
    assert!(
        second.stderr.contains("another instance serves"),
        "{second:#?}"
    );
    instance.herder(&["status"]).expect_code(0);

    // Killed outright, the instance leaves its socket file: the next one replaces it.
    instance.kill();
    assert!(
        instance.socket.exists(),
        "the killed instance's socket file is left behind"
    );
    let gone = instance.herder(&["status"]);
    assert_eq!(gone.code, 4, "{gone:#?}");
    assert!(
        gone.stderr
            .contains("no running herder instance (start one with `herder up DIR`)"),
        "{gone:#?}"
    );
    instance.launch();
    instance.herder(&["status"]).expect_code(0);
    assert_eq!(mode(&instance.socket), 0o600);
}

#[test]
fn up_refuses_an_invalid_set_and_reports_a_valid_one() {
    let broken = Instance::prepare(&[
        ("web.yaml", WEB),
        ("bad.yaml", "name: bad\nrestart: sometimes\n"),
    ]);
    let refused = broken.herder(&["up", "--quiet", broken.dir.to_str().unwrap()]);
    assert_eq!(refused.code, 1, "{refused:#?}");
    assert!(
        refused.stderr.contains("bad.yaml:"),
        "file:line:col: {refused:#?}"
    );
    assert!(refused.stderr.contains("refusing to start"), "{refused:#?}");
    assert!(!refused.stderr.contains("herder: watching"), "{refused:#?}");
    assert!(!broken.socket.exists(), "nothing was started");

    let instance = Instance::start(&[("web.yaml", WEB), ("locked.yaml", LOCKED)]);
    instance.wait_state("web", "ready");
    assert!(
        instance
            .stderr
            .all()
            .contains("2 files, 2 manifests: 0 errors, 0 warnings"),
        "{}",
        instance.stderr.all()
    );
}

#[test]
fn status_is_a_table_or_json_and_finds_the_instance_without_flags() {
    let instance = Instance::start(&[("web.yaml", WEB), ("locked.yaml", LOCKED)]);
    instance.wait_state("web", "ready");
    let table = instance.herder(&["status"]).expect_code(0).stdout;
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    for column in [
        "NAME", "STATE", "PID", "UPTIME", "RESTARTS", "READY", "HEALTH", "LIMITS",
    ] {
        assert!(header.contains(column), "{column} missing: {table}");
    }
    let web = table.lines().find(|l| l.starts_with("web ")).unwrap();
    assert!(web.contains("ready"), "{table}");
    // Columns line up: every row's STATE starts where the header's does.
    let state_at = header.find("STATE").unwrap();
    assert_eq!(&web[state_at..state_at + 5], "ready", "{table}");

    let json = instance
        .herder(&["ps", "--format", "json"])
        .expect_code(0)
        .json();
    let names: Vec<&str> = json["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["locked", "web"]);
    assert!(json["children"][1]["pid"].as_i64().unwrap() > 0);

    // --dir and --socket name the same instance.
    let by_dir = instance.herder(&["status", "--dir", instance.dir.to_str().unwrap()]);
    assert!(by_dir.expect_code(0).stdout.contains("web"));
    let by_socket = instance.herder(&["status", "--socket", instance.socket.to_str().unwrap()]);
    assert!(by_socket.expect_code(0).stdout.contains("web"));

    let detail: Value = instance.herder(&["status", "--format", "json"]).json();
    assert_eq!(detail["errors"], Value::Array(vec![]));
}

#[test]
fn logs_tail_and_follow() {
    let instance = Instance::start(&[("web.yaml", WEB)]);
    instance.wait_state("web", "ready");
    let follower = instance.follow(&["logs", "web", "-f", "-n", "10"]);
    follower
        .stdout
        .wait_for("the first line", |l| l == "web started");

    instance.herder(&["signal", "web", "HUP"]).expect_code(0);
    follower
        .stdout
        .wait_for("the echo of SIGHUP", |l| l == "got HUP");

    // stdout and stderr interleaved as captured (sh reports its sleep's hangup on stderr,
    // through another pipe, so the order of the two is not fixed).
    let tail = instance
        .herder(&["logs", "web", "-n", "5"])
        .expect_code(0)
        .stdout;
    assert!(tail.starts_with("web started\n"), "{tail}");
    assert!(tail.lines().any(|l| l == "got HUP"), "{tail}");
    let json = instance
        .herder(&["logs", "web", "--format", "json", "-n", "5"])
        .expect_code(0);
    let entries: Vec<Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seqs: Vec<u64> = entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=entries.len() as u64).collect::<Vec<_>>());
    let hup = entries.iter().find(|e| e["text"] == "got HUP").unwrap();
    assert_eq!(hup["stream"], "stdout");
    assert_eq!(hup["incarnation"], entries[0]["incarnation"]);

    let unknown = instance.herder(&["logs", "wbe"]);
    assert_eq!(unknown.code, 1, "{unknown:#?}");
    assert!(
        unknown.stderr.contains("did you mean `web`?"),
        "{unknown:#?}"
    );
}

#[test]
fn events_replay_follow_and_resume() {
    let instance = Instance::start(&[("web.yaml", WEB)]);
    instance.wait_state("web", "ready");
    let replay = events(&instance, &[]);
    let seqs: Vec<u64> = replay.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(
        !seqs.is_empty() && seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "{seqs:?}"
    );
    assert!(
        replay
            .iter()
            .any(|e| e["type"] == "spawned" && e["child"] == "web")
    );
    let last = *seqs.last().unwrap();

    // Followers resuming after `last`: the CLI (--since) and the API (Last-Event-ID).
    let follower = instance.follow(&[
        "events",
        "-f",
        "--format",
        "json",
        "--since",
        &last.to_string(),
    ]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = herder::api::Client::new(&instance.socket);
    let mut stream = runtime
        .block_on(client.stream("/v1/events/stream", Some(last)))
        .unwrap();
    instance
        .herder(&["restart", "web", "--reason", "e2e"])
        .expect_code(0);
    let command = follower
        .stdout
        .wait_json("the restart command event", |e| e["type"] == "command");
    assert!(command["seq"].as_u64().unwrap() > last);
    assert_eq!(command["reason"], "e2e");
    let first = follower.stdout.all();
    let first: Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert_eq!(
        first["seq"],
        last + 1,
        "resume delivers exactly what followed"
    );
    let resumed = runtime.block_on(async {
        tokio::time::timeout(api_support::STEP, stream.next())
            .await
            .expect("an event in time")
            .unwrap()
            .expect("the stream stays open")
    });
    assert_eq!(resumed.id.as_deref(), Some((last + 1).to_string().as_str()));
    let event: Value = serde_json::from_str(&resumed.data).unwrap();
    assert_eq!(event["seq"], last + 1);
    follower.stdout.wait_json("web's new process", |e| {
        e["type"] == "spawned" && e["child"] == "web"
    });

    // Human form: one line per event, sequence number first.
    let human = instance
        .herder(&["events", "--since", &last.to_string()])
        .expect_code(0);
    let first_line = human.stdout.lines().next().unwrap();
    assert!(
        first_line.starts_with(&format!("{}  ", last + 1)),
        "{}",
        human.stdout
    );
    assert!(first_line.contains("web  command  "), "{}", human.stdout);
}

#[test]
fn every_command_is_carried_out_and_audited() {
    let instance = Instance::start(&[("web.yaml", WEB)]);
    let before = instance.wait_state("web", "ready")["pid"].as_i64().unwrap();

    let restart = instance
        .herder(&["restart", "web", "--reason", "new build"])
        .expect_code(0);
    assert_eq!(restart.stdout, "web: restart requested\n");
    let deadline = std::time::Instant::now() + api_support::STEP;
    let after = loop {
        let child = instance.child("web");
        if child["state"] == "ready" && child["pid"].as_i64() != Some(before) {
            break child["pid"].as_i64().unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "web was not restarted: {child:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };

    instance.herder(&["pause", "web"]).expect_code(0);
    instance.wait_state("web", "paused");
    // Frozen in its cgroup where herder has one (cgroup v2's `frozen 1`), else stopped by SIGSTOP.
    let cgroup = std::fs::read_to_string(format!("/proc/{after}/cgroup")).unwrap();
    let events_file = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .filter(|path| path.contains("/herder-"))
        .and_then(|path| {
            ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
                .iter()
                .map(|mount| format!("{mount}{path}/cgroup.events"))
                .find(|file| std::path::Path::new(file).is_file())
        });
    match events_file {
        // The kernel freezes asynchronously: `frozen 1` follows the write of `cgroup.freeze` once every task
        // has stopped, so it is awaited (bounded), not expected at once.
        Some(file) => {
            let deadline = std::time::Instant::now() + api_support::STEP;
            loop {
                let events = std::fs::read_to_string(&file).unwrap_or_default();
                if events.contains("frozen 1") {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "a paused child is frozen: {events}"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        None => {
            let stat = std::fs::read_to_string(format!("/proc/{after}/stat")).unwrap();
            let state = stat
                .rsplit(')')
                .next()
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap();
            assert_eq!(state, "T", "a paused child is stopped by SIGSTOP: {stat}");
        }
    }
    instance.herder(&["resume", "web"]).expect_code(0);
    instance.wait_state("web", "ready");

    instance.herder(&["signal", "web", "SIGHUP"]).expect_code(0);
    instance.herder(&["stop", "web"]).expect_code(0);
    instance.wait_state("web", "stopped");
    let not_running = instance.herder(&["signal", "web", "HUP"]);
    assert_eq!(not_running.code, 1, "{not_running:#?}");
    assert!(
        not_running.stderr.contains("has no running process"),
        "{not_running:#?}"
    );
    instance.herder(&["start", "web"]).expect_code(0);
    instance.wait_state("web", "ready");

    let quarantine = instance.herder(&["quarantine", "web", "--reason", "investigating"]);
    quarantine.expect_code(0);
    instance.wait_state("web", "quarantined");
    let held = instance.herder(&["restart", "web"]);
    assert_eq!(held.code, 1, "{held:#?}");
    assert!(held.stderr.contains("herder release web"), "{held:#?}");
    instance.herder(&["release", "web"]).expect_code(0);
    instance.wait_state("web", "ready");

    // The audit trail: every command with the peer's uid and pid and the reason.
    let all = events(&instance, &[]);
    let euid = nix::unistd::geteuid().as_raw();
    for verb in [
        "restart",
        "pause",
        "resume",
        "signal",
        "stop",
        "start",
        "quarantine",
        "release",
    ] {
        let records = command_events(&all, verb);
        assert!(!records.is_empty(), "no audit record for {verb}: {all:#?}");
        assert!(
            records
                .iter()
                .all(|r| r["uid"] == euid && r["child"] == "web"),
            "{records:#?}"
        );
    }
    let restart_record = command_events(&all, "restart")[0];
    assert_eq!(restart_record["pid"], restart.pid);
    assert_eq!(restart_record["reason"], "new build");
    assert_eq!(restart_record["allowed"], true);
    assert!(
        command_events(&all, "quarantine")
            .iter()
            .any(|r| r["reason"] == "investigating")
    );
}

#[test]
fn command_permissions_are_enforced_with_a_clear_refusal() {
    let instance = Instance::start(&[("web.yaml", WEB), ("locked.yaml", LOCKED)]);
    instance.wait_state("locked", "ready");
    for args in [
        &["stop", "locked"][..],
        &["restart", "locked"],
        &["pause", "locked"],
        &["signal", "locked", "HUP"],
    ] {
        let refused = instance.herder(args);
        assert_eq!(refused.code, 1, "{refused:#?}");
        assert!(
            refused.stderr.contains("command_permissions"),
            "{refused:#?}"
        );
    }
    // web permits SIGHUP only.
    let term = instance.herder(&["signal", "web", "TERM"]);
    assert_eq!(term.code, 1, "{term:#?}");
    assert_eq!(
        instance.child("locked")["state"],
        "ready",
        "nothing happened to it"
    );

    let all = events(&instance, &[]);
    let denied = command_events(&all, "stop");
    assert_eq!(denied.len(), 1, "{all:#?}");
    assert_eq!(denied[0]["allowed"], false);
    assert_eq!(denied[0]["child"], "locked");
}

#[test]
fn stop_all_stops_every_permitted_child_and_reports_the_refusals() {
    let instance = Instance::start(&[("web.yaml", WEB), ("locked.yaml", LOCKED)]);
    let web_pid = instance.wait_state("web", "ready")["pid"].as_i64().unwrap();
    instance.wait_state("locked", "ready");
    let since = instance.last_seq();
    let stop = instance.herder(&["stop", "--all", "--reason", "maintenance"]);
    assert_eq!(stop.code, 1, "one child refused: {stop:#?}");
    assert!(stop.stdout.contains("web: stop requested"), "{stop:#?}");
    assert!(
        stop.stderr.contains("locked") && stop.stderr.contains("command_permissions"),
        "{stop:#?}"
    );
    instance.wait_state("web", "stopped");
    wait_dead(web_pid, "web's process after stop --all");
    assert_eq!(
        instance.child("locked")["state"],
        "ready",
        "refused child untouched"
    );
    // One audit record per child, the refusal included, each with the reason.
    let audit: Vec<Value> = instance
        .events_since(since)
        .into_iter()
        .filter(|e| e["type"] == "command")
        .collect();
    let record = |child: &str| {
        audit
            .iter()
            .find(|e| e["child"] == child)
            .unwrap_or_else(|| panic!("no audit record for {child}: {audit:#?}"))
    };
    assert_eq!(audit.len(), 2, "{audit:#?}");
    assert_eq!(record("web")["allowed"], true);
    assert_eq!(record("locked")["allowed"], false);
    assert!(
        audit
            .iter()
            .all(|e| e["verb"] == "stop" && e["reason"] == "maintenance")
    );

    let start = instance.herder(&["start", "--all"]);
    assert_eq!(start.code, 0, "{start:#?}");
    instance.wait_state("web", "ready");
}

#[test]
fn a_command_on_a_list_of_children_answers_for_each() {
    let instance = Instance::start(&[("web.yaml", WEB), ("locked.yaml", LOCKED)]);
    let web_pid = instance.wait_state("web", "ready")["pid"].as_i64().unwrap();
    instance.wait_state("locked", "ready");
    let (code, answer) = instance.api_post(
        "/v1/commands/restart",
        &serde_json::json!({"children": ["locked", "wbe", "web"], "reason": "rollout"}),
    );
    assert_eq!(code, 200, "{answer:#?}");
    assert_eq!(answer["command"], "restart");
    let results = answer["results"].as_array().unwrap();
    let names: Vec<&str> = results
        .iter()
        .map(|r| r["child"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["locked", "wbe", "web"], "in the order given");
    assert_eq!(results[0]["ok"], false);
    assert_eq!(results[0]["error"]["code"], "forbidden");
    assert_eq!(results[1]["error"]["code"], "unknown-child");
    assert_eq!(results[1]["error"]["suggestions"][0], "web");
    assert_eq!(results[2]["ok"], true);
    assert!(results[2].get("error").is_none(), "{answer:#?}");
    instance.ready_with_new_pid("web", web_pid, "restarted by the batch");

    let (code, refused) = instance.api_post("/v1/commands/explode", &serde_json::json!({}));
    assert_eq!(code, 404, "{refused:#?}");
    assert_eq!(refused["error"]["code"], "unknown-command");
    let (code, refused) = instance.api_post(
        "/v1/commands/signal",
        &serde_json::json!({"children": ["web"]}),
    );
    assert_eq!(code, 400, "a signal needs its name: {refused:#?}");
}

#[test]
fn plan_reload_metrics_and_down() {
    let mut instance = Instance::start(&[("web.yaml", WEB)]);
    instance.wait_state("web", "ready");
    let dir = instance.dir.to_str().unwrap().to_owned();

    // The watched directory, unchanged: nothing to do.
    let same = instance.herder(&["plan", &dir]).expect_code(0);
    assert!(same.stdout.contains("1 unchanged"), "{same:#?}");
    // Another directory, against the running instance: web would be replaced, api started.
    let other = instance.root.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("web.yaml"), WEB.replace("web started", "web v2")).unwrap();
    std::fs::write(other.join("api.yaml"), LOCKED.replace("locked", "api")).unwrap();
    let socket = instance.socket.to_str().unwrap().to_owned();
    let against = instance
        .herder(&[
            "plan",
            other.to_str().unwrap(),
            "--socket",
            &socket,
            "--format",
            "json",
        ])
        .expect_code(0)
        .json();
    let ops: Vec<(String, String)> = against["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().into(),
                s["operation"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        ops.contains(&("web".into(), "replace".into())),
        "{against:#}"
    );
    assert!(ops.contains(&("api".into(), "start".into())), "{against:#}");
    // No instance watches `other`: planned against nothing, everything starts.
    let nothing = instance
        .herder(&["plan", other.to_str().unwrap()])
        .expect_code(0);
    assert!(nothing.stdout.contains("2 to start"), "{nothing:#?}");
    assert!(
        nothing.stderr.contains("planning against nothing running"),
        "{nothing:#?}"
    );

    // A broken manifest: reported in status and metrics, the child keeps running.
    std::fs::write(instance.dir.join("bad.yaml"), "name: bad\ncommand: 42\n").unwrap();
    instance.herder(&["reload"]).expect_code(0);
    let deadline = std::time::Instant::now() + api_support::STEP;
    let status = loop {
        let status = instance.herder(&["status", "--format", "json"]).json();
        if status["errors"].as_array().is_some_and(|e| !e.is_empty()) {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the bad manifest was never reported"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let error = &status["errors"][0];
    assert!(
        error["file"].as_str().unwrap().ends_with("bad.yaml"),
        "{status:#}"
    );
    assert_eq!(error["line"], 2);
    let table = instance.herder(&["status"]).expect_code(0).stdout;
    assert!(table.contains("manifest error in force"), "{table}");
    assert!(table.contains("bad.yaml:2:"), "{table}");
    assert_eq!(command_events(&events(&instance, &[]), "reload").len(), 1);

    let metrics = metrics_text(&instance);
    assert!(
        metrics.contains("herder_children{state=\"ready\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("herder_manifest_errors 1"), "{metrics}");
    assert!(
        metrics.contains("# TYPE herder_reloads_total counter"),
        "{metrics}"
    );

    // down waits for the instance to exit; the socket goes with it.
    let down = instance
        .herder(&["down", "--reason", "end of test"])
        .expect_code(0);
    assert!(down.stdout.contains("herder has stopped"), "{down:#?}");
    let status = instance.wait_exit();
    assert!(status.success(), "herder up exited with {status}");
    assert!(!instance.socket.exists(), "the socket is removed on exit");
    let after = instance.herder(&["status"]);
    assert_eq!(after.code, 4, "{after:#?}");
}

fn metrics_text(instance: &Instance) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = herder::api::Client::new(&instance.socket);
    runtime.block_on(async {
        tokio::time::timeout(api_support::STEP, client.get_text("/metrics"))
            .await
            .expect("metrics in time")
            .unwrap()
    })
}

#[test]
fn completions_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let mut command = std::process::Command::new(api_support::binary());
        command.args(["completions", shell]);
        let out = api_support::run_bounded(command).expect_code(0);
        assert!(out.stdout.contains("quarantine"), "{shell}: {}", out.stdout);
    }
}
