//! Readiness and liveness probes: the checks (`http`, `tcp`, `exec`, `log_line`, ...) and their timing.
//!
//! A check is one async attempt bounded by the probe's `timeout`. When attempts are due, and what their results
//! conclude, is decided by the pure `child::state::Probes`; the actor keeps one timer for all of it, so a child
//! without probes has no timer at all. `exec` checks run through the spawner like every other process, in their own process
//! group, which is SIGKILLed at the timeout; the reaper collects them. `http` is a hand-written HTTP/1.1 `GET`
//! over a `TcpStream` that only reads the status line. `log_line` is matched by the output pump, not here.

use std::time::Duration;

use regex::Regex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::manifest::model;
use crate::supervise::launcher::Launcher;
use crate::supervise::spawn::{Command, Output, Program, SpawnRequest};

/// The check a probe performs. Equal checks are equal values; a `log_line` compares its pattern.
#[derive(Debug, Clone)]
pub enum Check {
    /// `GET http://host:port/path`, expecting `status`.
    Http {
        /// Host to connect to and to name in the `Host` header.
        host: String,
        /// Port.
        port: u16,
        /// Path and query.
        path: String,
        /// Expected status.
        status: u16,
    },
    /// A TCP connection is accepted.
    Tcp {
        /// Host.
        host: String,
        /// Port.
        port: u16,
    },
    /// A command exits with code 0.
    Exec {
        /// The command.
        command: Command,
    },
    /// A line of the child's output matches (readiness only; matched by the output pump).
    LogLine(Regex),
    /// `READY=1` arrives on the child's notify socket (readiness only).
    Notify,
    /// A newline arrives on this descriptor of the child (readiness only).
    NotificationFd(u32),
    /// `WATCHDOG=1` arrives on the notify socket at least once per period (liveness only).
    Watchdog(Duration),
}

impl Check {
    /// Whether the child reports the verdict itself (nothing is attempted on a schedule).
    pub fn is_pushed(&self) -> bool {
        matches!(
            self,
            Self::LogLine(_) | Self::Notify | Self::NotificationFd(_) | Self::Watchdog(_)
        )
    }
}

impl PartialEq for Check {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Self::Http {
                    host,
                    port,
                    path,
                    status,
                },
                Self::Http {
                    host: h,
                    port: p,
                    path: q,
                    status: s,
                },
            ) => host == h && port == p && path == q && status == s,
            (Self::Tcp { host, port }, Self::Tcp { host: h, port: p }) => host == h && port == p,
            (Self::Exec { command }, Self::Exec { command: c }) => command == c,
            (Self::LogLine(a), Self::LogLine(b)) => a.as_str() == b.as_str(),
            (Self::Notify, Self::Notify) => true,
            (Self::NotificationFd(a), Self::NotificationFd(b)) => a == b,
            (Self::Watchdog(a), Self::Watchdog(b)) => a == b,
            _ => false,
        }
    }
}

/// A probe: its check and timing.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSpec {
    /// The check, ready to run (a compiled regex, a parsed URL).
    pub check: Check,
    /// The probe as the manifest wrote it: its timing is read through the accessors, which keep it usable.
    written: model::Probe,
}

/// A probe that cannot be used as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The URL is not `http://host[:port][/path]`.
    #[error("unsupported probe url `{0}` (expected http://host[:port][/path])")]
    Url(String),
    /// The `log_line` regex does not compile.
    #[error("invalid log_line regex")]
    Regex(String),
}

impl ProbeSpec {
    /// Builds a probe from its manifest form.
    pub fn from_model(p: &model::Probe) -> Result<Self, ProbeError> {
        let check = match &p.check {
            model::Check::Http(h) => {
                let target = h.target().map_err(|_| ProbeError::Url(h.url.clone()))?;
                Check::Http {
                    host: target.host,
                    port: target.port,
                    path: target.path,
                    status: h.status,
                }
            }
            model::Check::Tcp(t) => Check::Tcp {
                host: t.host.clone(),
                port: t.port,
            },
            model::Check::Exec(e) => Check::Exec {
                command: command_of(&e.command),
            },
            model::Check::LogLine(re) => {
                Check::LogLine(Regex::new(re).map_err(|e| ProbeError::Regex(e.to_string()))?)
            }
            model::Check::Notify => Check::Notify,
            model::Check::NotificationFd(fd) => Check::NotificationFd(*fd),
            model::Check::Watchdog(period) => Check::Watchdog(period.get()),
        };
        Ok(Self {
            check,
            written: p.clone(),
        })
    }

    /// Time between attempts (at least 10 ms).
    pub fn interval(&self) -> Duration {
        self.written.interval.get().max(Duration::from_millis(10))
    }

    /// Time an attempt may take (at least 1 ms).
    pub fn timeout(&self) -> Duration {
        self.written.timeout.get().max(Duration::from_millis(1))
    }

    /// Failures during this time after spawn do not count.
    pub fn start_period(&self) -> Duration {
        self.written.start_period.get()
    }

    /// Consecutive failures that fail the probe (at least 1).
    pub fn failure_threshold(&self) -> u32 {
        self.written.failure_threshold.max(1)
    }

    /// Consecutive successes that pass the probe (at least 1).
    pub fn success_threshold(&self) -> u32 {
        self.written.success_threshold.max(1)
    }

