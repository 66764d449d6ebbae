//! Decision tests for the reconciler: feed inputs, assert the exact effects. No runtime,
//! no processes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};

use super::command::{CommandError, Verb};
use super::core::*;
use crate::manifest::model::{Manifest, Signal};
use crate::manifest::{ChildSpec, DesiredSet};

mod shutdown;

fn spec(manifest: Value) -> Arc<ChildSpec> {
    let manifest: Manifest = serde_json::from_value(manifest).expect("test manifest is valid");
    Arc::new(ChildSpec {
        name: manifest.name.clone(),
        replica: None,
        manifest: Arc::new(manifest),
        source: PathBuf::from("test.yaml"),
        base_dir: PathBuf::from("."),
        secret_digests: BTreeMap::new(),
    })
}

fn replicas(name: &str, count: u32) -> Vec<Arc<ChildSpec>> {
    let manifest: Arc<Manifest> = Arc::new(
        serde_json::from_value(json!({"name": name, "command": ["sleep", "1"], "replicas": count}))
            .expect("valid"),
    );
    (0..count)
        .map(|i| {
            Arc::new(ChildSpec {
                name: format!("{name}-{i}"),
                replica: Some(i),
                manifest: Arc::clone(&manifest),
                source: PathBuf::from("test.yaml"),
                base_dir: PathBuf::from("."),
                secret_digests: BTreeMap::new(),
            })
        })
        .collect()
}

fn desired(generation: u64, specs: impl IntoIterator<Item = Arc<ChildSpec>>) -> Input {
    Input::Desired(DesiredSet {
        generation,
        children: specs.into_iter().map(|s| (s.name.clone(), s)).collect(),
    })
}

fn observed(name: &str, incarnation: u64, observation: Observation) -> Input {
    Input::Observed {
        name: name.into(),
        incarnation,
        observation,
    }
}

fn step(r: &mut Reconciler, input: Input) -> Vec<Effect> {
    r.step(input).expect("input accepted")
}

/// A compact rendering of effects: `spawn a#1`, `stop a#1`, ...
fn names(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .map(|effect| match effect {
            Effect::Spawn {
                name, incarnation, ..
            } => format!("spawn {name}#{incarnation}"),
            Effect::Stop { name, incarnation } => format!("stop {name}#{incarnation}"),
            Effect::Update {
                name, incarnation, ..
            } => format!("update {name}#{incarnation}"),
            Effect::Restart { name, incarnation } => format!("restart {name}#{incarnation}"),
            Effect::Signal {
                name,
                incarnation,
                signal,
            } => format!("signal {name}#{incarnation} {signal}"),
            Effect::KillAll => "kill-all".into(),
            Effect::Exit(outcome) => format!("exit {outcome:?}"),
        })
        .collect()
}

fn db() -> Arc<ChildSpec> {
    spec(json!({"name": "db", "command": ["db"]}))
}

fn web_on_db(condition: &str) -> Arc<ChildSpec> {
    spec(
        json!({"name": "web", "command": ["web"], "dependencies": [{"name": "db", "condition": condition}]}),
    )
}

#[test]
fn dependents_wait_for_readiness() {
    let mut r = Reconciler::new();
    assert_eq!(
        names(&step(&mut r, desired(1, [db(), web_on_db("ready")]))),
        ["spawn db#1"]
    );
    assert!(step(&mut r, observed("db", 1, Observation::Spawned)).is_empty());
    assert_eq!(
        names(&step(&mut r, observed("db", 1, Observation::Ready))),
        ["spawn web#2"]
    );
}

#[test]
fn started_condition_needs_only_a_process() {
    let mut r = Reconciler::new();
    step(&mut r, desired(1, [db(), web_on_db("started")]));
    assert_eq!(
        names(&step(&mut r, observed("db", 1, Observation::Spawned))),
        ["spawn web#2"]
    );
}

