//! The schedule of a run's readiness and liveness probes as a pure value: which attempt is due when, what a
//! result concludes, the start timeout, the watchdog, and what a pause does to all of them.
//!
//! Like [`Machine`](super::Machine) it never touches the OS or the clock: the actor asks it for the next
//! [`deadline`](Probes::deadline), asks what is [`due`](Probes::due) once that passed, launches the attempts it
//! names, and feeds their results back with `now`. The rules:
//!
//! * Readiness is attempted in `Starting`: at once after the spawn, then one `interval` after each result.
//!   Liveness is attempted in `Running`: one `interval` after becoming ready, then one after each result. At most
//!   one attempt of each probe is in flight; an attempt bounds itself by the probe's `timeout`
//!   ([`probe::attempt`](crate::supervise::probe::attempt)), so a hung check is a failure at exactly its timeout.
//! * Checks the child reports itself (`log_line`, `notify`, `notification_fd`, `watchdog`) are never attempted.
//! * A failure within `start_period` of the spawn does not count. `failure_threshold` counted failures in a row
//!   fail the probe, `success_threshold` successes in a row pass it; a verdict is reported once per change.
//! * `Starting` ends at `start_timeout` after the spawn; `Running` with a `watchdog` fails a period after the last
//!   `WATCHDOG=1` (or after becoming ready).
//! * While paused nothing is attempted, the result of an attempt begun before the pause is dropped (a frozen
//!   child cannot answer), and neither the watchdog nor the start timeout runs, so a paused child is never
//!   restarted by its probes. On resume the next attempt follows one `interval` later, the watchdog counts a
//!   whole period again, and the start timeout is moved on by the time spent paused.

use std::time::Duration;

use tokio::time::Instant;

use super::ChildState;
use crate::supervise::child::config::RunConfig;
use crate::supervise::probe::ProbeSpec;

/// One of the two probes of a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    /// Gates `Starting` → `Running`.
    Readiness,
    /// Checks a `Running` child.
    Liveness,
}

/// What [`Probes::due`] found due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Due {
    /// The child did not become ready in time.
    StartTimeout,
    /// The watchdog period passed without a `WATCHDOG=1`.
    Unhealthy {
        /// Says so.
        reason: String,
    },
    /// Launch an attempt of this probe (it now counts as in flight).
    Attempt(Which),
}

