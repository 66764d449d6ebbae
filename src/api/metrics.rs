//! `GET /metrics`: the status report in the Prometheus text format (version 0.0.4).
//!
//! Built from one [`StatusReport`] per scrape, so nothing is counted twice and nothing is
//! mirrored: children by state, restarts per child, reloads, the last reload's latency,
//! manifest errors in force, the generation and the number of events.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::error::HttpError;
use super::server::AppState;
use crate::reconcile::StatusReport;
use crate::reconcile::state::State as ChildState;

/// `GET /metrics`.
pub(super) async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, HttpError> {
    let report = state.status_report().await?;
    let text = render(&report, state.control.events.last_seq());
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}

/// The exposition text of `report`; `events` is the newest event sequence number.
pub fn render(report: &StatusReport, events: u64) -> String {
    let mut by_state: BTreeMap<&str, usize> = ChildState::ALL
        .iter()
        .map(|state| (state.as_str(), 0))
        .collect();
    for child in &report.children {
        *by_state.entry(child.state.as_str()).or_default() += 1;
    }
    let mut out = String::new();
    header_lines(&mut out, "herder_children", "gauge", "Children by state.");
    for (state, count) in by_state {
        let _ = writeln!(
            out,
            "herder_children{{state=\"{}\"}} {count}",
            escape(state)
        );
    }
    header_lines(
        &mut out,
        "herder_child_restarts_total",
        "counter",
        "Restarts of each child's current incarnation (automatic and requested).",
    );
    for child in &report.children {
        let _ = writeln!(
            out,
            "herder_child_restarts_total{{child=\"{}\"}} {}",
            escape(&child.name),
            child.restarts
        );
    }
    header_lines(
        &mut out,
        "herder_reloads_total",
        "counter",
        "Reloads applied since start.",
    );
    let _ = writeln!(out, "herder_reloads_total {}", report.reloads);
    header_lines(
        &mut out,
        "herder_reload_duration_seconds",
        "gauge",
        "Time from noticing a manifest change to applying its plan, last reload.",
    );
    let _ = writeln!(
        out,
        "herder_reload_duration_seconds {}",
        report.last_reload_ms.map_or(0.0, |ms| ms / 1000.0)
    );
    header_lines(
        &mut out,
        "herder_manifest_errors",
        "gauge",
        "Manifest errors in force (their files' last good versions stay applied).",
    );
    let _ = writeln!(out, "herder_manifest_errors {}", report.errors.len());
    header_lines(
        &mut out,
        "herder_generation",
        "gauge",
        "The desired-set generation in force.",
    );
    let _ = writeln!(out, "herder_generation {}", report.generation);
    header_lines(
        &mut out,
        "herder_events_total",
        "counter",
        "Events logged since start.",
    );
    let _ = writeln!(out, "herder_events_total {events}");
    header_lines(
        &mut out,
        "herder_log_lost_lines_total",
        "counter",
        "Captured lines a child's log file could not take (full disk, I/O error, writer behind).",
    );
    for child in &report.children {
        let _ = writeln!(
            out,
            "herder_log_lost_lines_total{{child=\"{}\"}} {}",
            escape(&child.name),
            child.logs.lost_lines
        );
    }
    header_lines(
        &mut out,
        "herder_events_lost_total",
        "counter",
        "Events the journal file (events.jsonl) could not take.",
    );
    let _ = writeln!(
        out,
        "herder_events_lost_total {}",
        report.journal.lost_events
    );
    out
}

fn header_lines(out: &mut String, name: &str, kind: &str, help: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::ChildStatus;

    #[test]
    fn renders_children_by_state_and_counters() {
        let report = StatusReport {
            generation: 3,
            children: vec![
                ChildStatus {
                    name: "web".into(),
                    state: ChildState::Ready,
                    restarts: 2,
                    ..ChildStatus::default()
                },
                ChildStatus {
                    name: "db".into(),
                    state: ChildState::Ready,
                    ..ChildStatus::default()
                },
            ],
            reloads: 4,
            last_reload_ms: Some(12.5),
            ..StatusReport::default()
        };
        let text = render(&report, 99);
        for line in [
            "herder_children{state=\"ready\"} 2",
            "herder_children{state=\"failed\"} 0",
            "herder_child_restarts_total{child=\"web\"} 2",
            "herder_reloads_total 4",
            "herder_reload_duration_seconds 0.0125",
            "herder_generation 3",
            "herder_events_total 99",
            "# TYPE herder_children gauge",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