#[test]
fn completed_condition_waits_for_a_successful_oneshot() {
    let mut r = Reconciler::new();
    let migrate = spec(json!({"name": "migrate", "kind": "oneshot", "command": ["m"]}));
    let web = spec(
        json!({"name": "web", "command": ["w"], "dependencies": [{"name": "migrate", "condition": "completed"}]}),
    );
    assert_eq!(
        names(&step(&mut r, desired(1, [migrate, web]))),
        ["spawn migrate#1"]
    );
    assert!(step(&mut r, observed("migrate", 1, Observation::Spawned)).is_empty());
    assert!(step(&mut r, observed("migrate", 1, Observation::Ready)).is_empty());
    assert_eq!(
        names(&step(
            &mut r,
            observed("migrate", 1, Observation::Completed)
        )),
        ["spawn web#2"]
    );
}

#[test]
fn stop_first_replacement_stops_then_starts() {
    let mut r = Reconciler::new();
    step(&mut r, desired(1, [db()]));
    step(&mut r, observed("db", 1, Observation::Spawned));
    let changed = spec(json!({"name": "db", "command": ["db", "--new"]}));
    assert_eq!(
        names(&step(&mut r, desired(2, [Arc::clone(&changed)]))),
        ["stop db#1"]
    );
    assert_eq!(
        names(&step(&mut r, observed("db", 1, Observation::Stopped))),
        ["spawn db#2"]
    );
}

#[test]
fn start_first_keeps_the_old_one_until_the_new_one_is_ready() {
    let mut r = Reconciler::new();
    let v1 = spec(json!({"name": "api", "command": ["v1"], "update": "start-first"}));
    step(&mut r, desired(1, [v1]));
    step(&mut r, observed("api", 1, Observation::Spawned));
    let v2 = spec(json!({"name": "api", "command": ["v2"], "update": "start-first"}));
    assert_eq!(names(&step(&mut r, desired(2, [v2]))), ["spawn api#2"]);
    assert!(step(&mut r, observed("api", 2, Observation::Spawned)).is_empty());
    assert_eq!(
        names(&step(&mut r, observed("api", 2, Observation::Ready))),
        ["stop api#1"]
    );
    assert!(step(&mut r, observed("api", 1, Observation::Stopped)).is_empty());
}

#[test]
fn start_first_failure_keeps_the_old_one_serving() {
    let mut r = Reconciler::new();
    let v1 = spec(json!({"name": "api", "command": ["v1"], "update": "start-first"}));
    step(&mut r, desired(1, [v1]));
    step(&mut r, observed("api", 1, Observation::Spawned));
    let v2 = spec(json!({"name": "api", "command": ["v2"], "update": "start-first"}));
    step(&mut r, desired(2, [Arc::clone(&v2)]));
    assert_eq!(
        names(&step(&mut r, observed("api", 2, Observation::Failed))),
        ["stop api#2"]
    );
    // The rejected spec is not retried on unrelated inputs ...
    assert!(step(&mut r, observed("api", 2, Observation::Stopped)).is_empty());
    assert_eq!(
        r.slots()["api"].current.as_ref().map(|run| run.incarnation),
        Some(1)
    );
    // ... but a new edit is tried again.
    let v3 = spec(json!({"name": "api", "command": ["v3"], "update": "start-first"}));
    assert_eq!(names(&step(&mut r, desired(3, [v3]))), ["spawn api#3"]);
}

#[test]
fn start_first_replacement_that_goes_down_before_ready_is_given_up() {
    let mut r = Reconciler::new();
    let v1 = spec(json!({"name": "api", "command": ["v1"], "update": "start-first"}));
    step(&mut r, desired(1, [v1]));
    step(&mut r, observed("api", 1, Observation::Spawned));
    let v2 = spec(json!({"name": "api", "command": ["v2"], "update": "start-first"}));
    step(&mut r, desired(2, [v2]));
    step(&mut r, observed("api", 2, Observation::Spawned));
    // Its start timeout stopped it (or it crashed): the actor reports an exit, not a failure.
    assert_eq!(
        names(&step(&mut r, observed("api", 2, Observation::Exited))),
        ["stop api#2"]
    );
    assert!(step(&mut r, observed("api", 2, Observation::Stopped)).is_empty());
    assert_eq!(
        r.slots()["api"].current.as_ref().map(|run| run.incarnation),
        Some(1)
    );
}