/// What a result (or a watchdog notification) concludes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Finding {
    /// Readiness passed: the child is ready.
    Ready,
    /// Readiness failed `failure_threshold` times in a row (the start timeout still decides).
    NotReady {
        /// The last failure.
        reason: String,
    },
    /// Liveness passed; `recovered` when it had failed before (an event is due).
    Healthy {
        /// It was unhealthy.
        recovered: bool,
    },
    /// Liveness failed: the child is to be restarted by policy.
    Unhealthy {
        /// The last failure.
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Attempt {
    /// Nothing scheduled (the probe does not apply in this state, or is not attempted at all).
    #[default]
    Idle,
    /// The next attempt is due then.
    Due(Instant),
    /// An attempt runs; `stale` once a pause began after it was launched (its result is dropped).
    InFlight { stale: bool },
}

/// What a probe concluded last, from consecutive results.
#[derive(Debug, Clone, Copy, Default)]
struct Counter {
    successes: u32,
    failures: u32,
    verdict: Option<bool>,
}

impl Counter {
    /// Counts one result; `Some` when the verdict changes. `counted` is false for a failure in the start period.
    fn record(&mut self, ok: bool, counted: bool, spec: &ProbeSpec) -> Option<bool> {
        if ok {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            if self.successes >= spec.success_threshold() && self.verdict != Some(true) {
                self.verdict = Some(true);
                return self.verdict;
            }
        } else if counted {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.failures >= spec.failure_threshold() && self.verdict != Some(false) {
                self.verdict = Some(false);
                return self.verdict;
            }
        }
        None
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    attempt: Attempt,
    counter: Counter,
}

/// The probe schedule of one run, with the paused flag and the health the probes found.
#[derive(Debug, Default)]
pub(crate) struct Probes {
    readiness: Slot,
    liveness: Slot,
    /// Since when the watchdog counts: the last `WATCHDOG=1`, becoming ready, or a resume.
    watchdog_from: Option<Instant>,
    healthy: Option<bool>,
    /// Since when the child is paused.
    paused_at: Option<Instant>,
    /// Time this run spent paused while starting: the start timeout is that much later.
    held: Duration,
}

/// The probe `which` of `cfg`, when it is attempted on a schedule.
fn scheduled(cfg: &RunConfig, which: Which) -> Option<&ProbeSpec> {
    spec(cfg, which).filter(|p| !p.check.is_pushed())
}

fn spec(cfg: &RunConfig, which: Which) -> Option<&ProbeSpec> {
    match which {
        Which::Readiness => cfg.readiness.as_deref(),
        Which::Liveness => cfg.liveness.as_deref(),
    }
}

/// The probe that applies in `state`, and when the run was spawned.
fn live(state: &ChildState) -> Option<(Which, Instant)> {
    match state {
        ChildState::Starting { since, .. } => Some((Which::Readiness, *since)),
        ChildState::Running { since, .. } => Some((Which::Liveness, *since)),
        _ => None,
    }
}

impl Probes {
    /// Whether the child is paused.
    pub(crate) fn paused(&self) -> bool {
        self.paused_at.is_some()
    }

    /// What liveness (probe or watchdog) last found; `None` before its first verdict.
    pub(crate) fn healthy(&self) -> Option<bool> {
        self.healthy
    }

    /// A new run begins: nothing of the last one carries over.
    pub(crate) fn new_run(&mut self) {
        *self = Self::default();
    }

    /// The group leader exited: whatever was paused is gone.
    pub(crate) fn leader_exited(&mut self) {
        self.paused_at = None;
    }

    fn slot(&mut self, which: Which) -> &mut Slot {
        match which {
            Which::Readiness => &mut self.readiness,
            Which::Liveness => &mut self.liveness,
        }
    }

    /// Follows the machine into `state`: arms the probe that applies there (readiness at once, liveness one
    /// interval on, the watchdog from now) and disarms the other.
    pub(crate) fn on_state(&mut self, state: &ChildState, cfg: &RunConfig, now: Instant) {
        let live = live(state).map(|(which, _)| which);
        for which in [Which::Readiness, Which::Liveness] {
            let slot = self.slot(which);
            if live != Some(which) {
                slot.attempt = Attempt::Idle;
            } else if slot.attempt == Attempt::Idle
                && let Some(p) = scheduled(cfg, which)
            {
                slot.attempt = Attempt::Due(match which {
                    Which::Readiness => now,
                    Which::Liveness => now + p.interval(),
                });
            }
        }
        if live == Some(Which::Liveness) {
            if cfg.watchdog().is_some() && self.watchdog_from.is_none() {
                self.watchdog_from = Some(now);
            }
        } else {
            self.watchdog_from = None;
        }
    }

    /// The probe `which` was replaced by a live update: its counts and its health start over, and it is armed as
    /// if the state had just begun. A result of the old probe still in flight is then dropped.
    pub(crate) fn replace(
        &mut self,
        which: Which,
        state: &ChildState,
        cfg: &RunConfig,
        now: Instant,
    ) {
        *self.slot(which) = Slot::default();
        if which == Which::Liveness {
            self.healthy = None;
            self.watchdog_from = None;
        }
        self.on_state(state, cfg, now);
    }

    fn start_deadline(&self, since: Instant, cfg: &RunConfig) -> Instant {
        since + cfg.start_timeout + self.held
    }

    fn watchdog_deadline(&self, cfg: &RunConfig) -> Option<Instant> {
        Some(self.watchdog_from? + cfg.watchdog()?)
    }

    /// The earliest instant at which [`Probes::due`] has something for `state`; `None` while paused.
    pub(crate) fn deadline(&self, state: &ChildState, cfg: &RunConfig) -> Option<Instant> {
        if self.paused() {
            return None;
        }
        let due_at = |slot: &Slot| match slot.attempt {
            Attempt::Due(at) => Some(at),
            _ => None,
        };
        match state {
            ChildState::Starting { since, .. } => {
                let start = self.start_deadline(*since, cfg);
                Some(due_at(&self.readiness).map_or(start, |at| at.min(start)))
            }
            ChildState::Running { .. } => {
                let probe = due_at(&self.liveness);
                probe.into_iter().chain(self.watchdog_deadline(cfg)).min()
            }
            _ => None,
        }
    }

    /// What is due at `now` in `state`, the start timeout and the watchdog before an attempt. An attempt it names
    /// is in flight from then on: launch it, and hand its result to [`Probes::record`].
    pub(crate) fn due(&mut self, state: &ChildState, cfg: &RunConfig, now: Instant) -> Option<Due> {
        if self.paused() {
            return None;
        }
        let (which, since) = live(state)?;
        if which == Which::Readiness && now >= self.start_deadline(since, cfg) {
            return Some(Due::StartTimeout);
        }
        if which == Which::Liveness
            && let Some(deadline) = self.watchdog_deadline(cfg)
            && now >= deadline
        {
            self.watchdog_from = None;
            self.healthy = Some(false);
            let period = cfg.watchdog().unwrap_or_default();
            let reason = format!(
                "no WATCHDOG=1 within the watchdog period of {}",
                humantime::format_duration(period)
            );
            return Some(Due::Unhealthy { reason });
        }
        let slot = self.slot(which);
        match slot.attempt {
            Attempt::Due(at) if now >= at => {
                slot.attempt = Attempt::InFlight { stale: false };
                Some(Due::Attempt(which))
            }
            _ => None,
        }
    }

    /// Counts the result of an attempt of `which` that [`Probes::due`] named, schedules the next one, and says
    /// what it concludes. A result that no longer applies (the state moved on, the probe was replaced, a pause
    /// came between) concludes nothing.
    pub(crate) fn record(
        &mut self,
        which: Which,
        result: Result<(), String>,
        state: &ChildState,
        cfg: &RunConfig,
        now: Instant,
    ) -> Option<Finding> {
        let applies = live(state).filter(|(live, _)| *live == which);
        let spec = spec(cfg, which)?;
        let slot = self.slot(which);
        let Attempt::InFlight { stale } = slot.attempt else {
            // Not this probe's attempt: launched before a replacement or in an earlier state.
            return None;
        };
        let Some((_, since)) = applies else {
            slot.attempt = Attempt::Idle;
            return None;
        };
        slot.attempt = Attempt::Due(now + spec.interval());
        if stale {
            // Resume (or the one still to come) schedules from its own instant.
            return None;
        }
        let counted = now >= since + spec.start_period();
        let verdict = slot.counter.record(result.is_ok(), counted, spec)?;
        let reason = result.err().unwrap_or_default();
        match (which, verdict) {
            (Which::Readiness, true) => Some(Finding::Ready),
            (Which::Readiness, false) => Some(Finding::NotReady { reason }),
            (Which::Liveness, true) => {
                let recovered = self.healthy == Some(false);
                self.healthy = Some(true);
                Some(Finding::Healthy { recovered })
            }
            (Which::Liveness, false) => {
                self.healthy = Some(false);
                Some(Finding::Unhealthy { reason })
            }
        }
    }

    /// A `WATCHDOG=1` arrived: the period starts again. `Some` when the health changed by it.
    pub(crate) fn watchdog_ping(&mut self, now: Instant) -> Option<Finding> {
        self.watchdog_from?;
        self.watchdog_from = Some(now);
        if self.healthy == Some(true) {
            return None;
        }
        let recovered = self.healthy == Some(false);
        self.healthy = Some(true);
        Some(Finding::Healthy { recovered })
    }

    /// The child sent `WATCHDOG=trigger`: with a watchdog configured, it is unhealthy now.
    pub(crate) fn watchdog_triggered(&mut self, cfg: &RunConfig) -> Option<Finding> {
        cfg.watchdog()?;
        self.watchdog_from = None;
        self.healthy = Some(false);
        Some(Finding::Unhealthy {
            reason: "the child asked to be restarted (WATCHDOG=trigger)".to_owned(),
        })
    }

    /// The child was paused (frozen or SIGSTOPped): nothing is due until [`Probes::resume`].
    pub(crate) fn pause(&mut self, now: Instant) {
        if self.paused() {
            return;
        }
        self.paused_at = Some(now);
        for slot in [&mut self.readiness, &mut self.liveness] {
            if let Attempt::InFlight { stale } = &mut slot.attempt {
                *stale = true;
            }
        }
    }

    /// The child was resumed: the probe of `state` is next due one interval from now (or once the attempt still
    /// in flight returns), the watchdog counts from now, and the start timeout moves on by the pause.
    pub(crate) fn resume(&mut self, state: &ChildState, cfg: &RunConfig, now: Instant) {
        let Some(paused_at) = self.paused_at.take() else {
            return;
        };
        let Some((which, _)) = live(state) else {
            return;
        };
        if which == Which::Readiness {
            self.held += now.saturating_duration_since(paused_at);
        }
        if self.watchdog_from.is_some() {
            self.watchdog_from = Some(now);
        }
        let interval = scheduled(cfg, which).map(|p| p.interval());
        let slot = self.slot(which);
        if let (Some(interval), false) =
            (interval, matches!(slot.attempt, Attempt::InFlight { .. }))
        {
            slot.attempt = Attempt::Due(now + interval);
        }
    }
}

#[cfg(test)]
mod tests;
