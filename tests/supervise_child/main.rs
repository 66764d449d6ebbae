//! Child actors with real processes: restarts, stop escalation, probes, spawn errors, output capture, limits.
//!
//! Every wait is bounded and names the suspected bug. The test process becomes the subreaper (the spawner does
//! that on first use), so orphaned grandchildren are reparented here and the zombie check below is meaningful.

mod commands;
mod lifecycle;
mod output;
mod probes;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use herder::manifest::{ChildSpec, Manifest};
use herder::supervise::child::{ChildContext, ChildHandle, ChildState, spawn_child};
use herder::supervise::event::{ChildEvent, ChildEventKind};
use herder::supervise::logs::{LogBook, LogItem};
use herder::supervise::{os, proc};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

struct Harness {
    events: mpsc::UnboundedReceiver<ChildEvent>,
    ctx: ChildContext,
    dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tx, events) = mpsc::unbounded_channel();
        let logs = Arc::new(LogBook::new(Some(dir.path().join("logs"))));
        let mut ctx = ChildContext::new(tx, logs);
        ctx.seed = Some(7);
        Self { events, ctx, dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn spec(&self, manifest: serde_json::Value) -> Arc<ChildSpec> {
        let manifest: Manifest = serde_json::from_value(manifest).expect("manifest");
        Arc::new(ChildSpec {
            name: manifest.name.clone(),
            replica: None,
            manifest: Arc::new(manifest),
            source: self.path().join("m.yaml"),
            base_dir: self.path().to_path_buf(),
            secret_digests: Default::default(),
        })
    }

    fn start(&self, manifest: serde_json::Value) -> ChildHandle {
        spawn_child(self.spec(manifest), 1, &self.ctx)
    }

    /// Waits for the first event matching `pred`, returning it; fails with `what` on timeout.
    async fn until(
        &mut self,
        what: &str,
        pred: impl Fn(&ChildEventKind) -> bool,
    ) -> ChildEventKind {
        let found = timeout(WAIT, async {
            while let Some(ev) = self.events.recv().await {
                if pred(&ev.kind) {
                    return Some(ev.kind);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(kind)) => kind,
            Ok(None) => panic!("event channel closed while waiting for {what}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

/// Pids of every process in process group `pgid`.
fn group_members(pgid: i32) -> Vec<i32> {
    proc::all_stats()
        .into_iter()
        .filter(|(_, s)| s.pgrp == pgid)
        .map(|(pid, _)| pid)
        .collect()
}

/// Zombie children of this process.
fn zombies() -> Vec<i32> {
    let me = os::own_pid();
    proc::all_stats()
        .into_iter()
        .filter(|(_, s)| s.ppid == me && s.state == 'Z')
        .map(|(pid, _)| pid)
        .collect()
}

fn is_spawned(k: &ChildEventKind) -> bool {
    matches!(k, ChildEventKind::Spawned { .. })
}

fn spawned_pid(k: ChildEventKind) -> i32 {
    match k {
        ChildEventKind::Spawned { pid } => pid,
        other => panic!("expected Spawned, got {other:?}"),
    }
}

fn child_log_lines(h: &Harness, name: &str) -> Vec<String> {
    h.ctx
        .logs
        .tail(name, 100)
        .unwrap_or_default()
        .iter()
        .map(|l| l.text.to_string())
        .collect()
}

async fn wait_for_line(h: &Harness, name: &str, pred: impl Fn(&str) -> bool) -> String {
    let log = h.ctx.logs.get(name).expect("log exists");
    let (_, mut follow) = log.follow(None);
    if let Some(l) = log.tail(1000).into_iter().find(|l| pred(&l.text)) {
        return l.text.to_string();
    }
    timeout(WAIT, async {
        loop {
            match follow.recv().await {
                Some(LogItem::Line(l)) if pred(&l.text) => return l.text.to_string(),
                Some(_) => continue,
                None => panic!("log closed"),
            }
        }
    })
    .await
    .expect("the expected line arrives")
}
