//! Resource-limit figures with real processes and this machine's cgroups: cold start of 500 children with
//! `memory`, `cpu` and `processes` limits against the same 500 without limits (and without cgroups at all),
//! in the same run, rounds interleaved; then reading the usage of 1,000 children, as one `herder status` does.
//!
//! Run: `cargo bench --bench cgroup` (release profile, as root on a host with usable cgroups).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herder::manifest::ChildSpec;
use herder::supervise::cgroup::{self, Preference};
use herder::supervise::child::{ChildContext, ChildHandle, spawn_child};
use herder::supervise::event::{ChildEvent, ChildEventKind};
use herder::supervise::logs::LogBook;
use tokio::sync::mpsc;

mod support;

const CHILDREN: usize = 500;
const USAGE_CHILDREN: usize = 1_000;
const ROUNDS: usize = 5;

fn spec(name: &str, limits: bool, dir: &Path) -> Arc<ChildSpec> {
    let mut manifest = serde_json::json!({"name": name, "command": ["sleep", "1000"]});
    if limits {
        manifest["resource_limits"] =
            serde_json::json!({"memory": "64Mi", "cpu": 0.5, "processes": 16});
    }
    support::spec(name, manifest, dir)
}

/// How long one awaited event may take.
const PATIENCE: Duration = Duration::from_secs(120);

/// Starts `count` children and returns their handles once all are running, with the time it took.
async fn start_all(
    ctx: &ChildContext,
    events: &mut mpsc::UnboundedReceiver<ChildEvent>,
    dir: &Path,
    count: usize,
    limits: bool,
    incarnation: u64,
) -> (Vec<ChildHandle>, Duration) {
    let specs: Vec<_> = (0..count)
        .map(|i| spec(&format!("sleeper-{i}"), limits, dir))
        .collect();
    let start = Instant::now();
    let handles: Vec<_> = specs
        .into_iter()
        .map(|s| spawn_child(s, incarnation, ctx))
        .collect();
    support::wait_for(events, count, PATIENCE, |k| {
        matches!(k, ChildEventKind::Ready)
    })
    .await;
    (handles, start.elapsed())
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[tokio::main]
async fn main() {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    let setup = cgroup::setup(
        &format!("bench-{}", std::process::id()),
        Preference::from_env(),
    );
    println!(
        "cgroups: {:?} {:?}: {}",
        setup.detection.layout, setup.detection.controllers, setup.detection.detail
    );
    let (tx, mut events) = mpsc::unbounded_channel();
    let logs = Arc::new(LogBook::new(Some(dir.path().join("logs"))));
    let plain = ChildContext::new(tx.clone(), Arc::clone(&logs));
    let with_cgroups = ChildContext::new(tx, logs).with_cgroups(&setup);

    // Warm up the spawner, reaper, cgroup watch thread and page cache.
    let (handles, _) = start_all(&with_cgroups, &mut events, dir.path(), CHILDREN, true, 0).await;
    support::stop_all(handles).await;

    let mut limited = Vec::new();
    let mut unlimited = Vec::new();
    let mut no_cgroup = Vec::new();
    let mut incarnation = 1;
    for _ in 0..ROUNDS {
        for (ctx, limits, times) in [
            (&with_cgroups, true, &mut limited),
            (&with_cgroups, false, &mut unlimited),
            (&plain, false, &mut no_cgroup),
        ] {
            let (handles, took) =
                start_all(ctx, &mut events, dir.path(), CHILDREN, limits, incarnation).await;
            incarnation += 1;
            times.push(took);
            support::stop_all(handles).await;
        }
    }
    let (limited, unlimited, no_cgroup) = (median(limited), median(unlimited), median(no_cgroup));
    println!(
        "cold start of {CHILDREN} children to all running, median of {ROUNDS} interleaved rounds: \
         with memory+cpu+processes limits {limited:?}, without limits {unlimited:?} \
         (ratio {:.2}), without cgroups {no_cgroup:?}",
        limited.as_secs_f64() / unlimited.as_secs_f64()
    );

    let (handles, _) = start_all(
        &with_cgroups,
        &mut events,
        dir.path(),
        USAGE_CHILDREN,
        true,
        incarnation,
    )
    .await;
    let mut reads = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let mut memory = 0u64;
        for h in &handles {
            memory += h.usage().memory_bytes.unwrap_or(0);
        }
        reads.push(start.elapsed());
        assert!(memory > 0, "usage was read");
    }
    println!(
        "reading usage of {USAGE_CHILDREN} children (one status): median {:?} of {ROUNDS}",
        median(reads)
    );
    support::stop_all(handles).await;
    // Let the actors remove their cgroups, then remove the bench's own subtrees.
    tokio::time::sleep(Duration::from_secs(1)).await;
    if let Some(tree) = &setup.tree {
        let bases = tree
            .unified
            .iter()
            .map(|u| u.base.clone())
            .chain(tree.v1.values().cloned());
        for base in bases {
            // Empty by now; a failure leaves a directory the next bench run does not reuse.
            let _ = std::fs::remove_dir(base);
        }
    }
}
