//! `herder top`'s side of the control API: the streams that push updates, and the requests
//! its keys make.
//!
//! * The **event stream** drives everything: each event is shown, and asks for a fresh
//!   status report. Status requests are coalesced (one in flight, at most
//!   [`MAX_REFRESHES_PER_SECOND`]), so a burst of events across 1,000 children costs a few
//!   requests, not one each. Usage (CPU, memory) changes without events, so the status is
//!   also fetched every [`USAGE_REFRESH`]; nothing else polls.
//! * **Log streams** follow the pane's source: one child, or up to
//!   [`MAX_MERGED`](super::app::MAX_MERGED) children merged.
//! * When the instance goes away the streams end; `top` says so and reconnects with a
//!   backoff (250 ms doubling to 2 s), resuming the events after the last one seen.
//!
//! Every update goes to the UI loop on one bounded channel ([`UPDATES`]); a full channel
//! makes the readers wait, which is backpressure on the server's streams.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use super::app::{Effect, LogSource, Update};
use super::logview::LogEntry;
use super::model::{EventLine, LogLine, Status};
use crate::api::Client;
use crate::api::client::child_path;

/// Updates waiting for the UI loop at most.
pub const UPDATES: usize = 4096;

/// Status refreshes at most per second.
pub const MAX_REFRESHES_PER_SECOND: u32 = 10;

/// How often usage is refreshed without events.
pub const USAGE_REFRESH: Duration = Duration::from_secs(5);

/// Events shown from before `top` started.
const BACKLOG: u64 = 200;

/// The connection to one instance.
pub struct Connection {
    client: Client,
    updates: mpsc::Sender<Update>,
    logs: (LogSource, Vec<JoinHandle<()>>),
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        for task in self.tasks.iter().chain(&self.logs.1) {
            task.abort();
        }
    }
}

impl Connection {
    /// Connects to `client`'s instance; updates arrive on the receiver.
    pub fn start(client: Client) -> (Self, mpsc::Receiver<Update>) {
        let (updates, receiver) = mpsc::channel(UPDATES);
        let refresh = Arc::new(Notify::new());
        let tasks = vec![
            tokio::spawn(watch(client.clone(), updates.clone(), Arc::clone(&refresh))),
            tokio::spawn(refresher(client.clone(), updates.clone(), refresh)),
        ];
        let connection = Self {
            client,
            updates,
            logs: (LogSource::None, Vec::new()),
            tasks,
        };
        (connection, receiver)
    }

    /// Follows `source` in the log pane; `again` re-opens the same source (after a
    /// reconnect). Returns whether the pane must start over.
    pub fn follow_logs(&mut self, source: LogSource, again: bool) -> bool {
        if self.logs.0 == source && !again {
            return false;
        }
        for task in self.logs.1.drain(..) {
            task.abort();
        }
        let names = match &source {
            LogSource::None => Vec::new(),
            LogSource::Child(name) => vec![name.clone()],
            LogSource::Merged(names) => names.clone(),
        };
        let backlog = if names.len() > 1 { 20 } else { 200 };
        self.logs.1 = names
            .into_iter()
            .map(|name| {
                tokio::spawn(follow(
                    self.client.clone(),
                    name,
                    backlog,
                    self.updates.clone(),
                ))
            })
            .collect();
        self.logs.0 = source;
        true
    }

    /// Carries out what a key asked for; the answer comes back as an update.
    pub fn carry_out(&self, effect: Effect) {
        let client = self.client.clone();
        let updates = self.updates.clone();
        tokio::spawn(async move {
            let update = match effect {
                Effect::Quit => return,
                Effect::Detail(name) => match client.get::<Value>(&child_path(&name, "")).await {
                    Ok(detail) => Update::Detail(name, detail),
                    Err(error) => Update::Outcome(format!("{name}: {error}")),
                },
                Effect::Plan => match client.get::<Value>("/v1/plan?format=human").await {
                    Ok(plan) => Update::Plan(plan_text(&plan)),
                    Err(error) => Update::Outcome(format!("plan: {error}")),
                },
                Effect::Command {
                    verb,
                    children,
                    reason,
                    signal,
                } => {
                    Update::Outcome(command(&client, verb.as_str(), children, reason, signal).await)
                }
            };
            let _ = updates.send(update).await;
        });
    }
}

/// The plan's text and its diagnostics.
fn plan_text(plan: &Value) -> String {
    let mut text = plan["text"].as_str().unwrap_or("").to_owned();
    if let Some(diagnostics) = plan["diagnostics"].as_array().filter(|d| !d.is_empty()) {
        text.push_str(&format!(
            "\n{} file(s) with errors are left out:\n",
            diagnostics.len()
        ));
        for diagnostic in diagnostics {
            text.push_str(&format!(
                "  {}:{}:{} {}\n",
                diagnostic["file"].as_str().unwrap_or("?"),
                diagnostic["line"],
                diagnostic["column"],
                diagnostic["message"].as_str().unwrap_or("")
            ));
        }
    }
    if text.trim().is_empty() {
        text = "nothing to do: what runs is what the directory says".to_owned();
    }
    text
}

