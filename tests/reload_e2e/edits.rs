//! Edits of one file: adding, changing, removing and renaming a manifest, and an invalid edit.

use super::*;

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
