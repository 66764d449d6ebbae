//! Readiness the child reports itself: the sd_notify socket, the notification descriptor, and the watchdog.

use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Actor, Internal};
use crate::supervise::child::notified::{self, NotifyView};
use crate::supervise::child::state::{ChildState, Input};
use crate::supervise::notify::NotifySocket;
use crate::supervise::probe::Check;

/// How much a child may write to its notification descriptor before the newline.
const NOTIFICATION_BYTES: usize = 4096;

impl Actor {
    /// Binds this run's notify socket when the child speaks sd_notify and starts its
    /// reader; returns the variables that name it to the child, or why it cannot have one.
    pub(super) fn open_notify_socket(&mut self) -> Result<Vec<(String, String)>, String> {
        self.notify = None;
        self.notify_seen = NotifyView::default();
        if !self.cfg.uses_notify() {
            return Ok(Vec::new());
        }
        let socket = NotifySocket::bind(&self.spec.name, self.incarnation, self.run)
            .map_err(|e| format!("cannot make the notify socket: {e}"))?;
        let mut env = vec![("NOTIFY_SOCKET".to_owned(), socket.env_value())];
        if let Some(period) = self.cfg.watchdog() {
            env.push(("WATCHDOG_USEC".to_owned(), period.as_micros().to_string()));
        }
        let (tx, rx) = watch::channel(NotifyView::default());
        self.notify = Some(rx);
        tokio::spawn(notified::read(
            socket,
            self.status_tx.subscribe(),
            self.run,
            self.log.redactor(),
            tx,
        ));
        Ok(env)
    }

    /// With `readiness: {notification_fd: N}`: a pipe whose write end the child gets at N,
    /// and a task that reports the first newline on its read end.
    pub(super) fn open_notification_fd(&mut self) -> Result<Option<(OwnedFd, u32)>, String> {
        let Some(Check::NotificationFd(target)) = self.cfg.readiness.as_ref().map(|r| &r.check)
        else {
            return Ok(None);
        };
        let target = *target;
        let cannot = |e: nix::Error| format!("cannot make the notification pipe: {e}");
        // Made blocking: the child's end blocks as a pipe normally does, and tokio makes only the read end (a
        // file description of its own) non-blocking.
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(cannot)?;
        let receiver = pipe::Receiver::from_owned_fd(read)
            .map_err(|e| format!("cannot watch the notification pipe: {e}"))?;
        let (run, inbox, name) = (self.run, self.inbox_sender(), self.spec.name.clone());
        tokio::spawn(async move {
            let mut receiver = receiver;
            let mut seen = 0usize;
            let mut buf = [0u8; 512];
            // At most NOTIFICATION_BYTES before the newline; end of file (the child closed it) is no.
            while seen < NOTIFICATION_BYTES {
                match receiver.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) if buf[..n].contains(&b'\n') => {
                        let _ = inbox.unbounded_send(Internal::FdReady { run });
                        return;
                    }
                    Ok(n) => seen += n,
                }
            }
            tracing::warn!(child = %name, fd = target, "the notification descriptor ended without a newline: not ready by it");
        });
        Ok(Some((write, target)))
    }

    /// Acts on what the notify socket heard since the last look.
    pub(super) fn on_notify(&mut self, now: Instant) {
        let Some(view) = self
            .notify
            .as_mut()
            .map(|rx| rx.borrow_and_update().clone())
        else {
            return;
        };
        let seen = std::mem::replace(&mut self.notify_seen, view.clone());
        if (seen.refused + 1..=view.refused).any(u64::is_power_of_two) {
            // 1st, 2nd, 4th, 8th…: a flood of refusals costs a few log lines, not one each.
            tracing::warn!(
                child = %self.spec.name,
                refused = view.refused,
                reason = view.last_refusal.as_deref().unwrap_or_default(),
                "refused a notification"
            );
        }
        let by_notify = matches!(
            self.cfg.readiness.as_ref().map(|r| &r.check),
            Some(Check::Notify)
        );
        if view.ready && by_notify && matches!(self.machine.state(), ChildState::Starting { .. }) {
            self.feed(Input::Ready, now);
        }
        if view.pings > seen.pings
            && let Some(finding) = self.probes.watchdog_ping(now)
        {
            self.on_finding(finding, now);
        }
        if view.triggered
            && !seen.triggered
            && let Some(finding) = self.probes.watchdog_triggered(&self.cfg)
        {
            self.on_finding(finding, now);
        }
        self.publish();
    }
}
