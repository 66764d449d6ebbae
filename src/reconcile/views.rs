//! The status and detail views the API asks for, built at request time from the core's
//! slots and the actors' published snapshots, so nothing is mirrored.

use crate::schedule::slots::next_run;
use std::sync::Arc;

use super::control::{ChildDetail, ChildStatus, LimitStatus, PendingUsage, StatusReport};
use super::core::{Hold, Phase};
use super::run::Shell;
use super::state::State;
use crate::manifest::ChildSpec;
use crate::plan::{Observed, ObservedChild};
use crate::supervise::child::{ChildHandle, ChildState};
use crate::supervise::limits::LimitReport;

impl Shell {
    pub(super) fn observed(&self) -> Observed {
        Observed {
            children: self
                .core
                .slots()
                .iter()
                .filter_map(|(name, slot)| {
                    let spec = Arc::clone(&slot.current.as_ref()?.spec);
                    Some((name.clone(), ObservedChild { spec }))
                })
                .collect(),
        }
    }

    /// Every child the reconciler knows (desired or still running), by name.
    pub(super) fn names(&self) -> Vec<String> {
        let desired = self.core.desired().children.keys();
        let running = self.core.slots().keys();
        let mut names: Vec<String> = desired.chain(running).cloned().collect();
        names.sort();
        names.dedup();
        names
    }

    /// [`Shell::names`] without the targets, which have no process.
    pub(super) fn process_names(&self) -> Vec<String> {
        let target = |name: &String| {
            let desired = self.core.desired().children.get(name);
            desired.is_some_and(|spec| spec.manifest.is_target())
        };
        self.names()
            .into_iter()
            .filter(|name| !target(name))
            .collect()
    }

    /// Every child's status, without the usage figures: those are read by the requester
    /// ([`StatusReport::read_usage`]), because at thousands of children they are thousands
    /// of cgroup file reads, which would hold up the reconciler.
    pub(super) fn status(&self) -> StatusReport {
        let names = self.names();
        let mut pending = Vec::new();
        let children = names
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let (status, handle) = self.child_status_and_handle(name);
                if let Some(handle) = handle.filter(|_| status.pid.is_some()) {
                    pending.push((index, handle.clone()));
                }
                status
            })
            .collect();
        StatusReport {
            generation: self.core.desired().generation,
            children,
            pending_usage: PendingUsage(pending),
            errors: self.errors.clone(),
            reloads: self.reloads,
            last_reload_ms: self.last_reload_ms,
            shutting_down: self.core.is_shutting_down(),
            cgroups: self.context.cgroup_detection.as_deref().cloned(),
            journal: self.events.journal(),
        }
    }

    /// One child's status, its usage read now.
    fn child_status(&self, name: &str) -> ChildStatus {
        let (mut status, handle) = self.child_status_and_handle(name);
        if let Some(handle) = handle.filter(|_| status.pid.is_some()) {
            status.usage = Some(handle.usage());
        }
        status
    }

    /// One child's status without usage, and the handle of its serving incarnation.
    fn child_status_and_handle(&self, name: &str) -> (ChildStatus, Option<&ChildHandle>) {
        let desired = self.core.desired().children.get(name);
        let slot = self.core.slots().get(name);
        let run = slot.and_then(|slot| slot.current.as_ref());
        let spec = run.map(|run| &run.spec).or(desired);
        let mut status = ChildStatus {
            name: name.to_owned(),
            source: spec.map(|spec| spec.source.clone()),
            description: spec.and_then(|spec| spec.manifest.description.clone()),
            labels: spec
                .map(|spec| spec.manifest.labels.clone())
                .unwrap_or_default(),
            next_run: desired.and_then(|spec| {
                next_run(
                    spec.manifest.schedule.as_ref(),
                    std::time::SystemTime::now(),
                )
            }),
            incarnation: run
                .filter(|run| run.phase != Phase::Target)
                .map(|run| run.incarnation),
            kind: spec.map(|spec| spec.manifest.kind).unwrap_or_default(),
            ports: spec
                .map(|spec| {
                    spec.manifest
                        .ports
                        .iter()
                        .map(|p| p.0.to_string())
                        .collect()
                })
                .unwrap_or_default(),
            logs: self
                .context
                .logs
                .get(name)
                .map(|log| log.health())
                .unwrap_or_default(),
            ..ChildStatus::default()
        };
        let handle = run.and_then(|run| self.handles.get(&(name.to_owned(), run.incarnation)));
        if let (Some(handle), Some(spec)) = (handle, spec) {
            let live = handle.snapshot();
            status.pid = live.pid;
            status.restarts = live.restarts;
            status.ready = live.ready;
            status.healthy = live.healthy;
            status.last_exit = live.last_exit.map(|exit| exit.to_string());
            status.state = if live.paused {
                State::Paused
            } else if live.state.is_ready() && !live.ready {
                State::Unhealthy
            } else if live.ready && live.state.is_ready() {
                State::Ready
            } else {
                machine_state(&live.state)
            };
            status.reason = state_reason(&live.state);
            status.notify_status = live.notify_status.clone();
            status.notify_state = live.notify_state.map(str::to_owned);
            if let Some(holder) = &live.waiting {
                status.state = State::Waiting;
                status.reason = Some(holder.clone());
            }
            status.uptime_secs = live.started.map(|at| at.elapsed().as_secs_f64());
            status.limits = limit_statuses(spec, &live.limits);
        }
        let hold = slot.and_then(|slot| slot.hold.as_ref());
        match (hold, run) {
            (Some(Hold::Quarantined { reason }), _) => {
                status.state = State::Quarantined;
                status.reason = reason.clone();
            }
            (Some(Hold::Stopped), None) => status.state = State::Stopped,
            (_, Some(run)) if run.phase == Phase::Target => {
                // Ready once what it groups is: the reason names what it still waits for.
                status.reason = self.waiting_for(&run.spec);
                status.ready = status.reason.is_none();
                status.state = if status.ready {
                    State::Ready
                } else {
                    State::Waiting
                };
            }
            (_, Some(run)) if handle.is_none() && run.phase == Phase::Starting => {
                status.state = State::Starting;
            }
            (_, None) if desired.is_some_and(|spec| !spec.manifest.enabled) => {
                status.state = State::Disabled;
            }
            (_, None) if slot.is_some_and(|slot| !slot.stopping.is_empty()) => {
                status.state = State::Stopping;
            }
            (_, None) => {
                status.state = State::Waiting;
                status.reason = desired.and_then(|spec| self.waiting_for(spec)).or_else(|| {
                    status
                        .next_run
                        .as_ref()
                        .map(|at| format!("next run at {at}"))
                });
            }
            _ => {}
        }
        if hold.is_some()
            && let Some(record) = self.holds.get(name)
        {
            status.held_since = Some(record.since.clone());
            if status.reason.is_none() {
                status.reason = record.reason.clone();
            }
        }
        (status, handle)
    }

    /// "waiting for db (ready), migrate (completed)": the unmet dependencies.
    fn waiting_for(&self, spec: &crate::manifest::ChildSpec) -> Option<String> {
        let unmet: Vec<String> = self
            .core
            .unmet_dependencies(spec)
            .map(|dep| format!("{} ({:?})", dep.name, dep.condition).to_lowercase())
            .collect();
        (!unmet.is_empty()).then(|| format!("waiting for {}", unmet.join(", ")))
    }

    pub(super) fn detail(&self, name: &str) -> Option<ChildDetail> {
        let known =
            self.core.desired().children.contains_key(name) || self.core.slots().contains_key(name);
        if !known {
            return None;
        }
        let spec = self
            .core
            .slots()
            .get(name)
            .and_then(|slot| slot.current.as_ref().map(|run| Arc::clone(&run.spec)))
            .or_else(|| self.core.desired().children.get(name).cloned());
        Some(ChildDetail {
            status: self.child_status(name),
            spec: spec.map(|spec| (*spec.manifest).clone()),
            log_file: self
                .logs_dir
                .as_ref()
                .map(|dir| dir.join(format!("{name}.log"))),
        })
    }
}

