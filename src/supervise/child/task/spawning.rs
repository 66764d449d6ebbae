//! A run begins: waiting for declared ports, making the cgroup, spawning, and taking over the new process.

use std::sync::Arc;

use nix::sys::signal::Signal;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Actor, Internal, SpawnOutcome};
use crate::error_chain::ErrorChain;
use crate::manifest::ChildSpec;
use crate::supervise::cgroup::ChildCgroup;
use crate::supervise::child::config;
use crate::supervise::child::state::{ChildState, Input};
use crate::supervise::limits;
use crate::supervise::logs::pump::{self, LineWatch};
use crate::supervise::logs::redact;
use crate::supervise::memwatch;
use crate::supervise::ports;
use crate::supervise::probe::Check;
use crate::supervise::spawn::Spawned;

impl Actor {
    pub(super) fn on_spawned(&mut self, spawned: Spawned, now: Instant) {
        let pid = spawned.pid;
        self.run_started = now;
        self.exit = Some(spawned.exit);
        if let (Some(sf), Some(start)) = (&self.ctx.state_file, spawned.start_time) {
            sf.record(&self.spec.name, pid, start);
            self.recorded_pid = Some(pid);
        }
        if let Some(cg) = self.cgroup.as_mut() {
            cg.begin_run();
        }

        if let Some(limit) = self.cfg.memory_limit
            && limits::memory_by_watchdog(&self.limit_report())
        {
            self.memory = memwatch::watch(pid, limit);
        }
        let line_regex = match self.cfg.readiness.as_ref().map(|r| &r.check) {
            Some(Check::LogLine(regex)) => Some(regex.clone()),
            _ => None,
        };
        let watch = match line_regex {
            Some(regex) => {
                let (tx, rx) = oneshot::channel();
                let run = self.run;
                let internal = self.inbox_sender();
                tokio::spawn(async move {
                    if rx.await.is_ok() {
                        // The actor may have ended; the match is then moot.
                        let _ = internal.unbounded_send(Internal::LogMatched { run });
                    }
                });
                Some(LineWatch { regex, matched: tx })
            }
            None => None,
        };
        tokio::spawn(pump::pump(
            spawned.stdout,
            spawned.stderr,
            Arc::clone(&self.log),
            self.incarnation,
            watch,
        ));
        self.feed(Input::Spawned { pid }, now);
        if std::mem::take(&mut self.ready_early)
            && matches!(self.machine.state(), ChildState::Starting { .. })
        {
            self.feed(Input::Ready, now);
        }
    }

    /// Releases what belongs to a run whose process is gone.
    pub(super) fn end_run_resources(&mut self) {
        self.memory = None;
        if let (Some(sf), Some(pid)) = (&self.ctx.state_file, self.recorded_pid.take()) {
            sf.forget(pid);
        }
    }

    pub(super) fn start_run(&mut self) {
        self.run += 1;
        self.exit = None;
        self.memory = None;
        self.probes.new_run();
        // Before the exec: a limit the kernel refused while the previous run used too much fits the empty cgroup
        // (nothing is written when every limit is in force).
        self.write_limits();
        let spec = Arc::clone(&self.spec);
        let herder_env = Arc::clone(&self.ctx.herder_env);
        let existing = self.cgroup.as_ref().map(|cg| Arc::clone(&cg.cgroup));
        let tree = match (&existing, self.cgroup_tried) {
            (None, false) => self.ctx.cgroups.clone(),
            _ => None,
        };
        self.cgroup_tried = true;
        let incarnation = self.incarnation;
        // Replacing the receiver of an earlier run's spawn makes that spawn's process unowned: it is killed below.
        let (tx, rx) = oneshot::channel();
        self.spawning = Some(rx);
        let (cancel_tx, mut cancel) = oneshot::channel();
        self.spawn_cancel = Some(cancel_tx);
        let notify_env = self.open_notify_socket();
        self.ready_early = false;
        let notification_fd = self.open_notification_fd();
        self.port_holder = None;
        // Only a spawn that may wait for a declared port reports to the actor before it ends.
        let inbox = (!self.spec.manifest.ports.is_empty()).then(|| self.inbox_sender());
        let run = self.run;
        let log = Arc::clone(&self.log);
        let launcher = Arc::clone(&self.ctx.launcher);
        tokio::spawn(async move {
            let mut outcome = SpawnOutcome {
                result: Err(String::new()),
                made: None,
                fallback: None,
                cancelled: false,
            };
            // Nothing is made while a declared port is held by someone else.
            let manifest = &spec.manifest;
            if !manifest.ports.is_empty() {
                let report = |holder| {
                    if let Some(inbox) = &inbox {
                        let _ = inbox.unbounded_send(Internal::PortHeld { run, holder });
                    }
                };
                let ports = manifest.ports.iter().map(|port| port.0.clone()).collect();
                let name = manifest.name.clone();
                if !ports::wait_until_free(ports, name, manifest.replicas, report, &mut cancel)
                    .await
                {
                    outcome.cancelled = true;
                    let _ = tx.send(outcome);
                    return;
                }
            }
            if let Some(tree) = tree {
                match make_cgroup(&tree, &spec, incarnation) {
                    Ok(cgroup) => outcome.made = Some(cgroup),
                    Err(reason) => outcome.fallback = Some(reason),
                }
            }
            let cgroup = existing.or_else(|| outcome.made.clone());
            outcome.result = async {
                let mut request = config::request(&spec, &herder_env)
                    .await
                    .map_err(|e| ErrorChain::inline(&e).to_string())?;
                request.program.env.extend(notify_env?);
                request.extra_fd = notification_fd?;
                if let Some(cgroup) = &cgroup {
                    request.cgroups = cgroup
                        .procs_files()
                        .map_err(|e| format!("cannot open the child's cgroup: {e}"))?;
                }
                // Before the process exists: its first line is redacted already.
                log.add_secrets(redact::secret_values(&spec.manifest, &request.program.env));
                launcher.spawn(request).await
            }
            .await;
            if let Err(SpawnOutcome {
                result: Ok(spawned),
                made,
                ..
            }) = tx.send(outcome)
            {
                // The actor is gone or has moved on to another run: nobody would ever stop this process.
                let _ = launcher.signal_group(spawned.pid, Signal::SIGKILL);
                if let Some(cgroup) = made {
                    cgroup.dirs.kill();
                }
            }
        });
    }
}
/// Makes the incarnation's cgroup and writes its limits; the error is the reason the child falls back.
fn make_cgroup(
    tree: &crate::supervise::cgroup::Tree,
    spec: &ChildSpec,
    incarnation: u64,
) -> Result<Arc<ChildCgroup>, String> {
    let cgroup = ChildCgroup::create(tree, &spec.name, incarnation)
        .map_err(|e| ErrorChain::inline(&e).to_string())?;
    let none = crate::manifest::model::ResourceLimits::default();
    if let Err(e) =
        crate::supervise::cgroup::limits::apply(&cgroup, &spec.manifest.resource_limits, &none)
    {
        let reason = ErrorChain::inline(&e).to_string();
        // Nothing was started in it yet.
        let _ = cgroup.dirs.remove_when_empty();
        return Err(reason);
    }
    Ok(Arc::new(cgroup))
}
