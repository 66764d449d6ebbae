//! Bad input against a running `herder up`: unknown children and endpoints, malformed and
//! oversized bodies, a peer with another uid, and clients that vanish mid-stream.
//!
//! Requests are written by hand over the Unix socket (with read timeouts), so what the
//! server does with bytes no well-behaved client sends is what is tested.

mod api_support;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use api_support::{Instance, STEP, WEB, run_bounded};
use serde_json::Value;

/// Sends `request` (`Connection: close` is added) and returns the status and body.
fn raw(socket: &Path, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream.set_read_timeout(Some(STEP)).unwrap();
    stream.set_write_timeout(Some(STEP)).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: herder\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) and stop reading before the body is all sent.
    let _ = stream.write_all(body);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    let body = answer
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (status, body)
}

fn error_of(body: &str) -> Value {
    let value: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    value["error"].clone()
}

#[test]
fn errors_are_json_with_the_right_status() {
    let instance = Instance::start(&[("web.yaml", WEB)]);
    instance.wait_state("web", "ready");
    let socket = &instance.socket;

    let (status, body) = raw(socket, "GET", "/v1/children/wbe", b"");
    assert_eq!(status, 404);
    let error = error_of(&body);
    assert_eq!(error["code"], "unknown-child");
    assert_eq!(error["message"], "no child named `wbe`");
    assert_eq!(error["suggestions"], serde_json::json!(["web"]));

    let (status, body) = raw(socket, "POST", "/v1/children/wbe/restart", b"");
    assert_eq!(
        (status, error_of(&body)["hint"].as_str()),
        (404, Some("did you mean `web`?"))
    );

    let (status, body) = raw(socket, "POST", "/v1/children/web/restart", b"{nope");
    assert_eq!(status, 400, "{body}");
    assert!(
        error_of(&body)["message"]
            .as_str()
            .unwrap()
            .starts_with("malformed JSON body")
    );

    let (status, body) = raw(
        socket,
        "POST",
        "/v1/children/web/restart",
        br#"{"reasons": "x"}"#,
    );
    assert_eq!(status, 400, "unknown fields are refused: {body}");

    let (status, body) = raw(
        socket,
        "POST",
        "/v1/children/web/signal",
        br#"{"signal": "SIGNOPE"}"#,
    );
    assert_eq!(status, 400, "{body}");

    let (status, body) = raw(socket, "POST", "/v1/children/web/explode", b"");
    assert_eq!(
        (status, error_of(&body)["code"].as_str()),
        (404, Some("unknown-command"))
    );

    let big = vec![b' '; 1 << 20];
    let (status, body) = raw(socket, "POST", "/v1/children/web/restart", &big);
    assert_eq!(status, 413, "{body}");
    assert_eq!(error_of(&body)["code"], "too-large");

    let (status, body) = raw(socket, "GET", "/v2/nothing", b"");
    assert_eq!(
        (status, error_of(&body)["code"].as_str()),
        (404, Some("not-found"))
    );
    let (status, body) = raw(socket, "DELETE", "/v1/status", b"");
    assert_eq!(
        (status, error_of(&body)["code"].as_str()),
        (405, Some("method-not-allowed"))
    );
    let (status, body) = raw(socket, "GET", "/v1/events?since=minus-one", b"");
    assert_eq!(status, 400, "{body}");

    // None of it disturbed anything.
    assert_eq!(instance.child("web")["restarts"], 0);
}

#[test]
fn a_peer_with_another_uid_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: switching to another uid needs root");
        return;
    }
    let instance = Instance::start(&[("web.yaml", WEB)]);
    let nobody = 65534;
    let open = |path: &Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    open(instance.root.path(), 0o755);
    open(&instance.runtime_dir(), 0o755);
    let socket_dir = instance.socket.parent().unwrap();
    let as_nobody = || {
        // The binary under test must be executable by the other user (target/ usually is).
        let mut command = Command::new(api_support::binary());
        command
            .args(["status", "--socket", instance.socket.to_str().unwrap()])
            .uid(nobody)
            .gid(nobody)
            .env("NO_COLOR", "1");
        run_bounded(command)
    };

    // As herder made them, the socket's directory keeps the other user out.
    let denied = as_nobody();
    assert_eq!(denied.code, 4, "{denied:#?}");
    assert!(denied.stderr.contains("ermission denied"), "{denied:#?}");

    // Even a socket someone opened up to everybody refuses the other uid.
    open(socket_dir, 0o755);
    open(&instance.socket, 0o666);
    let refused = as_nobody();
    assert_eq!(refused.code, 1, "{refused:#?}");
    assert!(
        refused
            .stderr
            .contains(&format!("uid {nobody} may not use this herder instance")),
        "{refused:#?}"
    );
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn clients_that_vanish_mid_stream_cost_nothing() {
    let instance = Instance::start(&[("web.yaml", WEB)]);
    instance.wait_state("web", "ready");
    // The state file stays open once written: count it in the baseline.
    let deadline = Instant::now() + STEP;
    while !instance.state.join("children.json").exists() {
        assert!(Instant::now() < deadline, "no state file after {STEP:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let baseline = open_fds(instance.pid());
    let mut streams = Vec::new();
    for path in [
        "/v1/events/stream?since=0",
        "/v1/children/web/logs/stream?n=5",
    ] {
        for _ in 0..20 {
            let mut stream = UnixStream::connect(&instance.socket).unwrap();
            stream.set_read_timeout(Some(STEP)).unwrap();
            let request = format!("GET {path} HTTP/1.1\r\nHost: herder\r\n\r\n");
            stream.write_all(request.as_bytes()).unwrap();
            // Read until the first event arrives, so the stream is really open.
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !String::from_utf8_lossy(&seen).contains("\nid: ") {
                let n = stream.read(&mut buf).unwrap();
                assert!(
                    n > 0,
                    "stream closed early: {}",
                    String::from_utf8_lossy(&seen)
                );
                seen.extend_from_slice(&buf[..n]);
            }
            streams.push(stream);
        }
    }
    // 40 connections held (a few descriptors of the baseline may have been transient).
    let held = open_fds(instance.pid());
    assert!(
        held >= baseline + 30,
        "{held} descriptors with 40 streams, {baseline} before"
    );
    drop(streams);

    // The next write to each dead stream fails, and the server lets go of it.
    let deadline = Instant::now() + STEP;
    loop {
        instance.herder(&["signal", "web", "HUP"]).expect_code(0);
        let now = open_fds(instance.pid());
        if now <= baseline {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{now} descriptors open, {baseline} before the streams"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    instance.herder(&["status"]).expect_code(0);
}
