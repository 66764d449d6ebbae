//! The child table's rows: filtering (name, `label:KEY=VALUE`, `state:STATE`), sorting by
//! a column, and each cell as text.

use std::cmp::Ordering;
use std::time::Duration;

use super::model::Row;

/// The column the table is sorted by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    /// By name.
    #[default]
    Name,
    /// By state, then name.
    State,
    /// Most restarts first.
    Restarts,
    /// Longest running first.
    Uptime,
    /// Most CPU first.
    Cpu,
    /// Most memory first.
    Memory,
}

impl SortKey {
    /// The next column in the cycle.
    pub fn next(self) -> Self {
        match self {
            Self::Name => Self::State,
            Self::State => Self::Restarts,
            Self::Restarts => Self::Uptime,
            Self::Uptime => Self::Cpu,
            Self::Cpu => Self::Memory,
            Self::Memory => Self::Name,
        }
    }

    /// The column's header.
    pub fn header(self) -> &'static str {
        match self {
            Self::Name => "NAME",
            Self::State => "STATE",
            Self::Restarts => "RESTARTS",
            Self::Uptime => "UPTIME",
            Self::Cpu => "CPU",
            Self::Memory => "MEM",
        }
    }
}

/// Whether `row` passes every whitespace-separated term of `filter`: `state:S` (exact
/// state), `label:K=V` (or `label:K`), anything else a case-insensitive part of the name.
pub fn matches(row: &Row, filter: &str) -> bool {
    filter.split_whitespace().all(|term| {
        if let Some(state) = term.strip_prefix("state:") {
            row.state.eq_ignore_ascii_case(state)
        } else if let Some(label) = term.strip_prefix("label:") {
            match label.split_once('=') {
                Some((key, value)) => row.labels.get(key).is_some_and(|v| v == value),
                None => row.labels.contains_key(label),
            }
        } else {
            row.name.to_lowercase().contains(&term.to_lowercase())
        }
    })
}

/// The order of two rows by `key` (ties by name).
pub fn compare(a: &Row, b: &Row, key: SortKey) -> Ordering {
    let usage = |row: &Row, f: fn(&super::model::Usage) -> Option<f64>| {
        row.usage.as_ref().and_then(f).unwrap_or(-1.0)
    };
    let by = match key {
        SortKey::Name => Ordering::Equal,
        SortKey::State => a.state.cmp(&b.state),
        SortKey::Restarts => b.restarts.cmp(&a.restarts),
        SortKey::Uptime => b
            .uptime_secs
            .unwrap_or(-1.0)
            .total_cmp(&a.uptime_secs.unwrap_or(-1.0)),
        SortKey::Cpu => usage(b, |u| u.cpu_percent).total_cmp(&usage(a, |u| u.cpu_percent)),
        SortKey::Memory => usage(b, |u| u.memory_bytes.map(|m| m as f64))
            .total_cmp(&usage(a, |u| u.memory_bytes.map(|m| m as f64))),
    };
    by.then_with(|| a.name.cmp(&b.name))
}

/// A duration the way `herder status` shows it: `45s`, `12m3s`, `5h2m`, `3d4h`.
pub fn duration(secs: f64) -> String {
    let total = Duration::from_secs_f64(secs.max(0.0)).as_secs();
    let (d, h, m, s) = (
        total / 86_400,
        total / 3600 % 24,
        total / 60 % 60,
        total % 60,
    );
    if d > 0 {
        format!("{d}d{h}h")
    } else if h > 0 {
        format!("{h}h{m}m")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// Bytes in binary units: `512B`, `1.5Ki`, `64.0Mi`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "Ki", "Mi", "Gi", "Ti"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

/// The cells of `row`, in the table's column order; `age` is the time since the status
/// was fetched (uptime goes on).
pub fn cells(row: &Row, age: Duration) -> [String; 11] {
    let dash = || "-".to_owned();
    let usage = row.usage.unwrap_or_default();
    [
        row.name.clone(),
        row.state.clone(),
        row.pid.map_or_else(dash, |pid| pid.to_string()),
        row.uptime_secs
            .map_or_else(dash, |up| duration(up + age.as_secs_f64())),
        row.restarts.to_string(),
        if row.ready { "yes" } else { "no" }.to_owned(),
        match row.healthy {
            Some(true) => "ok".to_owned(),
            Some(false) => "failing".to_owned(),
            None => dash(),
        },
        usage
            .cpu_percent
            .map_or_else(dash, |cpu| format!("{cpu:.1}%")),
        usage.memory_bytes.map_or_else(dash, bytes),
        if row.limits.is_empty() {
            dash()
        } else {
            row.limits
                .iter()
                .map(|limit| format!("{}={}", limit.name, limit.value))
                .collect::<Vec<_>>()
                .join(",")
        },
        row.reason
            .clone()
            .or_else(|| row.last_exit.clone().filter(|_| row.pid.is_none()))
            .unwrap_or_default(),
    ]
}

/// The table's headers, in [`cells`] order.
pub const HEADERS: [&str; 11] = [
    "NAME", "STATE", "PID", "UPTIME", "RESTARTS", "READY", "HEALTH", "CPU", "MEM", "LIMITS",
    "REASON",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, state: &str) -> Row {
        Row {
            name: name.into(),
            state: state.into(),
            ..Row::default()
        }
    }

    #[test]
    fn filters_by_name_label_and_state() {
        let mut web = row("web-1", "ready");
        web.labels.insert("tier".into(), "front".into());
        assert!(matches(&web, "WEB"));
        assert!(matches(&web, "state:ready label:tier=front"));
        assert!(matches(&web, "label:tier"));
        assert!(!matches(&web, "label:tier=back"));
        assert!(!matches(&web, "web state:failed"));
        let db = Row {
            restarts: 3,
            ..row("db", "backoff")
        };
        assert_eq!(compare(&db, &web, SortKey::Restarts), Ordering::Less);
        assert_eq!(compare(&db, &web, SortKey::Name), Ordering::Less);
        assert_eq!(duration(3725.0), "1h2m");
        assert_eq!(bytes(1536), "1.5Ki");
    }
}
