//! Child actors with real processes: restarts, stop escalation, probes, spawn errors, output capture, limits.
//!
//! Every wait is bounded and names the suspected bug. The test process becomes the subreaper (the spawner does
//! that on first use), so orphaned grandchildren are reparented here and the zombie check below is meaningful.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use herder::manifest::{ChildSpec, Manifest};
use herder::supervise::child::{ChildContext, ChildHandle, ChildState, spawn_child};
use herder::supervise::event::{ChildEvent, ChildEventKind};
use herder::supervise::logs::{LogBook, LogItem};
use herder::supervise::{os, proc};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

struct Harness {
    events: mpsc::UnboundedReceiver<ChildEvent>,
    ctx: ChildContext,
    dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tx, events) = mpsc::unbounded_channel();
        let logs = Arc::new(LogBook::new(Some(dir.path().join("logs"))));
        let mut ctx = ChildContext::new(tx, logs);
        ctx.seed = Some(7);
        Self { events, ctx, dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn spec(&self, manifest: serde_json::Value) -> Arc<ChildSpec> {
        let manifest: Manifest = serde_json::from_value(manifest).expect("manifest");
        Arc::new(ChildSpec {
            name: manifest.name.clone(),
            replica: None,
            manifest: Arc::new(manifest),
            source: self.path().join("m.yaml"),
            base_dir: self.path().to_path_buf(),
            secret_digests: Default::default(),
        })
    }

    fn start(&self, manifest: serde_json::Value) -> ChildHandle {
        spawn_child(self.spec(manifest), 1, &self.ctx)
    }

    /// Waits for the first event matching `pred`, returning it; fails with `what` on timeout.
    async fn until(
        &mut self,
        what: &str,
        pred: impl Fn(&ChildEventKind) -> bool,
    ) -> ChildEventKind {
        let found = timeout(WAIT, async {
            while let Some(ev) = self.events.recv().await {
                if pred(&ev.kind) {
                    return Some(ev.kind);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(kind)) => kind,
            Ok(None) => panic!("event channel closed while waiting for {what}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

/// Pids of every process in process group `pgid`.
fn group_members(pgid: i32) -> Vec<i32> {
    proc::all_stats()
        .into_iter()
        .filter(|(_, s)| s.pgrp == pgid)
        .map(|(pid, _)| pid)
        .collect()
}

/// Zombie children of this process.
fn zombies() -> Vec<i32> {
    let me = os::own_pid();
    proc::all_stats()
        .into_iter()
        .filter(|(_, s)| s.ppid == me && s.state == 'Z')
        .map(|(pid, _)| pid)
        .collect()
}

fn is_spawned(k: &ChildEventKind) -> bool {
    matches!(k, ChildEventKind::Spawned { .. })
}

fn spawned_pid(k: ChildEventKind) -> i32 {
    match k {
        ChildEventKind::Spawned { pid } => pid,
        other => panic!("expected Spawned, got {other:?}"),
    }
}

#[tokio::test]
async fn stop_escalates_to_sigkill_and_leaves_no_process_of_the_group() {
    let mut h = Harness::new();
    let child = h.start(json!({
        "name": "stubborn",
        "command": "trap '' TERM; sleep 1000 & sleep 1000 & echo started; wait",
        "stop": {"signal": "SIGTERM", "timeout": "300ms"},
    }));
    let pid = spawned_pid(h.until("spawn", is_spawned).await);
    let log = h.ctx.logs.get("stubborn").expect("log exists");
    let (_, mut follow) = log.follow(None);
    if log.tail(10).iter().all(|l| &*l.text != "started") {
        let line = timeout(WAIT, follow.recv())
            .await
            .expect("child prints `started`");
        assert!(matches!(line, Some(LogItem::Line(l)) if &*l.text == "started"));
    }
    assert!(
        group_members(pid).len() >= 3,
        "shell and two sleeps in the group"
    );
    timeout(WAIT, child.stop())
        .await
        .expect("stop resolves once the group is gone")
        .expect("stop ok");
    assert_eq!(child.snapshot().state, ChildState::Stopped { killed: true });
    assert!(
        group_members(pid).is_empty(),
        "no process of the group survives: {:?}",
        group_members(pid)
    );
    assert!(!os::group_exists(pid));
}

#[tokio::test]
async fn crash_loop_hits_the_restart_limit_and_fails() {
    let mut h = Harness::new();
    let _child = h.start(json!({
        "name": "crasher",
        "command": ["sh", "-c", "exit 3"],
        "restart": {"policy": "on-failure", "backoff": {"initial": "0s", "max": "10ms", "multiplier": 2.0, "jitter": 0.0},
                    "limit": {"count": 3, "window": "60s"}},
    }));
    let mut restarts = 0;
    let reason = loop {
        match h
            .until("restart or failure", |k| {
                matches!(
                    k,
                    ChildEventKind::Restarting { .. } | ChildEventKind::Failed { .. }
                )
            })
            .await
        {
            ChildEventKind::Restarting { delay, .. } => {
                assert!(
                    delay <= Duration::from_millis(10),
                    "backoff capped at max: {delay:?}"
                );
                restarts += 1;
            }
            ChildEventKind::Failed { reason } => break reason,
            _ => unreachable!(),
        }
    };
    assert_eq!(restarts, 3);
    assert_eq!(reason, "crash loop: 3 restarts in 1m");
}

#[tokio::test]
async fn no_zombies_after_churn_with_orphaned_grandchildren() {
    let mut h = Harness::new();
    let child = h.start(json!({
        "name": "churn",
        // Each run leaves a grandchild behind in another session, which is reparented to us and must be reaped.
        "command": "setsid sleep 0.05 & exit 1",
        "restart": {"policy": "always", "backoff": {"initial": "0s", "max": "1ms", "jitter": 0.0},
                    "limit": {"count": 1000, "window": "1s"}},
    }));
    for _ in 0..30 {
        h.until("a restart", |k| {
            matches!(k, ChildEventKind::Restarting { .. })
        })
        .await;
    }
    timeout(WAIT, child.stop())
        .await
        .expect("stop resolves")
        .expect("stop ok");
    // Grandchildren live 50 ms, then they are reaped. Tests running in parallel create short-lived zombies of
    // their own, so wait (bounded) for a moment with none, re-checking on every reap.
    let clean = timeout(WAIT, async {
        loop {
            if zombies().is_empty() {
                break;
            }
            let mut reaps = herder::supervise::spawn::Spawner::global()
                .expect("spawner")
                .reaper()
                .reaps();
            let _ = timeout(Duration::from_millis(100), reaps.changed()).await;
        }
    })
    .await;
    assert!(clean.is_ok(), "zombies left: {:?}", zombies());
}

#[tokio::test]
async fn liveness_failure_restarts_the_child() {
    let mut h = Harness::new();
    let _child = h.start(json!({
        "name": "sick",
        "command": ["sleep", "1000"],
        "health_check": {"exec": {"command": ["sh", "-c", "exit 1"]}, "interval": "50ms", "timeout": "1s", "failure_threshold": 2},
        "restart": {"policy": "always", "backoff": {"initial": "0s"}},
    }));
    let first = spawned_pid(h.until("spawn", is_spawned).await);
    let reason = match h
        .until("unhealthy", |k| {
            matches!(k, ChildEventKind::Unhealthy { .. })
        })
        .await
    {
        ChildEventKind::Unhealthy { reason } => reason,
        _ => unreachable!(),
    };
    assert!(reason.contains("exited with code 1"), "{reason}");
    h.until("restart", |k| {
        matches!(k, ChildEventKind::Restarting { .. })
    })
    .await;
    let second = spawned_pid(h.until("respawn", is_spawned).await);
    assert_ne!(first, second);
    assert!(
        !os::group_exists(first),
        "the unhealthy process was stopped"
    );
}

#[tokio::test]
async fn readiness_by_tcp_and_http() {
    let mut h = Harness::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                .await;
        }
    });
    let _tcp = h.start(json!({
        "name": "tcp-ready", "command": ["sleep", "1000"],
        "readiness": {"tcp": {"host": "127.0.0.1", "port": port}, "interval": "50ms"},
    }));
    h.until("tcp readiness", |k| matches!(k, ChildEventKind::Ready))
        .await;
    let http = h.start(json!({
        "name": "http-ready", "command": ["sleep", "1000"],
        "readiness": {"http": {"url": format!("http://127.0.0.1:{port}/healthz"), "status": 204}, "interval": "50ms"},
    }));
    h.until("http readiness", |k| matches!(k, ChildEventKind::Ready))
        .await;
    assert!(http.snapshot().ready);
}

#[tokio::test]
async fn readiness_by_exec_and_log_line() {
    let mut h = Harness::new();
    let flag = h.path().join("flag");
    let child = h.start(json!({
        "name": "exec-ready", "command": ["sleep", "1000"],
        "readiness": {"exec": {"command": ["test", "-e", flag.to_str().expect("utf8")]}, "interval": "50ms"},
    }));
    h.until("spawn", is_spawned).await;
    assert_eq!(child.snapshot().state.phase(), "starting");
    std::fs::write(&flag, "").expect("flag");
    h.until("exec readiness", |k| matches!(k, ChildEventKind::Ready))
        .await;

    let _log_child = h.start(json!({
        "name": "log-ready", "command": "echo booting; sleep 0.1; echo 'listening on 8080'; sleep 1000",
        "readiness": {"log_line": "listening on \\d+"},
    }));
    h.until("log_line readiness", |k| matches!(k, ChildEventKind::Ready))
        .await;
    let lines: Vec<String> = child_log_lines(&h, "log-ready");
    assert!(
        lines.contains(&"listening on 8080".to_string()),
        "{lines:?}"
    );
}

fn child_log_lines(h: &Harness, name: &str) -> Vec<String> {
    h.ctx
        .logs
        .tail(name, 100)
        .unwrap_or_default()
        .iter()
        .map(|l| l.text.to_string())
        .collect()
}

#[tokio::test]
async fn readiness_timeout_restarts_by_policy() {
    let mut h = Harness::new();
    let _child = h.start(json!({
        "name": "never-ready", "command": ["sleep", "1000"],
        "readiness": {"exec": {"command": ["false"]}, "interval": "20ms", "timeout": "20ms", "failure_threshold": 1},
        "start_timeout": "100ms",
        "restart": "never",
        "stop": {"timeout": "1s"},
    }));
    let k = h
        .until("failure", |k| matches!(k, ChildEventKind::Failed { .. }))
        .await;
    assert_eq!(
        k,
        ChildEventKind::Failed {
            reason: "not ready before the start timeout".into()
        }
    );
}

#[tokio::test]
async fn oneshot_completes() {
    let mut h = Harness::new();
    let child = h.start(json!({"name": "migrate", "kind": "oneshot", "command": ["true"]}));
    h.until("completion", |k| matches!(k, ChildEventKind::Completed))
        .await;
    assert_eq!(child.snapshot().state, ChildState::Completed);
}

async fn spawn_error(h: &mut Harness, manifest: serde_json::Value) -> String {
    let _child = h.start(manifest);
    match h
        .until("spawn failure", |k| {
            matches!(k, ChildEventKind::SpawnFailed { .. })
        })
        .await
    {
        ChildEventKind::SpawnFailed { error } => error,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn spawn_failures_are_clear() {
    let mut h = Harness::new();
    let e = spawn_error(
        &mut h,
        json!({"name": "a", "command": ["no-such-binary-herder"], "restart": "never"}),
    )
    .await;
    assert_eq!(
        e,
        "command not found: `no-such-binary-herder` (searched PATH)"
    );

    let script = h.path().join("not-exec.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").expect("script");
    let e = spawn_error(
        &mut h,
        json!({"name": "b", "command": [script.to_str().expect("utf8")], "restart": "never"}),
    )
    .await;
    assert!(
        e.starts_with("permission denied:") && e.contains("not-exec.sh"),
        "{e}"
    );

    let e = spawn_error(
        &mut h,
        json!({"name": "c", "command": ["true"], "working_dir": "./missing", "restart": "never"}),
    )
    .await;
    assert!(
        e.starts_with("working directory") && e.contains("missing") && e.contains("No such file"),
        "{e}"
    );

    let secret = h.path().join("token");
    std::fs::write(&secret, "s3cr3t-value\n").expect("secret");
    std::fs::remove_file(&secret).expect("deleted after validation");
    let e = spawn_error(
        &mut h,
        json!({
            "name": "d", "command": ["true"], "restart": "never",
            "environment": [{"name": "TOKEN", "secret_ref": "token"}],
            "secrets": [{"name": "token", "file": "./token"}],
        }),
    )
    .await;
    assert!(
        e.starts_with("secret `token`: cannot read")
            && e.contains("token")
            && !e.contains("s3cr3t"),
        "{e}"
    );
    h.until("failed after spawn failure", |k| {
        matches!(k, ChildEventKind::Failed { .. })
    })
    .await;
}

#[tokio::test]
async fn environment_secrets_and_names_reach_the_child() {
    let mut h = Harness::new();
    std::fs::write(h.path().join("token"), "abc123\n").expect("secret");
    let _child = h.start(json!({
        "name": "envy", "kind": "oneshot", "inherit_environment": false,
        "command": ["env"],
        "environment": [{"name": "TOKEN", "secret_ref": "token"}, {"name": "PLAIN", "value": "p"}],
        "secrets": [{"name": "token", "file": "token"}],
    }));
    h.until("completion", |k| matches!(k, ChildEventKind::Completed))
        .await;
    wait_for_line(&h, "envy", |l| l.starts_with("PLAIN=")).await;
    let mut lines = child_log_lines(&h, "envy");
    lines.sort();
    assert_eq!(
        lines,
        vec!["HERDER_NAME=envy", "PLAIN=p", "TOKEN=[redacted]"],
        "nothing inherited, secret read (and redacted: the child printed exactly its value)"
    );
}

async fn wait_for_line(h: &Harness, name: &str, pred: impl Fn(&str) -> bool) -> String {
    let log = h.ctx.logs.get(name).expect("log exists");
    let (_, mut follow) = log.follow(None);
    if let Some(l) = log.tail(1000).into_iter().find(|l| pred(&l.text)) {
        return l.text.to_string();
    }
    timeout(WAIT, async {
        loop {
            match follow.recv().await {
                Some(LogItem::Line(l)) if pred(&l.text) => return l.text.to_string(),
                Some(_) => continue,
                None => panic!("log closed"),
            }
        }
    })
    .await
    .expect("the expected line arrives")
}

#[tokio::test]
async fn a_flood_is_captured_completely_and_lagging_followers_are_told() {
    let mut h = Harness::new();
    let log = h.ctx.logs.child("flood", Default::default());
    let (_, mut lagging) = log.follow(None);
    let _child = h.start(json!({
        "name": "flood", "kind": "oneshot",
        "command": "seq 1 200000; head -c 40000 /dev/zero | tr '\\0' x; echo",
    }));
    h.until("completion", |k| matches!(k, ChildEventKind::Completed))
        .await;
    wait_for_line(&h, "flood", |l| l.len() == 40000 - 2 * 16 * 1024).await;
    let pieces: Vec<usize> = log.tail(3).iter().map(|l| l.text.len()).collect();
    assert_eq!(
        pieces,
        vec![16384, 16384, 40000 - 2 * 16384],
        "a 40000-byte line is split into 16 KiB pieces"
    );
    assert!(h.ctx.logs.flush(WAIT), "the log writer takes every line");
    let file = std::fs::read_to_string(h.path().join("logs/flood.log")).expect("log file");
    let numbers = file
        .lines()
        .filter(|l| l.ends_with(|c: char| c.is_ascii_digit()))
        .count();
    assert_eq!(numbers, 200000, "the file gets every line");
    assert_eq!(log.next_seq(), 200000 + 3 + 1);
    match lagging.recv().await {
        Some(LogItem::Dropped(n)) => assert!(n > 0),
        other => panic!("a follower that never read must be told it missed lines, got {other:?}"),
    }
}

#[tokio::test]
async fn a_child_that_closes_stdout_keeps_running() {
    let mut h = Harness::new();
    let child = h.start(json!({"name": "quiet", "command": "echo bye; exec >&- 2>&-; sleep 1000"}));
    let pid = spawned_pid(h.until("spawn", is_spawned).await);
    wait_for_line(&h, "quiet", |l| l == "bye").await;
    // Give the pump time to see end-of-file: the exit event must not come.
    let exited = timeout(
        Duration::from_millis(300),
        h.until("exit", |k| matches!(k, ChildEventKind::Exited { .. })),
    )
    .await;
    assert!(exited.is_err(), "closing stdout is not an exit");
    assert!(os::group_exists(pid));
    assert_eq!(child.snapshot().state.phase(), "running");
    timeout(WAIT, child.stop())
        .await
        .expect("stop")
        .expect("ok");
}

#[tokio::test]
async fn memory_watchdog_restarts_by_policy() {
    let mut h = Harness::new();
    let _child = h.start(json!({
        "name": "hog", "restart": "never",
        "command": "x=$(head -c 60000000 /dev/zero | tr '\\0' a); sleep 1000",
        "resource_limits": {"memory": "16Mi"},
    }));
    match h
        .until("failure", |k| matches!(k, ChildEventKind::Failed { .. }))
        .await
    {
        ChildEventKind::Failed { reason } => {
            assert!(reason.starts_with("memory limit exceeded"), "{reason}")
        }
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn pause_resume_signal_and_restart_commands() {
    let mut h = Harness::new();
    let child = h.start(json!({"name": "cmds", "command": "trap 'echo got-usr1' USR1; echo armed; while :; do sleep 0.05; done"}));
    let pid = spawned_pid(h.until("spawn", is_spawned).await);
    // Signals sent before the trap is set would kill the shell.
    wait_for_line(&h, "cmds", |l| l == "armed").await;
    timeout(WAIT, child.pause())
        .await
        .expect("pause")
        .expect("ok");
    assert!(child.snapshot().paused);
    // A shell blocked in vfork() for a stopped child shows `D`, not `T`: accept it, as long as some member is `T`.
    wait_for_group(
        pid,
        |states| states.contains(&'T') && states.iter().all(|s| matches!(s, 'T' | 'D')),
        "the group to stop",
    )
    .await;
    timeout(WAIT, child.resume())
        .await
        .expect("resume")
        .expect("ok");
    assert!(!child.snapshot().paused);
    wait_for_group(
        pid,
        |states| !states.contains(&'T'),
        "the group to continue",
    )
    .await;
    timeout(WAIT, child.signal(nix::sys::signal::Signal::SIGUSR1))
        .await
        .expect("signal")
        .expect("ok");
    wait_for_line(&h, "cmds", |l| l == "got-usr1").await;
    timeout(WAIT, child.restart())
        .await
        .expect("restart")
        .expect("ok");
    let second = spawned_pid(h.until("respawn", is_spawned).await);
    assert_ne!(pid, second);
    assert!(!os::group_exists(pid));
    assert_eq!(child.snapshot().restarts, 1);
}

/// Signal delivery is asynchronous and has no event to wait on: re-read `/proc` every 10 ms, bounded.
async fn wait_for_group(pgid: i32, pred: impl Fn(&[char]) -> bool, what: &str) {
    let states = || -> Vec<char> {
        proc::all_stats()
            .into_iter()
            .filter(|(_, s)| s.pgrp == pgid)
            .map(|(_, s)| s.state)
            .collect()
    };
    let reached = timeout(WAIT, async {
        while !pred(&states()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        reached.is_ok(),
        "timed out waiting for {what}: {:?}",
        states()
    );
}

#[tokio::test]
async fn update_in_place_changes_policy_without_a_new_process() {
    let mut h = Harness::new();
    let child = h.start(json!({"name": "upd", "command": ["sleep", "1000"], "restart": "always"}));
    let pid = spawned_pid(h.until("spawn", is_spawned).await);
    let spec = h.spec(json!({"name": "upd", "command": ["sleep", "1000"], "restart": "never", "logs": {"max_size": "1Mi", "keep": 1}}));
    timeout(WAIT, child.update(spec))
        .await
        .expect("update")
        .expect("ok");
    assert_eq!(child.snapshot().pid, Some(pid), "same process");
    timeout(WAIT, child.signal(nix::sys::signal::Signal::SIGKILL))
        .await
        .expect("signal")
        .expect("ok");
    let k = h
        .until("failure", |k| matches!(k, ChildEventKind::Failed { .. }))
        .await;
    assert_eq!(
        k,
        ChildEventKind::Failed {
            reason: "killed by SIGKILL".into()
        },
        "policy `never` applied"
    );
}

#[tokio::test]
async fn open_files_applies_to_the_running_process() {
    let mut h = Harness::new();
    let child = h.start(json!({"name": "nofile", "command": ["sleep", "1000"]}));
    let pid = spawned_pid(h.until("spawn", is_spawned).await);
    let spec = h.spec(json!({"name": "nofile", "command": ["sleep", "1000"], "resource_limits": {"open_files": 77}}));
    timeout(WAIT, child.update(spec))
        .await
        .expect("update")
        .expect("ok");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("open files line");
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>()[3..5],
        ["77", "77"],
        "prlimit applied live: {line}"
    );
    assert_eq!(child.snapshot().pid, Some(pid), "same process");
}

#[tokio::test]
async fn dropping_the_handle_stops_the_process() {
    let mut h = Harness::new();
    let child = h.start(json!({"name": "orphan", "command": ["sleep", "1000"]}));
    let pid = spawned_pid(h.until("spawn", is_spawned).await);
    drop(child);
    h.until("stopped", |k| matches!(k, ChildEventKind::Stopped { .. }))
        .await;
    assert!(!os::group_exists(pid));
}

#[tokio::test]
async fn state_file_lets_the_next_start_kill_leftovers() {
    let h = Harness::new();
    let path: PathBuf = h.path().join("children.json");
    let spawner = herder::supervise::spawn::Spawner::global().expect("spawner");
    let spawned = spawner
        .spawn(herder::supervise::spawn::SpawnRequest {
            program: herder::supervise::spawn::Program {
                command: herder::supervise::spawn::Command::Argv(vec![
                    "sleep".into(),
                    "1000".into(),
                ]),
                env: vec![],
                cwd: h.path().to_path_buf(),
                user: None,
                group: None,
            },
            nofile: None,
            output: herder::supervise::spawn::Output::Null,
            cgroups: Vec::new(),
            extra_fd: None,
        })
        .await
        .expect("spawn");
    let sf = herder::supervise::statefile::StateFile::open(path.clone()).expect("state file");
    sf.record("left", spawned.pid, spawned.start_time.expect("start time"));
    let flushing = sf.clone();
    timeout(WAIT, tokio::task::spawn_blocking(move || flushing.flush()))
        .await
        .expect("flushed")
        .expect("join");
    assert!(
        std::fs::read_to_string(&path).is_ok_and(|t| t.contains("\"left\"")),
        "state file written"
    );
    drop(sf);
    let leftovers = herder::supervise::statefile::kill_leftovers(&path).expect("cleanup");
    assert_eq!(leftovers.len(), 1);
    let status = timeout(WAIT, spawned.exit)
        .await
        .expect("killed")
        .expect("status");
    assert_eq!(status.signal, Some(libc::SIGKILL));
    assert!(!path.exists());
}
