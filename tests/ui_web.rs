//! The web console of `herder up --web`, in a real browser (Debian's Chromium driven by
//! playwright-core, installed by `.ci/run` under `target/ui-node`), and its walls tested
//! with plain HTTP requests: no token, a cross-origin POST, a foreign Host, a forged CSRF
//! value, the read-only mode and a non-loopback bind.

mod api_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;

use api_support::{Instance, STEP, events, run_bounded};
use serde_json::Value;

const WEB: &str = r#"name: web
command: ["sh", "-c", "echo web started; echo '<b>not bold</b>'; while :; do sleep 0.2; done"]
command_permissions: {restart: true, stop: true}
stop: {timeout: 2s}
"#;

const DB: &str = r#"name: db
command: ["sh", "-c", "echo db up; while :; do sleep 0.2; done"]
stop: {timeout: 2s}
"#;

/// The console's URL (with its token) from `herder up`'s stderr.
fn console_url(instance: &Instance) -> String {
    instance
        .stderr
        .all()
        .lines()
        .find_map(|line| {
            line.split(" on ")
                .nth(1)
                .filter(|_| line.contains("web console"))
        })
        .map(str::to_owned)
        .expect("herder up prints the console URL")
}

/// One HTTP/1.0 request with `headers` (and a body); the status and the whole answer.
fn request(addr: &str, head: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(STEP)).unwrap();
    write!(
        stream,
        "{head}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

/// Logs in with the token: the session cookie and the CSRF value.
fn login(addr: &str, token_url: &str) -> (String, String) {
    let path = token_url.split(addr).nth(1).unwrap();
    let (status, answer) = request(addr, &format!("GET {path} HTTP/1.0\r\nHost: {addr}"), "");
    assert_eq!(status, 303, "{answer}");
    let cookie = answer
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();
    let (_, session) = request(
        addr,
        &format!("GET /api/session HTTP/1.0\r\nHost: {addr}\r\nCookie: {cookie}"),
        "",
    );
    let body: Value = serde_json::from_str(session.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    (cookie, body["csrf"].as_str().unwrap().to_owned())
}

fn addr_of(url: &str) -> String {
    url.trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn the_console_refuses_what_it_must() {
    let instance = Instance::start_with(&[("web.yaml", WEB)], &["--web", "127.0.0.1:0"]);
    instance.wait_state("web", "ready");
    let url = console_url(&instance);
    let addr = addr_of(&url);
    let token_file = instance.socket.with_extension("web-token");
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert!(
        url.ends_with(token.trim()),
        "the printed URL carries the stored token"
    );
    let host = format!("Host: {addr}");
    let origin = format!("Origin: http://{addr}");

    // No token, a wrong token, no session.
    assert_eq!(
        request(&addr, &format!("GET / HTTP/1.0\r\n{host}"), "").0,
        401
    );
    assert_eq!(
        request(&addr, &format!("GET /?token=nope HTTP/1.0\r\n{host}"), "").0,
        401
    );
    assert_eq!(
        request(&addr, &format!("GET /api/v1/status HTTP/1.0\r\n{host}"), "").0,
        401
    );
    let (cookie, csrf) = login(&addr, &url);
    let session = format!("{host}\r\nCookie: {cookie}");
    let (status, answer) = request(
        &addr,
        &format!("GET /api/v1/status HTTP/1.0\r\n{session}"),
        "",
    );
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer.contains("content-security-policy: default-src 'none'"),
        "{answer}"
    );

    // A foreign Host (DNS rebinding), even with a valid session.
    let (status, answer) = request(
        &addr,
        &format!("GET /api/v1/status HTTP/1.0\r\nHost: evil.example:80\r\nCookie: {cookie}"),
        "",
    );
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("host-not-allowed"));

    // POSTs: cross-origin, no Origin, a forged CSRF value; then the real one.
    let post = |extra: &str| {
        request(
            &addr,
            &format!(
                "POST /api/v1/children/web/restart HTTP/1.0\r\n{session}\r\nContent-Type: application/json{extra}"
            ),
            "{\"reason\": \"test\"}",
        )
    };
    let (status, answer) = post(&format!(
        "\r\nOrigin: http://evil.example\r\nX-Herder-CSRF: {csrf}"
    ));
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("cross-origin"));
    assert_eq!(post(&format!("\r\nX-Herder-CSRF: {csrf}")).0, 403);
    let (status, answer) = post(&format!("\r\n{origin}\r\nX-Herder-CSRF: forged"));
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("bad-csrf"));
    // Only the console's paths pass: no shutdown through it.
    let (status, _) = request(
        &addr,
        &format!(
            "POST /api/v1/shutdown HTTP/1.0\r\n{session}\r\n{origin}\r\nX-Herder-CSRF: {csrf}"
        ),
        "",
    );
    assert_eq!(status, 404);
    let before = instance.child("web")["pid"].clone();
    let (status, answer) = post(&format!("\r\n{origin}\r\nX-Herder-CSRF: {csrf}"));
    assert_eq!(status, 200, "{answer}");
    let audited = events(&instance, &[]);
    let command = audited
        .iter()
        .find(|e| e["type"] == "command" && e["verb"] == "restart")
        .unwrap_or_else(|| panic!("no audit record in {audited:#?}"));
    let reason = command["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("web console from 127.0.0.1:") && reason.ends_with(": test"),
        "{reason}"
    );
    let deadline = std::time::Instant::now() + STEP;
    while instance.child("web")["pid"] == before {
        assert!(
            std::time::Instant::now() < deadline,
            "the pid never changed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(instance);
    assert!(!token_file.exists(), "the token file is removed on exit");

    // Read-only: the same POST is refused; reading works.
    let instance = Instance::start_with(
        &[("web.yaml", WEB)],
        &["--web", "127.0.0.1:0", "--web-read-only"],
    );
    let url = console_url(&instance);
    let addr = addr_of(&url);
    let (cookie, csrf) = login(&addr, &url);
    let (status, answer) = request(
        &addr,
        &format!(
            "POST /api/v1/children/web/stop HTTP/1.0\r\nHost: {addr}\r\nCookie: {cookie}\r\nOrigin: http://{addr}\r\nX-Herder-CSRF: {csrf}"
        ),
        "{}",
    );
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("read-only"));

    // Not on a non-loopback address without the explicit flag.
    let refused = run_bounded({
        let mut up = instance.command(&["up", "--web", "0.0.0.0:0"]);
        up.arg(instance.root.path().join("elsewhere"));
        std::fs::create_dir_all(instance.root.path().join("elsewhere")).unwrap();
        up
    });
    assert_eq!(refused.code, 2, "{refused:#?}");
    assert!(
        refused.stderr.contains("not a loopback address"),
        "{}",
        refused.stderr
    );
}

