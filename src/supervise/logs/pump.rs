//! Reads a child's stdout and stderr pipes and turns bytes into lines for its [`ChildLog`].
//!
//! One task per run reads both pipes. It waits for readability without holding a buffer, then reads at most
//! [`READ_BUDGET`] bytes and yields to the other tasks before reading on, so an idle child costs no buffer
//! memory, a flooding child's batch is bounded, and several flooding children share the workers fairly (a
//! quiet child's line waits for at most one budget of each flooder). Each line is redacted
//! ([`super::redact`]) as it is completed; lines longer than [`MAX_LINE`] are split where no secret value
//! straddles the cut. A pipe that reaches end-of-file is simply dropped: a child that closes its stdout keeps
//! running, and the pump ends once both pipes are closed (the last writer, possibly a grandchild, exited).

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use regex::Regex;
use tokio::net::unix::pipe;
use tokio::sync::oneshot;

use super::book::{ChildLog, Stream};
use super::redact::Redactor;

/// Longest line kept whole; longer lines are split into pieces of this size.
pub const MAX_LINE: usize = 16 * 1024;
const CHUNK: usize = 16 * 1024;
/// Bytes read from one pipe per wake-up before the pump yields.
pub const READ_BUDGET: usize = 4 * CHUNK;

/// Signals the first output line matching a readiness regex (`log_line` probes).
#[derive(Debug)]
pub struct LineWatch {
    /// The regex.
    pub regex: Regex,
    /// Fired once, on the first match.
    pub matched: oneshot::Sender<()>,
}

struct Pipe {
    rx: Option<pipe::Receiver>,
    partial: Vec<u8>,
    stream: Stream,
}

/// What one wake-up read from a pipe.
struct Read {
    lines: Vec<Arc<str>>,
    /// The budget ran out before the pipe was empty.
    more: bool,
}

impl Pipe {
    fn new(fd: Option<OwnedFd>, stream: Stream) -> io::Result<Self> {
        let rx = match fd {
            Some(fd) => Some(pipe::Receiver::from_owned_fd(fd)?),
            None => None,
        };
        Ok(Self {
            rx,
            partial: Vec::new(),
            stream,
        })
    }

    /// Reads until the pipe would block or [`READ_BUDGET`] bytes were read; returns the complete lines.
    /// Closes the pipe at end-of-file or on error.
    fn read(&mut self, redactor: &Redactor) -> Read {
        let mut lines = Vec::new();
        let Some(rx) = &self.rx else {
            return Read { lines, more: false };
        };
        let mut buf = vec![0u8; CHUNK];
        let mut eof = false;
        let mut read = 0;
        let more = loop {
            if read >= READ_BUDGET {
                break true;
            }
            match rx.try_read(&mut buf) {
                Ok(0) => {
                    eof = true;
                    break false;
                }
                Ok(n) => {
                    read += n;
                    split_lines(&mut self.partial, &buf[..n], &mut lines, redactor);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "reading a child's output failed");
                    eof = true;
                    break false;
                }
            }
        };
        if eof {
            if !self.partial.is_empty() {
                lines.push(text(&self.partial, redactor));
            }
            self.partial = Vec::new();
            self.rx = None;
        } else if self.partial.is_empty() {
            // Give the capacity back while the child is quiet.
            self.partial = Vec::new();
        }
        Read { lines, more }
    }
}

/// Appends the complete lines of `partial + data` to `out`, redacted, keeping the unterminated rest in
/// `partial`. A rest of [`MAX_LINE`] bytes (plus the longest secret value, so that the cut can see it whole)
/// is cut into a line of its own.
pub fn split_lines(
    partial: &mut Vec<u8>,
    data: &[u8],
    out: &mut Vec<Arc<str>>,
    redactor: &Redactor,
) {
    let mut rest = data;
    while let Some(pos) = memchr::memchr(b'\n', rest) {
        let mut line = &rest[..pos];
        if partial.is_empty() {
            // The common case: the whole line is in this read, copy it once.
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            push_pieces(line, out, redactor);
        } else {
            partial.extend_from_slice(line);
            if partial.last() == Some(&b'\r') {
                partial.pop();
            }
            push_pieces(partial, out, redactor);
            partial.clear();
        }
        rest = &rest[pos + 1..];
    }
    partial.extend_from_slice(rest);
    while partial.len() >= MAX_LINE + redactor.longest() {
        let cut = redactor.cut(partial, MAX_LINE);
        out.push(text(&partial[..cut], redactor));
        partial.drain(..cut);
    }
}

