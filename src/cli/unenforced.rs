//! `herder validate`'s warnings for resource limits this machine cannot enforce.
//!
//! A manifest is portable: a limit that this host enforces only by the RSS watchdog, or not at all, is still
//! valid, so these are warnings located at the limit, never errors. The prediction comes from the cgroups a
//! herder started here now would find ([`cgroup::layout::predict`]); `HERDER_CGROUPS` is honoured as by
//! `herder up`.

use crate::manifest::{Code, Diagnostic, ManifestDoc};
use crate::supervise::cgroup::{self, Controller, Detection};

/// One warning per configured limit of `docs` that `detection` cannot enforce.
pub fn warnings<'a>(
    docs: impl Iterator<Item = &'a ManifestDoc>,
    detection: &Detection,
) -> Vec<Diagnostic> {
    let has = |c: Controller| detection.controllers.contains(&c);
    let mut out = Vec::new();
    for doc in docs {
        let limits = &doc.manifest.resource_limits;
        let mut warn = |field: &str, message: &str| {
            out.push(
                doc.error_at(
                    Code::Unenforced,
                    &format!("/resource_limits/{field}"),
                    message,
                )
                .with_hint(format!("cgroups on this machine: {}", detection.detail))
                .warning(),
            );
        };
        if limits.memory.is_some() && !has(Controller::Memory) {
            warn(
                "memory",
                "no memory cgroup here: the limit is enforced only by herder's RSS watchdog (a restart when over, checked every 500 ms)",
            );
        }
        if limits.cpu.is_some() && !has(Controller::Cpu) {
            warn(
                "cpu",
                "no cpu cgroup here: this limit would not be enforced",
            );
        }
        if limits.processes.is_some() && !has(Controller::Pids) {
            warn(
                "processes",
                "no pids cgroup here: this limit would not be enforced",
            );
        }
    }
    out
}

/// The prediction for this machine.
pub fn detect() -> Detection {
    cgroup::layout::predict(cgroup::Preference::from_env())
}
