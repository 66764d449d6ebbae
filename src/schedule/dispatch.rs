//! The schedule dispatcher: a task beside the reconciler that asks it for the scheduled
//! oneshots, claims each due slot ([`Claims`]), then asks for the run as an operator
//! command would (`run`, audited with herder's own uid and the slot as the reason). Every
//! slot is an event: `scheduled`, or `skipped` with the reason.
//!
//! It sleeps until the nearest next slot (at most a minute, so a changed wall clock is
//! noticed), and wakes early when a reload is applied or a run ends, so an edited schedule
//! applies at once and a queued slot runs as soon as it can. Slots are computed from the
//! wall clock each time it wakes (see [`slots`](super::slots) on clock jumps).

use std::collections::{BTreeMap, BTreeSet};
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use chrono_tz::Tz;
use tokio::sync::broadcast::error::RecvError;

use super::claims::Claims;
use super::slots::{Compiled, Slot, host_zone, show, slot_of};
use crate::events::EventKind;
use crate::manifest::model::{Missed, Overlap};
use crate::reconcile::control::ScheduledChild;
use crate::reconcile::{Control, Peer, Request, Verb};

/// The longest the dispatcher sleeps without looking at the clock again.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Runs until the reconciler is gone. `claims` is `schedule.json` in the state directory.
pub async fn run(control: Control, claims: Option<PathBuf>) {
    let mut dispatcher = Dispatcher {
        claims: Claims::open(claims),
        zone: host_zone(),
        seen: BTreeSet::new(),
        queued: BTreeMap::new(),
        control,
    };
    let (_, mut events) = dispatcher
        .control
        .events
        .subscribe_since(dispatcher.control.events.last_seq());
    loop {
        let Some(children) = dispatcher
            .control
            .ask(|reply| Request::Scheduled { reply })
            .await
        else {
            return;
        };
        let now = slot_of(SystemTime::now());
        let next = dispatcher.pass(&children, now).await;
        let sleep = next
            .map(|next| Duration::from_millis(u64::try_from(next - now).unwrap_or(1).max(1)))
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        let timer = tokio::time::sleep(sleep);
        tokio::pin!(timer);
        loop {
            tokio::select! {
                () = &mut timer => break,
                event = events.recv() => match event {
                    Ok(event) if wakes(&event.kind) => break,
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => return,
                },
            }
        }
    }
}

/// Events after which a slot may be due or runnable: a reload (a new or edited schedule)
/// and the end of a run (a queued slot).
fn wakes(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Reload { .. }
            | EventKind::Completed
            | EventKind::Failed { .. }
            | EventKind::Exited { .. }
            | EventKind::Stopped { .. }
    )
}

struct Dispatcher {
    control: Control,
    claims: Claims,
    zone: Tz,
    /// The schedules seen since herder started: the first sight decides about missed slots.
    seen: BTreeSet<String>,
    /// `overlap: queue`: the slot waiting for the run going now (at most one per child).
    queued: BTreeMap<String, Slot>,
}

impl Dispatcher {
    /// Handles every due slot; returns the nearest next slot.
    async fn pass(&mut self, children: &[ScheduledChild], now: Slot) -> Option<Slot> {
        let names: Vec<&str> = children.iter().map(|c| c.name.as_str()).collect();
        self.queued.retain(|name, _| names.contains(&name.as_str()));
        let mut next: Option<Slot> = None;
        for child in children {
            // Validation rejects a schedule that does not compile.
            let Ok(compiled) = Compiled::new(&child.schedule, self.zone) else {
                continue;
            };
            self.child(child, &compiled, now, &names).await;
            if let Some(slot) = compiled.next_after(now) {
                next = Some(next.map_or(slot, |n| n.min(slot)));
            }
        }
        next
    }

