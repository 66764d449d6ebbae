//! When a schedule's slots are: a cron expression read in an IANA time zone (croner and
//! chrono-tz), or whole multiples of a period since the Unix epoch. Pure: every function
//! takes the wall-clock time it reasons about, so tests fake the clock freely.
//!
//! Wall-clock jumps. The dispatcher asks [`Compiled::due`] for the latest slot in
//! `(last claimed, now]`: a forward jump (NTP, a suspended laptop, DST in a zone whose
//! local times are skipped) yields one slot, the latest, never a burst; a backward jump
//! yields nothing until the clock passes the last claimed slot again, so no slot fires
//! twice; and the schedule goes on from there. DST is the time zone's business: croner
//! evaluates in the zone, so a local time that happens twice fires once and a skipped one
//! fires at the next matching time.

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

use crate::manifest::model::Schedule;
use crate::manifest::suggest::did_you_mean;

/// A slot: the wall-clock time a run is due, in whole milliseconds since the Unix epoch.
pub type Slot = i64;

/// A schedule ready to compute slots.
#[derive(Clone, Debug)]
pub enum Compiled {
    /// A cron expression in a time zone.
    Cron(Box<Cron>, Tz),
    /// A fixed period, in milliseconds.
    Every(i64),
}

/// Why a schedule cannot be used, with the manifest pointer (below `/schedule`) at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleError {
    /// The field at fault: `cron`, `timezone`, `every`, or empty for the schedule itself.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

/// The names of cron's five fields (after an optional seconds field).
const FIELDS: [&str; 5] = ["minute", "hour", "day of month", "month", "day of week"];

impl Compiled {
    /// Compiles a manifest's schedule; `host_zone` is the zone used without `timezone`.
    pub fn new(schedule: &Schedule, host_zone: Tz) -> Result<Self, ScheduleError> {
        match (&schedule.cron, schedule.every) {
            (Some(_), Some(_)) | (None, None) => Err(ScheduleError {
                field: "",
                message: "a schedule needs exactly one of `cron` and `every`".to_owned(),
                hint: Some("write `cron: \"*/5 * * * *\"` or `every: 30s`".to_owned()),
            }),
            (None, Some(every)) => {
                let millis = i64::try_from(every.get().as_millis()).unwrap_or(i64::MAX);
                if millis == 0 {
                    return Err(ScheduleError {
                        field: "every",
                        message: "every must be at least 1ms".to_owned(),
                        hint: Some("a period such as `30s` or `5m`".to_owned()),
                    });
                }
                if schedule.timezone.is_some() {
                    return Err(ScheduleError {
                        field: "timezone",
                        message: "timezone only applies to `cron`".to_owned(),
                        hint: Some(
                            "`every` counts from the Unix epoch; remove `timezone`".to_owned(),
                        ),
                    });
                }
                Ok(Self::Every(millis))
            }
            (Some(expression), None) => {
                let zone = match &schedule.timezone {
                    Some(name) => parse_zone(name)?,
                    None => host_zone,
                };
                Ok(Self::Cron(Box::new(parse_cron(expression)?), zone))
            }
        }
    }

    /// The first slot strictly after `after`.
    pub fn next_after(&self, after: Slot) -> Option<Slot> {
        match self {
            Self::Every(period) => after
                .div_euclid(*period)
                .checked_add(1)?
                .checked_mul(*period),
            Self::Cron(cron, zone) => {
                let start = zone.timestamp_millis_opt(after).single()?;
                let next = cron.find_next_occurrence(&start, false).ok()?;
                Some(next.timestamp_millis())
            }
        }
    }

    /// The latest slot at or before `now`.
    pub fn latest_at(&self, now: Slot) -> Option<Slot> {
        match self {
            Self::Every(period) => now.div_euclid(*period).checked_mul(*period),
            Self::Cron(cron, zone) => {
                let start = zone.timestamp_millis_opt(now).single()?;
                let previous = cron.find_previous_occurrence(&start, true).ok()?;
                Some(previous.timestamp_millis())
            }
        }
    }

