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

mod api_support;

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

#[test]
fn adding_a_file_starts_its_child() {
    let (instance, bystander) = start(&[]);
    fs::write(instance.dir.join("new.yaml"), sleeper("new", 1001)).unwrap();
    let new = instance.ready("new");
    assert!(
        alive(pid(&new)),
        "status says new runs, but its pid is gone"
    );
    assert_eq!(
        api_support::cmdline(pid(&new) as i32).as_deref(),
        Some("sleep 1001"),
        "the new child's pid runs something else"
    );
    assert_bystander(&instance, bystander);
}

#[test]
fn editing_the_command_replaces_the_child() {
    let (instance, bystander) = start(&[("web.yaml", &sleeper("web", 1001))]);
    let before = instance.ready("web");
    let since = instance.last_seq();
    write_atomic(&instance.dir, "web.yaml", &sleeper("web", 1002));
    let after = instance.ready_with_new_pid(
        "web",
        pid(&before),
        "a changed command must replace the process",
    );
    assert!(
        incarnation(&after) > incarnation(&before),
        "a replacement must be a new incarnation: {before:#} -> {after:#}"
    );
    assert_eq!(
        api_support::cmdline(pid(&after) as i32).as_deref(),
        Some("sleep 1002")
    );
    wait_dead(pid(&before), "the replaced incarnation must be stopped");
    let events = instance.events_since(since);
    assert!(
        reload_operations(&events).contains(&"replace web".to_owned()),
        "no `replace web` reload: {events:#?}"
    );
    assert_bystander(&instance, bystander);
}

#[test]
fn editing_restart_policy_or_labels_updates_in_place() {
    let web = "name: web\ncommand: [\"sleep\", \"1001\"]\nrestart: always\nlabels: {team: a}\n";
    let (instance, bystander) = start(&[("web.yaml", web)]);
    let before = instance.ready("web");
    let since = instance.last_seq();
    let edited = "name: web\ndescription: edited\ncommand: [\"sleep\", \"1001\"]\nrestart: on-failure\nlabels: {team: b, tier: web}\n";
    write_atomic(&instance.dir, "web.yaml", edited);
    let after = wait_until(
        "the new labels to show in the status (update in place not applied?)",
        || instance.context(),
        || {
            instance
                .find_child("web")
                .filter(|c| c["labels"]["team"] == "b")
        },
    );
    assert_eq!(after["labels"]["tier"], "web");
    assert_eq!(after["description"], "edited");
    assert_eq!(
        pid(&after),
        pid(&before),
        "restart policy/labels must update in place, not restart"
    );
    assert_eq!(incarnation(&after), incarnation(&before));
    let events = instance.events_since(since);
    assert!(
        reload_operations(&events).contains(&"update web".to_owned()),
        "no `update web` reload: {events:#?}"
    );
    assert!(
        events_of(&events, "web", "spawned").is_empty()
            && events_of(&events, "web", "stopped").is_empty(),
        "an in-place update stopped or spawned web: {events:#?}"
    );
    assert_bystander(&instance, bystander);
}

#[test]
fn removing_a_file_retires_its_child() {
    let (instance, bystander) = start(&[("web.yaml", &sleeper("web", 1001))]);
    let web = pid(&instance.ready("web"));
    let since = instance.last_seq();
    fs::remove_file(instance.dir.join("web.yaml")).unwrap();
    instance.wait_gone(
        "web",
        "a removed file must retire its child after the settle time",
    );
    wait_dead(web, "a retired child's process must be stopped");
    let events = instance.events_since(since);
    assert!(
        reload_operations(&events).contains(&"retire web".to_owned()),
        "{events:#?}"
    );
    assert_eq!(events_of(&events, "web", "stopped").len(), 1, "{events:#?}");
    assert_bystander(&instance, bystander);
}

