//! Timing of the child actor under a paused tokio clock, with a fake [`Launcher`]: exact, and instant in real
//! time. Behaviour with real processes is covered by `supervise_child.rs`; this only checks *when* things happen.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use herder::manifest::{ChildSpec, Manifest};
use herder::supervise::child::{ChildContext, ChildHandle, spawn_child};
use herder::supervise::event::{ChildEvent, ChildEventKind};
use herder::supervise::launcher::Launcher;
use herder::supervise::logs::LogBook;
use herder::supervise::os::ExitStatus;
use herder::supervise::spawn::{SpawnRequest, Spawned};
use nix::sys::signal::Signal;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, timeout};

/// Far above any real pid (Linux's pid_max is at most 2^22): a signal can never reach a real process.
const FAKE_PID: i32 = 1 << 30;

/// Spawns nothing: records when it was asked, hands the test the exit of the first "process" (the child) and
/// ends every later one (its probes) with success.
#[derive(Debug, Default)]
struct Fake {
    spawns: Mutex<Vec<Instant>>,
    exits: Mutex<Vec<oneshot::Sender<ExitStatus>>>,
}

impl Launcher for Fake {
    fn spawn(&self, _request: SpawnRequest) -> BoxFuture<'static, Result<Spawned, String>> {
        let (tx, exit) = oneshot::channel();
        let mut spawns = self.spawns.lock().unwrap();
        spawns.push(Instant::now());
        if spawns.len() == 1 {
            self.exits.lock().unwrap().push(tx);
        } else {
            // Every later spawn is an `exec` probe, which passes at once.
            let _ = tx.send(ExitStatus::exited(0));
        }
        let pid = FAKE_PID + spawns.len() as i32;
        Box::pin(async move {
            Ok(Spawned {
                pid,
                start_time: None,
                exit,
                stdout: None,
                stderr: None,
            })
        })
    }

    fn signal_group(&self, _pgid: i32, _signal: Signal) -> io::Result<bool> {
        Ok(true)
    }

    fn group_exists(&self, _pgid: i32) -> bool {
        false
    }

    fn reaps(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}

fn spec(dir: &std::path::Path, manifest: serde_json::Value) -> Arc<ChildSpec> {
    let manifest: Manifest = serde_json::from_value(manifest).expect("manifest");
    Arc::new(ChildSpec {
        name: manifest.name.clone(),
        replica: None,
        manifest: Arc::new(manifest),
        source: dir.join("m.yaml"),
        base_dir: dir.to_path_buf(),
        secret_digests: Default::default(),
    })
}

/// Starts the child of `manifest` on a fresh fake launcher; the handle keeps the actor alive.
fn start(
    manifest: serde_json::Value,
) -> (Arc<Fake>, mpsc::UnboundedReceiver<ChildEvent>, ChildHandle) {
    let (tx, events) = mpsc::unbounded_channel();
    let mut ctx = ChildContext::new(tx, Arc::new(LogBook::new(None)));
    let fake = Arc::new(Fake::default());
    ctx.launcher = fake.clone();
    // Nothing is read from the directory: the fake runs no command and the manifests hold no files.
    let child = spawn_child(spec(&std::env::temp_dir(), manifest), 1, &ctx);
    (fake, events, child)
}

async fn until(
    events: &mut mpsc::UnboundedReceiver<ChildEvent>,
    what: &str,
    pred: impl Fn(&ChildEventKind) -> bool,
) -> ChildEventKind {
    // Paused clock: this bound is virtual time, reached only if the actor waits for nothing else.
    loop {
        match timeout(Duration::from_secs(3600), events.recv()).await {
            Ok(Some(ev)) if pred(&ev.kind) => return ev.kind,
            Ok(Some(_)) => {}
            Ok(None) => panic!("event channel closed while waiting for {what}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_crash_is_respawned_after_exactly_the_backoff_delay() {
    let manifest = json!({
        "name": "crasher",
        "command": ["fake"],
        "restart": {"policy": "always", "backoff": {"initial": "7s", "max": "60s", "multiplier": 2.0, "jitter": 0.0}},
    });
    let (fake, mut events, _child) = start(manifest);
    until(&mut events, "the first spawn", |k| {
        matches!(k, ChildEventKind::Spawned { .. })
    })
    .await;
    let crashed_at = Instant::now();
    let exit = fake.exits.lock().unwrap().remove(0);
    exit.send(ExitStatus::exited(1))
        .expect("the actor waits for the exit");
    let delay = match until(&mut events, "the restart", |k| {
        matches!(k, ChildEventKind::Restarting { .. })
    })
    .await
    {
        ChildEventKind::Restarting { delay, .. } => delay,
        _ => unreachable!(),
    };
    assert_eq!(
        delay,
        Duration::from_secs(7),
        "the first backoff is `initial`"
    );
    until(&mut events, "the second spawn", |k| {
        matches!(k, ChildEventKind::Spawned { .. })
    })
    .await;
    let spawns = fake.spawns.lock().unwrap().clone();
    assert_eq!(spawns.len(), 2);
    assert_eq!(
        spawns[1] - crashed_at,
        Duration::from_secs(7),
        "respawned when the backoff ended, not before or later"
    );
}

#[tokio::test(start_paused = true)]
async fn readiness_passes_after_success_threshold_probes_one_interval_apart() {
    let manifest = json!({
        "name": "probed",
        "command": ["fake"],
        "readiness": {"exec": ["check"], "interval": "2s", "timeout": "1s", "success_threshold": 3},
        "start_timeout": "1h",
    });
    let (fake, mut events, _child) = start(manifest);
    until(&mut events, "the spawn", |k| {
        matches!(k, ChildEventKind::Spawned { .. })
    })
    .await;
    let spawned_at = Instant::now();
    until(&mut events, "readiness", |k| {
        matches!(k, ChildEventKind::Ready)
    })
    .await;
    assert_eq!(
        spawned_at.elapsed(),
        Duration::from_secs(4),
        "probes at 0 s, 2 s and 4 s"
    );
    let spawns = fake.spawns.lock().unwrap().clone();
    let probes: Vec<Duration> = spawns[1..].iter().map(|t| *t - spawns[0]).collect();
    let expected: Vec<Duration> = [0, 2, 4].map(Duration::from_secs).into();
    assert_eq!(
        probes, expected,
        "one probe per interval, the first at once"
    );
}

#[tokio::test(start_paused = true)]
async fn a_child_not_ready_in_time_is_failed_at_exactly_the_start_timeout() {
    let manifest = json!({
        "name": "slow",
        "command": ["fake"],
        // The fake has no output: this line never comes.
        "readiness": {"log_line": "^listening$"},
        "start_timeout": "30s",
    });
    let (_fake, mut events, _child) = start(manifest);
    until(&mut events, "the spawn", |k| {
        matches!(k, ChildEventKind::Spawned { .. })
    })
    .await;
    let spawned_at = Instant::now();
    let reason = match until(&mut events, "not ready", |k| {
        matches!(k, ChildEventKind::NotReady { .. })
    })
    .await
    {
        ChildEventKind::NotReady { reason } => reason,
        _ => unreachable!(),
    };
    assert_eq!(reason, "not ready before the start timeout");
    assert_eq!(
        spawned_at.elapsed(),
        Duration::from_secs(30),
        "not a moment before or after"
    );
}
