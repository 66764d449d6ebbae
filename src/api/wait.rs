//! Commands that wait (`?wait=true[&timeout=30s]`): the answer comes once the command's
//! outcome is known — ready (or completed) after `start`, `restart` and `release`,
//! completed after `run`, stopped after `stop` — with the child's resulting status, or an
//! error naming why it did not get there (failed, crash loop) or that the wait timed out.
//!
//! Event-driven: the wait follows the event log from just before the command, so nothing
//! the command causes is missed, and reads the status only to answer.

use std::time::Duration;

use axum::http::StatusCode;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::error::HttpError;
use crate::events::{Event, EventKind};
use crate::manifest::units;
use crate::reconcile::state::State;
use crate::reconcile::{ChildStatus, Control, Request, VerbName};

/// How long a wait lasts without `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest wait accepted.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// `?wait=true&timeout=30s` on a command.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    /// Answer once the outcome is known, not when the command is accepted.
    #[serde(default)]
    pub wait: bool,
    /// The longest wait, as a duration (`30s`); default 60 s, at most an hour.
    #[serde(default)]
    pub timeout: Option<String>,
}

impl WaitQuery {
    /// The wait's bound, when waiting.
    pub fn bound(&self) -> Result<Option<Duration>, HttpError> {
        if !self.wait {
            return Ok(None);
        }
        let Some(text) = &self.timeout else {
            return Ok(Some(DEFAULT_TIMEOUT));
        };
        let timeout: units::Duration = text.parse().map_err(|_| {
            HttpError::bad_request(format!("timeout `{text}` is not a duration (like `30s`)"))
        })?;
        if timeout.get().is_zero() || timeout.get() > MAX_TIMEOUT {
            return Err(HttpError::bad_request(
                "the timeout must be above 0s and at most 1h",
            ));
        }
        Ok(Some(timeout.get()))
    }
}

/// Follows the child's events for the outcome of one verb.
struct Judge {
    verb: VerbName,
    /// The process that ran when the command was sent, if any.
    old_pid: Option<i32>,
    /// A process other than that one was spawned: for a `restart`, only a `ready` after
    /// that counts. The old process's own `spawned` and `ready` can still be on their way
    /// into the event log when the command is sent (the status shows a child ready before
    /// the reconciler has logged it), and would end the wait with the new one starting.
    spawned: bool,
}

impl Judge {
    fn new(verb: VerbName, old_pid: Option<i32>) -> Self {
        Self {
            verb,
            old_pid,
            spawned: false,
        }
    }

    /// What the next event of the child says: see [`judge`].
    fn see(&mut self, kind: &EventKind) -> Option<Result<(), String>> {
        if let EventKind::Spawned { pid } = kind
            && Some(*pid) != self.old_pid
        {
            self.spawned = true;
        }
        let fresh = self.spawned || self.verb != VerbName::Restart;
        match judge(self.verb, kind) {
            Some(Ok(())) if !fresh => None,
            verdict => verdict,
        }
    }
}

/// What an event of the child says about the outcome of `verb`: `Some(Ok)` reached,
/// `Some(Err(reason))` will not be reached, `None` nothing yet.
fn judge(verb: VerbName, kind: &EventKind) -> Option<Result<(), String>> {
    match (verb, kind) {
        (VerbName::Stop, EventKind::Stopped { .. }) => Some(Ok(())),
        (VerbName::Run, EventKind::Completed) => Some(Ok(())),
        (VerbName::Start | VerbName::Restart | VerbName::Release, EventKind::Ready) => Some(Ok(())),
        (VerbName::Start | VerbName::Restart | VerbName::Release, EventKind::Completed) => {
            Some(Ok(()))
        }
        (VerbName::Stop, _) => None,
        (_, EventKind::Failed { reason }) => Some(Err(reason.clone())),
        (_, EventKind::SpawnFailed { error }) => Some(Err(error.clone())),
        _ => None,
    }
}