#[test]
fn renaming_a_file_restarts_nothing() {
    let (instance, bystander) = start(&[("web.yaml", &sleeper("web", 1001))]);
    let before = instance.ready("web");
    let since = instance.last_seq();
    let stream = instance.event_stream(since);
    fs::rename(
        instance.dir.join("web.yaml"),
        instance.dir.join("frontend.yaml"),
    )
    .unwrap();
    let renamed = instance.dir.join("frontend.yaml");
    let after = wait_until(
        "web's source to follow the rename",
        || instance.context(),
        || {
            instance
                .find_child("web")
                .filter(|c| c["source"] == renamed.to_str().unwrap())
        },
    );
    let followed = Instant::now();
    assert_eq!(pid(&after), pid(&before), "a rename restarted web");
    assert_eq!(incarnation(&after), incarnation(&before));
    // Had the old name's loss been put on hold, the hold began at the scan that saw the
    // rename, before the status showed it, and the first scan past the settle time would
    // retire web. Every scan re-reads the files on hold, the marker's too: written once the
    // settle time has passed, its reload comes after any such retire.
    pass(followed + DEFAULT_SETTLE);
    write_marker(&instance.dir);
    let events = await_marker(&instance, &stream, since);
    let touching_web: Vec<String> = reload_operations(&events)
        .into_iter()
        .filter(|op| op.ends_with(" web") && op != "update web")
        .collect();
    assert!(
        touching_web.is_empty(),
        "a rename retired, started or replaced web: {events:#?}"
    );
    assert!(
        events_of(&events, "web", "stopped").is_empty()
            && events_of(&events, "web", "spawned").is_empty(),
        "a rename stopped or spawned web: {events:#?}"
    );
    assert_eq!(pid(&instance.child("web")), pid(&before));
    assert_bystander(&instance, bystander);
}

#[test]
fn an_invalid_edit_keeps_the_old_process_and_fixing_it_applies() {
    let (instance, bystander) = start(&[("web.yaml", &sleeper("web", 1001))]);
    let before = instance.ready("web");
    let file = instance.dir.join("web.yaml");
    let path = file.to_str().unwrap().to_owned();

    // 1. Broken YAML (an unclosed flow sequence).
    let since = instance.last_seq();
    write_atomic(
        &instance.dir,
        "web.yaml",
        "name: web\ncommand: [\"sleep\", \"1002\"\nstop: {timeout: 2s}\n",
    );
    let error = instance.wait_event(since, "a manifest-error event for the bad YAML", |e| {
        e["type"] == "manifest-error"
    });
    let location = error["location"].as_str().unwrap();
    let (file_part, line_col) = location.split_at(path.len());
    assert_eq!(file_part, path, "location {location} names another file");
    let numbers: Vec<u32> = line_col
        .trim_start_matches(':')
        .split(':')
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(
        numbers.len() == 2 && numbers[0] >= 2 && numbers[1] >= 1,
        "location {location} is not file:line:col"
    );
    let status = instance.status();
    assert_eq!(status["errors"][0]["file"], path, "{status:#}");
    assert_eq!(
        pid(&instance.child("web")),
        pid(&before),
        "bad YAML replaced web"
    );
    assert!(alive(pid(&before)));

    // 2. Valid YAML, unknown field (a typo) with a changed command: nothing of it applies.
    let since = instance.last_seq();
    write_atomic(
        &instance.dir,
        "web.yaml",
        "name: web\ncommand: [\"sleep\", \"1002\"]\nrestrat: always\n",
    );
    let error = instance.wait_event(since, "a manifest-error event for the unknown field", |e| {
        e["type"] == "manifest-error" && e["location"] == format!("{path}:3:1")
    });
    assert!(
        error["message"].as_str().unwrap().contains("restrat"),
        "{error:#}"
    );
    let (code, errors) = instance.api_get("/v1/errors");
    assert_eq!(code, 200, "{errors:#}");
    let listed = errors["errors"].as_array().expect("errors array");
    let typo = listed
        .iter()
        .find(|e| e["pointer"] == "/restrat")
        .unwrap_or_else(|| panic!("GET /v1/errors lacks the typo: {errors:#}"));
    assert_eq!(
        (&typo["file"], &typo["line"], &typo["column"]),
        (&Value::from(path.clone()), &Value::from(3), &Value::from(1)),
        "{typo:#}"
    );
    assert!(
        typo["hint"].as_str().unwrap_or("").contains("restart"),
        "no `did you mean restart` hint: {typo:#}"
    );
    let web = instance.child("web");
    assert_eq!(pid(&web), pid(&before), "an invalid edit replaced web");
    assert_eq!(incarnation(&web), incarnation(&before));
    assert_eq!(
        api_support::cmdline(pid(&before) as i32).as_deref(),
        Some("sleep 1001"),
        "the last good command must keep running"
    );

    // 3. Fixed: the edit applies and the errors clear.
    write_atomic(&instance.dir, "web.yaml", &sleeper("web", 1002));
    let after = instance.ready_with_new_pid("web", pid(&before), "the fixed file must apply");
    assert_eq!(
        api_support::cmdline(pid(&after) as i32).as_deref(),
        Some("sleep 1002")
    );
    wait_until(
        "the manifest errors to clear once the file is fixed",
        || instance.context(),
        || {
            let (_, errors) = instance.api_get("/v1/errors");
            let status = instance.status();
            (errors["errors"] == Value::Array(vec![]) && status["errors"] == Value::Array(vec![]))
                .then_some(())
        },
    );
    assert_bystander(&instance, bystander);
}

