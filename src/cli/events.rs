//! `herder events [-f] [--since SEQ] [-n N]`: the event log of the running instance.
//!
//! One line per event: sequence number, time, child, type and its fields
//! (`42  2026-01-02T03:04:05.678Z  web  exited  code=1 incarnation=3`); `--format json`
//! prints each event as one JSON object per line. With `-f` it follows the stream; the
//! sequence number of the last line printed is what `--since` takes to resume.

use clap::Args;
use serde_json::Value;

use super::Format;
use super::exit::Exit;
use super::remote::{ConnectArgs, RemoteError, block_on, connect, decode, emit, to_json};
use crate::api::wire::{EventsResponse, Resync};
use crate::events::Event;

/// Arguments of `herder events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Follow: keep printing new events as they happen.
    #[arg(short, long)]
    pub follow: bool,
    /// Only events after this sequence number (resume where an earlier run stopped).
    #[arg(long, value_name = "SEQ")]
    pub since: Option<u64>,
    /// At most this many of the newest events (without --since, before following).
    #[arg(short = 'n', long = "limit", value_name = "N", default_value_t = 100)]
    pub limit: usize,
    /// Output format: `human` (one line per event) or `json` (one object per line).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// How to reach the instance.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Prints the events; exit 0, or 4 without a running instance.
pub fn run(args: &EventsArgs) -> u8 {
    block_on(async {
        let client = connect(&args.connect).await?;
        let since = match (args.follow, args.since) {
            // Resuming: the stream replays everything after SEQ that is still in memory.
            (true, Some(since)) => since,
            _ => {
                let path = format!(
                    "/v1/events?since={}&limit={}",
                    args.since.unwrap_or(0),
                    args.limit
                );
                let response: EventsResponse = client.get(&path).await?;
                for event in &response.events {
                    emit(&line(event, args.format)?)?;
                }
                if !args.follow {
                    return Ok(Exit::OK);
                }
                response.last_seq
            }
        };
        let mut stream = client
            .stream(&format!("/v1/events/stream?since={since}"), None)
            .await?;
        while let Some(message) = stream.next().await? {
            match message.event.as_deref() {
                Some("resync") => {
                    let missed: Resync = decode(&message)?;
                    eprintln!(
                        "herder: events {}-{} were no longer in memory; they are in events.jsonl",
                        missed.from, missed.to
                    );
                }
                _ => emit(&line(&decode(&message)?, args.format)?)?,
            }
        }
        Ok(Exit::OK)
    })
}

/// One event as a line of text or JSON.
pub fn line(event: &Event, format: Format) -> Result<String, RemoteError> {
    match format {
        Format::Json => to_json(event, false),
        Format::Human => Ok(human(event)),
    }
}

fn human(event: &Event) -> String {
    let fields = match serde_json::to_value(event) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let kind = fields
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("event");
    let details: Vec<String> = fields
        .iter()
        .filter(|(key, _)| !matches!(key.as_str(), "seq" | "time" | "child" | "type"))
        .map(|(key, value)| format!("{key}={}", show(value)))
        .collect();
    let mut text = format!(
        "{}  {}  {}  {kind}",
        event.seq,
        event.time,
        event.child.as_deref().unwrap_or("-")
    );
    if !details.is_empty() {
        text.push_str("  ");
        text.push_str(&details.join(" "));
    }
    text.push('\n');
    text
}

/// A field value: bare when it is a single word, else JSON.
fn show(value: &Value) -> String {
    match value {
        Value::String(text) if !text.is_empty() && !text.contains(char::is_whitespace) => {
            text.clone()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventKind;

    #[test]
    fn events_print_as_one_line_each() {
        let event = Event {
            seq: 42,
            time: "2026-01-02T03:04:05.678Z".into(),
            child: Some("web".into()),
            incarnation: Some(3),
            kind: EventKind::Command {
                verb: "restart".into(),
                uid: 1000,
                pid: Some(77),
                reason: Some("new config".into()),
                allowed: true,
            },
        };
        let text = line(&event, Format::Human).unwrap();
        assert!(
            text.starts_with("42  2026-01-02T03:04:05.678Z  web  command  "),
            "{text}"
        );
        for part in [
            "verb=restart",
            "uid=1000",
            "pid=77",
            "reason=\"new config\"",
            "allowed=true",
            "incarnation=3",
        ] {
            assert!(text.contains(part), "{part} missing in {text}");
        }
        let json: Event = serde_json::from_str(&line(&event, Format::Json).unwrap()).unwrap();
        assert_eq!(json, event);
    }
}
