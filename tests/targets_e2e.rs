//! `kind: target` end to end through the binary: a target is ready once what it groups
//! is, gates its dependents until then (through a nested target too), shows in status and
//! plan, and refuses the verbs that act on a process.

mod api_support;

use api_support::Instance;

#[test]
fn a_target_gates_its_dependents_until_what_it_groups_is_ready() {
    let root = tempfile::tempdir().unwrap();
    let gate = root.path().join("gate");
    let db = format!(
        "name: db\ncommand: [\"sleep\", \"60\"]\nreadiness: {{exec: {{command: [\"test\", \"-e\", \"{}\"]}}, interval: 100ms}}\n",
        gate.display()
    );
    let instance = Instance::start_explicit(&[
        ("db.yaml", &db),
        ("cache.yaml", "name: cache\ncommand: [\"sleep\", \"60\"]\n"),
        (
            "storage.yaml",
            "name: storage\nkind: target\ndependencies: [db]\n",
        ),
        (
            "backend.yaml",
            "name: backend\nkind: target\nlabels: {tier: back}\ndependencies: [storage, {name: cache, condition: started}]\n",
        ),
        (
            "web.yaml",
            "name: web\nlabels: {tier: back}\ncommand: [\"sleep\", \"60\"]\ndependencies: [backend]\n",
        ),
    ]);
    instance.ready("cache");
    // db runs but is not ready: the targets wait for it, and web waits for them.
    instance.wait_state("db", "starting");
    let backend = instance.wait_state("backend", "waiting");
    assert_eq!(backend["kind"], "target", "{backend:#}");
    assert!(
        backend.get("pid").is_none(),
        "a target has no process: {backend:#}"
    );
    let reason = backend["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("storage"), "{backend:#}");
    let web = instance.wait_state("web", "waiting");
    assert!(
        web["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("backend"),
        "{web:#}"
    );
    assert!(web.get("pid").is_none(), "web must not start yet: {web:#}");

    let table = instance.herder(&["status"]).expect_code(0).stdout;
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("backend") && l.contains("target")),
        "{table}"
    );

    // A verb on a target is refused with the reason; a selector passes over targets.
    let refused = instance.herder(&["restart", "backend"]).expect_code(1);
    assert!(refused.stderr.contains("is a target"), "{}", refused.stderr);
    let selected = instance.herder(&["stop", "-l", "tier=back"]).expect_code(0);
    assert_eq!(selected.stdout, "web: stop requested\n");
    instance.herder(&["start", "web"]).expect_code(0);

    std::fs::write(&gate, "").unwrap();
    instance.ready("db");
    instance.ready("storage");
    instance.ready("backend");
    let web = instance.wait_state("web", "ready");
    assert!(web["pid"].as_i64().is_some(), "{web:#}");
}
