//! The workload: a `Deployment` for a service, a `Job` for a oneshot (never a bare Pod),
//! with the pod template, its one container, and what else of the manifest Kubernetes can
//! carry: resources, security context, stop and update behaviour.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::cronjob::cron_job;
use super::deps::{Wait, protocol_name};
use super::probes::{self, Role};
use super::rbac::account_name;
use super::{Child, map, whole_seconds};
use crate::manifest::model::{
    Command, Criticality, Kind, Manifest, RestartPolicy, Signal, UpdateStrategy,
};

/// The Deployment or Job of a child.
pub fn workload(child: &mut Child<'_>, image: &str, waits: &[Wait], env: Vec<Value>) -> Value {
    let manifest = Arc::clone(&child.doc.manifest);
    child.check_labels();
    unsupported(child, &manifest);
    let container = container(child, &manifest, image, env);
    let mut pod = Map::new();
    if waits.iter().any(Wait::needs_rbac) {
        pod.insert(
            "serviceAccountName".into(),
            Value::from(account_name(&manifest.name)),
        );
    }
    pod.insert(
        "restartPolicy".into(),
        Value::from(restart_policy(child, &manifest)),
    );
    let (grace, _) = whole_seconds(manifest.stop.timeout.get(), 0);
    pod.insert("terminationGracePeriodSeconds".into(), Value::from(grace));
    if !waits.is_empty() {
        let init: Vec<Value> = waits
            .iter()
            .map(|wait| wait.init_container(child))
            .collect();
        pod.insert("initContainers".into(), Value::Array(init));
    }
    pod.insert("containers".into(), Value::Array(vec![container]));
    let mut template_metadata = map([("labels", Value::Object(child.labels()))]);
    let annotations = child.annotations();
    if !annotations.is_empty() {
        template_metadata.insert("annotations".into(), Value::Object(annotations.clone()));
    }
    let template = json!({"metadata": template_metadata, "spec": pod});
    let metadata = child.metadata(&manifest.name, annotations);
    if manifest.kind == Kind::Oneshot {
        job(child, &manifest, metadata, template)
    } else {
        deployment(child, &manifest, metadata, template)
    }
}

fn deployment(child: &Child<'_>, manifest: &Manifest, metadata: Value, template: Value) -> Value {
    let rolling = match manifest.update {
        UpdateStrategy::StopFirst => json!({"maxSurge": 0, "maxUnavailable": 1}),
        UpdateStrategy::StartFirst => json!({"maxSurge": 1, "maxUnavailable": 0}),
    };
    let replicas = if manifest.enabled {
        manifest.replicas
    } else {
        0
    };
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": child.selector()},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": rolling},
            "template": template,
        },
    })
}

fn job(child: &mut Child<'_>, manifest: &Manifest, metadata: Value, template: Value) -> Value {
    let backoff_limit = match manifest.restart_policy() {
        RestartPolicy::Never => 0,
        RestartPolicy::Always | RestartPolicy::OnFailure => manifest.restart.limit.count,
    };
    if child.written("/restart/limit/window") {
        child.warn(
            "/restart/limit/window",
            "a Job's backoffLimit counts retries over its whole run, not within a window",
        );
    }
    if manifest.update == UpdateStrategy::StartFirst {
        child.warn(
            "/update",
            "a Job's pod template cannot be updated: a changed oneshot is a new Job",
        );
    }
    let mut spec = map([
        ("backoffLimit", Value::from(backoff_limit)),
        ("template", template),
    ]);
    if manifest.replicas > 1 {
        spec.insert("completions".into(), Value::from(manifest.replicas));
        spec.insert("parallelism".into(), Value::from(manifest.replicas));
        spec.insert("completionMode".into(), Value::from("Indexed"));
    }
    if !manifest.enabled {
        spec.insert("suspend".into(), Value::Bool(true));
    }
    let job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": spec,
    });
    match &manifest.schedule {
        Some(schedule) => cron_job(child, schedule, job),
        None => job,
    }
}

