//! Exporting a directory of 1,000 manifests to Kubernetes, and importing a Compose file of
//! 500 services: prints milliseconds per run and microseconds per manifest.
//!
//! `cargo bench --bench convert` writes typical manifests (a service with probes,
//! environment, a secret and dependencies on a oneshot and on another service; every tenth
//! a oneshot), then times loading and validating them, the export itself (objects, lint)
//! and rendering the YAML, best of 10. The import side times parsing, interpolating and
//! mapping a Compose file plus rendering and validating the manifests it yields.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use herder::convert::import::{Target, compose, write};
use herder::convert::kubernetes::{self, KEY_ORDER, Options};
use herder::convert::yaml;
use herder::manifest::load_paths;

const MANIFESTS: usize = 1_000;
const SERVICES: usize = 500;
const ROUNDS: usize = 10;

fn manifest(i: usize) -> String {
    if i.is_multiple_of(10) {
        return format!(
            "name: migrate-{i}\nkind: oneshot\ncommand: [\"/app/bin/migrate\", \"--step\", \"{i}\"]\nworking_dir: /app\nenvironment:\n  DB_PORT: \"15433\"\n"
        );
    }
    let port = 10_000 + i;
    let prev = if (i - 1).is_multiple_of(10) {
        format!("migrate-{}", i - 1)
    } else {
        format!("svc-{}", i - 1)
    };
    format!(
        r#"name: svc-{i}
description: service number {i}
labels: {{team: core, tier: web}}
command: ["/app/bin/api", "--port", "{port}"]
working_dir: /app
environment:
  - {{name: PORT, value: "{port}"}}
  - {{name: API_TOKEN, secret_ref: api-token}}
secrets:
  - {{name: api-token, file: secrets/token}}
dependencies:
  - {{name: migrate-{m}, condition: completed}}
  - {{name: {prev}, condition: ready}}
readiness:
  http: {{url: "http://0.0.0.0:{port}/healthz"}}
  interval: 2s
health_check:
  tcp: {{host: 0.0.0.0, port: {port}}}
  interval: 10s
  start_period: 20s
resource_limits: {{memory: 256Mi, cpu: 0.5}}
update: start-first
"#,
        m = i - i % 10,
    )
}

fn compose_file() -> String {
    let mut text = String::from("services:\n");
    for i in 0..SERVICES {
        let _ = write!(
            text,
            "  svc_{i}:\n    command: [\"/app/bin/api\", \"--port\", \"${{PORT_{i}:-{port}}}\"]\n    environment:\n      - LOG_LEVEL=info\n    restart: on-failure\n    healthcheck:\n      test: [\"CMD\", \"curl\", \"-f\", \"http://127.0.0.1:{port}/\"]\n      interval: 5s\n    deploy:\n      resources:\n        limits: {{memory: 256M, cpus: \"0.5\"}}\n",
            port = 10_000 + i
        );
        if i > 0 {
            let _ = write!(
                text,
                "    depends_on:\n      svc_{}:\n        condition: service_healthy\n",
                i - 1
            );
        }
    }
    text
}

fn best(mut run: impl FnMut()) -> Duration {
    (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn report(what: &str, time: Duration, per: usize, unit: &str) {
    println!(
        "{what:<44} {:>8.2} ms  {:>7.1} µs/{unit}",
        time.as_secs_f64() * 1e3,
        time.as_secs_f64() * 1e6 / per as f64
    );
}

fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let manifests = dir.path().join("herder.d");
    std::fs::create_dir_all(manifests.join("secrets")).expect("create the directory");
    std::fs::write(manifests.join("secrets/token"), "t\n").expect("write the secret");
    for i in 0..MANIFESTS {
        std::fs::write(manifests.join(format!("m{i:04}.yaml")), manifest(i))
            .expect("write a manifest");
    }
    let paths = [manifests.clone()];
    let loaded = load_paths(&paths).expect("load");
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics.first());
    let docs: Vec<_> = loaded.docs().collect();
    let options = Options {
        image: Some("registry.example.com/app:1".into()),
        namespace: "default".into(),
        instance: "bench".into(),
        wait_image: kubernetes::DEFAULT_WAIT_IMAGE.into(),
        kubectl_image: kubernetes::DEFAULT_KUBECTL_IMAGE.into(),
    };
    let export = kubernetes::export(&docs, &options).expect("export");
    let objects: Vec<_> = export.objects().cloned().collect();
    let bytes = yaml::documents(&objects, KEY_ORDER).len();
    println!(
        "export: {MANIFESTS} manifests → {} objects, {} KiB of YAML, {} warnings",
        objects.len(),
        bytes / 1024,
        export.warnings.len()
    );
    report(
        "load + validate the directory",
        best(|| drop(load_paths(&paths).expect("load"))),
        MANIFESTS,
        "manifest",
    );
    report(
        "export (objects + lint)",
        best(|| drop(kubernetes::export(&docs, &options).expect("export"))),
        MANIFESTS,
        "manifest",
    );
    report(
        "render YAML",
        best(|| drop(yaml::documents(&objects, KEY_ORDER))),
        MANIFESTS,
        "manifest",
    );
    report(
        "all of `herder export kubernetes` but the write",
        best(|| {
            let loaded = load_paths(&paths).expect("load");
            let docs: Vec<_> = loaded.docs().collect();
            let export = kubernetes::export(&docs, &options).expect("export");
            let objects: Vec<_> = export.objects().cloned().collect();
            drop(yaml::documents(&objects, KEY_ORDER));
        }),
        MANIFESTS,
        "manifest",
    );

    let source_dir = dir.path().join("project");
    std::fs::create_dir_all(&source_dir).expect("create the project");
    let file = source_dir.join("compose.yaml");
    let text = compose_file();
    std::fs::write(&file, &text).expect("write the compose file");
    let target = Target {
        dir: herder::convert::import::absolute(&source_dir.join("herder.d")),
    };
    let options = compose::Options::default();
    let import = compose::import(&file, &text, &options, &target).expect("import");
    println!(
        "import: {SERVICES} compose services → {} manifests, {} notes",
        import.manifests.len(),
        import.mapped.len() + import.unmapped.len()
    );
    report(
        "compose import (parse, interpolate, map)",
        best(|| drop(compose::import(&file, &text, &options, &target).expect("import"))),
        SERVICES,
        "service",
    );
    let out = Path::new(&target.dir);
    report(
        "render + validate the manifests",
        best(|| {
            let files = write::render(&import, out, "herder import compose");
            drop(write::check(&files).expect("valid"));
        }),
        SERVICES,
        "service",
    );
}
