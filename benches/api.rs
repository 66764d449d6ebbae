//! The control API's two performance targets: `herder status` with 1,000 children under
//! 50 ms, and an event stream that keeps up with 10,000 events per second without loss.
//!
//! `cargo bench --bench api` runs:
//!
//! 1. a real `herder up --quiet` on one manifest with `replicas: 1000` (1,000 `sleep`
//!    processes), then times the `herder status` binary (human and `--format json`)
//!    end to end: process start, socket discovery, request, reconciler answer, JSON,
//!    table;
//! 2. the event stream in process: an [`EventLog`] served by [`herder::api::serve`] on a
//!    Unix socket, a client following `/v1/events/stream` through [`herder::api::Client`]
//!    (SSE parsing and JSON decoding included), and a producer appending 10,000 events per
//!    second for 5 s (five times the ring), then an unpaced burst of 8,000 (twice the
//!    broadcast buffer, so the follower lags and re-reads the ring). Every sequence number
//!    must arrive, in order, with no `resync`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use herder::api::Client;
use herder::events::{Event, EventKind, EventLog};
use herder::reconcile::Control;
use herder::supervise::logs::LogBook;
use tokio::sync::mpsc;

const CHILDREN: usize = 1000;
const STATUS_RUNS: usize = 30;
const RATE: u64 = 10_000;
const PACED_SECS: u64 = 5;
const BURST: u64 = 8_000;
const DEADLINE: Duration = Duration::from_secs(120);

fn main() {
    status_with_many_children();
    event_stream_throughput();
}

fn herder(root: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herder"));
    command
        .env("XDG_RUNTIME_DIR", root.join("run"))
        .env("XDG_STATE_HOME", root.join("state"))
        .env("NO_COLOR", "1")
        .env_remove("HERDER_SOCKET");
    command
}

fn status_json(root: &Path) -> serde_json::Value {
    let output = herder(root)
        .args(["status", "--format", "json"])
        .output()
        .expect("herder status runs");
    serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null)
}

fn status_with_many_children() {
    let root = tempfile::tempdir().expect("temp dir");
    let dir = root.path().join("herder.d");
    std::fs::create_dir(&dir).expect("manifest dir");
    std::fs::write(
        dir.join("sleepers.yaml"),
        format!("name: sleeper\ncommand: [\"sleep\", \"100000\"]\nreplicas: {CHILDREN}\nstop: {{timeout: 2s}}\n"),
    )
    .expect("manifest");
    let mut up: Child = herder(root.path())
        .args(["up", "--quiet"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("herder up starts");

    let started = Instant::now();
    loop {
        let status = status_json(root.path());
        let ready = status["children"]
            .as_array()
            .map_or(0, |c| c.iter().filter(|c| c["state"] == "ready").count());
        if ready == CHILDREN {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "only {ready} of {CHILDREN} children ready"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "status: {CHILDREN} children ready after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    for (label, args) in [
        ("herder status (table)", &["status"][..]),
        (
            "herder status --format json",
            &["status", "--format", "json"],
        ),
    ] {
        let mut times = Vec::with_capacity(STATUS_RUNS);
        let mut bytes = 0;
        for _ in 0..STATUS_RUNS {
            let start = Instant::now();
            let output = herder(root.path())
                .args(args)
                .output()
                .expect("status runs");
            times.push(start.elapsed());
            assert!(output.status.success(), "{label} failed");
            bytes = output.stdout.len();
        }
        times.sort();
        println!(
            "status: {label:<28} {CHILDREN} children, {bytes} bytes: min {:.1} ms, median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
            ms(times[0]),
            ms(times[STATUS_RUNS / 2]),
            ms(times[STATUS_RUNS * 95 / 100]),
            ms(times[STATUS_RUNS - 1]),
        );
    }

    let down = herder(root.path())
        .args(["down"])
        .output()
        .expect("herder down runs");
    assert!(down.status.success(), "herder down failed");
    let status = up.wait().expect("herder up exits");
    assert!(status.success(), "herder up exited with {status}");
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn event_stream_throughput() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let root = tempfile::tempdir().expect("temp dir");
        let socket = root.path().join("bench.sock");
        let log = EventLog::open(None).expect("event log");
        // The streams never ask the reconciler; nobody needs to answer.
        let (requests, _unanswered) = mpsc::channel(1);
        let control = Control {
            requests,
            events: Arc::clone(&log),
            manifest_dir: root.path().to_path_buf(),
        };
        let listener = herder::api::bind(&socket).await.expect("bind");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(herder::api::serve(
            listener,
            control,
            Arc::new(LogBook::new(None)),
            async {
                let _ = stopped.await;
            },
        ));

        let client = Client::new(&socket);
        let since = log.last_seq();
        let mut stream = client
            .stream(&format!("/v1/events/stream?since={since}"), None)
            .await
            .expect("stream opens");
        let total = RATE * PACED_SECS + BURST;

        // Paced at RATE per second (10 every millisecond), then a burst as fast as possible.
        let producer_log = Arc::clone(&log);
        let producer = std::thread::spawn(move || {
            let start = Instant::now();
            let mut sent = 0u64;
            while sent < RATE * PACED_SECS {
                let due = start + Duration::from_micros(sent * 1_000_000 / RATE);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                for _ in 0..10 {
                    producer_log.append(Some("web"), Some(1), EventKind::Spawned { pid: 42 });
                }
                sent += 10;
            }
            let paced = start.elapsed();
            let burst_start = Instant::now();
            for _ in 0..BURST {
                producer_log.append(Some("web"), Some(1), EventKind::Ready);
            }
            (paced, burst_start.elapsed())
        });

        let start = Instant::now();
        let mut expected = since + 1;
        let mut max_lag = 0u64;
        while expected <= since + total {
            let message = tokio::time::timeout(Duration::from_secs(10), stream.next())
                .await
                .expect("an event within 10 s")
                .expect("the stream reads")
                .expect("the stream stays open");
            assert_eq!(message.event, None, "a resync means lost events");
            let event: Event = serde_json::from_str(&message.data).expect("event JSON");
            assert_eq!(event.seq, expected, "events arrive in order without gaps");
            if expected.is_multiple_of(1000) {
                max_lag = max_lag.max(log.last_seq() - expected);
            }
            expected += 1;
        }
        let received = start.elapsed();
        let (paced, burst) = producer.join().expect("producer");
        println!(
            "events: {} paced at {RATE}/s over {:.2} s + {BURST} burst (appended in {:.0} ms): all {total} delivered in order, no resync, in {:.2} s; max lag {max_lag} events; burst delivery ≈ {:.0} events/s",
            RATE * PACED_SECS,
            paced.as_secs_f64(),
            ms(burst),
            received.as_secs_f64(),
            BURST as f64 / (received.as_secs_f64() - paced.as_secs_f64()).max(1e-3),
        );
        let _ = stop.send(());
        let _ = server.await;
    });
}
