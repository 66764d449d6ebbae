//! Readiness by every check, its timeout, oneshots, and spawn failures.

use super::*;

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
