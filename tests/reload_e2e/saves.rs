//! Saves the ways tools make them: atomic renames, vim, a ConfigMap `..data` swap, a burst, a recreated directory.

use super::*;

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
