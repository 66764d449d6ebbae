//! Timing of the child actor under a paused tokio clock, with a fake [`Launcher`]: exact, and instant in real
//! time. Behaviour with real processes is covered by `tests/supervise_child/`; this only checks *when* things happen.
//!
//! * [`fake`]: the fake launcher and the harness that stamps events and statuses with their instants.
//! * [`probes`]: readiness and liveness probes: schedule, thresholds, `start_period`, timeouts, start timeout.
//! * [`pause`]: what a pause holds still (probes, the start timeout, the watchdog) and how resume picks up.
//! * [`restart`]: backoff delays, their growth and their reset after a stable run.
//!
//! [`Launcher`]: herder::supervise::launcher::Launcher

mod fake;
mod pause;
mod probes;
mod restart;