#[test]
fn an_atomic_save_replaces_once() {
    let (instance, bystander) = start(&[("web.yaml", &sleeper("web", 1001))]);
    let before = pid(&instance.ready("web"));
    let since = instance.last_seq();
    write_atomic(&instance.dir, "web.yaml", &sleeper("web", 1002));
    let after = pid(&instance.ready_with_new_pid("web", before, "an atomic save must apply"));
    wait_dead(before, "the replaced process");
    let events = instance.events_since(since);
    assert_eq!(
        events_of(&events, "web", "spawned").len(),
        1,
        "one save, one new process: {events:#?}"
    );
    assert!(
        !reload_operations(&events)
            .iter()
            .any(|op| op == "retire web"),
        "{events:#?}"
    );
    assert_eq!(pid(&instance.child("web")), after);
    assert_bystander(&instance, bystander);
}

#[test]
fn a_vim_style_save_never_retires_the_child() {
    let (instance, bystander) = start(&[("web.yaml", &sleeper("web", 1001))]);
    let before = instance.ready("web");
    let file = instance.dir.join("web.yaml");
    let backup = instance.dir.join("web.yaml~");
    let since = instance.last_seq();

    // vim with `backupcopy=no`: rename the original away, write the new file, drop the backup.
    let vim_save = |content: &str| {
        fs::rename(&file, &backup).unwrap();
        fs::write(&file, content).unwrap();
        fs::remove_file(&backup).unwrap();
    };
    // Same content: nothing restarts (and the momentary absence retires nothing).
    vim_save(&sleeper("web", 1001));
    // Changed content: exactly one replacement.
    let reload = instance.last_seq();
    vim_save(&sleeper("web", 1002));
    let after = instance.ready_with_new_pid("web", pid(&before), "a vim-style save must apply");
    wait_dead(pid(&before), "the replaced process");
    let events = instance.events_since(since);
    let operations = reload_operations(&events);
    assert!(
        !operations
            .iter()
            .any(|op| op == "retire web" || op == "start web"),
        "a vim save retired web: {events:#?}"
    );
    assert_eq!(
        events_of(&instance.events_since(reload), "web", "spawned").len(),
        1,
        "{events:#?}"
    );
    assert_eq!(
        events_of(&events, "web", "spawned").len(),
        1,
        "the same-content save restarted web: {events:#?}"
    );
    assert_eq!(
        api_support::cmdline(pid(&after) as i32).as_deref(),
        Some("sleep 1002")
    );
    assert_bystander(&instance, bystander);
}

