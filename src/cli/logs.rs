//! `herder logs NAME [-f] [-n N]`: a child's captured output, from the running instance.
//!
//! Lines print as the child wrote them (stdout and stderr interleaved as captured);
//! `--format json` prints one JSON object per line (`seq`, `incarnation`, `stream`, `time`,
//! `text`). With `-f` the command follows until interrupted or the child is retired.

use clap::Args;

use super::Format;
use super::exit::Exit;
use super::remote::{ConnectArgs, RemoteError, block_on, connect, decode, emit, to_json};
use crate::api::client::{EventStream, child_path};
use crate::api::wire::{LogEntry, LogsResponse, Resync};

/// Arguments of `herder logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The child.
    pub name: String,
    /// Follow: keep printing new lines as they arrive.
    #[arg(short, long)]
    pub follow: bool,
    /// How many of the last lines to print first.
    #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 100)]
    pub lines: usize,
    /// Output format: `human` (the text) or `json` (one object per line).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// How to reach the instance.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Prints the lines; exit 0, 1 for an unknown child, 4 without a running instance.
pub fn run(args: &LogsArgs) -> u8 {
    block_on(async {
        let client = connect(&args.connect).await?;
        if !args.follow {
            let path = child_path(&args.name, &format!("/logs?n={}", args.lines));
            let response: LogsResponse = client.get(&path).await?;
            for entry in &response.lines {
                emit(&line(entry, args.format)?)?;
            }
            return Ok(Exit::OK);
        }
        let path = child_path(&args.name, &format!("/logs/stream?n={}", args.lines));
        let stream = client.stream(&path, None).await?;
        follow(stream, args.format).await?;
        Ok(Exit::OK)
    })
}

async fn follow(mut stream: EventStream, format: Format) -> Result<(), RemoteError> {
    while let Some(message) = stream.next().await? {
        match message.event.as_deref() {
            Some("resync") => {
                let missed: Resync = decode(&message)?;
                eprintln!(
                    "herder: lines {}-{} were no longer in memory; they are in the child's log file",
                    missed.from, missed.to
                );
            }
            _ => emit(&line(&decode(&message)?, format)?)?,
        }
    }
    Ok(())
}

fn line(entry: &LogEntry, format: Format) -> Result<String, RemoteError> {
    match format {
        Format::Human => Ok(format!("{}\n", entry.text)),
        Format::Json => to_json(entry, false),
    }
}
