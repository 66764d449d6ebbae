//! Counters that only the event log knows: restarts and exits by reason, OOM kills, and
//! the latency of every reload (a histogram, where the status report keeps only the last).
//!
//! One task per [`Tally`] reads the event log from its first event, then follows it, so the
//! counts cover the whole run of herder whenever the first scrape comes. A reload event is
//! followed by one status request to learn that reload's latency. Events are told apart by
//! their serialized `type`, so kinds added later (`oom-killed`) are counted by name.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::exposition::Histogram;
use crate::events::{Event, EventKind};
use crate::reconcile::Control;
use crate::reconcile::control::Request;

/// The most series one counter keeps (children × reasons); further ones are not added, and
/// [`Counts::dropped_series`] says how many were refused.
pub const MAX_SERIES: usize = 10_000;

/// Upper bounds of the reload latency buckets, in seconds.
pub const RELOAD_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// What the event log has counted so far.
#[derive(Clone, Debug)]
pub struct Counts {
    /// Restarts by `(child, reason)`; reason `automatic` (the restart policy) or
    /// `requested` (an allowed `restart` command).
    pub restarts: BTreeMap<(String, &'static str), u64>,
    /// Exits by `(child, reason)`; reason `success`, `failure` (a non-zero code) or `signal`.
    pub exits: BTreeMap<(String, &'static str), u64>,
    /// OOM kills by child (`oom-killed` events).
    pub oom_kills: BTreeMap<String, u64>,
    /// Reload latency, change noticed → plan applied, in seconds.
    pub reload_seconds: Histogram,
    /// Series refused because a counter already held [`MAX_SERIES`].
    pub dropped_series: u64,
    reloads_seen: u64,
}

impl Default for Counts {
    fn default() -> Self {
        Self {
            restarts: BTreeMap::new(),
            exits: BTreeMap::new(),
            oom_kills: BTreeMap::new(),
            reload_seconds: Histogram::new(&RELOAD_BUCKETS),
            dropped_series: 0,
            reloads_seen: 0,
        }
    }
}

/// The counts, shared by the task that feeds them and the scrapes that read them.
#[derive(Debug, Default)]
pub struct Tally {
    counts: Mutex<Counts>,
}

impl Tally {
    /// Starts counting the events of `control`'s log; the task ends when `closing` is
    /// cancelled or the log closes.
    pub fn spawn(control: Control, closing: CancellationToken) -> Arc<Self> {
        let tally = Arc::new(Self::default());
        tokio::spawn(feed(Arc::clone(&tally), control, closing));
        tally
    }

    /// A copy of the counts now.
    pub fn snapshot(&self) -> Counts {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one event; `true` when it was a reload (whose latency the caller fetches).
    fn count(&self, event: &Event) -> bool {
        let Some(child) = event.child.as_deref() else {
            return matches!(event.kind, EventKind::Reload { .. });
        };
        let mut counts = self.lock();
        let counts = &mut *counts;
        match &event.kind {
            EventKind::Restarting { .. } => bump(
                &mut counts.restarts,
                (child, "automatic"),
                &mut counts.dropped_series,
            ),
            EventKind::Command { verb, allowed, .. } if verb == "restart" && *allowed => bump(
                &mut counts.restarts,
                (child, "requested"),
                &mut counts.dropped_series,
            ),
            EventKind::Exited { code, signal } => {
                let reason = match (code, signal) {
                    (Some(0), _) => "success",
                    (_, Some(_)) => "signal",
                    _ => "failure",
                };
                bump(
                    &mut counts.exits,
                    (child, reason),
                    &mut counts.dropped_series,
                );
            }
            kind if type_name(kind).as_deref() == Some("oom-killed") => {
                if counts.oom_kills.len() < MAX_SERIES || counts.oom_kills.contains_key(child) {
                    *counts.oom_kills.entry(child.to_owned()).or_default() += 1;
                } else {
                    counts.dropped_series += 1;
                }
            }
            _ => {}
        }
        matches!(event.kind, EventKind::Reload { .. })
    }

    /// Records the latency of reloads the status report counts and this tally has not seen.
    fn reloaded(&self, reloads: u64, last_reload_ms: Option<f64>) {
        let mut counts = self.lock();
        if reloads > counts.reloads_seen {
            counts.reloads_seen = reloads;
            if let Some(ms) = last_reload_ms {
                counts.reload_seconds.observe(ms / 1000.0);
            }
        }
    }
}

/// Adds one to `key`'s series, unless that would make more than [`MAX_SERIES`].
fn bump(
    map: &mut BTreeMap<(String, &'static str), u64>,
    (child, reason): (&str, &'static str),
    dropped: &mut u64,
) {
    let key = (child.to_owned(), reason);
    if map.len() < MAX_SERIES || map.contains_key(&key) {
        *map.entry(key).or_default() += 1;
    } else {
        *dropped += 1;
    }
}

/// An event kind's `type` as the API spells it.
fn type_name(kind: &EventKind) -> Option<String> {
    let value = serde_json::to_value(kind).ok()?;
    value.get("type")?.as_str().map(str::to_owned)
}

async fn feed(tally: Arc<Tally>, control: Control, closing: CancellationToken) {
    let events = Arc::clone(&control.events);
    let (backlog, mut live) = events.subscribe_since(0);
    let mut last = 0;
    let mut reload = false;
    for event in backlog {
        last = event.seq;
        reload |= tally.count(&event);
    }
    loop {
        if std::mem::take(&mut reload)
            && let Some((reloads, last_ms)) = control.ask(|reply| Request::Reloads { reply }).await
        {
            tally.reloaded(reloads, last_ms);
        }
        let received = tokio::select! {
            received = live.recv() => received,
            () = closing.cancelled() => return,
        };
        match received {
            Ok(event) if event.seq > last => {
                last = event.seq;
                reload = tally.count(&event);
            }
            Ok(_) => {}
            // Behind the live buffer: what is still in the ring is counted from there.
            Err(RecvError::Lagged(_)) => {
                for event in events.since(last, usize::MAX) {
                    last = event.seq;
                    reload |= tally.count(&event);
                }
            }
            Err(RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(child: &str, kind: EventKind) -> Event {
        Event {
            seq: 1,
            time: String::new(),
            child: Some(child.to_owned()),
            incarnation: Some(1),
            kind,
        }
    }

    #[test]
    fn counts_restarts_and_exits_by_reason() {
        let tally = Tally::default();
        for kind in [
            EventKind::Restarting {
                attempt: 1,
                delay_ms: 10,
            },
            EventKind::Command {
                verb: "restart".into(),
                uid: 0,
                pid: None,
                reason: None,
                allowed: true,
            },
            EventKind::Command {
                verb: "restart".into(),
                uid: 0,
                pid: None,
                reason: None,
                allowed: false,
            },
            EventKind::Exited {
                code: Some(0),
                signal: None,
            },
            EventKind::Exited {
                code: Some(3),
                signal: None,
            },
            EventKind::Exited {
                code: None,
                signal: Some(9),
            },
        ] {
            assert!(!tally.count(&event("web", kind)));
        }
        let counts = tally.snapshot();
        assert_eq!(counts.restarts[&("web".to_owned(), "automatic")], 1);
        assert_eq!(counts.restarts[&("web".to_owned(), "requested")], 1);
        for reason in ["success", "failure", "signal"] {
            assert_eq!(counts.exits[&("web".to_owned(), reason)], 1, "{reason}");
        }
        tally.reloaded(2, Some(3.0));
        tally.reloaded(2, Some(3.0));
        assert_eq!(tally.snapshot().reload_seconds.count(), 1);
    }
}
