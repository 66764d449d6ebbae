//! An actor's side of its incarnation's cgroup: notifications, OOM and pids-limit counters, signalling the
//! whole tree, freezing, and removal at the end.
//!
//! The counters are cumulative per cgroup (every run of the incarnation shares it), so the actor remembers
//! what it has already reported and, per run, the OOM count at spawn: a run whose process died of SIGKILL
//! while the count grew was killed by the kernel for memory.
//!
//! A v1 OOM notification arrives when the cgroup runs out of memory, before the kernel has chosen and counted
//! its victim, so a notification that finds no new kill is looked at again a few times ([`RECHECKS`], 10 ms
//! apart and doubling): the kill is counted within microseconds, and the bound keeps a cgroup that keeps
//! hitting its limit without a kill (reclaim succeeded) from keeping the actor busy.

use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::time::Instant;

use crate::manifest::model::ResourceLimits;
use crate::supervise::cgroup::ChildCgroup;
use crate::supervise::cgroup::detect::V1;
use crate::supervise::cgroup::limits::{self as cgroup_limits, LimitError};
use crate::supervise::cgroup::usage::keyed;
use crate::supervise::cgroup::watch::{Subscription, subscribe};

/// The cgroup of a running incarnation, as its actor uses it.
#[derive(Debug)]
pub struct ActorCgroup {
    /// The directories.
    pub cgroup: Arc<ChildCgroup>,
    subscription: Option<Subscription>,
    oom_reported: u64,
    pids_reported: u64,
    run_oom_base: u64,
    frozen: bool,
    /// When to look at the OOM count again after a v1 notification that found no kill, and how often more.
    recheck: Option<(Instant, u32)>,
    /// A notification arrived since the last [`ActorCgroup::news`].
    notified: bool,
    /// The limits the cgroup's files hold: the manifest's, except one the kernel refused.
    in_force: ResourceLimits,
}

/// How many times a v1 OOM notification without a counted kill is looked at again.
const RECHECKS: u32 = 5;
/// The first of those looks; each next one waits twice as long (10 + 20 + … + 160 ms in all).
const FIRST_RECHECK: Duration = Duration::from_millis(10);

/// What changed in the cgroup since the last look.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct News {
    /// New OOM kills.
    pub oom_kills: u64,
    /// New refusals of `fork` at `pids.max`.
    pub pids_max: u64,
}

impl ActorCgroup {
    /// Takes over `cgroup` (made for this incarnation) and subscribes to its notifications (the OOM eventfd of a v1 memory cgroup only when
    /// `limits` has a memory limit: see [`ActorCgroup::limits_changed`]). A failed subscription is logged: then
    /// `populated` is checked by the group poll and OOM kills are found at exit.
    pub fn new(cgroup: Arc<ChildCgroup>, child: &str, limits: &ResourceLimits) -> Self {
        let dirs = &cgroup.dirs;
        let mut files = Vec::new();
        if let Some(dir) = &dirs.unified {
            files.push(dir.join("cgroup.events"));
            if cgroup.v2_has("memory") {
                files.push(dir.join("memory.events"));
            }
            if cgroup.v2_has("pids") {
                files.push(dir.join("pids.events"));
            }
        }
        let v1_pids = dirs.v1.get(&V1::Pids).filter(|_| !cgroup.v2_has("pids"));
        let subscription = match subscribe(&files, v1_pids.map(|p| p.as_path())) {
            Ok(s) => Some(s),
            Err(error) => {
                tracing::warn!(child, %error, "cannot watch the child's cgroup; reading it at exit instead");
                None
            }
        };
        // The cgroup is new (made for this incarnation), so its counters start at 0: what the child did before
        // the subscription (a fork bomb is refused within microseconds of the exec) is news at the first look.
        let mut this = Self {
            cgroup,
            subscription,
            oom_reported: 0,
            pids_reported: 0,
            run_oom_base: 0,
            frozen: false,
            recheck: None,
            notified: false,
            // Written when the cgroup was made.
            in_force: limits.clone(),
        };
        this.limits_changed(child, limits);
        this
    }

    /// Follows the child's limits: a memory limit (from the start or added by an edit) on a v1 memory cgroup
    /// registers its OOM eventfd. A removed limit keeps it (it then never fires: the cgroup has no limit).
    pub fn limits_changed(&mut self, child: &str, limits: &ResourceLimits) {
        if limits.memory.is_none() || self.cgroup.v2_has("memory") {
            return;
        }
        let (Some(subscription), Some(dir)) = (
            self.subscription.as_mut(),
            self.cgroup.dirs.v1.get(&V1::Memory),
        ) else {
            return;
        };
        if let Err(error) = subscription.watch_v1_oom(dir) {
            tracing::warn!(child, %error, "cannot watch the child's OOM kills; naming them at exit instead");
        }
    }

    /// Writes what differs between `limits` and what is in force; the limits the kernel refused stay at their
    /// value in force (see [`ActorCgroup::in_force`]) and are returned.
    pub fn apply_limits(&mut self, limits: &ResourceLimits) -> Vec<LimitError> {
        let refused = cgroup_limits::apply_each(&self.cgroup, limits, &self.in_force);
        let kept = |name: &str| refused.iter().any(|e| e.limit == name);
        if !kept("memory") {
            self.in_force.memory = limits.memory;
        }
        if !kept("cpu") {
            self.in_force.cpu = limits.cpu;
        }
        if !kept("processes") {
            self.in_force.processes = limits.processes;
        }
        refused
    }

