//! Property: any valid directory exports to objects that pass the lint (the API server's
//! rules beyond the JSON Schemas), read back from their YAML as the same objects, and come
//! out the same twice.

use std::path::PathBuf;

use herder::convert::kubernetes::{self, KEY_ORDER, Options, lint::lint};
use herder::convert::yaml;
use herder::manifest::yaml_json::parse_documents;
use herder::manifest::{ManifestDoc, check_set, parse_file};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{Value, json};

fn probe() -> impl Strategy<Value = Value> {
    let check = prop_oneof![
        (prop::sample::select(vec!["127.0.0.1", "0.0.0.0", "db.internal"]), 1u16..65535, "[a-z/]{0,8}")
            .prop_map(|(host, port, path)| json!({"http": {"url": format!("http://{host}:{port}/{path}")}})),
        (prop::sample::select(vec!["127.0.0.1", "0.0.0.0", "cache"]), 1u16..65535)
            .prop_map(|(host, port)| json!({"tcp": {"host": host, "port": port}})),
        "[a-z]{1,6}".prop_map(|c| json!({"exec": {"command": [c]}})),
    ];
    (
        check,
        1u64..5000,
        1u64..5000,
        0u64..30_000,
        1u32..5,
        1u32..3,
    )
        .prop_map(
            |(mut check, interval, timeout, start, failures, successes)| {
                check["interval"] = json!(format!("{interval}ms"));
                check["timeout"] = json!(format!("{timeout}ms"));
                check["start_period"] = json!(format!("{start}ms"));
                check["failure_threshold"] = json!(failures);
                check["success_threshold"] = json!(successes);
                check
            },
        )
}

prop_compose! {
    fn child(index: usize)(
        oneshot in any::<bool>(),
        restart in prop::sample::select(vec!["always", "on-failure", "never"]),
        replicas in 1u32..4,
        readiness in proptest::option::of(probe()),
        health in proptest::option::of(probe()),
        labels in btree_map("[a-zA-Z./_ -]{1,10}", "[a-zA-Z0-9._ -]{0,10}", 0..3),
        user in proptest::option::of(prop::sample::select(vec!["1000", "www-data", "0"])),
        deps in vec((0usize..6, prop::sample::select(vec!["started", "ready", "completed"]), any::<bool>()), 0..3),
        memory in proptest::option::of(1u64..4096),
        cpu in proptest::option::of(1u32..4000),
        enabled in any::<bool>(),
        start_first in any::<bool>(),
        scheduled in any::<bool>(),
        ports in vec(1u16..65535, 0..2),
    ) -> Value {
        let name = format!("c{index}");
        let mut m = json!({
            "name": name,
            "kind": if oneshot { "oneshot" } else { "service" },
            "command": ["/bin/app", "--i", index.to_string()],
            "restart": restart,
            "replicas": replicas,
            "labels": labels,
            "enabled": enabled,
            "update": if start_first { "start-first" } else { "stop-first" },
            "environment": [{"name": "A", "value": "1"}, {"name": "T", "secret_ref": "t"}],
            "secrets": [{"name": "t", "env": "HOME"}],
        });
        if let Some(p) = readiness { m["readiness"] = p; }
        if let Some(mut p) = health {
            p["success_threshold"] = json!(1);
            m["health_check"] = p;
        }
        if let Some(u) = user { m["user"] = json!(u); }
        if let Some(mem) = memory { m["resource_limits"]["memory"] = json!(format!("{mem}Mi")); }
        if let Some(c) = cpu { m["resource_limits"]["cpu"] = json!(f64::from(c) / 1000.0); }
        if oneshot && scheduled { m["schedule"] = json!({"every": "5m"}); }
        if !ports.is_empty() { m["ports"] = json!(ports); }
        // Dependencies only on earlier children: no cycles.
        let deps: Vec<Value> = deps.into_iter().filter(|(d, _, _)| *d < index)
            .map(|(d, condition, restart)| json!({"name": format!("c{d}"), "condition": condition, "restart": restart}))
            .collect();
        m["dependencies"] = json!(deps);
        m
    }
}

fn directory() -> impl Strategy<Value = Vec<Value>> {
    (1usize..6).prop_flat_map(|n| (0..n).map(child).collect::<Vec<_>>())
}

/// The documents of `manifests` that herder accepts on their own and as a set, or `None`.
fn accepted(manifests: &[Value]) -> Option<Vec<ManifestDoc>> {
    let mut docs = Vec::new();
    for (i, manifest) in manifests.iter().enumerate() {
        let text = serde_json::to_string(manifest).ok()?;
        let parsed = parse_file(
            &PathBuf::from(format!("/nonexistent/herder.d/c{i}.yaml")),
            text.as_bytes(),
        );
        if !parsed.is_ok() {
            return None;
        }
        docs.extend(parsed.docs);
    }
    check_set(&docs)
        .iter()
        .all(|d| !d.is_error())
        .then_some(docs)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]
    #[test]
    fn exports_pass_the_lint_and_read_back(manifests in directory()) {
        let docs = accepted(&manifests);
        prop_assume!(docs.is_some());
        let docs = docs.unwrap_or_default();
        let refs: Vec<&ManifestDoc> = docs.iter().collect();
        let options = Options {
            image: Some("example.com/app:1".into()),
            namespace: "default".into(),
            instance: "props".into(),
            wait_image: kubernetes::DEFAULT_WAIT_IMAGE.into(),
            kubectl_image: kubernetes::DEFAULT_KUBECTL_IMAGE.into(),
        };
        let export = kubernetes::export(&refs, &options).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(lint(export.objects()), Vec::<String>::new());
        let objects: Vec<Value> = export.objects().cloned().collect();
        let text = yaml::documents(&objects, KEY_ORDER);
        let back: Vec<Value> = parse_documents(&text)
            .map_err(|e| TestCaseError::fail(e.to_string()))?
            .into_iter()
            .map(|doc| doc.result.map(|(v, _)| v).unwrap_or_default())
            .collect();
        prop_assert_eq!(&back, &objects);
        let again = kubernetes::export(&refs, &options).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(again, export);
    }
}
