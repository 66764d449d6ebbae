//! `herder up --metrics ADDR` scraped by a real Prometheus server (Debian's `prometheus`),
//! started on a free loopback port with a generated config and a bearer token: a query
//! through Prometheus's HTTP API returns the ready children and a reload latency quantile.
//! The exposition also passes `promtool check metrics`.

mod api_support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use api_support::{Instance, Lines, STEP, WEB};
use serde_json::Value;

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";
const TOKEN: &str = "prom-scrape-token-1234";

const WORKER: &str = r#"name: worker
command: ["sh", "-c", "while :; do sleep 0.2; done"]
stop: {timeout: 2s}
"#;

/// A plain HTTP/1.0 GET on loopback: the status code and the body.
fn get(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(STEP)).unwrap();
    let auth = token
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{auth}\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Percent-encodes a PromQL query for a URL.
fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

struct Prometheus {
    process: Child,
    addr: String,
    _stderr: Lines,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Prometheus {
    fn start(dir: &Path, target: &str) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        std::fs::write(dir.join("token"), TOKEN).unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: herder\n    authorization:\n      \
             credentials_file: {}\n    static_configs:\n      - targets: ['{target}']\n",
            dir.join("token").display()
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let mut process = Command::new(PROMETHEUS)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Lines::spawn(process.stderr.take().unwrap());
        stderr.wait_for("prometheus to be ready", |line| {
            line.contains("Server is ready to receive web requests")
        });
        Self {
            process,
            addr,
            _stderr: stderr,
        }
    }

    /// The first result of an instant query, once `want` accepts it (bounded).
    fn query_until(&self, query: &str, want: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + STEP;
        let path = format!("/api/v1/query?query={}", encode(query));
        loop {
            let (status, body) = get(&self.addr, &path, None);
            let value = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| {
                    v["data"]["result"][0]["value"][1]
                        .as_str()
                        .map(str::to_owned)
                })
                .and_then(|v| v.parse::<f64>().ok());
            if let Some(value) = value.filter(|v| want(*v)) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus never answered {query} as wanted: {status} {body}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn a_real_prometheus_scrapes_ready_children_and_reload_latency() {
    if !Path::new(PROMETHEUS).exists() || !Path::new(PROMTOOL).exists() {
        eprintln!(
            "skipped: {PROMETHEUS} or {PROMTOOL} is missing (apt-get install prometheus; .ci/run does)"
        );
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let token_file = scratch.path().join("herder-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let instance = Instance::start_with(
        &[("web.yaml", WEB), ("worker.yaml", WORKER)],
        &[
            "--metrics",
            "127.0.0.1:0",
            "--metrics-token-file",
            token_file.to_str().unwrap(),
        ],
    );
    let line = instance
        .stderr
        .all()
        .lines()
        .find(|line| line.contains("metrics on http://"))
        .map(str::to_owned)
        .expect("herder up prints its metrics address");
    let target = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap()
        .to_owned();
    instance.wait_state("web", "ready");
    instance.wait_state("worker", "ready");

    // Read-only and guarded: no token, a wrong token, another path, another method.
    assert_eq!(get(&target, "/metrics", None).0, 401);
    assert_eq!(get(&target, "/metrics", Some("wrong")).0, 401);
    assert_eq!(get(&target, "/v1/status", Some(TOKEN)).0, 404);
    let mut post = TcpStream::connect(&target).unwrap();
    write!(
        post,
        "POST /metrics HTTP/1.0\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    post.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.0 405") || answer.starts_with("HTTP/1.1 405"),
        "{answer}"
    );

    // Two edits: two reloads with a latency each.
    for n in 1..=2 {
        let edited = WORKER.replace("sleep 0.2", &format!("sleep 0.{}", n + 2));
        std::fs::write(instance.dir.join("worker.yaml"), edited).unwrap();
        instance
            .stderr
            .wait_for("the edit to be applied", |l| l.contains("replace worker"));
        // The next edit must meet a running worker, or its plan is a start, not a replace.
        instance.stderr.wait_for("the new worker to be ready", |l| {
            l.contains("worker: ready")
        });
    }
    let (status, text) = get(&target, "/metrics", Some(TOKEN));
    assert_eq!(status, 200, "{text}");
    let mut promtool = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success() && checked.stdout.is_empty() && checked.stderr.is_empty(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    let prometheus = Prometheus::start(scratch.path(), &target);
    let ready = prometheus.query_until("sum(herder_child_ready{job=\"herder\"})", |v| v == 2.0);
    assert_eq!(ready, 2.0);
    let count = prometheus.query_until("herder_reload_duration_seconds_count", |v| v >= 2.0);
    assert!(count >= 2.0);
    let p90 = prometheus.query_until(
        "histogram_quantile(0.9, herder_reload_duration_seconds_bucket)",
        f64::is_finite,
    );
    assert!(p90 > 0.0 && p90 <= 5.0, "p90 reload latency {p90}");
    let memory = prometheus.query_until("herder_child_memory_bytes{child=\"web\"}", |v| v > 0.0);
    assert!(memory > 0.0);
}
