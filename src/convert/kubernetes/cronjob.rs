//! A scheduled oneshot (`schedule:`) as a `batch/v1 CronJob` around its Job.
//!
//! | herder | CronJob |
//! |---|---|
//! | `cron` (five fields, `@hourly`, …) | `schedule` |
//! | `cron` with a seconds field | `schedule` without it (a warning: CronJobs count minutes) |
//! | `every` that divides an hour or a day | `*/N * * * *`, `0 */N * * *`, `0 0 * * *` |
//! | `timezone` | `timeZone` |
//! | `overlap: skip` / `replace` / `queue` | `concurrencyPolicy: Forbid` / `Replace` / `Forbid` (a warning) |
//! | `missed: run-once` | the CronJob's own catch-up (one run for missed slots) |
//! | `missed: skip` | `startingDeadlineSeconds: 60`: a slot more than a minute late is skipped |
//! | `jitter` | none (a warning) |

use serde_json::{Map, Value, json};

use super::Child;
use crate::manifest::model::{Missed, Overlap, Schedule};

/// `job` (a Job object) wrapped in a CronJob that runs it on `schedule`.
pub fn cron_job(child: &mut Child<'_>, schedule: &Schedule, job: Value) -> Value {
    let mut spec = Map::new();
    spec.insert("schedule".into(), Value::from(expression(child, schedule)));
    if let Some(zone) = &schedule.timezone {
        spec.insert("timeZone".into(), Value::from(zone.as_str()));
    }
    let policy = match schedule.overlap {
        Overlap::Skip => "Forbid",
        Overlap::Replace => "Replace",
        Overlap::Queue => {
            child.warn(
                "/schedule/overlap",
                "a CronJob cannot queue a run behind the running one: concurrencyPolicy Forbid skips it",
            );
            "Forbid"
        }
    };
    spec.insert("concurrencyPolicy".into(), Value::from(policy));
    if schedule.missed == Missed::Skip {
        spec.insert("startingDeadlineSeconds".into(), Value::from(60));
    }
    if !schedule.jitter.get().is_zero() {
        child.warn(
            "/schedule/jitter",
            "a CronJob starts its Jobs on the slot: no jitter",
        );
    }
    let mut job_spec = job["spec"].clone();
    if let Some(object) = job_spec.as_object_mut()
        && let Some(suspend) = object.remove("suspend")
    {
        spec.insert("suspend".into(), suspend);
    }
    let labels = job["metadata"]["labels"].clone();
    spec.insert(
        "jobTemplate".into(),
        json!({"metadata": {"labels": labels}, "spec": job_spec}),
    );
    let mut metadata = job["metadata"].clone();
    if let Some(name) = metadata["name"].as_str()
        && name.len() > MAX_NAME
    {
        let short = short_name(name);
        child.warn(
            "/name",
            format!("a CronJob's name has at most {MAX_NAME} characters (its Jobs add 11): exported as `{short}`"),
        );
        metadata["name"] = Value::from(short);
    }
    json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata,
        "spec": spec,
    })
}

/// The longest CronJob name the API server accepts: a Job it creates is named
/// `<cronjob>-<minutes since the epoch>` (11 more characters) and must stay a DNS label.
pub const MAX_NAME: usize = 52;

/// `name` cut to [`MAX_NAME`] characters, ending in a hash of the whole name so two long
/// names with the same beginning stay apart (the same name always gives the same result).
fn short_name(name: &str) -> String {
    // FNV-1a: stable across runs and versions, unlike std's hasher.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    let suffix = format!("{:08x}", hash as u32);
    let mut head: String = name.chars().take(MAX_NAME - suffix.len() - 1).collect();
    while head.ends_with('-') {
        head.pop();
    }
    format!("{head}-{suffix}")
}

/// The five-field cron expression of a schedule.
fn expression(child: &mut Child<'_>, schedule: &Schedule) -> String {
    if let Some(cron) = &schedule.cron {
        let fields: Vec<&str> = cron.split_whitespace().collect();
        if fields.len() == 6 {
            child.warn(
                "/schedule/cron",
                "a CronJob schedule has no seconds field: the first field is dropped",
            );
            return fields[1..].join(" ");
        }
        return fields.join(" ");
    }
    let secs = schedule
        .every
        .map_or(60, |every| every.get().as_secs().max(1));
    let minutes = secs / 60;
    let exact = secs.is_multiple_of(60);
    let expression = match minutes {
        _ if !exact || minutes == 0 => None,
        m if m < 60 && 60 % m == 0 => Some(format!("*/{m} * * * *")),
        60 => Some("0 * * * *".to_owned()),
        m if m % 60 == 0 && m < 1440 && 24 % (m / 60) == 0 => Some(format!("0 */{} * * *", m / 60)),
        1440 => Some("0 0 * * *".to_owned()),
        _ => None,
    };
    expression.unwrap_or_else(|| {
        child.warn(
            "/schedule/every",
            "a CronJob runs on minute slots that divide an hour or a day: every minute instead",
        );
        "* * * * *".to_owned()
    })
}
