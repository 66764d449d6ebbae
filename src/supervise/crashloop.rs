//! The crash-loop limit: a pure counter of restarts over a sliding window.
//!
//! `restart.limit: {count: 5, window: 60s}` allows five restarts in any 60 seconds; the sixth within the window
//! marks the child failed instead of restarting it again.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The restarts of one child that still count.
#[derive(Debug, Clone, Default)]
pub struct RestartWindow {
    recent: VecDeque<Instant>,
}

/// The limit was hit: `count` restarts already happened within `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("crash loop: {count} restarts in {}", humantime::format_duration(*.window))]
pub struct CrashLoop {
    /// Restarts in the window.
    pub count: u32,
    /// The window.
    pub window: Duration,
}

impl RestartWindow {
    /// Records a restart at `now` unless `count` restarts already happened within `window`.
    pub fn try_record(
        &mut self,
        now: Instant,
        count: u32,
        window: Duration,
    ) -> Result<(), CrashLoop> {
        while let Some(&first) = self.recent.front() {
            if now.saturating_duration_since(first) >= window {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        if self.recent.len() >= count as usize {
            return Err(CrashLoop { count, window });
        }
        self.recent.push_back(now);
        Ok(())
    }

    /// Forgets every recorded restart (an explicit restart or start by the operator).
    pub fn clear(&mut self) {
        self.recent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_count_then_fails_then_recovers() {
        let t0 = Instant::now();
        let mut w = RestartWindow::default();
        let window = Duration::from_secs(60);
        for i in 0..3 {
            assert!(w.try_record(t0 + Duration::from_secs(i), 3, window).is_ok());
        }
        let err = w
            .try_record(t0 + Duration::from_secs(10), 3, window)
            .expect_err("fourth in window");
        assert_eq!(err.to_string(), "crash loop: 3 restarts in 1m");
        assert!(
            w.try_record(t0 + Duration::from_secs(61), 3, window)
                .is_ok()
        );
    }
}
