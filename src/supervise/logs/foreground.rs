//! The `docker compose up`-style stream: `name | line`, one colour per child.
//!
//! Colour is used only when standard output is a terminal and `NO_COLOR` is unset (<https://no-color.org>).
//!
//! Lines are printed by a thread of their own, fed by a [`ByteQueue`] of [`QUEUE_BYTES`]: a terminal that
//! scrolls slowly, or a pipe nobody reads, never stalls the pumps. What does not fit is not shown, and the
//! stream says so (`herder | (N lines not shown; see herder logs)`); the lines are in the ring and the file.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use super::queue::ByteQueue;

/// Bytes of formatted lines waiting for standard output.
pub const QUEUE_BYTES: usize = 1 << 20;

const PALETTE: [&str; 6] = [
    "\x1b[36m", "\x1b[33m", "\x1b[32m", "\x1b[35m", "\x1b[34m", "\x1b[96m",
];
const RESET: &str = "\x1b[0m";

/// Prints child output to herder's standard output.
#[derive(Debug, Clone)]
pub struct ForegroundSink {
    color: bool,
    width: usize,
    printer: Arc<OnceLock<Option<Printer>>>,
}

#[derive(Debug)]
struct Printer {
    queue: Arc<ByteQueue<Vec<u8>>>,
    not_shown: Arc<AtomicU64>,
}

impl Printer {
    /// Starts the printing thread; `None` if the OS refuses a thread.
    fn start() -> Option<Self> {
        let queue: Arc<ByteQueue<Vec<u8>>> = Arc::new(ByteQueue::new(QUEUE_BYTES));
        let not_shown = Arc::new(AtomicU64::new(0));
        let (work, skipped) = (Arc::clone(&queue), Arc::clone(&not_shown));
        std::thread::Builder::new()
            .name("herder-stdout".into())
            .spawn(move || {
                while let Some(bytes) = work.pop() {
                    let mut out = std::io::stdout().lock();
                    let missed = skipped.swap(0, Ordering::Relaxed);
                    // A closed stdout (herder piped into `head`) must not stop supervision.
                    if missed > 0 {
                        let _ =
                            writeln!(out, "herder | ({missed} lines not shown; see herder logs)");
                    }
                    let _ = out.write_all(&bytes);
                    let _ = out.flush();
                }
            })
            .ok()?;
        Some(Self { queue, not_shown })
    }
}

impl ForegroundSink {
    /// A sink that decides on colour from the environment and the terminal.
    pub fn detect() -> Self {
        let color = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Self::with_color(color)
    }

    /// A sink with colour forced on or off.
    pub fn with_color(color: bool) -> Self {
        Self {
            color,
            width: 0,
            printer: Arc::default(),
        }
    }

    /// Pads names to `width` columns so the separators line up.
    pub fn with_name_width(mut self, width: usize) -> Self {
        self.width = width;
        self
    }

    /// Formats one line as it is printed (without the newline).
    pub fn format(&self, name: &str, line: &str) -> String {
        if self.color {
            let colour = PALETTE[name
                .bytes()
                .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b.into()))
                % PALETTE.len()];
            format!("{colour}{name:<w$} |{RESET} {line}", w = self.width)
        } else {
            format!("{name:<w$} | {line}", w = self.width)
        }
    }

    /// Queues a batch of lines of one child for printing, or counts them as not shown.
    pub fn print<'a>(&self, name: &str, lines: impl Iterator<Item = &'a str>) {
        let mut bytes = Vec::new();
        let mut count = 0;
        for line in lines {
            bytes.extend_from_slice(self.format(name, line).as_bytes());
            bytes.push(b'\n');
            count += 1;
        }
        let Some(printer) = self.printer.get_or_init(Printer::start) else {
            return;
        };
        let size = bytes.len();
        if printer.queue.push(bytes, size).is_err() {
            printer.not_shown.fetch_add(count, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_coloured() {
        assert_eq!(
            ForegroundSink::with_color(false)
                .with_name_width(5)
                .format("api", "hi"),
            "api   | hi"
        );
        let c = ForegroundSink::with_color(true).format("api", "hi");
        assert!(
            c.starts_with("\x1b[") && c.ends_with("api |\x1b[0m hi"),
            "{c:?}"
        );
    }
}
