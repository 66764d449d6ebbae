//! Reads a child's stdout and stderr pipes and turns bytes into lines for its [`ChildLog`].
//!
//! One task per run reads both pipes. It waits for readability without holding a buffer, then reads until the
//! pipe would block, so an idle child costs no buffer memory and a flood is read in large chunks. Lines longer
//! than [`MAX_LINE`] are split. A pipe that reaches end-of-file is simply dropped: a child that closes its stdout
//! keeps running, and the pump ends once both pipes are closed (the last writer, possibly a grandchild, exited).

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use regex::Regex;
use tokio::net::unix::pipe;
use tokio::sync::oneshot;

use super::book::{ChildLog, Stream};

/// Longest line kept whole; longer lines are split into pieces of this size.
pub const MAX_LINE: usize = 16 * 1024;
const CHUNK: usize = 16 * 1024;

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

    /// Reads until the pipe would block; returns complete lines. Closes the pipe at end-of-file or on error.
    fn drain(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        let Some(rx) = &self.rx else { return lines };
        let mut buf = vec![0u8; CHUNK];
        let mut eof = false;
        loop {
            match rx.try_read(&mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => split_lines(&mut self.partial, &buf[..n], &mut lines),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "reading a child's output failed");
                    eof = true;
                    break;
                }
            }
        }
        if eof {
            if !self.partial.is_empty() {
                lines.push(String::from_utf8_lossy(&self.partial).into_owned());
            }
            self.partial = Vec::new();
            self.rx = None;
        } else if self.partial.is_empty() {
            // Give the capacity back while the child is quiet.
            self.partial = Vec::new();
        }
        lines
    }
}

/// Appends the complete lines of `partial + data` to `out`, keeping the unterminated rest in `partial`.
pub fn split_lines(partial: &mut Vec<u8>, data: &[u8], out: &mut Vec<String>) {
    let mut rest = data;
    while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
        partial.extend_from_slice(&rest[..pos]);
        push_line(partial, out);
        rest = &rest[pos + 1..];
    }
    partial.extend_from_slice(rest);
    while partial.len() >= MAX_LINE {
        let tail = partial.split_off(MAX_LINE);
        let head = std::mem::replace(partial, tail);
        out.push(String::from_utf8_lossy(&head).into_owned());
    }
}

fn push_line(partial: &mut Vec<u8>, out: &mut Vec<String>) {
    if partial.last() == Some(&b'\r') {
        partial.pop();
    }
    for piece in partial.chunks(MAX_LINE) {
        out.push(String::from_utf8_lossy(piece).into_owned());
    }
    if partial.is_empty() {
        out.push(String::new());
    }
    partial.clear();
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
        let lines = pipe.drain();
        if let Some(w) = &watch
            && lines.iter().any(|l| w.regex.is_match(l))
            && let Some(w) = watch.take()
        {
            // The actor may have moved on (stopped); then nobody needs the match.
            let _ = w.matched.send(());
        }
        log.append(incarnation, pipe.stream, lines);
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

    #[test]
    fn splits_and_keeps_partial() {
        let mut partial = Vec::new();
        let mut out = Vec::new();
        split_lines(&mut partial, b"a\r\nbc\n\nd", &mut out);
        assert_eq!(out, vec!["a", "bc", ""]);
        assert_eq!(partial, b"d");
        split_lines(&mut partial, b"e\n", &mut out);
        assert_eq!(out.last().map(String::as_str), Some("de"));
        assert!(partial.is_empty());
    }

    #[test]
    fn splits_long_lines() {
        let mut partial = Vec::new();
        let mut out = Vec::new();
        let long = vec![b'x'; MAX_LINE * 2 + 5];
        split_lines(&mut partial, &long, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(partial.len(), 5);
        split_lines(&mut partial, b"\n", &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out[2].len(), 5);
    }
}
