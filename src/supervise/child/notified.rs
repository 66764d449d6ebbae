//! What one run's notify socket has heard: the reader task that checks each datagram's
//! sender and folds the messages into a [`NotifyView`], which the actor watches.
//!
//! A `watch` channel holds only the latest view, so a child that floods its socket costs
//! one small struct, never a queue: the actor sees counts and the last text, not every
//! datagram.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::status::ChildStatus;
use crate::supervise::logs::redact::Redactor;
use crate::supervise::notify::{self, Message, NotifySocket};

/// How long a datagram that arrives before the actor knows the pid waits for it.
const PID_WAIT: Duration = Duration::from_secs(5);

/// Everything accepted so far from one run's notify socket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotifyView {
    /// `READY=1` arrived.
    pub ready: bool,
    /// The last `STATUS=` text, with secret values redacted.
    pub status: Option<String>,
    /// What the child last said it is doing besides running: `reloading` (`RELOADING=1`,
    /// until the next `READY=1`) or `stopping` (`STOPPING=1`).
    pub phase: Option<&'static str>,
    /// `WATCHDOG=1` pings so far.
    pub pings: u64,
    /// `WATCHDOG=trigger` arrived: the child asks to be treated as failed.
    pub triggered: bool,
    /// Datagrams refused so far (a stranger's, an oversized one).
    pub refused: u64,
    /// Why the last one was refused.
    pub last_refusal: Option<String>,
}

/// Reads `socket` until `view`'s receiver is gone, accepting datagrams from processes of
/// run `run` (whose pid `status` publishes).
pub async fn read(
    socket: NotifySocket,
    mut status: watch::Receiver<ChildStatus>,
    run: u64,
    redactor: Arc<Redactor>,
    view: watch::Sender<NotifyView>,
) {
    loop {
        let datagram = tokio::select! {
            datagram = socket.recv() => datagram,
            () = view.closed() => return,
        };
        let Ok(datagram) = datagram else {
            return; // the socket failed: nothing more will arrive
        };
        let verdict = match (datagram.pid, datagram.messages) {
            (None, _) => Err("a notification without credentials".to_owned()),
            (Some(_), Err(why)) => Err(why),
            (Some(sender), Ok(messages)) => {
                let wait = status.wait_for(|s| s.run == run && s.pid.is_some());
                let child = tokio::time::timeout(PID_WAIT, wait)
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .and_then(|s| s.pid);
                match child {
                    Some(child) if notify::is_childs(sender, child) => Ok(messages),
                    Some(_) if crate::supervise::proc::stat(sender).is_none() => Err(format!(
                        "a notification from pid {sender}, which exited before its credentials could be checked (a sender must live until herder reads the message: `systemd-notify` waits for that)"
                    )),
                    Some(child) => Err(format!(
                        "a notification from pid {sender}, which is not a process of the child (process group {child})"
                    )),
                    None => Err(format!(
                        "a notification from pid {sender} before the child's process was known"
                    )),
                }
            }
        };
        view.send_modify(|view| match verdict {
            Ok(messages) => fold(view, messages, &redactor),
            Err(why) => {
                view.refused += 1;
                view.last_refusal = Some(why);
            }
        });
    }
}

/// Applies accepted messages to the view.
fn fold(view: &mut NotifyView, messages: Vec<Message>, redactor: &Redactor) {
    for message in messages {
        match message {
            Message::Ready => {
                view.ready = true;
                view.phase = None;
            }
            Message::Reloading => view.phase = Some("reloading"),
            Message::Stopping => view.phase = Some("stopping"),
            Message::Status(text) => {
                let clean = redactor.redact(text.as_bytes());
                view.status = Some(String::from_utf8_lossy(&clean).into_owned());
            }
            Message::Watchdog => view.pings += 1,
            Message::WatchdogTrigger => view.triggered = true,
            Message::Ignored(key) => tracing::debug!(%key, "ignored a notification field"),
        }
    }
}
