//! `herder status` (alias `ps`): every child of the running instance as an aligned table,
//! followed by the manifest errors in force; `--format json` prints the status report.

use crate::manifest::model::Kind;
use crate::manifest::selector::Selector;
use clap::Args;

use super::exit::Exit;
use super::remote::{ConnectArgs, block_on, connect, emit, to_json};
use super::table::{Cell, render};
use super::{Format, color_enabled};
use crate::reconcile::state::{State, Tone};
use crate::reconcile::{ChildStatus, StatusReport};

/// Arguments of `herder status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output format: `human` (a table) or `json` (the status report).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Only the children whose labels match (`-l team=core`; several must all hold); none
    /// matching exits 1.
    #[arg(short = 'l', long, value_name = "KEY=VALUE")]
    pub selector: Vec<Selector>,
    /// How to reach the instance.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Prints the status; exit 0, or 4 without a running instance.
pub fn run(args: &StatusArgs) -> u8 {
    block_on(async {
        let client = connect(&args.connect).await?;
        let path = match Selector::all(args.selector.iter().cloned()) {
            Some(selector) => format!(
                "/v1/status?selector={}",
                super::command::query_value(&selector.to_string())
            ),
            None => "/v1/status".to_owned(),
        };
        let report: StatusReport = client.get(&path).await?;
        let text = match args.format {
            Format::Json => to_json(&report, true)?,
            Format::Human => human(&report, color_enabled(&std::io::stdout())),
        };
        emit(&text)?;
        Ok(Exit::OK)
    })
}

/// The table and the errors in force.
pub fn human(report: &StatusReport, color: bool) -> String {
    let mut out = if report.children.is_empty() {
        String::from("no children\n")
    } else {
        let rows: Vec<Vec<Cell>> = report.children.iter().map(row).collect();
        render(
            &[
                "NAME", "STATE", "PID", "UPTIME", "RESTARTS", "READY", "HEALTH", "CPU", "MEM",
                "LIMITS", "INFO",
            ],
            &rows,
            color,
        )
    };
    if !report.errors.is_empty() {
        out.push_str(&format!(
            "\n{} manifest error{} in force (the last good versions stay applied):\n",
            report.errors.len(),
            if report.errors.len() == 1 { "" } else { "s" }
        ));
        for error in &report.errors {
            out.push_str(&format!(
                "  {}:{}:{}: {}\n",
                error.file.display(),
                error.line,
                error.column,
                error.message
            ));
        }
    }
    if report.shutting_down {
        out.push_str("\nherder is shutting down\n");
    }
    out
}

fn row(child: &ChildStatus) -> Vec<Cell> {
    let dash = || Cell::plain("-");
    let limits = child
        .limits
        .iter()
        .map(|limit| format!("{}={}/{}", limit.name, limit.value, limit.enforcement))
        .collect::<Vec<_>>()
        .join(",");
    let info = child
        .reason
        .clone()
        .or_else(|| {
            child
                .last_exit
                .as_ref()
                .map(|exit| format!("last exit: {exit}"))
        })
        .unwrap_or_default();
    // What kind of child it is when not a plain service, and the ports it owns.
    let facts = (child.kind == Kind::Target)
        .then(|| "target".to_owned())
        .into_iter()
        .chain((!child.ports.is_empty()).then(|| format!("ports {}", child.ports.join(","))))
        .chain(child.notify_state.clone())
        .chain(
            child
                .notify_status
                .as_ref()
                .map(|text| format!("status: {text}")),
        );
    let info = [info]
        .into_iter()
        .filter(|info| !info.is_empty())
        .chain(facts)
        .collect::<Vec<_>>()
        .join("; ");
    vec![
        Cell::plain(&child.name),
        Cell::painted(child.state.as_str(), state_color(child.state)),
        child
            .pid
            .map_or_else(dash, |pid| Cell::plain(pid.to_string())),
        child
            .uptime_secs
            .map_or_else(dash, |secs| Cell::plain(uptime(secs))),
        Cell::plain(child.restarts.to_string()),
        Cell::plain(if child.ready { "yes" } else { "no" }),
        match child.healthy {
            Some(true) => Cell::painted("ok", Some("32")),
            Some(false) => Cell::painted("failing", Some("31")),
            None => dash(),
        },
        child
            .usage
            .and_then(|u| u.cpu_percent)
            .map_or_else(dash, |pct| Cell::plain(format!("{pct:.0}%"))),
        child
            .usage
            .and_then(|u| u.memory_bytes)
            .map_or_else(dash, |bytes| Cell::plain(memory(bytes))),
        if limits.is_empty() {
            dash()
        } else {
            Cell::plain(limits)
        },
        Cell::plain(info),
    ]
}