/// Sends one command (one child) or a batch; the outcome as a line for the status bar.
async fn command(
    client: &Client,
    verb: &str,
    children: Vec<String>,
    reason: Option<String>,
    signal: Option<String>,
) -> String {
    let mut body = json!({});
    if let Some(reason) = reason {
        body["reason"] = json!(reason);
    }
    if let Some(signal) = signal {
        body["signal"] = json!(signal);
    }
    if let [name] = children.as_slice() {
        let path = child_path(name, &format!("/{verb}"));
        return match client.post::<_, Value>(&path, &body).await {
            Ok(_) => format!("{verb} {name}: accepted"),
            Err(error) => format!("{verb} {name}: {error}"),
        };
    }
    let count = children.len();
    body["children"] = json!(children);
    match client
        .post::<_, Value>(&format!("/v1/commands/{verb}"), &body)
        .await
    {
        Ok(answer) => {
            let refused: Vec<String> = answer["results"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|result| result["ok"] != json!(true))
                .map(|result| {
                    format!(
                        "{} ({})",
                        result["child"].as_str().unwrap_or("?"),
                        result["error"]["message"].as_str().unwrap_or("refused")
                    )
                })
                .collect();
            if refused.is_empty() {
                format!("{verb} {count} children: accepted")
            } else {
                format!("{verb}: refused for {}", refused.join(", "))
            }
        }
        Err(error) => format!("{verb}: {error}"),
    }
}

/// Follows the event log, reconnecting whenever it ends.
async fn watch(client: Client, updates: mpsc::Sender<Update>, refresh: Arc<Notify>) {
    let mut since: Option<u64> = None;
    let mut backoff = Duration::from_millis(250);
    loop {
        let start = match since {
            Some(seq) => Ok(seq),
            None => client
                .get::<Value>("/v1/events?limit=0")
                .await
                .map(|answer| {
                    answer["last_seq"]
                        .as_u64()
                        .unwrap_or(0)
                        .saturating_sub(BACKLOG)
                }),
        };
        let stream = match start {
            Ok(seq) => client
                .stream(&format!("/v1/events/stream?since={seq}"), None)
                .await
                .map(|stream| (seq, stream)),
            Err(error) => Err(error),
        };
        let (seq, mut stream) = match stream {
            Ok(opened) => opened,
            Err(error) => {
                if updates.send(Update::Lost(error.to_string())).await.is_err() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(250);
        since = Some(seq);
        if updates.send(Update::Connected).await.is_err() {
            return;
        }
        refresh.notify_one();
        while let Ok(Some(message)) = stream.next().await {
            if message.event.is_some() {
                // `resync`: entries that left the ring; they are in events.jsonl.
                continue;
            }
            let Ok(value) = serde_json::from_str::<Value>(&message.data) else {
                continue;
            };
            let event = EventLine::from_json(&value);
            since = Some(event.seq);
            if updates.send(Update::Event(event)).await.is_err() {
                return;
            }
            refresh.notify_one();
        }
        if updates
            .send(Update::Lost("the instance closed the stream".to_owned()))
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Fetches the status when asked (coalesced) and every [`USAGE_REFRESH`].
async fn refresher(client: Client, updates: mpsc::Sender<Update>, refresh: Arc<Notify>) {
    let spacing = Duration::from_secs(1) / MAX_REFRESHES_PER_SECOND;
    loop {
        tokio::select! {
            () = refresh.notified() => {}
            () = tokio::time::sleep(USAGE_REFRESH) => {}
        }
        if let Ok(status) = client.get::<Status>("/v1/status").await
            && updates.send(Update::Status(status)).await.is_err()
        {
            return;
        }
        tokio::time::sleep(spacing).await;
    }
}

/// Follows one child's output until aborted, reconnecting when the stream ends.
async fn follow(client: Client, name: String, backlog: usize, updates: mpsc::Sender<Update>) {
    let mut after: Option<u64> = None;
    loop {
        let path = match after {
            Some(seq) => child_path(&name, &format!("/logs/stream?after={seq}")),
            None => child_path(&name, &format!("/logs/stream?n={backlog}")),
        };
        if let Ok(mut stream) = client.stream(&path, None).await {
            while let Ok(Some(message)) = stream.next().await {
                if message.event.is_some() {
                    continue;
                }
                let Ok(line) = serde_json::from_str::<LogLine>(&message.data) else {
                    continue;
                };
                after = Some(line.seq);
                let entry = LogEntry {
                    child: name.clone(),
                    stream: line.stream,
                    text: line.text,
                };
                if updates.send(Update::Log(entry)).await.is_err() {
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
