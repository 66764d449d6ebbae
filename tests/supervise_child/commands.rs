//! Commands and updates on a running child, open files, dropping the handle, the state file.

use super::*;

#[tokio::test]
async fn pause_resume_signal_and_restart_commands() {
    let mut h = Harness::new();
    let child = h.start(json!({"name": "cmds", "command": "trap 'echo got-usr1' USR1; echo armed; while :; do sleep 0.05; done"}));
    let pid = spawned_pid(h.until("spawn", is_spawned).await);
    // Signals sent before the trap is set would kill the shell.
    wait_for_line(&h, "cmds", |l| l == "armed").await;
    timeout(WAIT, child.pause())
        .await
        .expect("pause")
        .expect("ok");
    assert!(child.snapshot().paused);
    // A shell blocked in vfork() for a stopped child shows `D`, not `T`: accept it, as long as some member is `T`.
    wait_for_group(
        pid,
        |states| states.contains(&'T') && states.iter().all(|s| matches!(s, 'T' | 'D')),
        "the group to stop",
    )
    .await;
    timeout(WAIT, child.resume())
        .await
        .expect("resume")
        .expect("ok");
    assert!(!child.snapshot().paused);
    wait_for_group(
        pid,
        |states| !states.contains(&'T'),
        "the group to continue",
    )
    .await;
    timeout(WAIT, child.signal(nix::sys::signal::Signal::SIGUSR1))
        .await
        .expect("signal")
        .expect("ok");
    wait_for_line(&h, "cmds", |l| l == "got-usr1").await;
    timeout(WAIT, child.restart())
        .await
        .expect("restart")
        .expect("ok");
    let second = spawned_pid(h.until("respawn", is_spawned).await);
    assert_ne!(pid, second);
    assert!(!os::group_exists(pid));
    assert_eq!(child.snapshot().restarts, 1);
}

/// Signal delivery is asynchronous and has no event to wait on: re-read `/proc` every 10 ms, bounded.
async fn wait_for_group(pgid: i32, pred: impl Fn(&[char]) -> bool, what: &str) {
    let states = || -> Vec<char> {
        proc::all_stats()
            .into_iter()
            .filter(|(_, s)| s.pgrp == pgid)
            .map(|(_, s)| s.state)
            .collect()
    };
    let reached = timeout(WAIT, async {
        while !pred(&states()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        reached.is_ok(),
        "timed out waiting for {what}: {:?}",
        states()
    );
}

#[tokio::test]
async fn update_in_place_changes_policy_without_a_new_process() {
    let mut h = Harness::new();
    let child = h.start(json!({"name": "upd", "command": ["sleep", "1000"], "restart": "always"}));
    let pid = spawned_pid(h.until("spawn", is_spawned).await);
    let spec = h.spec(json!({"name": "upd", "command": ["sleep", "1000"], "restart": "never", "logs": {"max_size": "1Mi", "keep": 1}}));
    timeout(WAIT, child.update(spec))
        .await
        .expect("update")
        .expect("ok");
    assert_eq!(child.snapshot().pid, Some(pid), "same process");
    timeout(WAIT, child.signal(nix::sys::signal::Signal::SIGKILL))
        .await
        .expect("signal")
        .expect("ok");
    let k = h
        .until("failure", |k| matches!(k, ChildEventKind::Failed { .. }))
        .await;
    assert_eq!(
        k,
        ChildEventKind::Failed {
            reason: "killed by SIGKILL".into()
        },
        "policy `never` applied"
    );
}

#[tokio::test]
async fn open_files_applies_to_the_running_process() {
    let mut h = Harness::new();
    let child = h.start(json!({"name": "nofile", "command": ["sleep", "1000"]}));
    let pid = spawned_pid(h.until("spawn", is_spawned).await);
    let spec = h.spec(json!({"name": "nofile", "command": ["sleep", "1000"], "resource_limits": {"open_files": 77}}));
    timeout(WAIT, child.update(spec))
        .await
        .expect("update")
        .expect("ok");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("open files line");
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>()[3..5],
        ["77", "77"],
        "prlimit applied live: {line}"
    );
    assert_eq!(child.snapshot().pid, Some(pid), "same process");
}

#[tokio::test]
async fn dropping_the_handle_stops_the_process() {
    let mut h = Harness::new();
    let child = h.start(json!({"name": "orphan", "command": ["sleep", "1000"]}));
    let pid = spawned_pid(h.until("spawn", is_spawned).await);
    drop(child);
    h.until("stopped", |k| matches!(k, ChildEventKind::Stopped { .. }))
        .await;
    assert!(!os::group_exists(pid));
}

#[tokio::test]
async fn state_file_lets_the_next_start_kill_leftovers() {
    let h = Harness::new();
    let path: PathBuf = h.path().join("children.json");
    let spawner = herder::supervise::spawn::Spawner::global().expect("spawner");
    let spawned = spawner
        .spawn(herder::supervise::spawn::SpawnRequest {
            program: herder::supervise::spawn::Program {
                command: herder::supervise::spawn::Command::Argv(vec![
                    "sleep".into(),
                    "1000".into(),
                ]),
                env: vec![],
                cwd: h.path().to_path_buf(),
                user: None,
                group: None,
            },
            nofile: None,
            output: herder::supervise::spawn::Output::Null,
            cgroups: Vec::new(),
            extra_fd: None,
        })
        .await
        .expect("spawn");
    let sf = herder::supervise::statefile::StateFile::open(path.clone()).expect("state file");
    sf.record("left", spawned.pid, spawned.start_time.expect("start time"));
    let flushing = sf.clone();
    timeout(WAIT, tokio::task::spawn_blocking(move || flushing.flush()))
        .await
        .expect("flushed")
        .expect("join");
    assert!(
        std::fs::read_to_string(&path).is_ok_and(|t| t.contains("\"left\"")),
        "state file written"
    );
    drop(sf);
    let leftovers = herder::supervise::statefile::kill_leftovers(&path).expect("cleanup");
    assert_eq!(leftovers.len(), 1);
    let status = timeout(WAIT, spawned.exit)
        .await
        .expect("killed")
        .expect("status");
    assert_eq!(status.signal, Some(libc::SIGKILL));
    assert!(!path.exists());
}