/// Whether the status already shows the outcome of `verb` (a `start` of a child that is
/// ready already, a `stop` of a stopped one).
fn settled(verb: VerbName, status: &ChildStatus) -> bool {
    match verb {
        VerbName::Stop => status.state == State::Stopped,
        VerbName::Start | VerbName::Release => {
            matches!(status.state, State::Ready | State::Completed)
        }
        _ => false,
    }
}

/// Whether `verb` has an outcome to wait for; the others answer at once.
pub fn waits(verb: VerbName) -> bool {
    matches!(
        verb,
        VerbName::Start | VerbName::Restart | VerbName::Release | VerbName::Stop | VerbName::Run
    )
}

/// Waits, within `timeout`, for the outcome of `verb` on `child` from the events after
/// `since` (taken before the command was sent, with `old_pid`, the process that ran then);
/// the child's status once reached.
pub async fn outcome(
    control: &Control,
    child: &str,
    verb: VerbName,
    since: u64,
    old_pid: Option<i32>,
    timeout: Duration,
) -> Result<ChildStatus, HttpError> {
    let (backlog, mut events) = control.events.subscribe_since(since);
    let of_child = |event: &Event| event.child.as_deref() == Some(child);
    let mut judge = Judge::new(verb, old_pid);
    let verdict = async {
        if let Some(status) = status(control, child).await
            && settled(verb, &status)
        {
            return Ok(());
        }
        for event in backlog.iter().filter(|e| of_child(e)) {
            if let Some(verdict) = judge.see(&event.kind) {
                return verdict;
            }
        }
        loop {
            match events.recv().await {
                Ok(event) if of_child(&event) => {
                    if let Some(verdict) = judge.see(&event.kind) {
                        return verdict;
                    }
                }
                Ok(_) => {}
                // Fell behind: the status says whether it got there meanwhile.
                Err(RecvError::Lagged(_)) => {
                    if status(control, child)
                        .await
                        .is_some_and(|s| settled(verb, &s))
                    {
                        return Ok(());
                    }
                }
                Err(RecvError::Closed) => return Err("herder is shutting down".to_owned()),
            }
        }
    };
    let verdict = tokio::time::timeout(timeout, verdict).await;
    let now = status(control, child).await;
    let state = now.as_ref().map_or("gone".to_owned(), |s| {
        serde_json::to_value(s.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    });
    match verdict {
        Ok(Ok(())) => now.ok_or_else(HttpError::unavailable),
        Ok(Err(reason)) => Err(HttpError::new(
            StatusCode::CONFLICT,
            "not-reached",
            format!("`{verb}` on `{child}` did not get there: {reason} (now {state})"),
        )
        .with_hint(format!("`herder logs {child}` shows its output"))),
        Err(_) => Err(HttpError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timed-out",
            format!(
                "`{verb}` on `{child}` timed out after {}s (now {state})",
                timeout.as_secs_f64()
            ),
        )
        .with_hint("raise --timeout, or see `herder status`")),
    }
}

/// The status of `child` now (without usage), if herder answers and knows it.
pub async fn status(control: &Control, child: &str) -> Option<ChildStatus> {
    let report = control.ask(|reply| Request::Status { reply }).await?;
    report.children.into_iter().find(|c| c.name == child)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_waits_for_the_ready_of_a_process_spawned_after_it() {
        let mut judge = Judge::new(VerbName::Restart, Some(41));
        let old = EventKind::Spawned { pid: 41 };
        assert_eq!(judge.see(&old), None, "the old process's late spawned");
        assert_eq!(judge.see(&EventKind::Ready), None, "and its late ready");
        assert_eq!(judge.see(&EventKind::Spawned { pid: 42 }), None);
        assert_eq!(judge.see(&EventKind::Ready), Some(Ok(())));
        let mut failing = Judge::new(VerbName::Restart, None);
        let failed = EventKind::Failed {
            reason: "crash loop".into(),
        };
        assert_eq!(failing.see(&failed), Some(Err("crash loop".into())));
        let mut start = Judge::new(VerbName::Start, None);
        assert_eq!(start.see(&EventKind::Ready), Some(Ok(())));
    }
}
