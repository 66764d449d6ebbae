//! Validating a directory of 5,000 manifests, single-threaded: prints µs per manifest.
//!
//! `cargo bench --bench validate` writes a directory of typical manifests (a service with
//! probes, environment, a secret and dependencies; every tenth a oneshot) and times the
//! whole `load_paths` pipeline (scan, read, YAML, schema, serde, semantic and
//! cross-file checks) and, separately, `parse_file` on bytes already in memory. Freeing the
//! results is timed apart: a caller keeps them (herder's watcher keeps every document).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use herder::manifest::{load_paths, parse_file};

const MANIFESTS: usize = 5_000;
const ROUNDS: usize = 10;

fn manifest(i: usize) -> String {
    let mut text = String::from("# yaml-language-server: $schema=../schemas/herder.schema.json\n");
    if i.is_multiple_of(10) {
        let _ = write!(
            text,
            "name: migrate-{i}\nkind: oneshot\ncommand: [\"bash\", \"bin/migrate.sh\", \"--step\", \"{i}\"]\nenvironment:\n  DB_PORT: \"15433\"\n"
        );
        return text;
    }
    let _ = write!(
        text,
        r#"name: svc-{i}
description: service number {i}
labels: {{team: core, tier: web}}
command: ["./bin/api", "--port", "{port}"]
working_dir: ./api
environment:
  - {{name: PORT, value: "{port}"}}
  - {{name: LOG_LEVEL, value: info}}
  - {{name: API_TOKEN, secret_ref: api-token}}
secrets:
  - {{name: api-token, file: secrets/token}}
dependencies:
  - {{name: migrate-{m}, condition: completed}}
  - {{name: {prev}, condition: started}}
restart:
  policy: on-failure
  backoff: {{initial: 100ms, max: 30s}}
  limit: {{count: 5, window: 60s}}
start_timeout: 30s
readiness:
  http: {{url: "http://127.0.0.1:{port}/healthz", status: 200}}
  interval: 1s
  timeout: 1s
health_check:
  tcp: {{port: {port}}}
  interval: 10s
  failure_threshold: 3
resource_limits: {{memory: 256Mi, cpu: 0.5, open_files: 1024}}
stop: {{signal: SIGTERM, timeout: 10s}}
logs: {{max_size: 10Mi, keep: 3}}
"#,
        port = 10_000 + i,
        m = i / 10 * 10,
        // A chain through the previous service, never a cycle.
        prev = if i % 10 == 1 {
            format!("migrate-{}", (i / 10 * 10 + 10) % MANIFESTS)
        } else {
            format!("svc-{}", i - 1)
        },
    );
    text
}

/// CPU time this thread has used, which other processes on a busy machine do not inflate
/// the way they inflate wall-clock time.
fn thread_cpu_time() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_THREAD).map_or(Duration::ZERO, |usage| {
        let micros = |t: nix::sys::time::TimeVal| {
            Duration::from_secs(t.tv_sec().unsigned_abs())
                + Duration::from_micros(t.tv_usec().unsigned_abs())
        };
        micros(usage.user_time()) + micros(usage.system_time())
    })
}

/// (wall clock, thread CPU time)
type Times = (Duration, Duration);

/// The best times of `rounds` runs, and the best times of freeing what a run returns, which
/// is not part of the run: the caller keeps the result (herder's watcher keeps every
/// document), and freeing it is timed on its own.
fn best_of<T>(rounds: usize, mut run: impl FnMut() -> T) -> (Times, Times) {
    let mut best = (
        (Duration::MAX, Duration::MAX),
        (Duration::MAX, Duration::MAX),
    );
    let keep = |slot: &mut Times, (wall, cpu): (Instant, Duration)| {
        slot.0 = slot.0.min(wall.elapsed());
        slot.1 = slot.1.min(thread_cpu_time().saturating_sub(cpu));
    };
    for _ in 0..rounds {
        let start = (Instant::now(), thread_cpu_time());
        let result = run();
        keep(&mut best.0, start);
        let start = (Instant::now(), thread_cpu_time());
        drop(std::hint::black_box(result));
        keep(&mut best.1, start);
    }
    best
}

fn main() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("secrets"))?;
    std::fs::write(dir.path().join("secrets/token"), "token\n")?;
    let texts: Vec<(PathBuf, String)> = (0..MANIFESTS)
        .map(|i| {
            (
                dir.path().join(format!("m/{:02}/svc-{i}.yaml", i % 50)),
                manifest(i),
            )
        })
        .collect();
    for (path, text) in &texts {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    // Secrets are resolved against each manifest's folder: give every folder the file.
    for folder in 0..50 {
        let secrets = dir.path().join(format!("m/{folder:02}/secrets"));
        std::fs::create_dir_all(&secrets)?;
        std::fs::write(secrets.join("token"), "token\n")?;
    }

    let root = vec![dir.path().to_path_buf()];
    let mut first_problem = None;
    let (full, free) = best_of(ROUNDS, || {
        let loaded = load_paths(&root);
        first_problem = match &loaded {
            Ok(loaded) => loaded.diagnostics.first().map(|d| d.summary()),
            Err(err) => Some(err.to_string()),
        };
        loaded
    });
    if let Some(problem) = first_problem {
        eprintln!("the benchmark set is not valid: {problem}");
        std::process::exit(1);
    }
    let (in_memory, _) = best_of(ROUNDS, || {
        texts
            .iter()
            .map(|(path, text)| parse_file(Path::new(path), text.as_bytes()))
            .collect::<Vec<_>>()
    });
    // The floor: saphyr's scanner and parser alone, producing events and nothing else.
    let (events_only, _) = best_of(ROUNDS, || {
        for (_, text) in &texts {
            for event in saphyr_parser::Parser::new_from_str(text) {
                std::hint::black_box(event.is_ok());
            }
        }
    });
    let per = |d: Duration| d.as_secs_f64() * 1e6 / MANIFESTS as f64;
    let line = |what: &str, (wall, cpu): (Duration, Duration)| {
        println!(
            "  {what:<72} {:>7.1} ms wall {:>6.1} µs/manifest | {:>6.1} µs/manifest CPU",
            wall.as_secs_f64() * 1e3,
            per(wall),
            per(cpu)
        );
    };
    let bytes: usize = texts.iter().map(|(_, t)| t.len()).sum();
    println!(
        "validate: {MANIFESTS} manifests ({} bytes on average), best of {ROUNDS}, single thread",
        bytes / MANIFESTS
    );
    line(
        "load_paths (scan, read, YAML, schema, serde, semantic and set checks)",
        full,
    );
    line(
        "  then freeing its result (not part of the figure above)",
        free,
    );
    line(
        "parse_file (bytes in memory: YAML, schema, serde, document checks)",
        in_memory,
    );
    line(
        "  saphyr-parser's events alone, with its default input (the YAML floor)",
        events_only,
    );
    println!("  target: under 50 µs per typical manifest");
    Ok(())
}