/// The pod's restart policy: `Always` for a Deployment (the only one it allows), `OnFailure`
/// or `Never` for a Job; warnings where herder's policy differs.
fn restart_policy(child: &mut Child<'_>, manifest: &Manifest) -> &'static str {
    let policy = manifest.restart_policy();
    if child.written("/restart/backoff") {
        child.warn(
            "/restart/backoff",
            "restart backoff is the kubelet's (10s doubling to 5m), not per pod",
        );
    }
    match (manifest.kind, policy) {
        (Kind::Service | Kind::Target, RestartPolicy::Always) => "Always",
        (Kind::Service | Kind::Target, _) => {
            child.warn(
                "/restart",
                "a Deployment always restarts its pods: restartPolicy Always (a run-to-completion child is a `kind: oneshot`, a Job)",
            );
            "Always"
        }
        (Kind::Oneshot, RestartPolicy::Never) => "Never",
        (Kind::Oneshot, RestartPolicy::OnFailure) => "OnFailure",
        (Kind::Oneshot, RestartPolicy::Always) => {
            child.warn(
                "/restart",
                "a Job's pods cannot restart after success: restartPolicy OnFailure",
            );
            "OnFailure"
        }
    }
}

fn container(child: &mut Child<'_>, manifest: &Manifest, image: &str, env: Vec<Value>) -> Value {
    // A target has no command, and no container either: `export` gives it no object.
    let command = manifest
        .command
        .as_ref()
        .map(Command::argv)
        .unwrap_or_default();
    let mut out = map([
        ("name", Value::from(manifest.name.as_str())),
        ("image", Value::from(image)),
        ("command", json!(command)),
    ]);
    if let Some(dir) = &manifest.working_dir {
        if dir.is_absolute() {
            out.insert("workingDir".into(), Value::from(dir.display().to_string()));
        } else {
            child.warn(
                "/working_dir",
                format!("a relative working directory ({}) means nothing in a container: the image's working directory is used", dir.display()),
            );
        }
    } else {
        child.warn(
            "/name",
            "herder runs the child in its manifest's folder: the container runs in the image's working directory",
        );
    }
    if !env.is_empty() {
        out.insert("env".into(), Value::Array(env));
    }
    if !manifest.ports.is_empty() {
        out.insert("ports".into(), container_ports(child, manifest));
    }
    if let Some(resources) = resources(child, manifest) {
        out.insert("resources".into(), resources);
    }
    if let Some(security) = security_context(child, manifest) {
        out.insert("securityContext".into(), security);
    }
    for (role, key) in [
        (Role::Readiness, "readinessProbe"),
        (Role::Liveness, "livenessProbe"),
    ] {
        if let Some(probe) = probes::probe(child, role) {
            out.insert(key.into(), probe);
        }
    }
    if let Some(startup) = probes::startup_probe(child) {
        out.insert("startupProbe".into(), startup);
    }
    Value::Object(out)
}

/// The declared ports as container ports; a warning for one bound to loopback only.
fn container_ports(child: &mut Child<'_>, manifest: &Manifest) -> Value {
    let mut ports = Vec::new();
    for (i, port) in manifest.ports.iter().enumerate() {
        let spec = &port.0;
        if let Some(host) = &spec.host
            && matches!(host.as_str(), "127.0.0.1" | "localhost" | "::1")
        {
            child.warn(
                &format!("/ports/{i}/host"),
                format!("a Service reaches the pod's IP, not {host}: the program must listen on the pod's address"),
            );
        }
        ports.push(json!({
            "name": format!("{}-{}", spec.protocol, spec.port),
            "containerPort": spec.port,
            "protocol": protocol_name(spec.protocol),
        }));
    }
    Value::Array(ports)
}

/// Cores as a Kubernetes quantity in millicores, rounded up to 1m.
pub fn cpu_quantity(cores: f64) -> String {
    let millis = (cores * 1000.0).ceil().max(1.0);
    if millis % 1000.0 == 0.0 {
        format!("{}", millis / 1000.0)
    } else {
        format!("{millis}m")
    }
}

fn resources(child: &mut Child<'_>, manifest: &Manifest) -> Option<Value> {
    let limits = &manifest.resource_limits;
    let mut quantities = Map::new();
    if let Some(memory) = limits.memory {
        quantities.insert(
            "memory".into(),
            // herder's canonical size form (`128Mi`, binary suffixes) is a Kubernetes quantity.
            Value::from(memory.to_string()),
        );
    }
    if let Some(cpu) = limits.cpu {
        quantities.insert("cpu".into(), Value::from(cpu_quantity(cpu)));
    }
    if limits.open_files.is_some() {
        child.warn(
            "/resource_limits/open_files",
            "Kubernetes has no per-container open-file limit (the container runtime's default applies)",
        );
    }
    if limits.processes.is_some() {
        child.warn(
            "/resource_limits/processes",
            "Kubernetes has no per-container process limit (the kubelet's podPidsLimit applies to every pod)",
        );
    }
    (!quantities.is_empty()).then(|| json!({"limits": quantities.clone(), "requests": quantities}))
}

fn security_context(child: &mut Child<'_>, manifest: &Manifest) -> Option<Value> {
    let mut context = Map::new();
    for (field, key, value) in [
        ("/user", "runAsUser", &manifest.user),
        ("/group", "runAsGroup", &manifest.group),
    ] {
        let Some(value) = value else { continue };
        match value.parse::<i64>() {
            Ok(id) if id >= 0 => {
                context.insert(key.into(), Value::from(id));
            }
            _ => child.warn(
                field,
                format!("Kubernetes needs a numeric id, not `{value}`: left out (the image's user applies)"),
            ),
        }
    }
    (!context.is_empty()).then_some(Value::Object(context))
}

/// Warnings for fields that have no Kubernetes counterpart at all.
fn unsupported(child: &mut Child<'_>, manifest: &Manifest) {
    if manifest.stop.signal != Signal::Sigterm {
        child.warn(
            "/stop/signal",
            format!("the kubelet stops containers with SIGTERM, not {} (a container's stop signal needs the alpha ContainerStopSignals gate)", manifest.stop.signal),
        );
    }
    if manifest.stop.timeout.get().subsec_nanos() > 0 {
        child.warn(
            "/stop/timeout",
            "terminationGracePeriodSeconds counts whole seconds: rounded down",
        );
    }
    if manifest.criticality == Criticality::Critical {
        child.warn(
            "/criticality",
            "`critical` has no Kubernetes equivalent: the failure of one workload does not stop the others",
        );
    }
    if child.written("/start_timeout") {
        child.warn(
            "/start_timeout",
            "`start_timeout` has no Kubernetes equivalent: a pod that does not become ready is not restarted (only a start_period becomes a startupProbe)",
        );
    }
    if child.written("/command_permissions") {
        child.warn(
            "/command_permissions",
            "`command_permissions` governs herder's control API: Kubernetes RBAC decides who may restart or signal pods",
        );
    }
    if child.written("/logs") {
        child.warn(
            "/logs",
            "the kubelet rotates container logs (containerLogMaxSize, containerLogMaxFiles), not per pod",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(cpu_quantity(0.5), "500m");
        assert_eq!(cpu_quantity(2.0), "2");
        assert_eq!(cpu_quantity(0.0001), "1m");
    }
}