/// Pushes a complete line, in pieces of at most [`MAX_LINE`] bytes cut where no secret straddles the cut.
fn push_pieces(mut line: &[u8], out: &mut Vec<Arc<str>>, redactor: &Redactor) {
    while line.len() > MAX_LINE {
        let cut = redactor.cut(line, MAX_LINE);
        out.push(text(&line[..cut], redactor));
        line = &line[cut..];
    }
    out.push(text(line, redactor));
}

/// The text of a line: redacted, invalid UTF-8 replaced.
fn text(bytes: &[u8], redactor: &Redactor) -> Arc<str> {
    let redacted = redactor.redact(bytes);
    Arc::from(String::from_utf8_lossy(&redacted))
}

/// Pumps both pipes of one run into `log` until both are closed. Must run inside a tokio runtime.
pub async fn pump(
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    log: Arc<ChildLog>,
    incarnation: u64,
    mut watch: Option<LineWatch>,
) {
    let (mut out, mut err) = match (
        Pipe::new(stdout, Stream::Stdout),
        Pipe::new(stderr, Stream::Stderr),
    ) {
        (Ok(o), Ok(e)) => (o, e),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(child = %log.name(), error = %e, "cannot read the child's output");
            return;
        }
    };
    loop {
        let which = tokio::select! {
            r = readable(&out), if out.rx.is_some() => r.map(|_| 0),
            r = readable(&err), if err.rx.is_some() => r.map(|_| 1),
            else => break,
        };
        let pipe = match which {
            Ok(0) => &mut out,
            Ok(_) => &mut err,
            Err(e) => {
                tracing::warn!(child = %log.name(), error = %e, "waiting for the child's output failed");
                break;
            }
        };
        let Read { lines, more } = pipe.read(&log.redactor());
        if let Some(w) = &watch
            && lines.iter().any(|l| w.regex.is_match(l))
            && let Some(w) = watch.take()
        {
            // The actor may have moved on (stopped); then nobody needs the match.
            let _ = w.matched.send(());
        }
        let stream = pipe.stream;
        log.record(incarnation, stream, lines).await;
        if more {
            tokio::task::yield_now().await;
        }
    }
}

async fn readable(p: &Pipe) -> io::Result<()> {
    match &p.rx {
        Some(rx) => rx.readable().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(out: &[Arc<str>]) -> Vec<&str> {
        out.iter().map(|l| &**l).collect()
    }

    #[test]
    fn splits_and_keeps_partial() {
        let none = Redactor::default();
        let mut partial = Vec::new();
        let mut out = Vec::new();
        split_lines(&mut partial, b"a\r\nbc\n\nd", &mut out, &none);
        assert_eq!(texts(&out), vec!["a", "bc", ""]);
        assert_eq!(partial, b"d");
        split_lines(&mut partial, b"e\n", &mut out, &none);
        assert_eq!(texts(&out).last(), Some(&"de"));
        assert!(partial.is_empty());
    }

    #[test]
    fn splits_long_lines() {
        let none = Redactor::default();
        let mut partial = Vec::new();
        let mut out = Vec::new();
        let long = vec![b'x'; MAX_LINE * 2 + 5];
        split_lines(&mut partial, &long, &mut out, &none);
        assert_eq!(out.len(), 2);
        assert_eq!(partial.len(), 5);
        split_lines(&mut partial, b"\n", &mut out, &none);
        assert_eq!(out.len(), 3);
        assert_eq!(out[2].len(), 5);
        split_lines(&mut partial, &[b'y'; MAX_LINE + 1], &mut out, &none);
        split_lines(&mut partial, b"\n", &mut out, &none);
        assert_eq!(
            out[3].len(),
            MAX_LINE,
            "a long line within one read is split too"
        );
        assert_eq!(out[4].len(), 1);
    }

    #[test]
    fn a_secret_split_across_reads_or_a_long_line_cut_is_redacted() {
        let secret = Redactor::new(["hunter2-password"]);
        let mut partial = Vec::new();
        let mut out = Vec::new();
        split_lines(&mut partial, b"token: hunter2-pa", &mut out, &secret);
        split_lines(&mut partial, b"ssword ok\n", &mut out, &secret);
        assert_eq!(texts(&out), vec!["token: [redacted] ok"]);

        let mut long = vec![b'x'; MAX_LINE - 4];
        long.extend_from_slice(b"hunter2-password");
        long.extend_from_slice(&[b'z'; MAX_LINE]);
        out.clear();
        for piece in long.chunks(1000) {
            split_lines(&mut partial, piece, &mut out, &secret);
        }
        split_lines(&mut partial, b"\n", &mut out, &secret);
        let joined: String = texts(&out).concat();
        assert!(
            !joined.contains("hunter2"),
            "the value straddled the 16 KiB cut"
        );
        assert_eq!(joined.matches("[redacted]").count(), 1);
    }
}