/// Green when serving, yellow on the way, red when in trouble, dim when at rest.
fn state_color(state: State) -> Option<&'static str> {
    match state.tone() {
        Tone::Serving => Some("32"),
        Tone::Transient => Some("33"),
        Tone::Trouble => Some("31"),
        Tone::Resting => Some("2"),
    }
}

/// `812Ki`, `45.3Mi`, `1.2Gi`: binary units, as the manifest writes limits.
pub fn memory(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["Ki", "Mi", "Gi", "Ti"];
    let mut value = bytes as f64;
    if value < 1024.0 {
        return format!("{bytes}B");
    }
    let mut unit = "B";
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    if value < 10.0 {
        format!("{value:.1}{unit}")
    } else {
        format!("{value:.0}{unit}")
    }
}

/// `45s`, `12m05s`, `3h02m`, `2d04h`.
pub fn uptime(secs: f64) -> String {
    let secs = secs.max(0.0) as u64;
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h:02}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::control::LimitStatus;

    #[test]
    fn uptimes_read_naturally() {
        assert_eq!(uptime(45.7), "45s");
        assert_eq!(uptime(725.0), "12m05s");
        assert_eq!(uptime(3.0 * 3600.0 + 120.0), "3h02m");
        assert_eq!(uptime(2.0 * 86_400.0 + 4.0 * 3600.0), "2d04h");
    }

    #[test]
    fn the_table_shows_every_column() {
        let report = StatusReport {
            children: vec![
                ChildStatus {
                    name: "api".into(),
                    state: State::Ready,
                    pid: Some(4242),
                    uptime_secs: Some(61.0),
                    restarts: 1,
                    ready: true,
                    healthy: Some(true),
                    limits: vec![LimitStatus {
                        name: "memory".into(),
                        value: "256Mi".into(),
                        enforcement: crate::supervise::limits::Enforcement::CgroupV1,
                    }],
                    usage: Some(crate::supervise::cgroup::Usage {
                        memory_bytes: Some(45 << 20),
                        cpu_percent: Some(24.6),
                        ..Default::default()
                    }),
                    ..ChildStatus::default()
                },
                ChildStatus {
                    name: "worker".into(),
                    state: State::Backoff,
                    last_exit: Some("exited with code 1".into()),
                    ..ChildStatus::default()
                },
            ],
            ..StatusReport::default()
        };
        let text = human(&report, false);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("NAME    STATE    PID   UPTIME  RESTARTS"),
            "{text}"
        );
        assert!(
            lines[1].contains("api     ready    4242  1m01s   1"),
            "{text}"
        );
        assert!(lines[1].contains("memory=256Mi/cgroup-v1"), "{text}");
        assert!(lines[1].contains(" 25%  45Mi "), "{text}");
        assert_eq!(memory(812 * 1024), "812Ki");
        assert_eq!(memory(3 << 29), "1.5Gi");
        assert_eq!(memory(100), "100B");
        assert!(
            lines[2].ends_with("last exit: exited with code 1"),
            "{text}"
        );
    }
}