    async fn child(
        &mut self,
        child: &ScheduledChild,
        compiled: &Compiled,
        now: Slot,
        names: &[&str],
    ) {
        let name = child.name.as_str();
        let Some(latest) = compiled.latest_at(now) else {
            return;
        };
        let claimed = self.claims.last(name);
        if self.seen.insert(name.to_owned()) {
            match claimed {
                // A schedule seen for the first time starts from now.
                None => return self.claim(name, latest, names),
                Some(claimed) if latest > claimed => {
                    self.claim(name, latest, names);
                    return match child.schedule.missed {
                        Missed::RunOnce => self.fire(child, latest, true).await,
                        Missed::Skip => self.event(
                            name,
                            EventKind::Skipped {
                                slot: show(latest),
                                reason: "missed while herder was not running".to_owned(),
                            },
                        ),
                    };
                }
                Some(_) => {}
            }
        }
        if !child.running
            && let Some(slot) = self.queued.remove(name)
        {
            self.fire(child, slot, false).await;
            return;
        }
        let Some(slot) = compiled.due(claimed, now) else {
            return;
        };
        self.claim(name, slot, names);
        if !child.running {
            return self.fire(child, slot, false).await;
        }
        match child.schedule.overlap {
            Overlap::Skip => self.event(
                name,
                EventKind::Skipped {
                    slot: show(slot),
                    reason: "the previous run is still going".to_owned(),
                },
            ),
            Overlap::Queue => {
                if let Some(replaced) = self.queued.insert(name.to_owned(), slot) {
                    self.event(
                        name,
                        EventKind::Skipped {
                            slot: show(replaced),
                            reason: "a later slot is queued behind the run going".to_owned(),
                        },
                    );
                }
            }
            Overlap::Replace => {
                self.event(
                    name,
                    EventKind::Scheduled {
                        slot: show(slot),
                        missed: false,
                    },
                );
                self.send(name, Verb::Restart, slot, child.schedule.jitter.get())
                    .await;
            }
        }
    }

    /// Claims `slot`; a claim that cannot be written is reported once per slot and the
    /// run still goes ahead (this process remembers it).
    fn claim(&mut self, name: &str, slot: Slot, names: &[&str]) {
        if let Err(error) = self.claims.claim(name, slot, names.iter().copied()) {
            tracing::warn!(child = name, %error, "cannot record the schedule's claim");
        }
    }

    async fn fire(&mut self, child: &ScheduledChild, slot: Slot, missed: bool) {
        self.event(
            &child.name,
            EventKind::Scheduled {
                slot: show(slot),
                missed,
            },
        );
        self.send(&child.name, Verb::Run, slot, child.schedule.jitter.get())
            .await;
    }

    fn event(&self, name: &str, kind: EventKind) {
        self.control.events.append(Some(name), None, kind);
    }

    /// Asks for `verb` on `name`, after a random delay up to `jitter`; a refusal (the
    /// child is quarantined, say) is a `skipped` event.
    async fn send(&self, name: &str, verb: Verb, slot: Slot, jitter: Duration) {
        let control = self.control.clone();
        let name = name.to_owned();
        let delay = jitter_delay(jitter, slot);
        let ask = async move {
            tokio::time::sleep(delay).await;
            let peer = Peer {
                uid: nix::unistd::getuid().as_raw(),
                pid: None,
            };
            let command = verb.on(name.clone());
            let verdict = control
                .ask(|reply| Request::Command {
                    command,
                    peer,
                    reason: Some(format!("schedule: slot {}", show(slot))),
                    reply,
                })
                .await;
            if let Some(Err(refused)) = verdict {
                control.events.append(
                    Some(&name),
                    None,
                    EventKind::Skipped {
                        slot: show(slot),
                        reason: refused.to_string(),
                    },
                );
            }
        };
        if delay.is_zero() {
            ask.await;
        } else {
            tokio::spawn(ask);
        }
    }
}

/// A random delay below `jitter` (from the process's random hasher keys, seeded by the
/// OS), different for every slot.
fn jitter_delay(jitter: Duration, slot: Slot) -> Duration {
    let millis = u64::try_from(jitter.as_millis()).unwrap_or(u64::MAX);
    if millis == 0 {
        return Duration::ZERO;
    }
    let random = std::collections::hash_map::RandomState::new().hash_one(slot);
    Duration::from_millis(random % millis)
}