#[test]
fn in_place_fields_update_without_a_restart() {
    let mut r = Reconciler::new();
    step(&mut r, desired(1, [db()]));
    step(&mut r, observed("db", 1, Observation::Spawned));
    let tuned =
        spec(json!({"name": "db", "command": ["db"], "restart": "never", "labels": {"a": "b"}}));
    assert_eq!(names(&step(&mut r, desired(2, [tuned]))), ["update db#1"]);
    assert!(step(&mut r, observed("db", 1, Observation::Ready)).is_empty());
}

#[test]
fn retirement_stops_dependents_first() {
    let mut r = Reconciler::new();
    step(&mut r, desired(1, [db(), web_on_db("started")]));
    step(&mut r, observed("db", 1, Observation::Spawned));
    step(&mut r, observed("web", 2, Observation::Spawned));
    assert_eq!(names(&step(&mut r, desired(2, []))), ["stop web#2"]);
    assert_eq!(
        names(&step(&mut r, observed("web", 2, Observation::Stopped))),
        ["stop db#1"]
    );
    assert!(step(&mut r, observed("db", 1, Observation::Stopped)).is_empty());
    assert!(r.slots().is_empty());
}

#[test]
fn stale_observations_are_ignored() {
    let mut r = Reconciler::new();
    step(&mut r, desired(1, [db(), web_on_db("ready")]));
    step(&mut r, observed("db", 1, Observation::Spawned));
    let changed = spec(json!({"name": "db", "command": ["db", "2"]}));
    step(&mut r, desired(2, [changed, web_on_db("ready")]));
    // Incarnation 1 is being stopped: its late readiness must not release `web`.
    assert!(step(&mut r, observed("db", 1, Observation::Ready)).is_empty());
}

#[test]
fn ordered_shutdown_then_exit_and_a_second_signal_kills() {
    let mut r = Reconciler::new();
    step(&mut r, desired(1, [db(), web_on_db("started")]));
    step(&mut r, observed("db", 1, Observation::Spawned));
    step(&mut r, observed("web", 2, Observation::Spawned));
    let shutdown = Input::Shutdown {
        reason: "SIGTERM".into(),
    };
    assert_eq!(names(&step(&mut r, shutdown.clone())), ["stop web#2"]);
    assert_eq!(names(&step(&mut r, shutdown)), ["kill-all"]);
    assert_eq!(
        names(&step(&mut r, observed("web", 2, Observation::Stopped))),
        ["stop db#1"]
    );
    assert_eq!(
        names(&step(&mut r, observed("db", 1, Observation::Stopped))),
        ["exit Stopped"]
    );
}

#[test]
fn a_critical_failure_shuts_down_with_an_error() {
    let mut r = Reconciler::new();
    let critical = spec(json!({"name": "core", "command": ["c"], "criticality": "critical"}));
    step(&mut r, desired(1, [critical, db()]));
    step(&mut r, observed("core", 1, Observation::Spawned));
    step(&mut r, observed("db", 2, Observation::Spawned));
    let effects = names(&step(&mut r, observed("core", 1, Observation::Failed)));
    assert_eq!(effects, ["stop core#1", "stop db#2"]);
    step(&mut r, observed("core", 1, Observation::Stopped));
    assert_eq!(
        names(&step(&mut r, observed("db", 2, Observation::Stopped))),
        ["exit CriticalFailed".to_owned()]
    );
}

