//! The spawner and reaper with real processes.

use std::time::{Duration, Instant};

use herder::supervise::spawn::{Output, Program, SpawnError, SpawnRequest, Spawner};

fn request(program: Program) -> SpawnRequest {
    SpawnRequest {
        program,
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        cwd: std::env::temp_dir(),
        user: None,
        group: None,
        nofile: None,
        output: Output::Null,
    }
}

fn argv(args: &[&str]) -> Program {
    Program::Argv(args.iter().map(|s| s.to_string()).collect())
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
