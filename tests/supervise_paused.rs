//! Timing of the child actor under a paused tokio clock, with a fake [`Launcher`]: exact, and instant in real
//! time. Behaviour with real processes is covered by `supervise_child.rs`; this only checks *when* things happen.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use herder::manifest::{ChildSpec, Manifest};
use herder::supervise::child::{ChildContext, spawn_child};
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

/// Spawns nothing: records when it was asked, and hands the test the exit of each "process".
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
        self.exits.lock().unwrap().push(tx);
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
    let dir = tempfile::tempdir().expect("tempdir");
    let (tx, mut events) = mpsc::unbounded_channel();
    let mut ctx = ChildContext::new(tx, Arc::new(LogBook::new(None)));
    let fake = Arc::new(Fake::default());
    ctx.launcher = fake.clone();
    let manifest = json!({
        "name": "crasher",
        "command": ["fake"],
        "restart": {"policy": "always", "backoff": {"initial": "7s", "max": "60s", "multiplier": 2.0, "jitter": 0.0}},
    });
    let _child = spawn_child(spec(dir.path(), manifest), 1, &ctx);
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
