//! The quiet window: when to rescan after filesystem events.
//!
//! A lone save must apply at once, but a `git checkout` of 50 files or a ConfigMap swap is a
//! burst of events that must end in one consistent rescan, not in one per file (which could
//! apply half a checkout). So the rescan waits until the directory has been quiet for a short
//! window after the last event. The window grows with the burst (busy writers get more slack)
//! but is capped, and the whole wait is bounded from the first event, so a directory that
//! never goes quiet is still rescanned regularly.

use std::time::Duration;

use tokio::time::Instant;

/// Tuning of the quiet window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuietWindow {
    /// Quiet time required after the last event of a small burst.
    pub quiet: Duration,
    /// Extra quiet time per event seen in the burst.
    pub per_event: Duration,
    /// Upper bound of the quiet time.
    pub max_quiet: Duration,
    /// Longest wait from the first event of a burst to the rescan.
    pub max_delay: Duration,
}

impl Default for QuietWindow {
    /// 2 ms quiet, +50 µs per event up to 20 ms, at most 100 ms after the first event: an
    /// atomic save (≈5 events) waits ≈2.3 ms; a 50-file checkout (≈150 events) gets ≈9.5 ms
    /// of slack between writes.
    fn default() -> Self {
        Self {
            quiet: Duration::from_millis(2),
            per_event: Duration::from_micros(50),
            max_quiet: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
        }
    }
}

/// Events seen since the last rescan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Burst {
    first: Instant,
    last: Instant,
    events: u64,
}

impl Burst {
    /// A burst that starts with `events` events at `now`.
    pub fn start(now: Instant, events: u64) -> Self {
        Self {
            first: now,
            last: now,
            events,
        }
    }

    /// Records `events` more events at `now`.
    pub fn record(&mut self, now: Instant, events: u64) {
        self.last = now;
        self.events = self.events.saturating_add(events);
    }

    /// When the rescan should run if nothing else arrives.
    pub fn deadline(&self, window: &QuietWindow) -> Instant {
        let extra = window
            .per_event
            .saturating_mul(u32::try_from(self.events).unwrap_or(u32::MAX));
        let quiet = window.quiet.saturating_add(extra).min(window.max_quiet);
        (self.last + quiet).min(self.first + window.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_event_waits_only_the_base_window() {
        let now = Instant::now();
        let window = QuietWindow::default();
        let burst = Burst::start(now, 1);
        assert_eq!(burst.deadline(&window), now + Duration::from_micros(2050));
    }

    #[test]
    fn each_event_pushes_the_deadline_but_never_past_max_delay() {
        let start = Instant::now();
        let window = QuietWindow::default();
        let mut burst = Burst::start(start, 1);
        for ms in 1..=500 {
            burst.record(start + Duration::from_millis(ms), 3);
            assert!(burst.deadline(&window) <= start + window.max_delay);
        }
        assert_eq!(burst.deadline(&window), start + window.max_delay);
    }

    #[test]
    fn big_bursts_get_more_slack_up_to_the_cap() {
        let now = Instant::now();
        let window = QuietWindow::default();
        let burst = Burst::start(now, 150);
        assert_eq!(burst.deadline(&window), now + Duration::from_micros(9500));
        let huge = Burst::start(now, 100_000);
        assert_eq!(huge.deadline(&window), now + window.max_quiet);
    }
}
