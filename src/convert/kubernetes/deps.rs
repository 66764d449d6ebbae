//! Dependencies: which children others wait for, the `Service` that makes a child
//! reachable by name, and the init containers that wait for a dependency's condition.
//!
//! | herder | waits for | with |
//! |---|---|---|
//! | `ready`, the dependency serves a known port | a TCP connection through its Service (the Service only routes to ready pods) | `nc` in the wait image |
//! | `ready`, no known port | its pods' `Ready` condition | `kubectl wait`, RBAC on pods |
//! | `started` | its pods' phase `Running` | `kubectl wait`, RBAC on pods |
//! | `completed` (a oneshot) | its Job's `Complete` condition | `kubectl wait`, RBAC on that Job |
//!
//! A `kind: target` exports to no object: a dependency on it waits for what it groups.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::{Child, map, probes};
use crate::convert::names::is_dns1035_label;
use crate::manifest::ManifestDoc;
use crate::manifest::model::{Condition, DependencySpec, Kind, Manifest, Protocol};

/// The ports a child's Service serves, sorted: the ones its probes connect to on the child
/// itself (TCP) and the ones it declares under `ports`.
pub fn service_ports(manifest: &Manifest) -> Vec<(u16, Protocol)> {
    let mut ports: BTreeSet<(u16, Protocol)> = probes::served_ports(manifest)
        .into_iter()
        .map(|port| (port, Protocol::Tcp))
        .collect();
    ports.extend(
        manifest
            .ports
            .iter()
            .map(|port| (port.0.port, port.0.protocol)),
    );
    ports.into_iter().collect()
}

/// The Kubernetes name of a protocol.
pub fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
    }
}

/// Every manifest of the export by name, and who waits for whom.
pub struct Index<'a> {
    by_name: BTreeMap<&'a str, &'a ManifestDoc>,
    /// Names of the manifests some other manifest waits for with `ready` or `started`.
    served: BTreeSet<&'a str>,
}

impl<'a> Index<'a> {
    /// Indexes the documents of one export.
    pub fn new(docs: &[&'a ManifestDoc]) -> Self {
        let by_name: BTreeMap<&str, &ManifestDoc> = docs
            .iter()
            .map(|doc| (doc.manifest.name.as_str(), *doc))
            .collect();
        let mut index = Self {
            by_name,
            served: BTreeSet::new(),
        };
        let mut served = BTreeSet::new();
        for doc in docs {
            for dep in &doc.manifest.dependencies {
                if dep.0.condition != Condition::Completed {
                    for (_, target, _) in index.through_targets(&dep.0) {
                        served.insert(target.manifest.name.as_str());
                    }
                }
            }
        }
        index.served = served;
        index
    }

    /// What a dependency waits for in Kubernetes: the manifest it names, or, when that is a
    /// `kind: target` (which exports to no object), the dependencies of the target, through
    /// any targets they name in turn. Each comes with the dependency as written (its
    /// condition) and whether it names one replica. Each target is entered once, so a
    /// cycle (which validation rejects) cannot loop.
    pub fn through_targets(
        &self,
        dependency: &'a DependencySpec,
    ) -> Vec<(&'a DependencySpec, &'a ManifestDoc, bool)> {
        let mut out = Vec::new();
        let mut entered = BTreeSet::new();
        let mut pending = vec![dependency];
        while let Some(dep) = pending.pop() {
            let Some((doc, replica)) = self.resolve(&dep.name) else {
                continue;
            };
            if !doc.manifest.is_target() {
                out.push((dep, doc, replica));
            } else if entered.insert(doc.manifest.name.as_str()) {
                pending.extend(doc.manifest.dependencies.iter().rev().map(|inner| &inner.0));
            }
        }
        out
    }

    /// The manifest a dependency names, and whether it names one replica of it.
    pub fn resolve(&self, name: &str) -> Option<(&'a ManifestDoc, bool)> {
        if let Some(doc) = self.by_name.get(name) {
            return Some((doc, false));
        }
        let (base, replica) = name.rsplit_once('-')?;
        let replica: u32 = replica.parse().ok()?;
        let doc = self.by_name.get(base)?;
        (replica < doc.manifest.replicas && doc.manifest.replicas > 1).then_some((doc, true))
    }

    /// Whether another manifest waits for `name` to be started or ready.
    pub fn is_served(&self, name: &str) -> bool {
        self.served.contains(name)
    }
}

/// The documents in dependency order (each after what it depends on), ties in directory
/// order: `kubectl apply` then creates a Job before the pods that wait for it.
pub fn dependency_order<'a>(docs: &[&'a ManifestDoc]) -> Vec<&'a ManifestDoc> {
    let index = Index::new(docs);
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut order = Vec::with_capacity(docs.len());
    // Validation rejects cycles; the bound keeps a cycle from looping anyway.
    for _ in 0..=docs.len() {
        let before = order.len();
        for doc in docs {
            let name = doc.manifest.name.as_str();
            if placed.contains(name) {
                continue;
            }
            let ready = doc.manifest.dependencies.iter().all(|dep| {
                index
                    .resolve(&dep.0.name)
                    .is_none_or(|(target, _)| placed.contains(target.manifest.name.as_str()))
            });
            if ready {
                placed.insert(name);
                order.push(*doc);
            }
        }
        if order.len() == docs.len() || order.len() == before {
            break;
        }
    }
    for doc in docs {
        if !placed.contains(doc.manifest.name.as_str()) {
            order.push(*doc);
        }
    }
    order
}

