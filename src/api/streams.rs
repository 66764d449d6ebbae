//! The Server-Sent Event streams: the event log and a child's output.
//!
//! Every SSE event carries `id: <seq>`; a client resumes with the `Last-Event-ID` header
//! (or `?since=` / `?after=`) and gets exactly what followed. Both feeds subscribe to the
//! broadcast *before* reading the in-memory ring, so nothing falls between the replay and
//! the live part; duplicates are dropped by sequence number.
//!
//! A follower that falls behind the broadcast channel is not left with a silent gap: it
//! re-reads from the ring where it stopped. Only entries that have left the ring too are
//! lost to the stream, and then it says so with an `event: resync` whose data names the
//! missed range (`{"from": 12, "to": 40}`); they are still in `events.jsonl` or the
//! child's log file.
//!
//! Streams end when the server shuts down (so graceful shutdown never waits on a
//! follower), when a child's log is removed (the child was retired), or when the client
//! goes away: hyper then drops the stream and with it the subscription.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use super::error::HttpError;
use super::extract::{Params, Segments};
use super::server::AppState;
use super::wire::{LogEntry, Resync};
use crate::events::{Event, EventLog};
use crate::supervise::logs::{ChildLog, LogBook, LogFollower, LogItem, LogLine};

/// How often an idle stream sends a keep-alive comment (which also notices a client gone).
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// One step of a feed: an entry, or a range the stream could not deliver.
enum Item<T> {
    Entry(T),
    Resync(Resync),
}

/// The `Last-Event-ID` header, when it holds a sequence number.
fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, HttpError> {
    match headers.get("last-event-id") {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| HttpError::bad_request("`Last-Event-ID` must be a sequence number")),
    }
}

/// Orders entries by sequence number: drops what was already sent and turns a hole into
/// a [`Resync`].
struct Sequencer<T> {
    pending: VecDeque<T>,
    last: u64,
}

impl<T> Sequencer<T> {
    fn next(&mut self, seq: impl Fn(&T) -> u64) -> Option<Item<T>> {
        while let Some(entry) = self.pending.pop_front() {
            let n = seq(&entry);
            if n <= self.last {
                continue;
            }
            if n > self.last + 1 {
                let missed = Resync {
                    from: self.last + 1,
                    to: n - 1,
                };
                self.pending.push_front(entry);
                self.last = missed.to;
                return Some(Item::Resync(missed));
            }
            self.last = n;
            return Some(Item::Entry(entry));
        }
        None
    }
}

/// The event log from a sequence number on.
struct EventFeed {
    log: Arc<EventLog>,
    order: Sequencer<Arc<Event>>,
    receiver: broadcast::Receiver<Arc<Event>>,
}

impl EventFeed {
    fn new(log: Arc<EventLog>, since: u64) -> Self {
        let (replay, receiver) = log.subscribe_since(since);
        Self {
            log,
            order: Sequencer {
                pending: replay.into(),
                last: since,
            },
            receiver,
        }
    }

