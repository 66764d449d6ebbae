//! What the actor asks of its cgroup: whether the run is gone, what the kernel counted, how limits are enforced.

use tokio::time::Instant;

use super::Actor;
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
        limits::report(
            &self.spec.manifest.resource_limits,
            self.cgroup.as_ref().map(|cg| &*cg.cgroup),
        )
    }
}