    /// The slot to run now, if any: the latest slot in `(claimed, now]`. With nothing
    /// claimed yet (a schedule seen for the first time), only a slot that is exactly now.
    pub fn due(&self, claimed: Option<Slot>, now: Slot) -> Option<Slot> {
        let latest = self.latest_at(now)?;
        match claimed {
            Some(claimed) if latest <= claimed => None,
            Some(_) => Some(latest),
            None => (latest == now).then_some(latest),
        }
    }
}

/// The next slot of a manifest's schedule after `now`, RFC 3339 UTC; `None` without one.
pub fn next_run(schedule: Option<&Schedule>, now: SystemTime) -> Option<String> {
    let compiled = Compiled::new(schedule?, host_zone()).ok()?;
    compiled.next_after(slot_of(now)).map(show)
}

/// `time` as a slot (milliseconds since the epoch; times before it count as the epoch).
pub fn slot_of(time: SystemTime) -> Slot {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// A slot as an RFC 3339 UTC time, for events and status.
pub fn show(slot: Slot) -> String {
    Utc.timestamp_millis_opt(slot)
        .single()
        .map_or_else(|| slot.to_string(), |t: DateTime<Utc>| t.to_rfc3339())
}

/// The host's time zone: `TZ`, else the zone `/etc/localtime` links to, else UTC.
pub fn host_zone() -> Tz {
    let from_env = std::env::var("TZ")
        .ok()
        .map(|tz| tz.trim_start_matches(':').to_owned());
    let from_link = || {
        let target = std::fs::read_link("/etc/localtime").ok()?;
        let text = target.to_string_lossy().into_owned();
        Some(text.split_once("zoneinfo/")?.1.to_owned())
    };
    from_env
        .and_then(|name| Tz::from_str(&name).ok())
        .or_else(|| from_link().and_then(|name| Tz::from_str(&name).ok()))
        .unwrap_or(Tz::UTC)
}

fn parse_zone(name: &str) -> Result<Tz, ScheduleError> {
    Tz::from_str(name).map_err(|_| ScheduleError {
        field: "timezone",
        message: format!("unknown time zone \"{name}\""),
        hint: Some(
            match did_you_mean(name, chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())) {
                Some(best) => {
                    format!("did you mean \"{best}\"? (IANA names, like `Europe/Berlin`)")
                }
                None => "an IANA time zone name, like `UTC` or `Europe/Berlin`".to_owned(),
            },
        ),
    })
}

fn parser() -> CronParser {
    CronParser::builder().seconds(Seconds::Optional).build()
}

