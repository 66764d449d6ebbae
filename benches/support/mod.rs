//! Helpers the supervision benches share: a child spec from a JSON manifest, waiting for events, and
//! stopping every child.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herder::manifest::{ChildSpec, Manifest};
use herder::supervise::ChildHandle;
use herder::supervise::event::{ChildEvent, ChildEventKind};
use tokio::sync::mpsc;

/// A child spec named `name` from `manifest` (JSON), as if loaded from `dir/bench.yaml`.
pub fn spec(name: &str, manifest: serde_json::Value, dir: &Path) -> Arc<ChildSpec> {
    let manifest: Manifest = match serde_json::from_value(manifest) {
        Ok(m) => m,
        Err(e) => panic!("bench manifest: {e}"),
    };
    Arc::new(ChildSpec {
        name: name.into(),
        replica: None,
        manifest: Arc::new(manifest),
        source: dir.join("bench.yaml"),
        base_dir: dir.to_path_buf(),
        secret_digests: Default::default(),
    })
}

/// Waits for `count` events matching `pred`, each within `patience`. A cgroup fallback ends the bench: its
/// figures would not measure what they say (a context without cgroups never reports one).
pub async fn wait_for(
    events: &mut mpsc::UnboundedReceiver<ChildEvent>,
    mut count: usize,
    patience: Duration,
    pred: impl Fn(&ChildEventKind) -> bool,
) {
    while count > 0 {
        match tokio::time::timeout(patience, events.recv()).await {
            Ok(Some(ev)) if pred(&ev.kind) => count -= 1,
            Ok(Some(ChildEvent {
                kind: ChildEventKind::CgroupFallback { reason },
                ..
            })) => panic!("a child fell back: {reason}"),
            Ok(Some(_)) => {}
            Ok(None) => panic!("event channel closed"),
            Err(_) => panic!("timed out with {count} events missing"),
        }
    }
}

/// Stops every child at once and waits for all of them; how long that took.
pub async fn stop_all(handles: Vec<ChildHandle>) -> Duration {
    let start = Instant::now();
    let stops: Vec<_> = handles
        .iter()
        .map(|h| {
            let h = h.clone();
            tokio::spawn(async move { h.stop().await })
        })
        .collect();
    for s in stops {
        if !matches!(s.await, Ok(Ok(()))) {
            panic!("stop failed");
        }
    }
    start.elapsed()
}
