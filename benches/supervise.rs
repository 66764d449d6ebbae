//! Supervision figures with real processes: spawn 500 to running, crash→respawn latency, stop-all of 500,
//! idle CPU and PSS with 500 children.
//!
//! Run: `cargo bench --bench supervise` (release profile).

use std::sync::Arc;
use std::time::{Duration, Instant};

use herder::supervise::child::{ChildContext, ChildHandle, spawn_child};
use herder::supervise::event::{ChildEvent, ChildEventKind};
use herder::supervise::logs::LogBook;
use herder::supervise::os;
use tokio::sync::mpsc;

mod support;
use support::{spec, stop_all, wait_for};

const CHILDREN: usize = 500;
const ROUNDS: usize = 5;

/// How long one awaited event may take.
const PATIENCE: Duration = Duration::from_secs(60);

fn cpu_ticks() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| herder::supervise::proc::parse_stat(&s))
        .map_or(0, |s| s.cpu_ticks)
}

/// Nanoseconds on CPU of each live thread of this process (`/proc/self/task/*/schedstat`), by thread name.
fn cpu_nanos() -> std::collections::BTreeMap<String, u64> {
    let mut by_thread = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by_thread;
    };
    for task in tasks.filter_map(Result::ok) {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let nanos = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
        *by_thread.entry(comm.trim().to_string()).or_insert(0) += nanos;
    }
    by_thread
}

fn pss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/smaps_rollup")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn start_all(
    ctx: &ChildContext,
    events: &mut mpsc::UnboundedReceiver<ChildEvent>,
    dir: &std::path::Path,
    round: usize,
) -> (Vec<ChildHandle>, Duration) {
    let specs: Vec<_> = (0..CHILDREN)
        .map(|i| {
            let name = format!("sleeper-{i}");
            spec(
                &name,
                serde_json::json!({"name": name, "command": ["sleep", "1000"]}),
                dir,
            )
        })
        .collect();
    let start = Instant::now();
    let handles: Vec<_> = specs
        .into_iter()
        .map(|s| spawn_child(s, round as u64, ctx))
        .collect();
    wait_for(events, CHILDREN, PATIENCE, |k| {
        matches!(k, ChildEventKind::Ready)
    })
    .await;
    (handles, start.elapsed())
}

#[tokio::main]
async fn main() {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    let pss_baseline = pss_kib();
    let (tx, mut events) = mpsc::unbounded_channel();
    let ctx = ChildContext::new(tx, Arc::new(LogBook::new(Some(dir.path().join("logs")))));
    let idle_secs: u64 = std::env::var("HERDER_BENCH_IDLE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);

    // Warm up the spawner, reaper and page cache.
    let (handles, _) = start_all(&ctx, &mut events, dir.path(), 0).await;
    let pss_first = pss_kib();
    stop_all(handles).await;

    let mut spawn_times = Vec::new();
    let mut stop_times = Vec::new();
    let mut last = None;
    for round in 1..=ROUNDS {
        let (handles, took) = start_all(&ctx, &mut events, dir.path(), round).await;
        spawn_times.push(took);
        if round == ROUNDS {
            last = Some(handles);
        } else {
            stop_times.push(stop_all(handles).await);
        }
    }
    spawn_times.sort();
    println!(
        "spawn {CHILDREN} `sleep` children to all running: median {:?} (min {:?}, max {:?}, {ROUNDS} rounds)",
        spawn_times[ROUNDS / 2],
        spawn_times[0],
        spawn_times[ROUNDS - 1]
    );

    let handles = last.unwrap_or_default();
    let ticks = os::clock_ticks_per_second();
    let pss_before = pss_kib();
    let cpu_before = cpu_ticks();
    // schedstat charges a running thread's time when it is descheduled: let the work above (reading smaps is
    // not free) be charged before the window opens.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let nanos_before = cpu_nanos();
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let nanos_after = cpu_nanos();
    let cpu_after = cpu_ticks();
    println!(
        "idle with {CHILDREN} children over {idle_secs} s: {:.3} ms CPU (schedstat, live threads), {} ms (utime+stime at {} Hz); PSS {} KiB before, {} KiB after",
        nanos_after
            .values()
            .sum::<u64>()
            .saturating_sub(nanos_before.values().sum()) as f64
            / 1e6,
        (cpu_after - cpu_before) * 1000 / ticks,
        ticks,
        pss_before,
        pss_kib()
    );
    let per_thread: Vec<String> = nanos_after
        .iter()
        .map(|(name, after)| {
            let before = nanos_before.get(name).copied().unwrap_or(0);
            format!("{name} {:.3} ms", after.saturating_sub(before) as f64 / 1e6)
        })
        .collect();
    println!("  by thread: {}", per_thread.join(", "));
    println!(
        "  PSS at start-up (no child yet): {pss_baseline} KiB; with the first {CHILDREN} running: {pss_first} KiB"
    );
    stop_times.push(stop_all(handles).await);
    stop_times.sort();
    println!(
        "stop all {CHILDREN} (SIGTERM, group gone): median {:?} (min {:?}, max {:?})",
        stop_times[stop_times.len() / 2],
        stop_times[0],
        stop_times[stop_times.len() - 1]
    );

    // Crash → respawn with zero backoff.
    let crash = spec(
        "crashy",
        serde_json::json!({"name": "crashy", "command": ["sleep", "1000"],
            "restart": {"policy": "always", "backoff": {"initial": "0s", "max": "0s", "jitter": 0.0},
                        "limit": {"count": 100000, "window": "1s"}}}),
        dir.path(),
    );
    let handle = spawn_child(crash, 99, &ctx);
    let mut pid = loop {
        match events.recv().await {
            Some(ChildEvent {
                kind: ChildEventKind::Spawned { pid },
                ..
            }) => break pid,
            Some(_) => {}
            None => panic!("closed"),
        }
    };
    let mut latencies = Vec::new();
    for _ in 0..200 {
        let start = Instant::now();
        if let Err(e) = os::signal_group(pid, nix::sys::signal::Signal::SIGKILL) {
            panic!("kill: {e}");
        }
        pid = loop {
            match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
                Ok(Some(ChildEvent {
                    kind: ChildEventKind::Spawned { pid },
                    ..
                })) => break pid,
                Ok(Some(_)) => {}
                _ => panic!("no respawn"),
            }
        };
        latencies.push(start.elapsed());
    }
    latencies.sort();
    println!(
        "crash (kill -9) → respawned, zero backoff: p50 {:?}, p99 {:?} ({} samples)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.len()
    );
    let _ = handle.stop().await;
}
