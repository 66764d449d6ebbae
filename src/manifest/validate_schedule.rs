//! Checks of `schedule:`: only on oneshots, and compilable (a cron expression that parses,
//! with the field in error named; a known time zone; a period above zero).

use super::diagnostic::{Code, Diagnostic};
use super::load::ManifestDoc;
use super::model::Kind;
use crate::schedule::slots::{Compiled, host_zone};

/// The problems of one manifest's schedule.
pub fn check_schedule(doc: &ManifestDoc, out: &mut Vec<Diagnostic>) {
    let Some(schedule) = &doc.manifest.schedule else {
        return;
    };
    if doc.manifest.kind != Kind::Oneshot {
        out.push(
            doc.error_at_key(
                Code::Invalid,
                "/schedule",
                "a schedule needs `kind: oneshot`; a service runs all the time",
            )
            .with_hint("add `kind: oneshot`, or remove `schedule`"),
        );
        return;
    }
    if let Err(error) = Compiled::new(schedule, host_zone()) {
        let pointer = if error.field.is_empty() {
            "/schedule".to_owned()
        } else {
            format!("/schedule/{}", error.field)
        };
        let mut diagnostic = if error.field.is_empty() {
            doc.error_at_key(Code::Invalid, &pointer, error.message)
        } else {
            doc.error_at(Code::Invalid, &pointer, error.message)
        };
        diagnostic.hint = error.hint;
        out.push(diagnostic);
    }
}