/// Writes a Kubernetes-style ConfigMap volume: `..<version>/` holds the files, `..data` points
/// at it, and each visible file is a symlink through `..data`.
fn configmap_version(dir: &Path, version: &str, files: &[(&str, String)]) {
    let data = dir.join(version);
    fs::create_dir(&data).unwrap();
    for (name, content) in files {
        fs::write(data.join(name), content).unwrap();
    }
}

#[test]
fn a_configmap_data_symlink_swap_applies_once() {
    let (instance, bystander) = start(&[]);
    let dir = &instance.dir;
    configmap_version(
        dir,
        "..2026_01_01_00_00_00.1",
        &[
            ("web.yaml", sleeper("web", 1001)),
            ("db.yaml", sleeper("db", 1003)),
        ],
    );
    std::os::unix::fs::symlink("..2026_01_01_00_00_00.1", dir.join("..data")).unwrap();
    for name in ["web.yaml", "db.yaml"] {
        std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name)).unwrap();
    }
    let web = pid(&instance.ready("web"));
    let db = pid(&instance.ready("db"));
    let since = instance.last_seq();

    // The kubelet's atomic writer: new version dir, new symlink, rename over `..data`,
    // remove the old version.
    configmap_version(
        dir,
        "..2026_01_01_00_01_00.2",
        &[
            ("web.yaml", sleeper("web", 1002)),
            ("db.yaml", sleeper("db", 1003)),
        ],
    );
    std::os::unix::fs::symlink("..2026_01_01_00_01_00.2", dir.join("..data_tmp")).unwrap();
    fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    fs::remove_dir_all(dir.join("..2026_01_01_00_00_00.1")).unwrap();

    let after = instance.ready_with_new_pid("web", web, "a ConfigMap swap must apply");
    assert_eq!(
        api_support::cmdline(pid(&after) as i32).as_deref(),
        Some("sleep 1002")
    );
    assert_eq!(
        pid(&instance.child("db")),
        db,
        "db did not change but was restarted"
    );
    let events = instance.events_since(since);
    assert!(
        !reload_operations(&events)
            .iter()
            .any(|op| op.starts_with("retire")),
        "a ConfigMap swap retired something: {events:#?}"
    );
    assert_eq!(events_of(&events, "web", "spawned").len(), 1, "{events:#?}");
    assert!(instance.status()["errors"] == Value::Array(vec![]));
    assert_bystander(&instance, bystander);
}

#[test]
fn a_fifty_file_burst_is_one_reload() {
    let (instance, bystander) = start(&[]);
    let since = instance.last_seq();
    // Like a `git checkout`: files written one after the other, as fast as possible.
    let files: Vec<(String, String)> = (0..50)
        .map(|i| {
            (
                format!("burst-{i:02}.yaml"),
                sleeper(&format!("burst-{i:02}"), 2000 + i),
            )
        })
        .collect();
    for (name, content) in &files {
        fs::write(instance.dir.join(name), content).unwrap();
    }
    let running = wait_until(
        "all 50 children of the burst to be ready",
        || instance.context(),
        || {
            let status = instance.status();
            let ready: Vec<Value> = status["children"]
                .as_array()?
                .iter()
                .filter(|c| {
                    c["name"].as_str().unwrap_or("").starts_with("burst-") && c["state"] == "ready"
                })
                .cloned()
                .collect();
            (ready.len() == 50).then_some(ready)
        },
    );
    for child in &running {
        assert!(alive(pid(child)), "{child:#}");
    }
    let events = instance.events_since(since);
    let reloads: Vec<&Value> = events
        .iter()
        .filter(|e| {
            e["type"] == "reload"
                && e["operations"].as_array().is_some_and(|ops| {
                    ops.iter()
                        .any(|op| op.as_str().unwrap_or("").starts_with("start burst-"))
                })
        })
        .collect();
    eprintln!("the 50-file burst took {} reload(s)", reloads.len());
    assert!(
        (1..=5).contains(&reloads.len()),
        "a 50-file burst must apply in one reload (a few at most on a loaded machine), got {}: {reloads:#?}",
        reloads.len()
    );
    assert_eq!(
        reload_operations(&events)
            .iter()
            .filter(|op| op.starts_with("start burst-"))
            .count(),
        50
    );
    assert_bystander(&instance, bystander);
}

