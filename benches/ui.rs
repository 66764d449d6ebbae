//! The live views with 1,000 children, printed (no harness):
//!
//! * **exit → row change**: a child's process is SIGKILLed; the time until `herder top`'s
//!   model (the same `Connection` and `App` the TUI draws from) shows its row changed, p50
//!   and p99. The screen follows at the next frame, at most 100 ms later (redraws are
//!   coalesced to 10 a second).
//! * **idle `top`**: CPU time of a real `herder top` in tmux over 20 s with nothing happening.
//! * **herder's memory with 10 console clients** each following a child's log through
//!   `--web` (resident set before and after they connect).
//!
//! * **the web console in Chromium** (`benches/ui_console.mjs`, Debian's `/usr/bin/chromium`
//!   driven by playwright-core from `target/ui-node`, as `tests/ui_web.rs` does): page load
//!   and first render (navigation start → the table holds all 1,000 rows), and a child's
//!   exit (SIGKILLed from node) → its row changing in the page, p50 and p99, both ends on
//!   the same wall clock (`Date.now()`), with where the time goes (the event's arrival,
//!   the status fetch, the table render); and the idle page's main-thread time over 10 s.
//!   Skipped, with the reason, without node, playwright-core or Chromium.
//!   `HERDER_CONSOLE_SCRIPT=path` serves that file as the page's `app.js` (to time a change
//!   to `src/web/console/app.js` without rebuilding herder).
//!
//! Run with `cargo build --release && cargo bench --bench ui` (a debug `herder` is used,
//! and named, when there is no release build); name phases to run only those:
//! `cargo bench --bench ui -- console` (`top`, `idle`, `console`, `memory`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use herder::api::Client;
use herder::cli::top::app::{App, Update};
use herder::cli::top::connection::Connection;

const CHILDREN: usize = 1_000;
const SAMPLES: usize = 60;
const CHATTY: usize = 10;
/// Page loads of the console (the first with the token, then reloads).
const LOADS: usize = 5;

fn binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let release = root.join("release/herder");
    if release.is_file() {
        release
    } else {
        root.join("debug/herder")
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0)
}

/// User + system CPU time of `pid`, in clock ticks (0 once it is gone).
fn cpu_ticks(pid: u32) -> u64 {
    i32::try_from(pid)
        .ok()
        .and_then(herder::supervise::proc::stat)
        .map_or(0, |stat| stat.cpu_ticks)
}

