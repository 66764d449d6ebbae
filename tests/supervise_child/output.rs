//! What reaches the child and what it writes: environment, secrets, floods, a closed stdout, the memory watchdog.

use super::*;

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