#[test]
fn a_removed_and_recreated_directory_is_applied_and_nothing_dies_in_between() {
    let (instance, bystander) = start(&[
        ("web.yaml", &sleeper("web", 1001)),
        ("gone.yaml", &sleeper("gone", 1004)),
    ]);
    let web = pid(&instance.ready("web"));
    let gone = pid(&instance.ready("gone"));
    let since = instance.last_seq();
    let stream = instance.event_stream(since);

    // Removed: the directory cannot be listed, which changes nothing (DESIGN §3: only a
    // settled rescan of a readable directory retires). A rescan is forced, and the directory
    // stays missing for three times the settle time: that is the situation under test, long
    // enough for a wrong hold to settle and retire.
    fs::remove_dir_all(&instance.dir).unwrap();
    instance.herder(&["reload"]).expect_code(0);
    stream
        .stdout
        .wait_json("the audit of `herder reload`", |e| {
            e["type"] == "command" && e["verb"] == "reload"
        });
    pass(Instant::now() + DEFAULT_SETTLE * 3);

    // Back exactly as it was, plus the marker, in one step (a copy renamed into place: a new
    // inode). Once the marker's reload is applied, whatever the missing directory caused is
    // in the events, and it must be nothing but the marker's start.
    let copy = instance.root.path().join("herder.d.new");
    fs::create_dir(&copy).unwrap();
    fs::write(copy.join("bystander.yaml"), BYSTANDER).unwrap();
    fs::write(copy.join("web.yaml"), sleeper("web", 1001)).unwrap();
    fs::write(copy.join("gone.yaml"), sleeper("gone", 1004)).unwrap();
    write_marker(&copy);
    fs::rename(&copy, &instance.dir).unwrap();
    let events = await_marker(&instance, &stream, since);
    assert_eq!(
        reload_operations(&events),
        [format!("start {MARKER}")],
        "the missing directory changed something: {events:#?}"
    );
    for (name, expected) in [("web", web), ("gone", gone), ("bystander", bystander)] {
        assert!(
            events_of(&events, name, "stopped").is_empty()
                && events_of(&events, name, "spawned").is_empty(),
            "{name} was stopped or spawned while the directory was missing: {events:#?}"
        );
        assert_eq!(
            pid(&instance.child(name)),
            expected,
            "{name} was touched while the directory was missing"
        );
        assert!(
            alive(expected),
            "{name} died while the directory was missing"
        );
    }
    assert_eq!(instance.status()["shutting_down"], false);

    // The recreated directory is watched: web changed applies, gone removed retires.
    let since = instance.last_seq();
    // One stream per awaited event: a stream is consumed in order, and the two may come in
    // either order.
    let (web_events, gone_events) = (instance.event_stream(since), instance.event_stream(since));
    fs::write(instance.dir.join("web.yaml"), sleeper("web", 1002)).unwrap();
    fs::remove_file(instance.dir.join("gone.yaml")).unwrap();
    let spawned = await_event(
        &web_events,
        "web",
        "spawned",
        "the recreated directory must be watched and applied",
    );
    assert_ne!(pid(&spawned), web);
    await_event(
        &gone_events,
        "gone",
        "stopped",
        "a file removed from the recreated directory retires its child",
    );
    wait_dead(gone, "the retired child");
    instance.wait_gone("gone", "its retire was applied");
    let after = instance.ready_with_new_pid("web", web, "its replacement was spawned");
    assert_eq!(pid(&after), pid(&spawned));
    // Checked once ready: right after the spawn the pid may not have exec'd yet.
    assert_eq!(
        api_support::cmdline(pid(&after) as i32).as_deref(),
        Some("sleep 1002")
    );
    assert!(
        reload_operations(&instance.events_since(since)).contains(&"retire gone".to_owned()),
        "{:#?}",
        instance.events_since(since)
    );
    assert_bystander(&instance, bystander);
}

