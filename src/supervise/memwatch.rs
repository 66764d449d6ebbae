//! The RSS watchdog: the memory limit when no cgroup enforces it.
//!
//! One thread serves every child that has a memory limit. While at least one is registered it scans `/proc`
//! once per [`PERIOD`], sums the resident memory of each registered process group and tells the owner, once,
//! when its group is over the limit. With nothing registered the thread blocks on a condition variable, so
//! children without a memory limit cost nothing. It is a thread, not a task, because it is process-wide and must
//! outlive any tokio runtime.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tokio::sync::oneshot;

use super::{os, proc};

/// Time between two scans.
pub const PERIOD: Duration = Duration::from_millis(500);

struct Entry {
    limit: u64,
    over: Option<oneshot::Sender<u64>>,
}

#[derive(Default)]
struct Shared {
    groups: Mutex<HashMap<i32, Entry>>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HashMap<i32, Entry>> {
        // Single inserts and removals cannot leave the map inconsistent.
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Keeps a process group watched; dropping it stops the watch.
#[derive(Debug)]
pub struct MemoryWatch {
    pgid: i32,
}

fn shared() -> Option<&'static Shared> {
    static WATCHDOG: OnceLock<Option<Shared>> = OnceLock::new();
    WATCHDOG
        .get_or_init(|| {
            let spawned = std::thread::Builder::new().name("herder-memwatch".into()).spawn(|| {
                // `shared()` is initialised before this thread can observe it: OnceLock blocks until then.
                if let Some(s) = shared() {
                    run(s);
                }
            });
            match spawned {
                Ok(_) => Some(Shared::default()),
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the memory watchdog; memory limits are not enforced");
                    None
                }
            }
        })
        .as_ref()
}

/// Watches process group `pgid`; the receiver fires with the measured RSS (bytes) once it exceeds `limit`.
/// `None` if the watchdog thread could not be started.
pub fn watch(pgid: i32, limit: u64) -> Option<(MemoryWatch, oneshot::Receiver<u64>)> {
    let s = shared()?;
    let (tx, rx) = oneshot::channel();
    s.lock().insert(
        pgid,
        Entry {
            limit,
            over: Some(tx),
        },
    );
    s.wake.notify_one();
    Some((MemoryWatch { pgid }, rx))
}

impl Drop for MemoryWatch {
    fn drop(&mut self) {
        if let Some(s) = shared() {
            s.lock().remove(&self.pgid);
        }
    }
}

fn run(s: &Shared) {
    let page = os::page_size();
    loop {
        {
            let mut groups = s.lock();
            while groups.is_empty() {
                groups = s.wake.wait(groups).unwrap_or_else(|p| p.into_inner());
            }
        }
        let mut rss: HashMap<i32, u64> = HashMap::new();
        for (_, st) in proc::all_stats() {
            *rss.entry(st.pgrp).or_default() += st.rss_pages * page;
        }
        {
            let mut groups = s.lock();
            for (pgid, entry) in groups.iter_mut() {
                let used = rss.get(pgid).copied().unwrap_or(0);
                if used > entry.limit
                    && let Some(tx) = entry.over.take()
                {
                    // The owner may be gone already; nothing to do then.
                    let _ = tx.send(used);
                }
            }
        }
        std::thread::sleep(PERIOD);
    }
}
