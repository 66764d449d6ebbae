//! What the actor asks of its cgroup: whether the run is gone, what the kernel counted, how limits are enforced.

use tokio::time::Instant;

use super::Actor;
use crate::error_chain::ErrorChain;
use crate::manifest::model::ResourceLimits;
use crate::manifest::units::ByteSize;
use crate::supervise::cgroup::limits::LimitError;
use crate::supervise::child::state::Input;
use crate::supervise::event::ChildEventKind;
use crate::supervise::limits::{self, LimitReport};

impl Actor {
    /// Feeds `GroupGone` once nothing of the run is left: its cgroup is empty, else its process group is gone.
    pub(super) fn group_check(&mut self, now: Instant) {
        let Some(pid) = self.machine.state().pid() else {
            return;
        };
        let alive = match &self.cgroup {
            Some(cg) => cg.is_populated(),
            None => self.ctx.launcher.group_exists(pid),
        };
        if !alive {
            self.feed(Input::GroupGone, now);
        }
    }

    /// Reports OOM kills and pids-limit refusals the cgroup counted since the last look.
    pub(super) fn cgroup_news(&mut self) {
        let Some(cg) = self.cgroup.as_mut() else {
            return;
        };
        let news = cg.news();
        let limits = &self.spec.manifest.resource_limits;
        if news.oom_kills > 0 {
            self.emit(ChildEventKind::OomKilled {
                limit: limits.memory.map(|m| m.0),
            });
        }
        if news.pids_max > 0 {
            self.emit(ChildEventKind::PidsLimit {
                limit: limits.processes,
            });
        }
    }

    /// How each limit is enforced for this incarnation.
    pub(super) fn limit_report(&self) -> LimitReport {
        let wanted = &self.spec.manifest.resource_limits;
        let report = limits::report(wanted, self.cgroup.as_ref().map(|cg| &*cg.cgroup));
        match &self.cgroup {
            Some(cg) => limits::with_in_force(report, wanted, cg.in_force()),
            None => report,
        }
    }

    /// Brings the cgroup's limits to the manifest's (after an edit, and at each start of a run, when a value
    /// the kernel refused before may fit), reporting each one the kernel refuses.
    pub(super) fn write_limits(&mut self) {
        let Some(cg) = self.cgroup.as_mut() else {
            return;
        };
        let wanted = &self.spec.manifest.resource_limits;
        let in_force = cg.in_force().clone();
        for error in cg.apply_limits(wanted) {
            let reason = refusal_reason(&error, wanted, &in_force);
            tracing::warn!(child = %self.spec.name, %reason, "a limit was not applied");
            self.emit(ChildEventKind::LimitRefused {
                limit: error.limit.to_owned(),
                reason,
            });
        }
    }
}

/// Why `error`'s limit is not in force, in the operator's terms.
fn refusal_reason(
    error: &LimitError,
    wanted: &ResourceLimits,
    in_force: &ResourceLimits,
) -> String {
    let show = |m: Option<ByteSize>| m.map_or_else(|| "no limit".to_owned(), |m| m.to_string());
    if error.limit == "memory" && error.source.raw_os_error() == Some(libc::EBUSY) {
        format!(
            "the kernel could not reclaim the child's memory down to {} (cgroup v1 refuses instead of an OOM kill); {} stays in force until the child's next start",
            show(wanted.memory),
            show(in_force.memory)
        )
    } else {
        ErrorChain::inline(error).to_string()
    }
}