/// What one init container waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wait {
    /// A TCP connection to `service:port` succeeds.
    Port {
        /// The dependency's child name.
        dependency: String,
        /// Its Service.
        service: String,
        /// A port its Service serves.
        port: u16,
    },
    /// The dependency's pods reach a state.
    Pods {
        /// The dependency's child name.
        dependency: String,
        /// `--for` of `kubectl wait`.
        condition: &'static str,
    },
    /// The dependency's Job completed.
    Job {
        /// The dependency's child (and Job) name.
        dependency: String,
    },
}

impl Wait {
    /// Whether the wait talks to the Kubernetes API (and needs a ServiceAccount).
    pub fn needs_rbac(&self) -> bool {
        !matches!(self, Self::Port { .. })
    }

    /// The init container that performs the wait.
    pub fn init_container(&self, child: &Child<'_>) -> Value {
        let options = child.options;
        match self {
            Self::Port {
                dependency,
                service,
                port,
            } => json!({
                "name": container_name(dependency),
                "image": options.wait_image,
                "command": ["/bin/sh", "-c", format!(
                    "until nc -z -w 2 {service} {port}; do echo 'waiting for {dependency} to be ready'; sleep 2; done"
                )],
            }),
            Self::Pods {
                dependency,
                condition,
            } => {
                let target = child.index.resolve(dependency).map(|(doc, _)| doc);
                let selector = target
                    .map(|doc| {
                        format!(
                            "app.kubernetes.io/name={},app.kubernetes.io/instance={}",
                            doc.manifest.name, options.instance
                        )
                    })
                    .unwrap_or_default();
                json!({
                    "name": container_name(dependency),
                    "image": options.kubectl_image,
                    "command": ["kubectl", "wait", "pod", "--selector", selector, format!("--for={condition}"), "--timeout=-1s"],
                })
            }
            Self::Job { dependency } => json!({
                "name": container_name(dependency),
                "image": options.kubectl_image,
                "command": ["kubectl", "wait", format!("job/{dependency}"), "--for=condition=Complete", "--timeout=-1s"],
            }),
        }
    }
}

/// The name of the init container that waits for `dependency`: `wait-<dependency>`,
/// shortened to a DNS label.
fn container_name(dependency: &str) -> String {
    let mut name: String = format!("wait-{dependency}").chars().take(63).collect();
    while name.ends_with('-') {
        name.pop();
    }
    name
}