struct Up {
    child: Child,
    web: String,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

fn main() {
    let herder = binary();
    println!("herder binary: {}", herder.display());
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("herder.d");
    std::fs::create_dir_all(&dir).expect("manifest directory");
    for i in 0..CHILDREN {
        let command = if i < CHATTY {
            r#"["sh", "-c", "while :; do echo tick; sleep 1; done"]"#
        } else {
            r#"["sleep", "100000"]"#
        };
        std::fs::write(
            dir.join(format!("c-{i:04}.yaml")),
            format!(
                "name: c-{i:04}\ncommand: {command}\nrestart: {{backoff: {{initial: 10ms}}}}\n"
            ),
        )
        .expect("write a manifest");
    }
    let socket = root.path().join("herder.sock");
    let mut child = Command::new(&herder)
        .args(["up", "--quiet", "--web", "127.0.0.1:0", "--socket"])
        .arg(&socket)
        .arg("--state-dir")
        .arg(root.path().join("state"))
        .arg(&dir)
        .env("XDG_RUNTIME_DIR", root.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("herder up");
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut web = String::new();
    let mut line = String::new();
    while std::io::BufRead::read_line(&mut stderr, &mut line).unwrap_or(0) > 0 {
        if let Some(url) = line
            .split(" on ")
            .nth(1)
            .filter(|_| line.contains("web console"))
        {
            web = url.trim().to_owned();
        }
        if line.contains("herder: watching") {
            break;
        }
        line.clear();
    }
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let up = Up { child, web };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let started = Instant::now();
    runtime.block_on(async {
        let client = Client::new(&socket);
        loop {
            let status: serde_json::Value = client.get("/v1/status").await.unwrap_or_default();
            let ready = status["children"]
                .as_array()
                .map_or(0, |c| c.iter().filter(|c| c["ready"] == true).count());
            if ready == CHILDREN {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "children never ready"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    println!(
        "{CHILDREN} children ready {:.1} s after `herder up`",
        started.elapsed().as_secs_f64()
    );

    if wanted("top") {
        exit_to_row(&runtime, &socket);
    }
    if wanted("idle") {
        idle_top(&herder, &socket);
    }
    if wanted("console") {
        console_in_chromium(&up);
    }
    if wanted("memory") {
        console_memory(&up);
    }
}

/// Whether the phase `name` runs: every phase when none is named on the command line
/// (`cargo bench` adds `--bench`, which is not a name).
fn wanted(name: &str) -> bool {
    let named: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    named.is_empty() || named.iter().any(|n| n == name)
}

fn exit_to_row(runtime: &tokio::runtime::Runtime, socket: &Path) {
    let samples = runtime.block_on(async {
        let (_connection, mut updates) = Connection::start(Client::new(socket));
        let mut app = App::new(String::new());
        let mut samples = Vec::new();
        // Settle: the first full status.
        while app.status.children.len() < CHILDREN {
            let Some(update) = updates.recv().await else {
                return samples;
            };
            app.update(update);
        }
        for n in 0..SAMPLES {
            let name = format!("c-{:04}", CHATTY + n * 13);
            let pid_of = |app: &App| {
                app.status
                    .children
                    .iter()
                    .find(|c| c.name == name)
                    .and_then(|c| c.pid)
            };
            // Wait until this child runs (an earlier sample may have restarted a neighbour).
            let deadline = Instant::now() + Duration::from_secs(20);
            let pid = loop {
                if let Some(pid) = pid_of(&app) {
                    break pid;
                }
                if let Ok(Some(update)) =
                    tokio::time::timeout_at(deadline.into(), updates.recv()).await
                {
                    app.update(update);
                } else {
                    panic!("{name} never ran");
                }
            };
            let t0 = Instant::now();
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            loop {
                let update = tokio::time::timeout(Duration::from_secs(20), updates.recv())
                    .await
                    .ok()
                    .flatten()
                    .expect("an update after the kill");
                let status = matches!(update, Update::Status(_));
                app.update(update);
                if status && pid_of(&app) != Some(pid) {
                    samples.push(t0.elapsed());
                    break;
                }
            }
        }
        samples
    });
    let mut sorted = samples.clone();
    sorted.sort();
    println!(
        "top, exit -> row change with {CHILDREN} children: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples)",
        percentile(&sorted, 0.5).as_secs_f64() * 1e3,
        percentile(&sorted, 0.99).as_secs_f64() * 1e3,
        sorted.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        sorted.len()
    );
}

fn idle_top(herder: &Path, socket: &Path) {
    let server = format!("herder-bench-{}", std::process::id());
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .arg("-L")
            .arg(&server)
            .args(args)
            .output()
    };
    let command = format!(
        "exec {} top --socket {}",
        herder.display(),
        socket.display()
    );
    if tmux(&[
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        "160",
        "-y",
        "50",
        &command,
    ])
    .is_err()
    {
        println!("idle top: skipped (no tmux)");
        return;
    }
    std::thread::sleep(Duration::from_secs(3));
    // The pane runs `exec herder top`: its process is top itself.
    let pid: u32 = tmux(&["display", "-p", "-t", "top", "#{pane_pid}"])
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline.split(|b| *b == 0).nth(1) == Some(b"top"))
        })
        .unwrap_or(0);
    if pid == 0 {
        let screen = tmux(&["capture-pane", "-p", "-t", "top"])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        println!("idle top: top is not running; its screen:\n{screen}");
        let _ = tmux(&["kill-server"]);
        return;
    }
    let before = cpu_ticks(pid);
    let window = Duration::from_secs(20);
    std::thread::sleep(window);
    let ticks = cpu_ticks(pid) - before;
    let hz = herder::supervise::os::clock_ticks_per_second() as f64;
    println!(
        "idle top over {} s with {CHILDREN} children: {:.2} s CPU ({:.2}% of one core), RSS {} KiB",
        window.as_secs(),
        ticks as f64 / hz,
        ticks as f64 / hz / window.as_secs_f64() * 100.0,
        rss_kib(pid)
    );
    let _ = tmux(&["kill-server"]);
}

fn console_memory(up: &Up) {
    let pid = up.child.id();
    let addr = up
        .web
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or("")
        .to_owned();
    let path = up.web.split(&addr).nth(1).unwrap_or("/").to_owned();
    let mut login = TcpStream::connect(&addr).expect("console");
    write!(login, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("login");
    let mut answer = String::new();
    let _ = login.read_to_string(&mut answer);
    let cookie = answer
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap_or("")
        .to_owned();
    std::thread::sleep(Duration::from_secs(1));
    let before = rss_kib(pid);
    let clients: Vec<TcpStream> = (0..10)
        .map(|n| {
            let mut stream = TcpStream::connect(&addr).expect("client");
            write!(
                stream,
                "GET /api/v1/children/c-{n:04}/logs/stream?n=100 HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\r\n"
            )
            .expect("follow");
            stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
            let mut first = [0u8; 512];
            let _ = stream.read(&mut first);
            stream
        })
        .collect();
    // Let the followers receive a few seconds of output.
    std::thread::sleep(Duration::from_secs(5));
    let after = rss_kib(pid);
    println!(
        "herder RSS with {CHILDREN} children: {before} KiB; with 10 console clients following logs: {after} KiB (+{} KiB)",
        after.saturating_sub(before)
    );
    drop(clients);
}

/// playwright-core's `node_modules` (where `.ci/run` installs it) and Chromium, or why the
/// browser phase cannot run here (node, playwright-core or Chromium missing).
fn find_browser() -> Result<(PathBuf, PathBuf), String> {
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-node/node_modules");
    if !modules.join("playwright-core").exists() {
        return Err(format!(
            "{}/playwright-core is missing (npm install --prefix target/ui-node playwright-core; .ci/run does)",
            modules.display()
        ));
    }
    let chromium = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if !chromium.is_file() {
        return Err(format!(
            "{} is missing (apt-get install chromium; .ci/run does)",
            chromium.display()
        ));
    }
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => Ok((modules, chromium)),
        _ => Err("node is missing".to_owned()),
    }
}

fn millis(value: &serde_json::Value) -> Option<f64> {
    value.as_f64()
}

/// p50, p99 and max of the samples' `key`, as "p50 x ms, p99 y ms, max z ms".
fn spread(samples: &[serde_json::Value], key: &str) -> String {
    let mut values: Vec<f64> = samples.iter().filter_map(|s| millis(&s[key])).collect();
    if values.is_empty() {
        return "no samples".to_owned();
    }
    values.sort_by(f64::total_cmp);
    let at = |p: f64| values[((values.len() - 1) as f64 * p).round() as usize];
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        at(0.5),
        at(0.99),
        values[values.len() - 1]
    )
}

fn console_in_chromium(up: &Up) {
    let (modules, chromium) = match find_browser() {
        Ok(found) => found,
        Err(why) => {
            println!("web console in Chromium: skipped ({why})");
            return;
        }
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/ui_console.mjs");
    let node = Command::new("node")
        .arg(&script)
        .arg(&up.web)
        .arg(CHILDREN.to_string())
        .arg(SAMPLES.to_string())
        .arg(LOADS.to_string())
        .env("NODE_PATH", &modules)
        .env("CHROMIUM", &chromium)
        .current_dir(modules.parent().unwrap_or(&modules))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");
    // Bounded: every wait in the script is, but Chromium may hang on a broken machine.
    let pid = node.id();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if finished.recv_timeout(Duration::from_secs(600)).is_err() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    });
    let output = node.wait_with_output().expect("node's output");
    drop(done);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let Some(findings) = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str::<serde_json::Value>(line).ok())
    else {
        println!("web console in Chromium: no findings from the browser\n{stderr}{stdout}");
        return;
    };
    if let Some(failure) = findings.get("failure") {
        println!("web console in Chromium: failed: {failure}\n{stderr}");
    }
    let empty = Vec::new();
    let loads = findings["loads"].as_array().unwrap_or(&empty);
    let figure = |load: &serde_json::Value, key: &str| millis(&load[key]).unwrap_or(f64::NAN);
    for (n, load) in loads.iter().enumerate() {
        println!(
            "console {} with {CHILDREN} children: all {} rows in the DOM {:.0} ms after navigation start (next frame {:.0} ms); document {:.0} ms, DOMContentLoaded {:.0} ms, load {:.0} ms, first contentful paint {:.0} ms; first /api/v1/status {:.0} ms, {} KiB",
            if n == 0 {
                "first load (token, redirect)".to_owned()
            } else {
                format!("reload {n}")
            },
            load["rows"],
            figure(load, "rows_ms"),
            figure(load, "frame_ms"),
            figure(load, "response_end_ms"),
            figure(load, "dom_content_loaded_ms"),
            figure(load, "load_ms"),
            figure(load, "first_contentful_paint_ms"),
            figure(load, "first_status_fetch_ms"),
            load["first_status_bytes"].as_u64().unwrap_or(0) / 1024,
        );
    }
    let samples = findings["samples"].as_array().unwrap_or(&empty);
    println!(
        "console, exit -> row change (DOM) with {CHILDREN} children: {} ({} samples)",
        spread(samples, "kill_to_dom_ms"),
        samples.len()
    );
    println!(
        "console, exit -> the frame after the change: {}",
        spread(samples, "kill_to_frame_ms")
    );
    println!(
        "console, where the time goes: kill -> first event in the page {}; kill -> status fetch starts {}; the fetch {}; a full table render {}",
        spread(samples, "kill_to_event_ms"),
        spread(samples, "kill_to_fetch_start_ms"),
        spread(samples, "fetch_ms"),
        spread(samples, "render_ms"),
    );
    let idle = &findings["idle"];
    let ms = |key: &str| millis(&idle[key]).unwrap_or(f64::NAN);
    println!(
        "console page idle over {:.0} s: main thread busy {:.0} ms ({:.1}%): script {:.0} ms, style {:.0} ms, layout {:.0} ms; one cell changed -> style and layout {:.1} ms",
        millis(&idle["seconds"]).unwrap_or(f64::NAN),
        ms("task_ms"),
        ms("task_ms") / 10.0 / millis(&idle["seconds"]).unwrap_or(f64::NAN),
        ms("script_ms"),
        ms("style_ms"),
        ms("layout_ms"),
        millis(&findings["relayout_ms"]).unwrap_or(f64::NAN),
    );
    if findings["page_errors"]
        .as_array()
        .is_some_and(|e| !e.is_empty())
    {
        println!("console page errors: {}", findings["page_errors"]);
    }
}
