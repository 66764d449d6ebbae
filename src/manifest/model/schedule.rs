//! `schedule:` — when a oneshot runs by itself: a cron expression in a time zone, or a
//! fixed period, with jitter and what to do about overlaps and missed slots.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::is_default;
use crate::manifest::units::Duration;

/// When a oneshot runs by itself. Exactly one of `cron` and `every`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// A cron expression: five fields (`minute hour day-of-month month day-of-week`), an optional leading seconds field, or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// The IANA time zone the cron expression is read in (`Europe/Berlin`); default the host's (`TZ`, else `/etc/localtime`, else UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// A fixed period instead of a cron expression (`30s`, `5m`): slots are whole multiples of it since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Duration>,
    /// Each run starts after a random delay up to this long, so that many schedules on one slot do not start at once.
    #[serde(default, skip_serializing_if = "is_default")]
    pub jitter: Duration,
    /// What happens when a slot comes while the previous run is still going.
    #[serde(default, skip_serializing_if = "is_default")]
    pub overlap: Overlap,
    /// What happens at start for slots missed while herder was not running.
    #[serde(default, skip_serializing_if = "is_default")]
    pub missed: Missed,
}

/// What a slot does while the previous run is still going.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Overlap {
    /// The slot is skipped (an event says so).
    #[default]
    Skip,
    /// The slot runs once the previous run ends (at most one waits).
    Queue,
    /// The previous run is stopped and the slot runs.
    Replace,
}

/// What herder does at start about slots that passed while it was not running.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Missed {
    /// Nothing: the next slot runs as usual.
    #[default]
    Skip,
    /// One run now if any slot was missed (however many were).
    RunOnce,
}