/// Where playwright-core was installed (by `.ci/run`), if anywhere.
fn playwright() -> Option<PathBuf> {
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-node/node_modules");
    modules.join("playwright-core").exists().then_some(modules)
}

#[test]
fn the_console_in_chromium_lists_follows_shows_errors_and_restarts() {
    let Some(modules) = playwright() else {
        eprintln!(
            "skipped: target/ui-node/node_modules/playwright-core is missing (.ci/run installs it with npm)"
        );
        return;
    };
    if !Path::new("/usr/bin/chromium").exists() {
        eprintln!("skipped: /usr/bin/chromium is missing (apt-get install chromium; .ci/run does)");
        return;
    }
    let instance = Instance::start_with(
        &[("web.yaml", WEB), ("db.yaml", DB)],
        &["--web", "127.0.0.1:0"],
    );
    instance.wait_state("web", "ready");
    instance.wait_state("db", "ready");
    let url = console_url(&instance);
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-web");
    std::fs::create_dir_all(&shots).unwrap();
    let screenshot = shots.join("console.png");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui_web/console.mjs");
    let mut node = Command::new("node");
    node.arg(&script)
        .arg(&url)
        .arg(&instance.dir)
        .arg(&screenshot)
        .env("NODE_PATH", &modules)
        .current_dir(modules.parent().unwrap());
    let run = run_bounded_long(node);
    let findings: Value = run
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no findings from the browser:\n{run}"));
    assert!(
        findings.get("failure").is_none(),
        "{findings:#}\nherder:\n{}",
        instance.stderr.all()
    );
    let mut children: Vec<&str> = findings["children"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    children.sort();
    assert_eq!(children, ["db", "web"]);
    assert!(
        !findings["url_after_login"]
            .as_str()
            .unwrap()
            .contains("token"),
        "{findings:#}"
    );
    assert_eq!(findings["markup_in_log"], 0, "log text is never markup");
    assert!(
        findings["error"].as_str().unwrap().contains("bad.yaml:2"),
        "{findings:#}"
    );
    assert_ne!(findings["pid_before"], findings["pid_after"]);
    assert_eq!(
        findings["pid_after"].as_str().unwrap(),
        instance.child("web")["pid"].to_string()
    );
    assert_eq!(
        findings["page_errors"],
        serde_json::json!([]),
        "{findings:#}"
    );
    // The cross-origin page's POST did nothing: web was never stopped.
    assert!(
        !events(&instance, &[]).iter().any(|e| e["verb"] == "stop"),
        "a cross-origin POST reached the API"
    );
    assert!(screenshot.exists());
    eprintln!("console first render: {findings}");
}

/// Runs the browser script with a longer bound (Chromium starts slowly on a busy machine).
fn run_bounded_long(mut command: Command) -> String {
    let output = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = output.id();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(STEP * 4);
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    });
    let output = output.wait_with_output().unwrap();
    drop(watchdog);
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    )
}