    async fn next(&mut self) -> Option<Item<Arc<Event>>> {
        loop {
            if let Some(item) = self.order.next(|event| event.seq) {
                return Some(item);
            }
            match self.receiver.recv().await {
                Ok(event) => self.order.pending.push_back(event),
                Err(RecvError::Lagged(_)) => {
                    // Fell behind the broadcast: re-read the ring from where we stopped.
                    let (replay, receiver) = self.log.subscribe_since(self.order.last);
                    self.order.pending = replay.into();
                    self.receiver = receiver;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

/// `?since=` of the event stream.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventStreamQuery {
    since: Option<u64>,
}

/// `GET /v1/events/stream`: the events after `Last-Event-ID` (or `?since=`), then every new
/// one. Without either, only new events. A sequence number beyond the newest one comes
/// from an earlier run of herder (numbers restart at 1): the stream then replays the ring.
pub(super) async fn events_stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(query): Params<EventStreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, HttpError> {
    let log = Arc::clone(&state.control.events);
    let last_seq = log.last_seq();
    let since = match last_event_id(&headers)?.or(query.since) {
        Some(since) if since > last_seq => 0,
        Some(since) => since,
        None => last_seq,
    };
    let feed = EventFeed::new(log, since);
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let item = feed.next().await?;
        Some((sse_event(item, |event| event.seq), feed))
    });
    Ok(sse(stream, state.closing.clone()))
}

/// The SSE form of a feed item: `id: seq` and JSON data, or `event: resync`.
fn sse_event<T: serde::Serialize>(
    item: Item<T>,
    seq: impl Fn(&T) -> u64,
) -> Result<SseEvent, Infallible> {
    Ok(match item {
        Item::Entry(entry) => {
            let event = SseEvent::default().id(seq(&entry).to_string());
            event
                .json_data(&entry)
                .unwrap_or_else(|_| SseEvent::default().comment("unserializable entry"))
        }
        Item::Resync(missed) => {
            let event = SseEvent::default()
                .event("resync")
                .id(missed.to.to_string());
            event
                .json_data(missed)
                .unwrap_or_else(|_| SseEvent::default().comment("unserializable resync"))
        }
    })
}

/// Wraps a feed: ends with the server, keep-alive comments while idle.
fn sse<S>(
    stream: S,
    closing: CancellationToken,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>>
where
    S: Stream<Item = Result<SseEvent, Infallible>> + Send + 'static,
{
    Sse::new(stream.take_until(closing.cancelled_owned()))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

/// A child's output from a line sequence number on.
struct LogFeed {
    log: Arc<ChildLog>,
    order: Sequencer<LogLine>,
    follower: LogFollower,
}

impl LogFeed {
    fn new(log: Arc<ChildLog>, after: u64) -> Self {
        let (backlog, follower) = log.follow(Some(after));
        Self {
            log,
            order: Sequencer {
                pending: backlog.into(),
                last: after,
            },
            follower,
        }
    }

    async fn next(&mut self) -> Option<Item<LogLine>> {
        loop {
            if let Some(item) = self.order.next(|line| line.seq) {
                return Some(item);
            }
            match self.follower.recv().await? {
                LogItem::Line(line) => self.order.pending.push_back(line),
                LogItem::Dropped(_) => {
                    // Fell behind: re-read the ring from where we stopped.
                    let (backlog, follower) = self.log.follow(Some(self.order.last));
                    self.order.pending = backlog.into();
                    self.follower = follower;
                }
            }
        }
    }
}

/// `?n=&after=` of the log stream.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LogStreamQuery {
    n: Option<usize>,
    after: Option<u64>,
}

/// `GET /v1/children/{name}/logs/stream`: the lines after `Last-Event-ID` (or `?after=`),
/// else the last `n` lines (default 10), then every new line. For a child that exists but
/// has not printed yet (not started), the stream waits for its output to appear.
pub(super) async fn logs_stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    Segments(name): Segments<String>,
    Params(query): Params<LogStreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, HttpError> {
    let resume = last_event_id(&headers)?.or(query.after);
    let tail = query.n.unwrap_or(10) as u64;
    let log = match state.logs.get(&name) {
        Some(log) => Some(log),
        None => {
            let report = state.status_report().await?;
            if !report.children.iter().any(|child| child.name == name) {
                return Err(state.unknown_child(&name).await);
            }
            None
        }
    };
    let events = Arc::clone(&state.control.events);
    let book = Arc::clone(&state.logs);
    let stream = futures_util::stream::once(async move {
        let log = match log {
            Some(log) => log,
            None => wait_for_log(&book, &events, &name).await?,
        };
        let after = resume.unwrap_or_else(|| log.next_seq().saturating_sub(tail + 1));
        Some(LogFeed::new(log, after))
    })
    .filter_map(|feed| async move { feed })
    .flat_map(|feed| {
        futures_util::stream::unfold(feed, |mut feed| async move {
            let item = feed.next().await?;
            let item = match item {
                Item::Entry(line) => Item::Entry(LogEntry::from(&line)),
                Item::Resync(missed) => Item::Resync(missed),
            };
            Some((sse_event(item, |entry| entry.seq), feed))
        })
    });
    Ok(sse(stream, state.closing.clone()))
}

/// Waits, without polling, until `name` has a log: its actor creates it when it spawns the
/// child, which the event log reports. `None` if the event log closes first.
async fn wait_for_log(book: &LogBook, events: &EventLog, name: &str) -> Option<Arc<ChildLog>> {
    let (_, mut receiver) = events.subscribe_since(events.last_seq());
    loop {
        // Checked after subscribing, so a spawn in between is not missed.
        if let Some(log) = book.get(name) {
            return Some(log);
        }
        // Any event (or a lag) is a cue to look again; the lookup is cheap.
        if let Err(RecvError::Closed) = receiver.recv().await {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventKind;

    #[test]
    fn the_sequencer_drops_duplicates_and_reports_holes() {
        let mut order = Sequencer {
            pending: VecDeque::from([3u64, 4, 4, 7, 8]),
            last: 3,
        };
        let mut seen = Vec::new();
        while let Some(item) = order.next(|n| *n) {
            seen.push(match item {
                Item::Entry(n) => format!("{n}"),
                Item::Resync(missed) => format!("resync {}-{}", missed.from, missed.to),
            });
        }
        assert_eq!(seen, ["4", "resync 5-6", "7", "8"]);
    }

    #[tokio::test]
    async fn a_lagging_event_feed_rereads_the_ring_without_loss() {
        let log = EventLog::open(None).unwrap();
        let mut feed = EventFeed::new(Arc::clone(&log), 0);
        // Far more than the broadcast channel holds, far less than the ring.
        for pid in 0..9000 {
            log.append(Some("a"), Some(1), EventKind::Spawned { pid });
        }
        for expected in 1..=9000 {
            match tokio::time::timeout(Duration::from_secs(5), feed.next()).await {
                Ok(Some(Item::Entry(event))) => assert_eq!(event.seq, expected),
                Ok(Some(Item::Resync(missed))) => panic!("unexpected resync {missed:?}"),
                Ok(None) | Err(_) => panic!("the feed stopped at {expected}"),
            }
        }
    }

    #[tokio::test]
    async fn a_feed_behind_the_ring_says_what_it_missed() {
        let log = EventLog::open(None).unwrap();
        let mut feed = EventFeed::new(Arc::clone(&log), 0);
        for _ in 0..crate::events::RING_CAPACITY + 5 {
            log.append(None, None, EventKind::Completed);
        }
        match feed.next().await {
            Some(Item::Resync(missed)) => assert_eq!((missed.from, missed.to), (1, 5)),
            _ => panic!("expected a resync first"),
        }
        match feed.next().await {
            Some(Item::Entry(event)) => assert_eq!(event.seq, 6),
            _ => panic!("expected event 6 after the resync"),
        }
    }
}
