//! herder speaking the systemd notification protocol to its own supervisor (a unit with
//! `Type=notify`): `READY=1` once the first generation is applied and the control socket
//! serves, `STATUS=` summaries ("12 ready, 1 failed, 0 manifest errors") as things change
//! (at most one a second), `STOPPING=1` when an ordered shutdown begins, and `WATCHDOG=1`
//! at half of `WATCHDOG_USEC` while the reconciler answers. Without `NOTIFY_SOCKET` it does
//! nothing.
//!
//! The protocol is one datagram per message on the `AF_UNIX` socket `NOTIFY_SOCKET` names
//! (a path, or `@name` for the abstract namespace); written here over std's
//! `UnixDatagram`, a few lines.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::events::EventKind;
use crate::reconcile::state::State;
use crate::reconcile::{Control, Request, StatusReport};

/// Where notifications go, from `NOTIFY_SOCKET`.
pub struct Notifier {
    socket: UnixDatagram,
    address: SocketAddr,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// The notifier `NOTIFY_SOCKET` asks for, if any (with the watchdog period when
    /// `WATCHDOG_USEC` is set and `WATCHDOG_PID`, if set, is this process).
    pub fn from_env() -> io::Result<Option<Self>> {
        let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(None);
        };
        let target = target.to_string_lossy().into_owned();
        let address = match target.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name.as_bytes())?
            }
            None => SocketAddr::from_pathname(&target)?,
        };
        let for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .is_none_or(|pid| pid.trim() == std::process::id().to_string());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|usec| usec.trim().parse::<u64>().ok())
            .filter(|usec| *usec > 0 && for_us)
            .map(Duration::from_micros);
        Ok(Some(Self {
            socket: UnixDatagram::unbound()?,
            address,
            watchdog,
        }))
    }

    /// Sends one message (`READY=1\nSTATUS=…`); a supervisor that is gone is not an error
    /// worth stopping for, so failures are only logged.
    pub fn send(&self, message: &str) {
        if let Err(error) = self.socket.send_to_addr(message.as_bytes(), &self.address) {
            tracing::debug!(%error, "cannot notify the supervisor");
        }
    }
}

/// "12 ready, 1 failed, 0 manifest errors".
pub fn summary(report: &StatusReport) -> String {
    let count = |states: &[State]| {
        report
            .children
            .iter()
            .filter(|child| states.contains(&child.state))
            .count()
    };
    format!(
        "{} ready, {} failed, {} manifest errors",
        count(&[State::Ready, State::Completed]),
        count(&[State::Failed]),
        report.errors.len()
    )
}

/// Speaks to the supervisor until the reconciler is gone.
pub async fn run(notifier: Notifier, control: Control) {
    let (_, mut events) = control.events.subscribe_since(control.events.last_seq());
    let mut ready = false;
    let mut last_status = String::new();
    // A summary is due (at the start, and after events), at most one a second.
    let mut due = true;
    // After `STOPPING=1` the status says so until the end.
    let mut stopping = false;
    let mut next_summary = Instant::now();
    let mut watchdog = notifier
        .watchdog
        .map(|period| tokio::time::interval(period / 2));
    loop {
        let tick = async {
            match watchdog.as_mut() {
                Some(interval) => {
                    interval.tick().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = tokio::time::sleep_until(next_summary), if due => {
                let Some(report) = control.ask(|reply| Request::Status { reply }).await else {
                    return;
                };
                due = false;
                next_summary = Instant::now() + Duration::from_secs(1);
                let status = summary(&report);
                if !ready && report.generation >= 1 {
                    ready = true;
                    notifier.send(&format!("READY=1\nSTATUS={status}"));
                } else if ready && !stopping && status != last_status {
                    notifier.send(&format!("STATUS={status}"));
                } else if !ready {
                    // Not applied yet: look again after the next event or second.
                    due = true;
                }
                last_status = status;
            }
            () = tick => {
                // Alive only while the reconciler answers.
                if control.ask(|reply| Request::Status { reply }).await.is_none() {
                    return;
                }
                notifier.send("WATCHDOG=1");
            }
            event = events.recv() => match event {
                Ok(event) if matches!(event.kind, EventKind::Shutdown { .. }) => {
                    stopping = true;
                    notifier.send("STOPPING=1\nSTATUS=stopping");
                }
                Ok(_) | Err(RecvError::Lagged(_)) => due = true,
                Err(RecvError::Closed) => return,
            },
        }
    }
}