/// Parses a cron expression; on failure, names the field in error by parsing each field
/// alone (the others as `*`).
fn parse_cron(expression: &str) -> Result<Cron, ScheduleError> {
    let error = match parser().parse(expression) {
        Ok(cron) => return Ok(cron),
        Err(error) => error,
    };
    let fields: Vec<&str> = expression.split_whitespace().collect();
    let names: &[&str] = match fields.len() {
        6 => &[
            "second", FIELDS[0], FIELDS[1], FIELDS[2], FIELDS[3], FIELDS[4],
        ],
        _ => &FIELDS,
    };
    let culprit = (fields.len() == names.len()).then(|| {
        (0..fields.len()).find(|&at| {
            let alone: Vec<&str> = (0..fields.len())
                .map(|i| if i == at { fields[i] } else { "*" })
                .collect();
            parser().parse(&alone.join(" ")).is_err()
        })
    });
    let message = match culprit.flatten() {
        Some(at) => format!(
            "cron field {} ({}) `{}` is invalid: {error}",
            at + 1,
            names[at],
            fields[at]
        ),
        None => format!("invalid cron expression \"{expression}\": {error}"),
    };
    Err(ScheduleError {
        field: "cron",
        message,
        hint: Some(
            "five fields `minute hour day-of-month month day-of-week` (an optional leading seconds field), or @hourly, @daily, @weekly, @monthly, @yearly".to_owned(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::units::Duration as Period;

    fn every(period: &str) -> Compiled {
        let schedule = Schedule {
            every: period.parse::<Period>().ok(),
            ..Schedule::default()
        };
        Compiled::new(&schedule, Tz::UTC).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn cron(expression: &str, zone: Option<&str>) -> Result<Compiled, ScheduleError> {
        let schedule = Schedule {
            cron: Some(expression.to_owned()),
            timezone: zone.map(str::to_owned),
            ..Schedule::default()
        };
        Compiled::new(&schedule, Tz::UTC)
    }

    fn at(text: &str) -> Slot {
        DateTime::parse_from_rfc3339(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .timestamp_millis()
    }

    #[test]
    fn every_slots_are_multiples_of_the_period() {
        let s = every("10s");
        assert_eq!(s.next_after(25_000), Some(30_000));
        assert_eq!(s.next_after(30_000), Some(40_000));
        assert_eq!(s.latest_at(39_999), Some(30_000));
        assert_eq!(s.due(Some(20_000), 35_000), Some(30_000));
        assert_eq!(
            s.due(Some(30_000), 35_000),
            None,
            "claimed slots never fire again"
        );
        assert_eq!(
            s.due(None, 35_000),
            None,
            "a new schedule waits for its next slot"
        );
        assert_eq!(s.due(None, 40_000), Some(40_000));
    }

    #[test]
    fn clock_jumps_neither_repeat_nor_burst() {
        let s = every("1s");
        // Forward by an hour: one run, for the latest slot.
        assert_eq!(s.due(Some(10_000), 3_610_500), Some(3_610_000));
        // Backward by an hour after claiming 3_610_000: nothing until the clock passes it.
        assert_eq!(s.due(Some(3_610_000), 10_500), None);
        assert_eq!(s.due(Some(3_610_000), 3_611_000), Some(3_611_000));
    }

    #[test]
    fn cron_in_a_zone_across_dst() {
        let s = cron("30 2 * * *", Some("Europe/Berlin")).unwrap_or_else(|e| panic!("{e:?}"));
        // 2026-03-29: 02:00 local does not exist (clocks go 02:00 → 03:00).
        let next = s.next_after(at("2026-03-28T12:00:00Z"));
        assert!(next.is_some_and(|n| n > at("2026-03-28T12:00:00Z")));
        // 2026-10-25: 02:30 local happens twice; one slot only.
        let first = s.next_after(at("2026-10-24T12:00:00Z")).unwrap_or_default();
        let second = s.next_after(first).unwrap_or_default();
        assert!(
            second - first >= 23 * 3_600_000,
            "{} then {}",
            show(first),
            show(second)
        );
        let hourly = cron("@hourly", None).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            hourly.next_after(at("2026-01-01T10:15:00Z")),
            Some(at("2026-01-01T11:00:00Z"))
        );
    }

    #[test]
    fn bad_schedules_name_the_field() {
        let error = cron("*/5 * 32 * *", None).unwrap_err();
        assert_eq!(error.field, "cron");
        assert!(
            error.message.contains("field 3 (day of month) `32`"),
            "{}",
            error.message
        );
        let error = cron("* * * *", None).unwrap_err();
        assert!(
            error.message.contains("invalid cron expression"),
            "{}",
            error.message
        );
        let zone = cron("* * * * *", Some("Europe/Berln")).unwrap_err();
        assert_eq!(zone.field, "timezone");
        assert!(zone.hint.unwrap_or_default().contains("Europe/Berlin"));
        let zero = Compiled::new(
            &Schedule {
                every: "0s".parse::<Period>().ok(),
                ..Schedule::default()
            },
            Tz::UTC,
        )
        .unwrap_err();
        assert_eq!(zero.field, "every");
    }
}