    /// The time a readiness probe may need in the worst case before it can pass:
    /// `start_period + failure_threshold × (interval + timeout) + (success_threshold − 1) × interval`
    /// (its failures, then the successes in a row it needs, one interval apart).
    pub fn budget(&self) -> Duration {
        if matches!(self.check, Check::Notify | Check::NotificationFd(_)) {
            // The child says when it is ready: `start_timeout` alone bounds the wait.
            return Duration::ZERO;
        }
        self.start_period()
            + (self.interval() + self.timeout()) * self.failure_threshold()
            + self.interval() * (self.success_threshold() - 1)
    }
}

/// Converts a manifest command to a spawner command.
pub fn command_of(c: &model::Command) -> Command {
    match c {
        model::Command::Exec(argv) => Command::Argv(argv.clone()),
        model::Command::Shell(line) => Command::Shell(line.clone()),
    }
}

/// Runs one attempt of `check`, bounded by `timeout`. `Err` carries a short reason. `child` is the child's
/// program, whose environment, directory and identity an `exec` check runs with (only `exec` needs it), started
/// by `launcher`.
pub async fn attempt(
    check: &Check,
    timeout: Duration,
    child: Option<Program>,
    launcher: &dyn Launcher,
) -> Result<(), String> {
    match check {
        Check::Tcp { host, port } => {
            match tokio::time::timeout(timeout, TcpStream::connect((host.as_str(), *port))).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("tcp {host}:{port}: {e}")),
                Err(_) => Err(format!(
                    "tcp {host}:{port}: timed out after {}",
                    humantime::format_duration(timeout)
                )),
            }
        }
        Check::Http {
            host,
            port,
            path,
            status,
        } => match tokio::time::timeout(timeout, http_status(host, *port, path)).await {
            Ok(Ok(got)) if got == *status => Ok(()),
            Ok(Ok(got)) => Err(format!("http {path}: status {got}, expected {status}")),
            Ok(Err(e)) => Err(format!("http {host}:{port}{path}: {e}")),
            Err(_) => Err(format!(
                "http {host}:{port}{path}: timed out after {}",
                humantime::format_duration(timeout)
            )),
        },
        Check::Exec { command } => match child {
            Some(child) => exec(launcher, child.with_command(command.clone()), timeout).await,
            None => Err("exec: the child's environment is unknown".into()),
        },
        // Reported by the child (output pump, notify socket, notification fd); never attempted.
        Check::LogLine(_) | Check::Notify | Check::NotificationFd(_) | Check::Watchdog(_) => Ok(()),
    }
}

async fn http_status(host: &str, port: u16, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect((host, port)).await?;
    let host_header = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: herder-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < 4096 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    let status_line = line.lines().next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    match (
        parts.next(),
        parts.next().and_then(|s| s.parse::<u16>().ok()),
    ) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => Ok(code),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "malformed HTTP status line",
        )),
    }
}

async fn exec(launcher: &dyn Launcher, program: Program, timeout: Duration) -> Result<(), String> {
    let request = SpawnRequest {
        program,
        nofile: None,
        output: Output::Null,
        cgroups: Vec::new(),
        extra_fd: None,
    };
    let spawned = launcher
        .spawn(request)
        .await
        .map_err(|e| format!("exec: {e}"))?;
    let pid = spawned.pid;
    match tokio::time::timeout(timeout, spawned.exit).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!("exec: {status}")),
        Ok(Err(_)) => Err("exec: exit status lost".into()),
        Err(_) => {
            // The reaper collects it; its whole group goes so that a hung check leaves nothing behind.
            if let Err(e) = launcher.signal_group(pid, nix::sys::signal::Signal::SIGKILL) {
                tracing::warn!(pid, error = %e, "cannot kill a timed-out exec probe");
            }
            Err(format!(
                "exec: timed out after {}",
                humantime::format_duration(timeout)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(interval: &str, success: u32, failure: u32) -> ProbeSpec {
        let written: model::Probe = serde_json::from_value(serde_json::json!({
            "tcp": {"host": "h", "port": 1},
            "interval": interval,
            "timeout": "1s",
            "failure_threshold": failure,
            "success_threshold": success,
        }))
        .expect("a probe");
        ProbeSpec::from_model(&written).expect("usable")
    }

    /// A probe that needs several successes in a row gets the time for them: with one interval per success, a
    /// short `start_timeout` would otherwise fail a child that can never pass in time.
    #[test]
    fn the_budget_counts_the_successes_a_probe_needs() {
        assert_eq!(spec("2s", 1, 1).budget(), Duration::from_secs(3));
        assert_eq!(spec("2s", 5, 1).budget(), Duration::from_secs(3 + 8));
        assert_eq!(spec("2s", 1, 3).budget(), Duration::from_secs(9));
    }

    /// Issue 15, defect 3: a live update compares probes by value, not by their `Debug` text.
    #[test]
    fn probes_compare_by_value() {
        let pattern = |p: &str| Check::LogLine(Regex::new(p).expect("valid"));
        assert_eq!(pattern("listening on .*"), pattern("listening on .*"));
        assert_ne!(pattern("listening on .*"), pattern("ready"));
        assert_eq!(spec("1s", 1, 3), spec("1s", 1, 3));
        assert_ne!(spec("2s", 1, 3), spec("1s", 1, 3));
        assert_ne!(spec("1s", 1, 2), spec("1s", 1, 3));
        assert_ne!(
            Check::Tcp {
                host: "h".into(),
                port: 1
            },
            pattern("h")
        );
    }
}