#[test]
fn an_operator_stop_holds_until_start() {
    let mut r = Reconciler::new();
    step(&mut r, desired(1, [db()]));
    step(&mut r, observed("db", 1, Observation::Spawned));
    assert_eq!(
        names(&step(&mut r, Input::Command(Verb::Stop.on("db")))),
        ["stop db#1"]
    );
    assert!(step(&mut r, observed("db", 1, Observation::Stopped)).is_empty());
    assert!(
        step(&mut r, desired(2, [db()])).is_empty(),
        "a held child is not restarted"
    );
    assert_eq!(
        names(&step(&mut r, Input::Command(Verb::Start.on("db")))),
        ["spawn db#2"]
    );
}

#[test]
fn quarantine_refuses_other_commands_until_released() {
    let mut r = Reconciler::new();
    step(&mut r, desired(1, [db()]));
    step(&mut r, observed("db", 1, Observation::Spawned));
    let quarantine = Verb::Quarantine(Some("disk full".into())).on("db");
    assert_eq!(
        names(&step(&mut r, Input::Command(quarantine))),
        ["stop db#1"]
    );
    assert_eq!(
        r.step(Input::Command(Verb::Restart.on("db"))).unwrap_err(),
        CommandError::Quarantined("db".into())
    );
    step(&mut r, observed("db", 1, Observation::Stopped));
    assert_eq!(
        names(&step(&mut r, Input::Command(Verb::Release.on("db")))),
        ["spawn db#2"]
    );
}

#[test]
fn commands_name_the_incarnation_and_reject_unknown_children() {
    let mut r = Reconciler::new();
    step(&mut r, desired(1, [db()]));
    step(&mut r, observed("db", 1, Observation::Spawned));
    assert_eq!(
        names(&step(
            &mut r,
            Input::Command(Verb::Signal(Signal::Sighup).on("db"))
        )),
        ["signal db#1 SIGHUP"]
    );
    assert_eq!(
        names(&step(&mut r, Input::Command(Verb::Pause.on("db")))),
        ["signal db#1 SIGSTOP"]
    );
    assert_eq!(
        names(&step(&mut r, Input::Command(Verb::Restart.on("db")))),
        ["restart db#1"]
    );
    assert_eq!(
        r.step(Input::Command(Verb::Restart.on("nope")))
            .unwrap_err(),
        CommandError::UnknownChild("nope".into())
    );
}

#[test]
fn restart_true_dependents_restart_after_the_dependency_is_ready_again() {
    let mut r = Reconciler::new();
    let cache = spec(json!({"name": "cache", "command": ["c"]}));
    let app = spec(
        json!({"name": "app", "command": ["a"], "dependencies": [{"name": "cache", "restart": true}]}),
    );
    step(&mut r, desired(1, [Arc::clone(&cache), Arc::clone(&app)]));
    step(&mut r, observed("cache", 1, Observation::Spawned));
    assert_eq!(
        names(&step(&mut r, observed("cache", 1, Observation::Ready))),
        ["spawn app#2"]
    );
    step(&mut r, observed("app", 2, Observation::Spawned));
    // cache crashes and is restarted by its actor: a new process ...
    step(&mut r, observed("cache", 1, Observation::Exited));
    assert!(step(&mut r, observed("cache", 1, Observation::Spawned)).is_empty());
    // ... and once it is ready, app restarts.
    assert_eq!(
        names(&step(&mut r, observed("cache", 1, Observation::Ready))),
        ["restart app#2"]
    );
    assert!(step(&mut r, observed("app", 2, Observation::Spawned)).is_empty());
}

