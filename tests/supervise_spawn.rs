//! The spawner and reaper with real processes.

use std::time::{Duration, Instant};

use herder::supervise::spawn::{Command, Output, Program, SpawnError, SpawnRequest, Spawner};

fn request(command: Command) -> SpawnRequest {
    SpawnRequest {
        program: Program {
            command,
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            cwd: std::env::temp_dir(),
            user: None,
            group: None,
        },
        nofile: None,
        output: Output::Null,
        cgroups: Vec::new(),
        extra_fd: None,
    }
}

fn argv(args: &[&str]) -> Command {
    Command::Argv(args.iter().map(|s| s.to_string()).collect())
}

#[tokio::test]
async fn spawn_500_quickly() {
    let spawner = Spawner::global().expect("spawner");
    let start = Instant::now();
    let mut all = Vec::new();
    for _ in 0..500 {
        all.push(
            spawner
                .spawn(request(argv(&["sleep", "30"])))
                .await
                .expect("spawn"),
        );
    }
    eprintln!("500 spawns: {:?}", start.elapsed());
    for s in &all {
        herder::supervise::os::signal_group(s.pid, nix::sys::signal::Signal::SIGKILL)
            .expect("kill");
    }
    for s in all {
        let status = tokio::time::timeout(Duration::from_secs(10), s.exit)
            .await
            .expect("reaped in time")
            .expect("status");
        assert_eq!(status.signal, Some(9));
    }
}

#[tokio::test]
async fn missing_binary() {
    let err = Spawner::global()
        .expect("spawner")
        .spawn(request(argv(&["no-such-binary-xyz"])))
        .await
        .expect_err("fails");
    assert!(matches!(err, SpawnError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn children_inherit_only_their_standard_descriptors() {
    let spawner = Spawner::global().expect("spawner");
    // Descriptors herder holds open (like the pipe ends of running children) must not leak.
    let held: Vec<std::fs::File> = (0..64)
        .map(|_| std::fs::File::open("/dev/null").expect("open"))
        .collect();
    let mut sleeper = request(argv(&["sleep", "30"]));
    sleeper.output = Output::Piped;
    let spawned = spawner.spawn(sleeper).await.expect("spawn");
    let link = |fd: &str| std::fs::read_link(format!("/proc/{}/fd/{fd}", spawned.pid));
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", spawned.pid))
        .expect("fd listing")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for held in &held {
        let number = std::os::fd::AsRawFd::as_raw_fd(held).to_string();
        assert!(!fds.contains(&number), "fd {number} leaked: {fds:?}");
    }
    assert_eq!(link("0").expect("stdin").to_str(), Some("/dev/null"));
    for fd in ["1", "2"] {
        let target = link(fd).expect("stdout and stderr");
        assert!(target.to_string_lossy().starts_with("pipe:"), "{target:?}");
    }
    herder::supervise::os::signal_group(spawned.pid, nix::sys::signal::Signal::SIGKILL)
        .expect("kill");
    let status = tokio::time::timeout(Duration::from_secs(10), spawned.exit)
        .await
        .expect("reaped in time")
        .expect("status");
    assert_eq!(status.signal, Some(9));
    drop(held);
}

#[tokio::test]
async fn piped_output_reaches_the_pipes_and_ends_with_the_child() {
    let mut talker = request(argv(&["sh", "-c", "echo out; echo err >&2"]));
    talker.output = Output::Piped;
    let spawned = Spawner::global()
        .expect("spawner")
        .spawn(talker)
        .await
        .expect("spawn");
    let read_all = |pipe: Option<std::os::fd::OwnedFd>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(
                &mut std::fs::File::from(pipe.expect("piped")),
                &mut text,
            )
            .expect("read");
            text
        })
    };
    // End-of-file comes only once no one holds the write ends: herder must not.
    let (out, err) = (read_all(spawned.stdout), read_all(spawned.stderr));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(out.is_finished() && err.is_finished()) {
        assert!(
            Instant::now() < deadline,
            "no end-of-file on the child's pipes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(out.join().expect("stdout reader"), "out\n");
    assert_eq!(err.join().expect("stderr reader"), "err\n");
    let status = tokio::time::timeout(Duration::from_secs(10), spawned.exit)
        .await
        .expect("reaped in time")
        .expect("status");
    assert!(status.success());
}
