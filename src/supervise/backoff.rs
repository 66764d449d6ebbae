//! Restart delays: an exponential, capped, jittered `Iterator<Item = Duration>`.
//!
//! The iterator is pure: randomness comes from an injected [`Random`] source, so tests are deterministic. The
//! owner resets it (with [`Backoff::reset`]) once a run has been stable for [`Backoff::stable_after`], so a
//! child that crashes once a day restarts quickly every time while a crash loop backs off.

use std::time::Duration;

use crate::manifest::model;

/// A source of uniformly distributed numbers in `[0, 1)`.
pub trait Random: Send {
    /// The next number in `[0, 1)`.
    fn unit(&mut self) -> f64;
}

/// `fastrand`'s generator: good enough to spread restarts, not for anything secret.
#[derive(Debug, Clone)]
pub struct FastRand(fastrand::Rng);

impl FastRand {
    /// Seeded by `fastrand` from the OS's entropy.
    pub fn from_entropy() -> Self {
        Self(fastrand::Rng::new())
    }

    /// A fixed seed, for reproducible tests.
    pub fn seeded(seed: u64) -> Self {
        Self(fastrand::Rng::with_seed(seed))
    }
}

impl Random for FastRand {
    fn unit(&mut self) -> f64 {
        self.0.f64()
    }
}

/// The parameters of a backoff sequence (`restart.backoff` of a manifest).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    /// First delay.
    pub initial: Duration,
    /// Cap of every delay, jitter included.
    pub max: Duration,
    /// Growth factor per restart (at least 1).
    pub multiplier: f64,
    /// Spread as a fraction: each delay is multiplied by a factor in `[1 - jitter, 1 + jitter]`.
    pub jitter: f64,
}

impl From<&model::Backoff> for BackoffPolicy {
    fn from(b: &model::Backoff) -> Self {
        Self {
            initial: b.initial.get(),
            max: b.max.get(),
            multiplier: b.multiplier,
            jitter: b.jitter,
        }
    }
}

/// The delay sequence. Infinite: after reaching `max` it keeps yielding (jittered) `max`.
pub struct Backoff {
    policy: BackoffPolicy,
    next_base: Duration,
    random: Box<dyn Random>,
}

impl std::fmt::Debug for Backoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backoff")
            .field("policy", &self.policy)
            .field("next_base", &self.next_base)
            .finish()
    }
}

impl Backoff {
    /// A sequence starting at `policy.initial`.
    pub fn new(policy: BackoffPolicy, random: Box<dyn Random>) -> Self {
        Self {
            next_base: policy.initial.min(policy.max),
            policy,
            random,
        }
    }

    /// Starts over at `initial`.
    pub fn reset(&mut self) {
        self.next_base = self.policy.initial.min(self.policy.max);
    }

    /// Replaces the parameters (an in-place manifest update); the sequence restarts.
    pub fn set_policy(&mut self, policy: BackoffPolicy) {
        self.policy = policy;
        self.reset();
    }

    /// How long a run must last before the next crash counts as a first one again: `max(10s, max)`.
    pub fn stable_after(&self) -> Duration {
        self.policy.max.max(Duration::from_secs(10))
    }
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let base = self.next_base;
        let multiplier = if self.policy.multiplier.is_finite() {
            self.policy.multiplier.max(1.0)
        } else {
            1.0
        };
        let grown = base.as_secs_f64() * multiplier;
        self.next_base = if grown >= self.policy.max.as_secs_f64() {
            self.policy.max
        } else {
            Duration::from_secs_f64(grown)
        };
        let jitter = self.policy.jitter.clamp(0.0, 1.0);
        let factor = 1.0 + jitter * (2.0 * self.random.unit() - 1.0);
        let jittered = base.as_secs_f64() * factor;
        Some(Duration::from_secs_f64(jittered.max(0.0)).min(self.policy.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(f64);
    impl Random for Fixed {
        fn unit(&mut self) -> f64 {
            self.0
        }
    }

    fn policy(jitter: f64) -> BackoffPolicy {
        BackoffPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
            multiplier: 2.0,
            jitter,
        }
    }

    #[test]
    fn doubles_then_caps_without_jitter() {
        let b = Backoff::new(policy(0.0), Box::new(Fixed(0.3)));
        let got: Vec<u128> = b.take(7).map(|d| d.as_millis()).collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1600, 2000, 2000]);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let mut b = Backoff::new(policy(0.5), Box::new(FastRand::seeded(42)));
        let mut base = 0.1f64;
        for _ in 0..50 {
            let d = b.next().expect("infinite").as_secs_f64();
            assert!(
                d >= base * 0.5 - 1e-9 && d <= (base * 1.5).min(2.0) + 1e-9,
                "{d} for base {base}"
            );
            base = (base * 2.0).min(2.0);
        }
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::new(policy(0.0), Box::new(Fixed(0.5)));
        b.next();
        b.next();
        b.reset();
        assert_eq!(b.next(), Some(Duration::from_millis(100)));
        assert_eq!(b.stable_after(), Duration::from_secs(10));
    }

    #[test]
    fn degenerate_multiplier_does_not_shrink() {
        let mut p = policy(0.0);
        p.multiplier = f64::NAN;
        let got: Vec<u128> = Backoff::new(p, Box::new(Fixed(0.0)))
            .take(3)
            .map(|d| d.as_millis())
            .collect();
        assert_eq!(got, vec![100, 100, 100]);
    }

    #[test]
    fn fastrand_is_in_unit_interval() {
        let mut r = FastRand::seeded(0);
        for _ in 0..1000 {
            let v = r.unit();
            assert!((0.0..1.0).contains(&v));
        }
    }
}