/// What `child` waits for before it starts, one entry per dependency, with warnings for
/// what Kubernetes cannot wait for exactly.
pub fn waits(child: &mut Child<'_>) -> Vec<Wait> {
    let mut waits = Vec::new();
    let dependencies = child.doc.manifest.dependencies.clone();
    for (i, dep) in dependencies.iter().enumerate() {
        let pointer = format!("/dependencies/{i}");
        let dep = &dep.0;
        if dep.restart {
            child.warn(
                &format!("{pointer}/restart"),
                "`restart: true` has no Kubernetes equivalent: pods are not restarted when a dependency is",
            );
        }
        for (dep, target, replica) in child.index.through_targets(dep) {
            if let Some(wait) = wait_for(child, &pointer, dep, target, replica)
                && !waits.contains(&wait)
            {
                waits.push(wait);
            }
        }
    }
    waits
}

/// How to wait for `target` (named by the dependency at `pointer`, possibly through a
/// `kind: target`), or nothing when Kubernetes has no way to wait for it.
fn wait_for(
    child: &mut Child<'_>,
    pointer: &str,
    dep: &DependencySpec,
    target: &ManifestDoc,
    replica: bool,
) -> Option<Wait> {
    let name = target.manifest.name.clone();
    if replica {
        child.warn(
            pointer,
            format!("Kubernetes cannot wait for one replica: waits for the pods of `{name}`"),
        );
    }
    if target.manifest.schedule.is_some() {
        child.warn(
            pointer,
            format!("`{name}` runs on a schedule: its Jobs are named by the CronJob, so nothing waits for them"),
        );
        return None;
    }
    let wait = match (target.manifest.kind, dep.condition) {
        (Kind::Oneshot, Condition::Completed) => Wait::Job { dependency: name },
        (Kind::Oneshot, condition) => {
            child.warn(
                pointer,
                format!(
                    "condition `{}` on a oneshot: a Job has no Service, so this waits for `{name}` to complete",
                    condition_name(condition)
                ),
            );
            Wait::Job { dependency: name }
        }
        (_, Condition::Started) => Wait::Pods {
            dependency: name,
            condition: "jsonpath={.status.phase}=Running",
        },
        (_, _) => match service_ports(&target.manifest)
            .into_iter()
            .find(|(_, protocol)| *protocol == Protocol::Tcp)
        {
            Some((port, _)) => Wait::Port {
                service: service_name(&name),
                dependency: name,
                port,
            },
            None => Wait::Pods {
                dependency: name,
                condition: "condition=Ready",
            },
        },
    };
    Some(wait)
}

fn condition_name(condition: Condition) -> &'static str {
    match condition {
        Condition::Started => "started",
        Condition::Ready => "ready",
        Condition::Completed => "completed",
    }
}

/// The Service name of a child: its name, or `svc-<name>` when the name starts with a
/// digit (Service names are DNS-1035 labels).
pub fn service_name(name: &str) -> String {
    if is_dns1035_label(name) {
        return name.to_owned();
    }
    let mut service: String = format!("svc-{name}").chars().take(63).collect();
    while service.ends_with('-') {
        service.pop();
    }
    service
}

/// The child's Service: when others wait for it to be started or ready, or it serves
/// ports known from its probes. Without a known port it is headless.
pub fn service(child: &mut Child<'_>) -> Option<Value> {
    let manifest = &child.doc.manifest;
    if manifest.kind == Kind::Oneshot {
        return None;
    }
    let ports = service_ports(manifest);
    if ports.is_empty() && !child.index.is_served(&manifest.name) {
        return None;
    }
    let name = service_name(&manifest.name);
    if name != manifest.name {
        child.warn(
            "/name",
            format!("a Service name must start with a letter: the Service is named `{name}`"),
        );
    }
    let mut spec = map([("selector", Value::Object(child.selector()))]);
    if ports.is_empty() {
        spec.insert("clusterIP".into(), Value::from("None"));
    } else {
        let ports: Vec<Value> = ports
            .iter()
            .map(|(port, protocol)| {
                json!({
                    "name": format!("{protocol}-{port}"),
                    "port": port,
                    "targetPort": port,
                    "protocol": protocol_name(*protocol),
                })
            })
            .collect();
        spec.insert("ports".into(), Value::Array(ports));
    }
    Some(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child.metadata(&name, child.annotations()),
        "spec": spec,
    }))
}