#[test]
fn rotating_a_secret_replaces_only_its_user_and_never_shows_the_value() {
    const OLD: &str = "hunter2-OLD-c0ffee";
    const NEW: &str = "hunter2-NEW-bada55";
    const OTHER: &str = "hunter2-ALT-f00d";
    let mut instance = Instance::prepare(&[("bystander.yaml", BYSTANDER)]);
    let root = instance.root.path().to_owned();
    let secrets = root.join("secrets");
    fs::create_dir(&secrets).unwrap();
    fs::write(secrets.join("token"), OLD).unwrap();
    let api = format!(
        r#"name: api
command: ["sh", "-c", "printf %s \"$API_TOKEN\" > {root}/seen-$$; exec sleep 1000"]
secrets: [{{name: token, file: ../secrets/token}}]
environment:
  - {{name: API_TOKEN, secret_ref: token}}
stop: {{timeout: 2s}}
"#,
        root = root.display()
    );
    fs::write(instance.dir.join("api.yaml"), &api).unwrap();
    fs::write(instance.dir.join("worker.yaml"), sleeper("worker", 1006)).unwrap();
    instance.launch();
    let bystander = pid(&instance.ready("bystander"));
    let before = pid(&instance.ready("api"));
    let worker = pid(&instance.ready("worker"));
    let seen = |pid: i64| {
        wait_until(
            &format!("api (pid {pid}) to write the token it got"),
            String::new,
            || {
                fs::read_to_string(root.join(format!("seen-{pid}")))
                    .ok()
                    .filter(|s| !s.is_empty())
            },
        )
    };
    assert_eq!(seen(before), OLD);

    let since = instance.last_seq();
    write_atomic(&secrets, "token", NEW);
    let after = pid(&instance.ready_with_new_pid(
        "api",
        before,
        "a rotated secret must replace the child that uses it",
    ));
    assert_eq!(seen(after), NEW, "the new process got the old secret");
    wait_dead(before, "the process with the old secret");
    assert_eq!(
        pid(&instance.child("worker")),
        worker,
        "worker uses no secret"
    );
    assert!(reload_operations(&instance.events_since(since)).contains(&"replace api".to_owned()));

    // What a plan of another directory shows: the secret changed, not its value.
    let alt = root.join("alt");
    fs::create_dir_all(alt.join("herder.d")).unwrap();
    fs::create_dir_all(alt.join("secrets")).unwrap();
    fs::write(alt.join("secrets/token"), OTHER).unwrap();
    fs::write(alt.join("herder.d/api.yaml"), &api).unwrap();
    let alt_dir = alt.join("herder.d");
    let plan_human = instance
        .herder(&["plan", alt_dir.to_str().unwrap()])
        .expect_code(0)
        .stdout;
    assert!(
        plan_human.contains("secret changed"),
        "the plan does not say the secret changed: {plan_human}"
    );
    let plan_json = instance
        .herder(&["plan", alt_dir.to_str().unwrap(), "--format", "json"])
        .expect_code(0)
        .stdout;

    let outputs = [
        ("events", instance.herder(&["events", "-n", "10000"]).stdout),
        (
            "events json",
            instance
                .herder(&["events", "--format", "json", "-n", "10000"])
                .stdout,
        ),
        ("status", instance.herder(&["status"]).stdout),
        ("status json", instance.status().to_string()),
        (
            "child detail",
            instance.api_get("/v1/children/api").1.to_string(),
        ),
        ("plan", instance.herder(&["plan"]).stdout),
        ("plan json", instance.api_get("/v1/plan").1.to_string()),
        ("alt plan", plan_human),
        ("alt plan json", plan_json),
        ("herder up stderr", instance.stderr.all()),
        (
            "events.jsonl",
            fs::read_to_string(instance.state_dir().join("events.jsonl")).unwrap(),
        ),
    ];
    for (what, text) in &outputs {
        for value in [OLD, NEW, OTHER] {
            assert!(
                !text.contains(value),
                "the secret value leaked into {what}:\n{text}"
            );
        }
    }
    assert_bystander(&instance, bystander);
}