#[test]
fn replicas_grow_and_shrink_at_the_top() {
    let mut r = Reconciler::new();
    let three = replicas("w", 3);
    assert_eq!(
        names(&step(&mut r, desired(1, three))),
        ["spawn w-0#1", "spawn w-1#2", "spawn w-2#3"]
    );
    let five = replicas("w", 5);
    // The manifest changed (replicas is an in-place field), so existing replicas are updated, not restarted.
    let effects = names(&step(&mut r, desired(2, five)));
    assert!(
        effects.contains(&"spawn w-3#4".to_owned()) && effects.contains(&"spawn w-4#5".to_owned())
    );
    assert!(
        !effects.iter().any(|e| e.starts_with("stop")),
        "{effects:?}"
    );
    let effects = names(&step(&mut r, desired(3, replicas("w", 2))));
    let stops: Vec<_> = effects.iter().filter(|e| e.starts_with("stop")).collect();
    assert_eq!(stops, ["stop w-4#5", "stop w-3#4", "stop w-2#3"]);
}

#[test]
fn a_dependent_restarted_by_its_policy_is_not_restarted_again_for_its_dependency() {
    let mut r = Reconciler::new();
    let cache = spec(json!({"name": "cache", "command": ["c"]}));
    let app = spec(
        json!({"name": "app", "command": ["a"], "dependencies": [{"name": "cache", "restart": true}]}),
    );
    step(&mut r, desired(1, [Arc::clone(&cache), Arc::clone(&app)]));
    step(&mut r, observed("cache", 1, Observation::Spawned));
    step(&mut r, observed("cache", 1, Observation::Ready));
    step(&mut r, observed("app", 2, Observation::Spawned));
    // Both crash; cache comes back while app is still in backoff ...
    step(&mut r, observed("app", 2, Observation::Exited));
    step(&mut r, observed("cache", 1, Observation::Exited));
    step(&mut r, observed("cache", 1, Observation::Spawned));
    assert!(step(&mut r, observed("cache", 1, Observation::Ready)).is_empty());
    // ... then app's own restart already sees the new cache: no extra restart, now or later.
    assert!(step(&mut r, observed("app", 2, Observation::Spawned)).is_empty());
    assert!(step(&mut r, desired(2, [cache, app])).is_empty());
}

#[test]
fn a_batch_of_commands_plans_once_and_answers_each() {
    let mut r = Reconciler::new();
    step(&mut r, desired(1, [db(), web_on_db("started")]));
    step(&mut r, observed("db", 1, Observation::Spawned));
    step(&mut r, observed("web", 2, Observation::Spawned));
    let (verdicts, effects) = r.commands(vec![
        Verb::Stop.on("db"),
        Verb::Stop.on("nope"),
        Verb::Stop.on("web"),
    ]);
    assert_eq!(
        verdicts,
        [
            Ok(()),
            Err(CommandError::UnknownChild("nope".into())),
            Ok(())
        ]
    );
    assert_eq!(names(&effects), ["stop db#1", "stop web#2"]);
    // Held and unwanted: nothing follows from either stop, and both stay listed.
    assert!(step(&mut r, observed("web", 2, Observation::Stopped)).is_empty());
    assert!(step(&mut r, observed("db", 1, Observation::Stopped)).is_empty());
    assert_eq!(r.slots().len(), 2);
    let (verdicts, effects) = r.commands(vec![Verb::Start.on("db"), Verb::Start.on("web")]);
    assert_eq!(verdicts, [Ok(()), Ok(())]);
    assert_eq!(names(&effects), ["spawn db#3"], "web waits for db to start");
}

