//! Hot reload end to end: a real `herder up` (with its own `--socket` and `--state-dir`) on
//! a temporary manifest directory, real files edited the ways editors, `git`, and Kubernetes
//! edit them, real child processes. Every fact is observed through the CLI (`status`,
//! `events`, `plan`) or the control socket, and every wait is a bounded deadline loop whose
//! failure message names the suspected bug.
//!
//! Each test also runs a `bystander` child that no edit touches: its pid must never change.
//!
//! A test that asserts something did *not* happen never sleeps and hopes: it writes a marker
//! manifest after the edit under test and awaits the reload that starts the marker
//! ([`await_marker`]); everything the earlier edit caused has been applied by then.

#[path = "../api_support/mod.rs"]
mod api_support;

mod edits;
mod lifecycle;
mod saves;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::Instant;

use api_support::{Follower, Instance, alive, wait_dead, wait_until};
use herder::watch::scan::DEFAULT_SETTLE;
use serde_json::Value;

/// A child no test edits.
const BYSTANDER: &str = "name: bystander\ncommand: [\"sleep\", \"1000\"]\n";

fn sleeper(name: &str, seconds: u32) -> String {
    format!("name: {name}\ncommand: [\"sleep\", \"{seconds}\"]\nstop: {{timeout: 2s}}\n")
}

fn pid(child: &Value) -> i64 {
    child["pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("no pid in {child:#}"))
}

fn incarnation(child: &Value) -> u64 {
    child["incarnation"]
        .as_u64()
        .unwrap_or_else(|| panic!("no incarnation in {child:#}"))
}

/// Starts an instance on `manifests` plus the bystander; returns it with the bystander's pid.
fn start(manifests: &[(&str, &str)]) -> (Instance, i64) {
    let mut all = vec![("bystander.yaml", BYSTANDER)];
    all.extend_from_slice(manifests);
    let instance = Instance::start_explicit(&all);
    let bystander = pid(&instance.ready("bystander"));
    (instance, bystander)
}

/// The bystander still runs with the same pid.
fn assert_bystander(instance: &Instance, expected: i64) {
    let now = instance.child("bystander");
    assert_eq!(
        pid(&now),
        expected,
        "an edit of another file restarted the bystander; {}",
        instance.context()
    );
    assert!(alive(expected), "the bystander's process is gone");
}

/// Writes `content` to `dir/name` the way most editors and config tools do: a temporary
/// file in the same directory, then `rename()` over the target.
fn write_atomic(dir: &Path, name: &str, content: &str) {
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    fs::write(&tmp, content).unwrap();
    fs::rename(&tmp, dir.join(name)).unwrap();
}

/// The operations of every `reload` event in `events`.
fn reload_operations(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "reload")
        .flat_map(|e| e["operations"].as_array().cloned().unwrap_or_default())
        .filter_map(|op| op.as_str().map(str::to_owned))
        .collect()
}

/// The child [`write_marker`] adds.
const MARKER: &str = "zz-marker";

/// Writes the marker manifest into `dir` (the watched directory, or a copy of it about to be
/// renamed into place).
fn write_marker(dir: &Path) {
    fs::write(dir.join(format!("{MARKER}.yaml")), sleeper(MARKER, 1099)).unwrap();
}

/// Awaits on `stream` the reload that starts the marker, and returns every event after
/// `since` up to and including it. The watcher scans, and the reconciler applies
/// generations, one after the other, so whatever an edit made before the marker caused (a
/// wrong retire or restart included) is in a reload no later than the marker's: once this
/// returns, asserting that something did not happen is sound.
fn await_marker(instance: &Instance, stream: &Follower, since: u64) -> Vec<Value> {
    let start = format!("start {MARKER}");
    let reload = stream.stdout.wait_json(
        "the reload that starts the marker (the watcher or the reconciler stalled?)",
        |e| e["type"] == "reload" && reload_operations(std::slice::from_ref(e)).contains(&start),
    );
    let upto = reload["seq"].as_u64().unwrap();
    instance
        .events_since(since)
        .into_iter()
        .filter(|e| e["seq"].as_u64().is_some_and(|seq| seq <= upto))
        .collect()
}

/// Waits on `stream` for the next event of `child` of type `kind` (`why` says what a
/// timeout suggests); returns it.
fn await_event(stream: &Follower, child: &str, kind: &str, why: &str) -> Value {
    stream
        .stdout
        .wait_json(&format!("a `{kind}` event of {child} ({why})"), |e| {
            e["child"] == child && e["type"] == kind
        })
}

/// Blocks until `deadline`: for a duration that is the condition under test (a settle time
/// that must have passed), never to wait for something to be processed.
fn pass(deadline: Instant) {
    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
}

/// Events of `child` of type `kind`.
fn events_of<'a>(events: &'a [Value], child: &str, kind: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["child"] == child && e["type"] == kind)
        .collect()
}
