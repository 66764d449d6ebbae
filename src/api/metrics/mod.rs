//! `GET /metrics`: what herder knows, in the Prometheus text format (version 0.0.4), on the
//! control socket and, with `herder up --metrics ADDR`, over TCP for a Prometheus server
//! ([`tcp`]).
//!
//! Each scrape is built from one [`StatusReport`] (children by state, up and ready per child,
//! start times, reloads, manifest errors, the generation), the [`Tally`] of the event log
//! (restarts and exits by reason, OOM kills, the reload latency histogram) and one pass over
//! `/proc` for CPU, memory and processes per child ([`usage`]). Nothing is mirrored.

pub mod exposition;
pub mod tally;
pub mod tcp;
pub mod usage;

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use self::exposition::{Exposition, Kind};
use self::tally::{Counts, Tally};
use self::usage::Usage;
use super::error::HttpError;
use super::server::AppState;
use crate::reconcile::Control;
use crate::reconcile::StatusReport;
use crate::reconcile::control::Request;
use crate::reconcile::state::State as ChildState;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics` on the control socket.
pub(super) async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, HttpError> {
    let text = scrape(&state.control, &state.tally).await?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text))
}

/// One scrape: the status report, the tally and the usage of every child's process group.
pub async fn scrape(control: &Control, tally: &Tally) -> Result<String, HttpError> {
    let report = control
        .ask(|reply| Request::Status { reply })
        .await
        .ok_or_else(HttpError::unavailable)?;
    let usage = tokio::task::spawn_blocking(usage::by_process_group)
        .await
        .unwrap_or_default();
    Ok(render(
        &report,
        &tally.snapshot(),
        &usage,
        control.events.last_seq(),
    ))
}

/// The exposition text of `report`, `counts` and `usage` (by process group id); `events` is
/// the newest event sequence number.
pub fn render(
    report: &StatusReport,
    counts: &Counts,
    usage: &HashMap<i32, Usage>,
    events: u64,
) -> String {
    let mut by_state: BTreeMap<&str, usize> = ChildState::ALL
        .iter()
        .map(|state| (state.as_str(), 0))
        .collect();
    for child in &report.children {
        *by_state.entry(child.state.as_str()).or_default() += 1;
    }
    let mut out = Exposition::new();
    out.family("herder_children", Kind::Gauge, "Children by state.");
    for (state, count) in by_state {
        out.sample("herder_children", &[("state", state)], count as f64);
    }
    let per_child =
        |out: &mut Exposition, name: &str, kind, help, value: &dyn Fn(usize) -> Option<f64>| {
            out.family(name, kind, help);
            for (i, child) in report.children.iter().enumerate() {
                if let Some(value) = value(i) {
                    out.sample(name, &[("child", &child.name)], value);
                }
            }
        };
    let children = &report.children;
    per_child(
        &mut out,
        "herder_child_up",
        Kind::Gauge,
        "1 while the child has a live process.",
        &|i| Some(f64::from(u8::from(children[i].pid.is_some()))),
    );
    per_child(
        &mut out,
        "herder_child_ready",
        Kind::Gauge,
        "1 while the child's readiness condition holds.",
        &|i| Some(f64::from(u8::from(children[i].ready))),
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    per_child(
        &mut out,
        "herder_child_start_time_seconds",
        Kind::Gauge,
        "When the child's current process started, in seconds since the Unix epoch.",
        &|i| children[i].uptime_secs.map(|up| (now - up).floor()),
    );
    let used = |i: usize| children[i].pid.and_then(|pid| usage.get(&pid));
    per_child(
        &mut out,
        "herder_child_cpu_seconds_total",
        Kind::Counter,
        "CPU time (user and system) of the child's processes.",
        &|i| used(i).map(|u| u.cpu_seconds),
    );
    per_child(
        &mut out,
        "herder_child_memory_bytes",
        Kind::Gauge,
        "Resident memory of the child's processes.",
        &|i| used(i).map(|u| u.memory_bytes as f64),
    );
    per_child(
        &mut out,
        "herder_child_processes",
        Kind::Gauge,
        "Processes of the child.",
        &|i| used(i).map(|u| u.processes as f64),
    );
    by_reason(
        &mut out,
        "herder_child_restarts_total",
        "Restarts since herder started, by reason: automatic (the restart policy) or requested.",
        &counts.restarts,
    );
    by_reason(
        &mut out,
        "herder_child_exits_total",
        "Process exits since herder started, by reason: success, failure (non-zero code) or signal.",
        &counts.exits,
    );
    out.family(
        "herder_child_oom_kills_total",
        Kind::Counter,
        "Processes the kernel killed for memory, since herder started.",
    );
    for (child, count) in &counts.oom_kills {
        out.sample(
            "herder_child_oom_kills_total",
            &[("child", child)],
            *count as f64,
        );
    }
    out.family(
        "herder_reloads_total",
        Kind::Counter,
        "Reloads applied since start.",
    );
    out.sample("herder_reloads_total", &[], report.reloads as f64);
    out.histogram(
        "herder_reload_duration_seconds",
        "Time from noticing a manifest change to applying its plan.",
        &counts.reload_seconds,
    );
    out.family(
        "herder_manifest_errors",
        Kind::Gauge,
        "Manifest errors in force (their files' last good versions stay applied).",
    );
    out.sample("herder_manifest_errors", &[], report.errors.len() as f64);
    out.family(
        "herder_generation",
        Kind::Gauge,
        "The desired-set generation in force.",
    );
    out.sample("herder_generation", &[], report.generation as f64);
    out.family(
        "herder_events_total",
        Kind::Counter,
        "Events logged since start.",
    );
    out.sample("herder_events_total", &[], events as f64);
    per_child(
        &mut out,
        "herder_log_lost_lines_total",
        Kind::Counter,
        "Captured lines a child's log file could not take (full disk, I/O error, writer behind).",
        &|i| Some(children[i].logs.lost_lines as f64),
    );
    out.family(
        "herder_events_lost_total",
        Kind::Counter,
        "Events the journal file (events.jsonl) could not take.",
    );
    out.sample(
        "herder_events_lost_total",
        &[],
        report.journal.lost_events as f64,
    );
    out.family(
        "herder_metrics_series_dropped_total",
        Kind::Counter,
        "Counter series not kept because a family reached its bound.",
    );
    out.sample(
        "herder_metrics_series_dropped_total",
        &[],
        counts.dropped_series as f64,
    );
    out.finish()
}

fn by_reason(
    out: &mut Exposition,
    name: &str,
    help: &str,
    counts: &BTreeMap<(String, &'static str), u64>,
) {
    out.family(name, Kind::Counter, help);
    for ((child, reason), count) in counts {
        out.sample(name, &[("child", child), ("reason", reason)], *count as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::ChildStatus;

    #[test]
    fn renders_children_usage_and_counters() {
        let report = StatusReport {
            generation: 3,
            children: vec![
                ChildStatus {
                    name: "web".into(),
                    state: ChildState::Ready,
                    pid: Some(40),
                    ready: true,
                    uptime_secs: Some(1.0),
                    ..ChildStatus::default()
                },
                ChildStatus {
                    name: "db".into(),
                    state: ChildState::Spawning,
                    ..ChildStatus::default()
                },
            ],
            reloads: 4,
            ..StatusReport::default()
        };
        let mut counts = Counts::default();
        counts.exits.insert(("web".into(), "signal"), 2);
        counts.reload_seconds.observe(0.002);
        let usage = HashMap::from([(
            40,
            Usage {
                cpu_seconds: 1.5,
                memory_bytes: 4096,
                processes: 2,
            },
        )]);
        let text = render(&report, &counts, &usage, 99);
        for line in [
            "herder_children{state=\"ready\"} 1",
            "herder_children{state=\"spawning\"} 1",
            "herder_children{state=\"exited\"} 0",
            "herder_child_up{child=\"web\"} 1",
            "herder_child_up{child=\"db\"} 0",
            "herder_child_ready{child=\"web\"} 1",
            "herder_child_cpu_seconds_total{child=\"web\"} 1.5",
            "herder_child_memory_bytes{child=\"web\"} 4096",
            "herder_child_processes{child=\"web\"} 2",
            "herder_child_exits_total{child=\"web\",reason=\"signal\"} 2",
            "herder_reload_duration_seconds_bucket{le=\"0.0025\"} 1",
            "herder_reload_duration_seconds_count 1",
            "herder_reloads_total 4",
            "herder_generation 3",
            "herder_events_total 99",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(!text.contains("herder_child_memory_bytes{child=\"db\"}"));
    }
}