/// The reported state of a child machine's state (before probes and holds are folded in).
fn machine_state(state: &ChildState) -> State {
    match state {
        ChildState::Spawning { .. } => State::Spawning,
        ChildState::Starting { .. } => State::Starting,
        ChildState::Running { .. } => State::Running,
        ChildState::Stopping { .. } => State::Stopping,
        ChildState::Backoff { .. } => State::Backoff,
        ChildState::Exited { .. } => State::Exited,
        ChildState::Completed => State::Completed,
        ChildState::Failed { .. } => State::Failed,
        ChildState::Stopped { .. } => State::Stopped,
    }
}

/// The reason carried by a failed or exited state, if any.
fn state_reason(state: &ChildState) -> Option<String> {
    match state {
        ChildState::Failed { reason } => Some(reason.clone()),
        _ => None,
    }
}

/// Each configured limit, its value as written, and how it is enforced here.
fn limit_statuses(spec: &ChildSpec, report: &LimitReport) -> Vec<LimitStatus> {
    let limits = &spec.manifest.resource_limits;
    let entries = [
        (
            "memory",
            limits.memory.map(|v| v.to_string()),
            report.memory,
        ),
        ("cpu", limits.cpu.map(|v| v.to_string()), report.cpu),
        (
            "open_files",
            limits.open_files.map(|v| v.to_string()),
            report.open_files,
        ),
        (
            "processes",
            limits.processes.map(|v| v.to_string()),
            report.processes,
        ),
    ];
    entries
        .into_iter()
        .filter_map(|(name, value, enforcement)| {
            Some(LimitStatus {
                name: name.to_owned(),
                value: value?,
                enforcement: enforcement?,
            })
        })
        .collect()
}