fn replica_pids(instance: &Instance) -> BTreeMap<String, i64> {
    instance.status()["children"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"].as_str().unwrap().starts_with("r-") && c["state"] == "ready")
        .map(|c| (c["name"].as_str().unwrap().to_owned(), pid(c)))
        .collect()
}

fn wait_replicas(instance: &Instance, names: &[&str]) -> BTreeMap<String, i64> {
    wait_until(
        &format!("exactly the replicas {names:?} to be ready"),
        || instance.context(),
        || {
            let pids = replica_pids(instance);
            let listed = instance.status()["children"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["name"].as_str().unwrap().starts_with("r-"))
                .count();
            (pids.keys().map(String::as_str).eq(names.iter().copied()) && listed == names.len())
                .then_some(pids)
        },
    )
}

#[test]
fn scaling_replicas_starts_and_retires_only_the_highest() {
    let replicas = |n: u32| {
        format!("name: r\ncommand: [\"sleep\", \"1007\"]\nreplicas: {n}\nstop: {{timeout: 2s}}\n")
    };
    let (instance, bystander) = start(&[("r.yaml", &replicas(3))]);
    let three = wait_replicas(&instance, &["r-0", "r-1", "r-2"]);

    write_atomic(&instance.dir, "r.yaml", &replicas(5));
    let five = wait_replicas(&instance, &["r-0", "r-1", "r-2", "r-3", "r-4"]);
    for (name, pid) in &three {
        assert_eq!(five[name], *pid, "scaling up restarted {name}");
    }

    write_atomic(&instance.dir, "r.yaml", &replicas(2));
    let two = wait_replicas(&instance, &["r-0", "r-1"]);
    for (name, pid) in &two {
        assert_eq!(three[name], *pid, "scaling down restarted {name}");
    }
    for name in ["r-2", "r-3", "r-4"] {
        wait_dead(five[name], "a retired replica");
    }
    assert_bystander(&instance, bystander);
}

#[test]
fn start_first_keeps_the_old_process_serving_until_the_new_one_is_ready() {
    let mut instance = Instance::prepare(&[("bystander.yaml", BYSTANDER)]);
    let root = instance.root.path().to_owned();
    let web = |seconds: u32, probe: &str, timeout: &str| {
        format!(
            r#"name: web
command: ["sleep", "{seconds}"]
update: start-first
start_timeout: {timeout}
readiness:
  exec: {{command: {probe}}}
  interval: 100ms
  timeout: 1s
stop: {{timeout: 2s}}
"#
        )
    };
    let gate = |n: u32| {
        format!(
            "[\"test\", \"-f\", \"{}\"]",
            root.join(format!("go-{n}")).display()
        )
    };
    fs::write(root.join("go-1"), "").unwrap();
    fs::write(instance.dir.join("web.yaml"), web(1001, &gate(1), "30s")).unwrap();
    instance.launch();
    let bystander = pid(&instance.ready("bystander"));
    let first = instance.ready("web");

    // The new incarnation starts beside the old one and is not ready (go-2 missing).
    let since = instance.last_seq();
    write_atomic(&instance.dir, "web.yaml", &web(1002, &gate(2), "60s"));
    let spawned = instance.wait_event(since, "start-first to spawn the new incarnation", |e| {
        e["child"] == "web" && e["type"] == "spawned"
    });
    let new_pid = spawned["pid"].as_i64().unwrap();
    assert!(spawned["incarnation"].as_u64().unwrap() > incarnation(&first));
    assert_ne!(new_pid, pid(&first));
    // Both run, and the old one is what the status serves while the new one is not ready.
    assert!(alive(new_pid), "the new incarnation is gone");
    assert!(
        alive(pid(&first)),
        "start-first stopped the old process before the new one was ready"
    );
    let now = instance.child("web");
    assert_eq!(pid(&now), pid(&first), "{now:#}");
    assert!(
        events_of(&instance.events_since(since), "web", "stopped").is_empty(),
        "start-first stopped something before the new incarnation was ready"
    );

    // Ready: the new one takes over and the old one stops.
    fs::write(root.join("go-2"), "").unwrap();
    let second =
        instance.ready_with_new_pid("web", pid(&first), "the ready replacement takes over");
    assert_eq!(pid(&second), new_pid);
    wait_dead(
        pid(&first),
        "the old incarnation once its replacement is ready",
    );

    // A replacement that never becomes ready is given up and the old one keeps serving.
    let since = instance.last_seq();
    write_atomic(&instance.dir, "web.yaml", &web(1003, "[\"false\"]", "1s"));
    let spawned = instance.wait_event(since, "the doomed incarnation to spawn", |e| {
        e["child"] == "web" && e["type"] == "spawned"
    });
    let doomed = spawned["incarnation"].as_u64().unwrap();
    let doomed_pid = spawned["pid"].as_i64().unwrap();
    instance.wait_event(
        since,
        "the never-ready incarnation to be given up and stopped (restarted by policy instead?)",
        |e| e["type"] == "stopped" && e["incarnation"] == doomed,
    );
    let events = instance.events_since(since);
    assert!(
        events.iter().any(|e| e["incarnation"] == doomed
            && e["type"] == "unhealthy"
            && e["reason"].as_str().unwrap_or("").contains("start timeout")),
        "the doomed incarnation did not reach its start timeout: {events:#?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["incarnation"] == doomed && e["type"] == "spawned")
            .count(),
        1,
        "a start-first replacement that never became ready was restarted: {events:#?}"
    );
    wait_dead(doomed_pid, "the never-ready incarnation");
    let serving = instance.child("web");
    assert_eq!(
        pid(&serving),
        pid(&second),
        "the old incarnation must keep serving: {serving:#}"
    );
    assert_eq!(serving["state"], "ready");
    assert!(alive(pid(&second)));
    assert_bystander(&instance, bystander);
}

#[test]
fn dependents_with_restart_true_restart_after_their_dependency_is_replaced() {
    let app = "name: app\ncommand: [\"sleep\", \"1011\"]\ndependencies:\n  - {name: db, restart: true}\nstop: {timeout: 2s}\n";
    let peer =
        "name: peer\ncommand: [\"sleep\", \"1012\"]\ndependencies: [db]\nstop: {timeout: 2s}\n";
    let (instance, bystander) = start(&[
        ("db.yaml", &sleeper("db", 1010)),
        ("app.yaml", app),
        ("peer.yaml", peer),
    ]);
    let db = instance.ready("db");
    let app_pid = pid(&instance.ready("app"));
    let peer_pid = pid(&instance.ready("peer"));
    let since = instance.last_seq();

    write_atomic(&instance.dir, "db.yaml", &sleeper("db", 1013));
    let new_db = instance.ready_with_new_pid("db", pid(&db), "db's command changed");
    let new_app = instance.ready_with_new_pid(
        "app",
        app_pid,
        "app declares `restart: true` on db, which was replaced",
    );
    wait_dead(app_pid, "app's old process");
    let events = instance.events_since(since);
    let db_ready = events
        .iter()
        .find(|e| {
            e["child"] == "db" && e["type"] == "ready" && e["incarnation"] == new_db["incarnation"]
        })
        .unwrap_or_else(|| panic!("no ready event of the new db: {events:#?}"));
    let app_spawn = events
        .iter()
        .find(|e| e["child"] == "app" && e["type"] == "spawned" && e["pid"] == new_app["pid"])
        .unwrap_or_else(|| panic!("no spawn event of the new app: {events:#?}"));
    assert!(
        app_spawn["seq"].as_u64() > db_ready["seq"].as_u64(),
        "app restarted before the new db was ready: {events:#?}"
    );
    assert_eq!(
        pid(&instance.child("peer")),
        peer_pid,
        "peer (no `restart: true`) must keep its process"
    );
    assert_bystander(&instance, bystander);
}
