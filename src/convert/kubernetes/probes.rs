//! Probes: `readiness` → `readinessProbe`, `health_check` → `livenessProbe`, a
//! `start_period` → a `startupProbe`, each check field by field.
//!
//! Kubernetes counts whole seconds (at least 1) where herder takes any duration, probes a
//! container at the pod's IP where herder connects to the host it is given, and accepts
//! any HTTP status from 200 to 399 where herder expects one: each difference is a warning.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::{Child, whole_seconds};
use crate::manifest::model::{Check, Manifest, Probe};

/// Which probe a herder probe becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `readiness` → `readinessProbe`.
    Readiness,
    /// `health_check` → `livenessProbe`.
    Liveness,
}

impl Role {
    fn pointer(self) -> &'static str {
        match self {
            Self::Readiness => "/readiness",
            Self::Liveness => "/health_check",
        }
    }

    fn probe(self, manifest: &Manifest) -> Option<&Probe> {
        match self {
            Self::Readiness => manifest.readiness.as_ref(),
            Self::Liveness => manifest.health_check.as_ref(),
        }
    }
}

/// Hosts that mean "this child itself" in a probe.
fn is_local(host: &str) -> bool {
    is_loopback(host) || matches!(host, "0.0.0.0" | "::" | "")
}

/// Loopback hosts: a program listening only there cannot be probed from the kubelet.
fn is_loopback(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "::1")
}

/// The ports of the child itself its probes connect to, sorted: the ports its Service
/// serves.
pub fn served_ports(manifest: &Manifest) -> Vec<u16> {
    let mut ports = BTreeSet::new();
    for probe in [&manifest.readiness, &manifest.health_check]
        .into_iter()
        .flatten()
    {
        match &probe.check {
            Check::Http(http) => {
                if let Ok(target) = http.target()
                    && is_local(&target.host)
                {
                    ports.insert(target.port);
                }
            }
            Check::Tcp(tcp) if is_local(&tcp.host) => {
                ports.insert(tcp.port);
            }
            _ => {}
        }
    }
    ports.into_iter().collect()
}

/// The Kubernetes check of a herder probe (`exec`, `httpGet` or `tcpSocket`), or `None`
/// with a warning for `log_line`, `notify`, `notification_fd` and `watchdog`.
fn handler(child: &mut Child<'_>, pointer: &str, probe: &Probe) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    match &probe.check {
        Check::Exec(exec) => {
            out.insert("exec".into(), json!({"command": exec.command.argv()}));
        }
        Check::Http(http) => {
            let target = http.target().ok()?;
            let (host, port) = (target.host.as_str(), target.port);
            let mut get = json!({"path": target.path, "port": port});
            if is_loopback(host) {
                child.warn(&format!("{pointer}/http/url"), format!("the kubelet probes the pod's IP, not {host}: the program must listen on the pod's address (e.g. 0.0.0.0:{port})"));
            } else if !is_local(host) {
                get["host"] = Value::from(host);
            }
            if http.status != 200 {
                child.warn(
                    &format!("{pointer}/http/status"),
                    format!(
                        "an httpGet probe succeeds on any status from 200 to 399, not only {}",
                        http.status
                    ),
                );
            }
            out.insert("httpGet".into(), get);
        }
        Check::Tcp(tcp) => {
            let mut socket = json!({"port": tcp.port});
            if is_loopback(&tcp.host) {
                child.warn(&format!("{pointer}/tcp"), format!("the kubelet probes the pod's IP, not {}: the program must listen on the pod's address (e.g. 0.0.0.0:{})", tcp.host, tcp.port));
            } else if !is_local(&tcp.host) {
                socket["host"] = Value::from(tcp.host.as_str());
            }
            out.insert("tcpSocket".into(), socket);
        }
        Check::LogLine(_) => {
            child.warn(
                &format!("{pointer}/log_line"),
                "a `log_line` probe has no Kubernetes equivalent: left out (the pod is ready once it runs); an exec probe can replace it",
            );
            return None;
        }
        Check::Notify | Check::NotificationFd(_) | Check::Watchdog(_) => {
            let key = probe.check.key();
            child.warn(
                &format!("{pointer}/{key}"),
                format!("a `{key}` check has no Kubernetes equivalent: left out (the kubelet does not speak sd_notify); an exec or http probe can replace it"),
            );
            return None;
        }
    }
    Some(out)
}

