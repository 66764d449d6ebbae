//! Reload costs, printed (no harness):
//!
//! * rescan + plan over 5,000 unchanged manifest files (median, µs): what every event that
//!   changes nothing, and every safety rescan, costs;
//! * the scan after adding one manifest to a directory of 1,000 (median CPU time, µs): the
//!   watcher's share of a reload;
//! * watcher latency from `rename()` of a new manifest into a directory of 1,000 to the
//!   generation that contains it (p50/p99 over 200 samples), quiet window included.
//!
//! Run with `cargo bench --bench reload`.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use herder::plan::{Observed, plan};
use herder::watch::{Scanner, WatchConfig, spawn};

fn manifest(i: usize) -> String {
    let mut text = format!(
        "name: svc-{i:04}\ncommand: [\"/bin/sleep\", \"{i}\"]\nrestart: on-failure\nreadiness:\n  tcp: {{port: {}}}\n  interval: 2s\nresource_limits: {{memory: 64Mi}}\nlabels: {{team: t{}}}\n",
        10_000 + i,
        i % 7
    );
    if !i.is_multiple_of(10) {
        text.push_str(&format!("dependencies: [svc-{:04}]\n", i - 1));
    }
    text
}

fn populate(dir: &Path, count: usize) {
    fs::create_dir_all(dir).expect("create the manifest directory");
    for i in 0..count {
        fs::write(dir.join(format!("svc-{i:04}.yaml")), manifest(i)).expect("write a manifest");
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn rescan_and_plan() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("herder.d");
    populate(&dir, 5_000);
    let mut scanner = Scanner::new(&dir, Duration::from_millis(150));
    let cold = Instant::now();
    let first = scanner
        .scan(tokio::time::Instant::now(), &[])
        .generation
        .expect("the first scan publishes");
    let cold = cold.elapsed();
    assert_eq!(
        first.desired.children.len(),
        5_000,
        "{:#?}",
        first.diagnostics.first()
    );
    let observed = Observed::converged(&first.desired);

    let mut scans = Vec::new();
    let mut plans = Vec::new();
    let mut totals = Vec::new();
    for _ in 0..50 {
        let start = Instant::now();
        let scan = scanner.scan(tokio::time::Instant::now(), &[]);
        let scanned = start.elapsed();
        assert!(
            scan.generation.is_none(),
            "an unchanged directory republished"
        );
        let desired = scanner.desired().expect("a desired set");
        let planned_at = Instant::now();
        let plan = plan(desired, &observed);
        let planned = planned_at.elapsed();
        assert!(plan.is_empty());
        scans.push(scanned);
        plans.push(planned);
        totals.push(start.elapsed());
    }
    for samples in [&mut scans, &mut plans, &mut totals] {
        samples.sort();
    }
    println!(
        "rescan+plan, 5000 unchanged files: median {} µs (rescan {} µs, plan {} µs); cold first scan {} ms",
        percentile(&totals, 0.5).as_micros(),
        percentile(&scans, 0.5).as_micros(),
        percentile(&plans, 0.5).as_micros(),
        cold.as_millis()
    );
}

/// CPU time this thread has used, to the nanosecond: unlike wall-clock time, other
/// processes on a busy machine do not inflate it.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `now` is.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut now) } == 0;
    if !ok {
        return Duration::ZERO;
    }
    Duration::new(
        now.tv_sec.unsigned_abs(),
        u32::try_from(now.tv_nsec).unwrap_or_default(),
    )
}

/// The scan that follows the addition of one manifest to a directory of 1,000: what the
/// watcher spends between the quiet window and the new generation.
fn scan_after_adding_one() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("herder.d");
    populate(&dir, 1_000);
    let mut scanner = Scanner::new(&dir, Duration::from_millis(150));
    scanner
        .scan(tokio::time::Instant::now(), &[])
        .generation
        .expect("the first scan publishes");
    let mut cpu = Vec::new();
    let mut wall = Vec::new();
    for i in 0..100 {
        let name = format!("added-{i:03}");
        fs::write(
            dir.join(format!("{name}.yaml")),
            format!("name: {name}\ncommand: [\"/bin/true\"]\n"),
        )
        .expect("write");
        let (started, cpu_started) = (Instant::now(), thread_cpu_time());
        let generation = scanner
            .scan(tokio::time::Instant::now(), &[])
            .generation
            .expect("an addition publishes");
        wall.push(started.elapsed());
        cpu.push(thread_cpu_time().saturating_sub(cpu_started));
        assert!(generation.desired.children.contains_key(&name));
    }
    cpu.sort();
    wall.sort();
    println!(
        "scan after adding one manifest to 1000: median {} µs CPU ({} µs wall), p90 {} µs CPU",
        percentile(&cpu, 0.5).as_micros(),
        percentile(&wall, 0.5).as_micros(),
        percentile(&cpu, 0.9).as_micros(),
    );
}

fn watcher_latency() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("herder.d");
        populate(&dir, 1_000);
        let (_handle, mut generations, _task) = spawn(WatchConfig::new(&dir));
        let first = generations.recv().await.expect("the initial generation");
        assert_eq!(first.desired.children.len(), 1_000);

        let mut samples = Vec::new();
        for i in 0..200 {
            let name = format!("new-{i:03}");
            let tmp = dir.join(format!(".{name}.yaml.tmp"));
            fs::write(&tmp, format!("name: {name}\ncommand: [\"/bin/true\"]\n")).expect("write");
            let start = Instant::now();
            fs::rename(&tmp, dir.join(format!("{name}.yaml"))).expect("rename");
            loop {
                let generation = tokio::time::timeout(Duration::from_secs(10), generations.recv())
                    .await
                    .expect("a generation within 10 s")
                    .expect("the watch task runs");
                if generation.desired.children.contains_key(&name) {
                    break;
                }
            }
            samples.push(start.elapsed());
        }
        samples.sort();
        println!(
            "watcher latency, rename() → generation, 1000 manifests, 200 samples: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            percentile(&samples, 0.5).as_secs_f64() * 1e3,
            percentile(&samples, 0.99).as_secs_f64() * 1e3,
            percentile(&samples, 1.0).as_secs_f64() * 1e3
        );
    });
}

fn main() {
    rescan_and_plan();
    scan_after_adding_one();
    watcher_latency();
}