    /// The limits in force in the cgroup (`open_files` aside: an rlimit, not the cgroup's).
    pub fn in_force(&self) -> &ResourceLimits {
        &self.in_force
    }

    /// Waits for the next notification or OOM recheck.
    pub async fn changed(&mut self) {
        let recheck = self.recheck.map(|(at, _)| at);
        let Some(subscription) = self.subscription.as_mut() else {
            return std::future::pending().await;
        };
        tokio::select! {
            result = subscription.changes.changed() => {
                if result.is_err() {
                    std::future::pending::<()>().await;
                }
                self.notified = true;
            }
            _ = tokio::time::sleep_until(recheck.unwrap_or_else(Instant::now)), if recheck.is_some() => {}
        }
    }

    /// Whether `populated` changes are notified (a v2 directory and a live subscription), so nothing polls.
    pub fn notifies_empty(&self) -> bool {
        self.subscription.is_some() && self.cgroup.dirs.unified.is_some()
    }

    /// OOM kills so far in the cgroup.
    pub fn oom_kills(&self) -> u64 {
        let dirs = &self.cgroup.dirs;
        let read = |path: std::path::PathBuf| {
            std::fs::read_to_string(path)
                .ok()
                .and_then(|s| keyed(&s, "oom_kill"))
        };
        match (&dirs.unified, dirs.v1.get(&V1::Memory)) {
            (Some(dir), _) if self.cgroup.v2_has("memory") => read(dir.join("memory.events")),
            (_, Some(dir)) => read(dir.join("memory.oom_control")),
            _ => None,
        }
        .unwrap_or(0)
    }

    /// Forks refused at `pids.max` so far.
    pub fn pids_max_hits(&self) -> u64 {
        let dirs = &self.cgroup.dirs;
        let dir = match (&dirs.unified, dirs.v1.get(&V1::Pids)) {
            (Some(dir), _) if self.cgroup.v2_has("pids") => Some(dir),
            (_, Some(dir)) => Some(dir),
            _ => None,
        };
        dir.and_then(|d| std::fs::read_to_string(d.join("pids.events")).ok())
            .and_then(|s| keyed(&s, "max"))
            .unwrap_or(0)
    }

    /// What is new since the last call (the first call: since the cgroup was made). A notification that
    /// finds no new OOM kill while a v1 OOM eventfd is armed schedules rechecks (see the module doc); a kill
    /// ends them.
    pub fn news(&mut self) -> News {
        let oom = self.oom_kills();
        let pids = self.pids_max_hits();
        let news = News {
            oom_kills: oom.saturating_sub(self.oom_reported),
            pids_max: pids.saturating_sub(self.pids_reported),
        };
        self.oom_reported = oom.max(self.oom_reported);
        self.pids_reported = pids.max(self.pids_reported);
        let v1_oom = self
            .subscription
            .as_ref()
            .is_some_and(Subscription::watches_v1_oom);
        let notified = std::mem::take(&mut self.notified);
        self.recheck = match self.recheck {
            _ if news.oom_kills > 0 || !v1_oom => None,
            // A recheck that came due: the next, if any are left.
            Some((at, left)) if at <= Instant::now() => (left > 1).then(|| {
                let waited = FIRST_RECHECK * 2u32.pow(RECHECKS - left + 1);
                (Instant::now() + waited, left - 1)
            }),
            // A notification while rechecks are pending: they go on.
            Some(pending) => Some(pending),
            None if notified => Some((Instant::now() + FIRST_RECHECK, RECHECKS)),
            None => None,
        };
        news
    }

    /// Marks the start of a run (for [`ActorCgroup::oom_in_run`]); thaws a cgroup left frozen.
    pub fn begin_run(&mut self) {
        self.run_oom_base = self.oom_kills();
        self.thaw();
    }

    /// Whether the OOM killer struck during the current run.
    pub fn oom_in_run(&self) -> bool {
        self.oom_kills() > self.run_oom_base
    }

    /// Whether any process is inside.
    pub fn is_populated(&self) -> bool {
        self.cgroup.dirs.is_populated()
    }

    /// Sends `signal` to the whole tree: SIGKILL as one kill of the cgroup, other signals to every member (a
    /// member that left the process group with `setsid` included). A frozen tree is thawed first, or it could
    /// not act on the signal.
    pub fn signal(&mut self, signal: Signal) {
        self.thaw();
        if signal == Signal::SIGKILL {
            self.cgroup.dirs.kill();
        } else {
            self.cgroup.dirs.signal_all(signal);
        }
    }

    /// Whether pause and resume can freeze the tree.
    pub fn can_freeze(&self) -> bool {
        self.cgroup.dirs.can_freeze()
    }

    /// Freezes or thaws the tree.
    pub fn set_frozen(&mut self, frozen: bool) -> std::io::Result<()> {
        self.cgroup.dirs.set_frozen(frozen)?;
        self.frozen = frozen;
        Ok(())
    }

    fn thaw(&mut self) {
        if self.frozen && self.cgroup.dirs.set_frozen(false).is_ok() {
            self.frozen = false;
        }
    }

    /// Ends the incarnation's use of the cgroup: kills what is left, waits for it to empty and removes it.
    /// Blocking (bounded by the removal wait): run it off the async threads.
    pub fn finish(mut self) {
        self.subscription = None;
        self.thaw();
        if self.is_populated() {
            self.cgroup.dirs.kill();
        }
        if let Err(error) = self.cgroup.dirs.remove_when_empty() {
            tracing::warn!(%error, "cannot remove a child's cgroup; the next start removes it");
        }
    }
}