/// `start --all` before the stops of `stop --all` are confirmed: the old incarnations'
/// exits change nothing, and each confirmed stop starts its own child only.
#[test]
fn a_start_that_waits_for_its_old_process_follows_that_process_alone() {
    let mut r = Reconciler::new();
    let a = spec(json!({"name": "a", "command": ["a"]}));
    let b = spec(json!({"name": "b", "command": ["b"]}));
    step(&mut r, desired(1, [a, b]));
    step(&mut r, observed("a", 1, Observation::Spawned));
    step(&mut r, observed("b", 2, Observation::Spawned));
    let (_, effects) = r.commands(vec![Verb::Stop.on("a"), Verb::Stop.on("b")]);
    assert_eq!(names(&effects), ["stop a#1", "stop b#2"]);
    let (_, effects) = r.commands(vec![Verb::Start.on("a"), Verb::Start.on("b")]);
    assert!(
        effects.is_empty(),
        "both wait for their old process: {effects:?}"
    );
    assert!(step(&mut r, observed("a", 1, Observation::Exited)).is_empty());
    assert_eq!(
        names(&step(&mut r, observed("a", 1, Observation::Stopped))),
        ["spawn a#3"]
    );
    assert_eq!(
        names(&step(&mut r, observed("b", 2, Observation::Stopped))),
        ["spawn b#4"]
    );
    assert!(step(&mut r, observed("a", 3, Observation::Spawned)).is_empty());
    step(&mut r, observed("b", 4, Observation::Spawned));
    let shutdown = Input::Shutdown {
        reason: "test".into(),
    };
    assert_eq!(names(&step(&mut r, shutdown)), ["stop a#3", "stop b#4"]);
    assert!(step(&mut r, observed("a", 3, Observation::Exited)).is_empty());
    assert!(step(&mut r, observed("a", 3, Observation::Stopped)).is_empty());
    assert_eq!(
        names(&step(&mut r, observed("b", 4, Observation::Stopped))),
        ["exit Stopped"]
    );
}

#[test]
fn a_stop_that_something_waits_for_still_reconciles() {
    let mut r = Reconciler::new();
    step(&mut r, desired(1, [db()]));
    step(&mut r, observed("db", 1, Observation::Spawned));
    // Retired with nothing depending on it: its stop is quiet, and its slot goes.
    assert_eq!(names(&step(&mut r, desired(2, []))), ["stop db#1"]);
    assert!(step(&mut r, observed("db", 1, Observation::Stopped)).is_empty());
    assert!(r.slots().is_empty());

    // Replaced stop-first: the new incarnation waits for the old one's stop.
    step(&mut r, desired(3, [db()]));
    step(&mut r, observed("db", 2, Observation::Spawned));
    let changed = spec(json!({"name": "db", "command": ["db", "2"]}));
    assert_eq!(names(&step(&mut r, desired(4, [changed]))), ["stop db#2"]);
    assert_eq!(
        names(&step(&mut r, observed("db", 2, Observation::Stopped))),
        ["spawn db#3"]
    );
}

#[test]
fn admission_checks_existence_permissions_and_shutdown() {
    use super::admission::admit;
    use super::control::ControlError;
    let mut r = Reconciler::new();
    let locked = spec(json!({
        "name": "locked", "command": ["x"],
        "command_permissions": {"restart": false, "stop": true, "signals": ["SIGHUP"]}
    }));
    step(&mut r, desired(1, [db(), locked]));
    let unknown = admit(&r, &Verb::Restart.on("nope"));
    assert!(!unknown.allowed);
    assert_eq!(
        unknown.verdict,
        Err(ControlError::Command(CommandError::UnknownChild(
            "nope".into()
        )))
    );
    let forbidden = admit(&r, &Verb::Restart.on("locked"));
    assert!(!forbidden.allowed);
    assert!(matches!(
        forbidden.verdict,
        Err(ControlError::Forbidden { .. })
    ));
    assert!(admit(&r, &Verb::Signal(Signal::Sighup).on("locked")).allowed);
    assert!(!admit(&r, &Verb::Signal(Signal::Sigusr1).on("locked")).allowed);
    assert_eq!(admit(&r, &Verb::Restart.on("db")).verdict, Ok(()));
    step(
        &mut r,
        Input::Shutdown {
            reason: "test".into(),
        },
    );
    let late = admit(&r, &Verb::Restart.on("db"));
    assert!(late.allowed, "audited as allowed, refused for the shutdown");
    assert_eq!(late.verdict, Err(ControlError::ShuttingDown));
}