/// Seconds of a probe timing field, with a warning when rounding changed it.
fn seconds(child: &mut Child<'_>, pointer: &str, duration: std::time::Duration) -> u64 {
    let (secs, rounded) = whole_seconds(duration, 1);
    if rounded && child.written(pointer) {
        child.warn(
            pointer,
            format!("Kubernetes counts whole seconds (at least 1): {secs}s"),
        );
    }
    secs
}

/// The `readinessProbe` or `livenessProbe` of a child.
pub fn probe(child: &mut Child<'_>, role: Role) -> Option<Value> {
    let manifest = std::sync::Arc::clone(&child.doc.manifest);
    let probe = role.probe(&manifest)?;
    let pointer = role.pointer();
    let mut out = handler(child, pointer, probe)?;
    let period = seconds(child, &format!("{pointer}/interval"), probe.interval.get());
    let timeout = seconds(child, &format!("{pointer}/timeout"), probe.timeout.get());
    out.insert("periodSeconds".into(), Value::from(period));
    out.insert("timeoutSeconds".into(), Value::from(timeout));
    out.insert(
        "failureThreshold".into(),
        Value::from(probe.failure_threshold),
    );
    let success = match role {
        Role::Readiness => probe.success_threshold,
        Role::Liveness => {
            if probe.success_threshold != 1 {
                child.warn(
                    &format!("{pointer}/success_threshold"),
                    "Kubernetes requires successThreshold 1 for a liveness probe: 1 is used",
                );
            }
            1
        }
    };
    out.insert("successThreshold".into(), Value::from(success));
    Some(Value::Object(out))
}

/// The `startupProbe` that carries a `start_period`: failures during it do not count, and
/// it ends at the first success. From the health check's start period (with its check), or
/// else the readiness probe's.
pub fn startup_probe(child: &mut Child<'_>) -> Option<Value> {
    let manifest = std::sync::Arc::clone(&child.doc.manifest);
    let (role, probe) = [Role::Liveness, Role::Readiness]
        .into_iter()
        .filter_map(|role| Some((role, role.probe(&manifest)?)))
        .find(|(_, probe)| !probe.start_period.get().is_zero())?;
    let pointer = role.pointer();
    // Warnings about the check itself were given with the probe it comes from.
    let mut quiet = Child {
        doc: child.doc,
        options: child.options,
        index: child.index,
        warnings: Vec::new(),
    };
    let mut out = handler(&mut quiet, pointer, probe)?;
    let (period, _) = whole_seconds(probe.interval.get(), 1);
    let (timeout, _) = whole_seconds(probe.timeout.get(), 1);
    let (grace, rounded) = whole_seconds(probe.start_period.get(), 1);
    if rounded {
        child.warn(
            &format!("{pointer}/start_period"),
            format!("Kubernetes counts whole seconds: {grace}s"),
        );
    }
    let failures = grace.div_ceil(period) + u64::from(probe.failure_threshold);
    out.insert("periodSeconds".into(), Value::from(period));
    out.insert("timeoutSeconds".into(), Value::from(timeout));
    out.insert("failureThreshold".into(), Value::from(failures));
    out.insert("successThreshold".into(), Value::from(1));
    if role == Role::Readiness && manifest.health_check.is_some() {
        child.warn(
            &format!("{pointer}/start_period"),
            "the startupProbe holds off the liveness probe as well as the readiness probe",
        );
    }
    Some(Value::Object(out))
}
