//! `herder plan` output: one line per step for people, or JSON for tools.
//!
//! Human form, in execution order:
//!
//! ```text
//! - retire old
//! + start api
//! ~ replace web: command ["a"] → ["b"]
//!     environment.API_TOKEN (secret changed)
//! • update worker: restart.policy always → never
//! 1 to start, 1 to replace, 1 to update, 1 to retire, 12 unchanged
//! ```
//!
//! Secret values never reach this module: [`FieldChange`]s for secrets carry no values.

use std::fmt::Write as _;

use serde::Serialize;

use super::model::{FieldChange, Operation, Plan, Step, Summary};

/// Output format of `herder plan`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// One line per step and a summary line.
    #[default]
    Human,
    /// `{"steps": [...], "summary": {...}}`, pretty-printed.
    Json,
}

/// The JSON document: the plan's steps and their counts.
#[derive(Serialize)]
struct Document<'a> {
    steps: &'a [Step],
    summary: Summary,
}

/// `plan` in `format`, ending with a newline.
pub fn render(plan: &Plan, format: Format) -> String {
    match format {
        Format::Human => human(plan),
        Format::Json => {
            let document = Document {
                steps: &plan.steps,
                summary: plan.summary(),
            };
            // Serializing plain strings, numbers and enums cannot fail.
            let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
            text.push('\n');
            text
        }
    }
}

fn human(plan: &Plan) -> String {
    let mut out = String::new();
    for step in &plan.steps {
        let marker = match step.operation {
            Operation::Start => '+',
            Operation::Replace => '~',
            Operation::Update => '•',
            Operation::Retire => '-',
            Operation::Unchanged => ' ',
        };
        let _ = write!(out, "{marker} {} {}", step.operation.verb(), step.name);
        match step.changes.as_slice() {
            [] => out.push('\n'),
            [only] => {
                let _ = writeln!(out, ": {}", change(only));
            }
            many => {
                out.push_str(":\n");
                for each in many {
                    let _ = writeln!(out, "    {}", change(each));
                }
            }
        }
    }
    let summary = plan.summary();
    if plan.is_empty() {
        let _ = writeln!(out, "no changes, {} unchanged", summary.unchanged);
    } else {
        let _ = writeln!(
            out,
            "{} to start, {} to replace, {} to update, {} to retire, {} unchanged",
            summary.start, summary.replace, summary.update, summary.retire, summary.unchanged
        );
    }
    out
}

/// `field before → after`, `(unset)` for a missing side, `(secret changed)` for secrets.
pub fn change(change: &FieldChange) -> String {
    if change.redacted {
        return format!("{} (secret changed)", change.field);
    }
    let side = |value: &Option<String>| value.clone().unwrap_or_else(|| "(unset)".into());
    format!(
        "{} {} → {}",
        change.field,
        side(&change.before),
        side(&change.after)
    )
}
