//! Schedules end to end through the binary: an `every: 1s` oneshot runs once per slot and
//! skips the slots that come while a run still goes; `missed: run-once` runs once after a
//! restart of herder for the slots that passed while it was down; `herder run` starts a
//! scheduled oneshot now; status shows the next slot.

mod api_support;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use api_support::{Instance, wait_until};
use nix::sys::signal::Signal;
use serde_json::Value;

fn of_kind<'a>(events: &'a [Value], kind: &str, child: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["type"] == kind && e["child"] == child)
        .collect()
}

#[test]
fn every_second_runs_once_per_slot_and_skips_while_a_run_overlaps() {
    let root = tempfile::tempdir().unwrap();
    let runs = root.path().join("runs");
    let manifest = format!(
        "name: tick\nkind: oneshot\ncommand: \"echo run >> {}; sleep 1.5\"\nschedule: {{every: 1s}}\n",
        runs.display()
    );
    let instance = Instance::start_explicit(&[("tick.yaml", &manifest)]);
    let status = instance.child("tick");
    assert!(
        status["next_run"].as_str().is_some_and(|t| t.contains('T')),
        "status shows the next slot: {status:#}"
    );
    let events = wait_until(
        "three scheduled slots and one skipped while a run overlapped",
        || instance.context(),
        || {
            let events = instance.events_since(0);
            let scheduled = of_kind(&events, "scheduled", "tick").len();
            let skipped = of_kind(&events, "skipped", "tick").len();
            // A slot's `command` event follows its `scheduled` one: a snapshot between the two is not
            // judged (a missing command still fails, by the timeout).
            let asked = of_kind(&events, "command", "tick").len();
            (scheduled >= 3 && skipped >= 1 && asked == scheduled).then_some(events)
        },
    );
    let slots = |kind: &str| -> Vec<String> {
        of_kind(&events, kind, "tick")
            .iter()
            .map(|e| e["slot"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let (scheduled, skipped) = (slots("scheduled"), slots("skipped"));
    let unique: BTreeSet<&String> = scheduled.iter().chain(&skipped).collect();
    assert_eq!(
        unique.len(),
        scheduled.len() + skipped.len(),
        "every slot is scheduled or skipped exactly once: {scheduled:?} {skipped:?}"
    );
    for skip in of_kind(&events, "skipped", "tick") {
        assert_eq!(skip["reason"], "the previous run is still going", "{skip}");
    }
    // Every run was asked for as an audited `run` command.
    let asked = events
        .iter()
        .filter(|e| e["type"] == "command" && e["verb"] == "run" && e["child"] == "tick")
        .count();
    assert_eq!(asked, scheduled.len(), "{events:#?}");
    // Each scheduled slot started one process; the last may not have written yet.
    let lines = std::fs::read_to_string(&runs)
        .unwrap_or_default()
        .lines()
        .count();
    assert!(
        lines + 1 >= scheduled.len() && lines <= scheduled.len(),
        "{lines} runs for {} scheduled slots",
        scheduled.len()
    );
}

#[test]
fn missed_slots_run_once_after_a_restart_of_herder() {
    let mut instance = Instance::start_explicit(&[(
        "nightly.yaml",
        "name: nightly\nkind: oneshot\ncommand: [\"true\"]\nschedule: {every: 2s, missed: run-once}\n",
    )]);
    instance.wait_event(0, "a first scheduled slot", |e| {
        e["type"] == "scheduled" && e["child"] == "nightly"
    });
    instance.signal(Signal::SIGTERM);
    assert!(instance.wait_exit().success());
    // Down across at least one slot boundary (slots are whole multiples of 2 s).
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let to_next = 2_000 - (now.as_millis() % 2_000) as u64;
    std::thread::sleep(Duration::from_millis(to_next + 200));
    instance.launch();
    let missed = instance.wait_event(0, "the missed slot to run once at start", |e| {
        e["type"] == "scheduled" && e["child"] == "nightly" && e["missed"] == true
    });
    let events = instance.events_since(0);
    let missed_runs = of_kind(&events, "scheduled", "nightly")
        .iter()
        .filter(|e| e["missed"] == true)
        .count();
    assert_eq!(
        missed_runs, 1,
        "one run however many slots passed: {missed}"
    );
    let slots: Vec<&str> = of_kind(&events, "scheduled", "nightly")
        .iter()
        .map(|e| e["slot"].as_str().unwrap_or_default())
        .collect();
    let unique: BTreeSet<&&str> = slots.iter().collect();
    assert_eq!(
        unique.len(),
        slots.len(),
        "no slot twice across the restart: {slots:?}"
    );
}

#[test]
fn run_starts_a_scheduled_oneshot_now_and_refuses_a_service() {
    let instance = Instance::start_explicit(&[
        (
            "report.yaml",
            "name: report\nkind: oneshot\ncommand: [\"true\"]\nschedule: {cron: \"0 3 1 1 *\", timezone: UTC}\n",
        ),
        ("web.yaml", "name: web\ncommand: [\"sleep\", \"60\"]\n"),
    ]);
    let waiting = instance.wait_state("report", "waiting");
    assert!(
        waiting["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("next run at ")),
        "{waiting:#}"
    );
    instance
        .herder(&["run", "report", "--reason", "by hand"])
        .expect_code(0);
    instance.wait_state("report", "completed");
    let refused = instance.herder(&["run", "web"]).expect_code(1);
    assert!(
        refused.stderr.contains("not a oneshot"),
        "{}",
        refused.stderr
    );
}
