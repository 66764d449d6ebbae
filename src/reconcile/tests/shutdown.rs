//! The order of an ordered shutdown: replicas, look-alike names, targets and shared dependencies.

use super::*;

/// Issue 15, defect 2: a standalone child named `db-2` is not a replica of `db`, so
/// shutting down does not hold it back for the dependents of `db`.
#[test]
fn a_name_with_a_number_is_not_taken_for_a_replica() {
    let mut r = Reconciler::new();
    let standalone = spec(json!({"name": "db-2", "command": ["db", "2"]}));
    step(&mut r, desired(1, [db(), standalone, web_on_db("started")]));
    step(&mut r, observed("db", 1, Observation::Spawned));
    step(&mut r, observed("db-2", 2, Observation::Spawned));
    step(&mut r, observed("web", 3, Observation::Spawned));
    let effects = step(
        &mut r,
        Input::Shutdown {
            reason: "test".into(),
        },
    );
    assert_eq!(names(&effects), ["stop db-2#2", "stop web#3"]);
}

/// The replicas of a set a child depends on wait for that child when shutting down.
#[test]
fn replicas_of_a_dependency_stop_after_their_dependents() {
    let mut r = Reconciler::new();
    let web = spec(json!({"name": "web", "command": ["web"], "dependencies": ["db"]}));
    let mut specs = replicas("db", 2);
    specs.push(web);
    step(&mut r, desired(1, specs));
    step(&mut r, observed("db-0", 1, Observation::Spawned));
    step(&mut r, observed("db-1", 2, Observation::Spawned));
    step(&mut r, observed("db-0", 1, Observation::Ready));
    step(&mut r, observed("db-1", 2, Observation::Ready));
    step(&mut r, observed("web", 3, Observation::Spawned));
    let effects = step(
        &mut r,
        Input::Shutdown {
            reason: "test".into(),
        },
    );
    assert_eq!(names(&effects), ["stop web#3"]);
    assert_eq!(
        names(&step(&mut r, observed("web", 3, Observation::Stopped))),
        ["stop db-0#1", "stop db-1#2"]
    );
    assert!(step(&mut r, observed("db-0", 1, Observation::Stopped)).is_empty());
    assert_eq!(
        names(&step(&mut r, observed("db-1", 2, Observation::Stopped))),
        ["exit Stopped"]
    );
}

/// A target in the middle of a shutdown leaves as soon as its dependents are gone, which
/// frees what it groups at once.
#[test]
fn a_target_between_a_dependent_and_its_dependency_passes_the_shutdown_on() {
    let mut r = Reconciler::new();
    let stack = spec(json!({"name": "stack", "kind": "target", "dependencies": ["db"]}));
    let web = spec(json!({"name": "web", "command": ["web"], "dependencies": [
        {"name": "stack", "condition": "started"}]}));
    step(&mut r, desired(1, [db(), stack, web]));
    step(&mut r, observed("db", 1, Observation::Spawned));
    step(&mut r, observed("db", 1, Observation::Ready));
    let web_incarnation = r.slots()["web"].current.as_ref().map(|run| run.incarnation);
    let web_incarnation = web_incarnation.unwrap_or_default();
    step(
        &mut r,
        observed("web", web_incarnation, Observation::Spawned),
    );
    let shutdown = Input::Shutdown {
        reason: "test".into(),
    };
    assert_eq!(
        names(&step(&mut r, shutdown)),
        [format!("stop web#{web_incarnation}")]
    );
    assert_eq!(
        names(&step(
            &mut r,
            observed("web", web_incarnation, Observation::Stopped)
        )),
        ["stop db#1"]
    );
    assert_eq!(
        names(&step(&mut r, observed("db", 1, Observation::Stopped))),
        ["exit Stopped"]
    );
}

/// Many dependents of one child: it stops once the last of them has confirmed its stop,
/// each report in between changes nothing.
#[test]
fn a_shared_dependency_stops_after_its_last_dependent() {
    let mut r = Reconciler::new();
    let mut specs = vec![db()];
    specs.extend((0..50).map(|i| {
        spec(
            json!({"name": format!("web{i:02}"), "command": ["web"], "dependencies": [
            {"name": "db", "condition": "started"}]}),
        )
    }));
    step(&mut r, desired(1, specs));
    step(&mut r, observed("db", 1, Observation::Spawned));
    let webs: Vec<(String, u64)> = (r.slots().iter())
        .filter_map(|(name, slot)| Some((name.clone(), slot.current.as_ref()?.incarnation)))
        .filter(|(name, _)| name != "db")
        .collect();
    assert_eq!(webs.len(), 50);
    for (name, incarnation) in &webs {
        step(&mut r, observed(name, *incarnation, Observation::Spawned));
    }
    let shutdown = Input::Shutdown {
        reason: "test".into(),
    };
    assert_eq!(
        step(&mut r, shutdown).len(),
        50,
        "every dependent stops first"
    );
    let (last, others) = webs.split_last().unwrap();
    for (name, incarnation) in others {
        assert!(step(&mut r, observed(name, *incarnation, Observation::Stopped)).is_empty());
    }
    assert_eq!(
        names(&step(
            &mut r,
            observed(&last.0, last.1, Observation::Stopped)
        )),
        ["stop db#1"]
    );
    assert_eq!(
        names(&step(&mut r, observed("db", 1, Observation::Stopped))),
        ["exit Stopped"]
    );
}
