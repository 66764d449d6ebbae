//! `herder export kubernetes`: the objects that run a manifest directory on a Kubernetes
//! cluster.
//!
//! Per manifest, in directory order: the RBAC a `completed` dependency's wait needs
//! ([`rbac`]), a `Service` when others wait for the child or its ports are known
//! ([`deps`]), and the workload: a `Deployment` for a service, a `Job` for a oneshot
//! ([`workload`], with probes from [`probes`] and environment from [`env`]). Whatever
//! cannot be carried over faithfully is a [`Note`] at the herder field. The objects are
//! checked by [`lint`] for the rules the API server enforces beyond the JSON Schemas; a
//! finding there is a bug in the exporter, reported rather than written.
//!
//! The result is deterministic: same documents and options, same objects in the same order.

mod cronjob;
mod deps;
mod env;
pub mod lint;
mod probes;
mod rbac;
mod workload;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::names::{is_label_key, is_label_value};
use super::note::Note;
use crate::manifest::ManifestDoc;

/// The `app.kubernetes.io/managed-by` value of every exported object.
pub const MANAGED_BY: &str = "herder";

/// Annotation prefix of what herder records on exported objects.
pub const ANNOTATION_PREFIX: &str = "herder.dev/";

/// Key order of the YAML output: the conventional order of Kubernetes objects, then sorted.
pub const KEY_ORDER: &[&str] = &[
    "apiVersion",
    "apiGroup",
    "kind",
    "metadata",
    "name",
    "namespace",
    "labels",
    "annotations",
    "spec",
    "replicas",
    "completions",
    "parallelism",
    "completionMode",
    "suspend",
    "backoffLimit",
    "schedule",
    "timeZone",
    "concurrencyPolicy",
    "startingDeadlineSeconds",
    "jobTemplate",
    "selector",
    "matchLabels",
    "strategy",
    "type",
    "rollingUpdate",
    "template",
    "serviceAccountName",
    "restartPolicy",
    "terminationGracePeriodSeconds",
    "initContainers",
    "containers",
    "image",
    "command",
    "args",
    "workingDir",
    "env",
    "value",
    "valueFrom",
    "apiGroups",
    "resources",
    "ports",
    "securityContext",
    "readinessProbe",
    "livenessProbe",
    "startupProbe",
    "exec",
    "httpGet",
    "tcpSocket",
    "path",
    "port",
    "targetPort",
    "containerPort",
    "protocol",
    "periodSeconds",
    "timeoutSeconds",
    "successThreshold",
    "failureThreshold",
    "rules",
    "resourceNames",
    "verbs",
    "roleRef",
    "subjects",
];

/// What the export is made from besides the manifests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Image of children without `export.kubernetes.image`.
    pub image: Option<String>,
    /// Namespace of every object (a RoleBinding must name its ServiceAccount's namespace,
    /// so it is always written).
    pub namespace: String,
    /// The `app.kubernetes.io/instance` label: which directory the objects came from.
    pub instance: String,
    /// Image of the init containers that wait for a Service (needs `sh` and `nc`).
    pub wait_image: String,
    /// Image of the init containers that wait for a Job (needs `kubectl`).
    pub kubectl_image: String,
}

/// Default of [`Options::namespace`].
pub const DEFAULT_NAMESPACE: &str = "default";

/// Default of [`Options::wait_image`].
pub const DEFAULT_WAIT_IMAGE: &str = "busybox:1.36";

/// Default of [`Options::kubectl_image`].
pub const DEFAULT_KUBECTL_IMAGE: &str = "registry.k8s.io/kubectl:v1.33.0";

/// The objects of one manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct ChildObjects {
    /// The manifest's name.
    pub name: String,
    /// Its objects, in the order they are written.
    pub objects: Vec<Value>,
}

/// The result of an export.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Export {
    /// Per manifest, in directory order.
    pub children: Vec<ChildObjects>,
    /// Everything that could not be carried over faithfully, by source location.
    pub warnings: Vec<Note>,
    /// `kubectl create secret` commands that create the Secrets the objects reference.
    /// They name files and variables, never values.
    pub secret_commands: Vec<String>,
}

impl Export {
    /// Every object, in order.
    pub fn objects(&self) -> impl Iterator<Item = &Value> {
        self.children.iter().flat_map(|child| child.objects.iter())
    }
}

/// Why nothing was exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Children have no image and no default was given.
    #[error("{} without a container image: set `export.kubernetes.image` in the manifest or give --image", plural(.0.len()))]
    NoImage(Vec<Note>),
    /// The objects break a rule of the API server: a bug in the exporter.
    #[error("the exported objects break Kubernetes rules (a bug in herder): {}", .0.join("; "))]
    Lint(Vec<String>),
}

fn plural(count: usize) -> String {
    if count == 1 {
        "1 child".to_owned()
    } else {
        format!("{count} children")
    }
}

/// Exports checked manifest documents (a directory that `herder validate` accepts).
pub fn export(docs: &[&ManifestDoc], options: &Options) -> Result<Export, ExportError> {
    let index = deps::Index::new(docs);
    let mut out = Export::default();
    let mut missing = Vec::new();
    for doc in deps::dependency_order(docs) {
        if doc.manifest.is_target() {
            // No process, so no object: what depends on it waits for what it groups.
            continue;
        }
        let image = doc
            .manifest
            .export
            .kubernetes
            .as_ref()
            .and_then(|k| k.image.clone())
            .or_else(|| options.image.clone());
        let Some(image) = image else {
            missing.push(Note::at_field(doc, "/name", "no container image"));
            continue;
        };
        let mut child = Child {
            doc,
            options,
            index: &index,
            warnings: Vec::new(),
        };
        let objects = child.objects(&image, &mut out.secret_commands);
        out.warnings.append(&mut child.warnings);
        out.children.push(ChildObjects {
            name: doc.manifest.name.clone(),
            objects,
        });
    }
    if !missing.is_empty() {
        return Err(ExportError::NoImage(missing));
    }
    let problems = lint::lint(out.objects());
    if !problems.is_empty() {
        return Err(ExportError::Lint(problems));
    }
    out.warnings.sort();
    Ok(out)
}

/// One manifest being exported.
pub(crate) struct Child<'a> {
    pub(crate) doc: &'a ManifestDoc,
    pub(crate) options: &'a Options,
    pub(crate) index: &'a deps::Index<'a>,
    pub(crate) warnings: Vec<Note>,
}

impl Child<'_> {
    /// Records that the field at `pointer` is not carried over faithfully.
    pub(crate) fn warn(&mut self, pointer: &str, message: impl Into<String>) {
        self.warnings
            .push(Note::at_field(self.doc, pointer, message));
    }

    /// Whether the field at `pointer` is written in the manifest (not defaulted).
    pub(crate) fn written(&self, pointer: &str) -> bool {
        self.doc.spans.contains(pointer)
    }

    fn name(&self) -> &str {
        &self.doc.manifest.name
    }

    fn objects(&mut self, image: &str, secret_commands: &mut Vec<String>) -> Vec<Value> {
        let mut objects = Vec::new();
        let waits = deps::waits(self);
        if waits.iter().any(|wait| wait.needs_rbac()) {
            objects.extend(rbac::objects(self, &waits));
        }
        if let Some(service) = deps::service(self) {
            objects.push(service);
        }
        let env = env::container_env(self, secret_commands);
        objects.push(workload::workload(self, image, &waits, env));
        objects
    }

    /// `metadata` of an object of this child named `name`.
    pub(crate) fn metadata(&self, name: &str, extra: Map<String, Value>) -> Value {
        let mut metadata = Map::new();
        metadata.insert("name".into(), Value::from(name));
        metadata.insert(
            "namespace".into(),
            Value::from(self.options.namespace.as_str()),
        );
        metadata.insert("labels".into(), Value::Object(self.labels()));
        if !extra.is_empty() {
            metadata.insert("annotations".into(), Value::Object(extra));
        }
        Value::Object(metadata)
    }

    /// The labels that select this child's pods.
    pub(crate) fn selector(&self) -> Map<String, Value> {
        let mut labels = Map::new();
        labels.insert("app.kubernetes.io/name".into(), Value::from(self.name()));
        labels.insert(
            "app.kubernetes.io/instance".into(),
            Value::from(self.options.instance.as_str()),
        );
        labels
    }

    /// Every label of this child's objects: the manifest's valid labels, then the
    /// identifying ones (which win).
    pub(crate) fn labels(&self) -> Map<String, Value> {
        let mut labels = Map::new();
        for (key, value) in &self.doc.manifest.labels {
            if is_label_key(key) && is_label_value(value) {
                labels.insert(key.clone(), Value::from(value.as_str()));
            }
        }
        labels.extend(self.selector());
        labels.insert(
            "app.kubernetes.io/managed-by".into(),
            Value::from(MANAGED_BY),
        );
        labels
    }

    /// Warnings for labels that are not valid Kubernetes labels (left out of the objects).
    pub(crate) fn check_labels(&mut self) {
        let labels: BTreeMap<String, String> = self.doc.manifest.labels.clone();
        for (key, value) in labels {
            let pointer = format!("/labels/{}", crate::manifest::spans::escape_segment(&key));
            if !is_label_key(&key) {
                self.warn(&pointer, format!("label key `{key}` is not a valid Kubernetes label key (at most 63 letters, digits, `-`, `_`, `.` after an optional DNS prefix): left out"));
            } else if !is_label_value(&value) {
                self.warn(&pointer, format!("the value of label `{key}` is not a valid Kubernetes label value (at most 63 letters, digits, `-`, `_`, `.`, starting and ending with a letter or digit): left out"));
            } else if key.starts_with("app.kubernetes.io/") && self.selector().contains_key(&key) {
                self.warn(&pointer, format!("label `{key}` is set by the export itself: the manifest's value is replaced"));
            }
        }
    }

    /// Annotations of the pod template and workload: where it came from, its description.
    pub(crate) fn annotations(&self) -> Map<String, Value> {
        let mut annotations = Map::new();
        if let Some(description) = &self.doc.manifest.description {
            annotations.insert(
                format!("{ANNOTATION_PREFIX}description"),
                Value::from(description.as_str()),
            );
        }
        annotations
    }
}

/// A `{"key": value}` map from pairs, for building objects.
pub(crate) fn map<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
}

/// Seconds for a Kubernetes field that counts whole seconds and is at least `min`,
/// rounding up; and whether that changed the value.
pub(crate) fn whole_seconds(duration: std::time::Duration, min: u64) -> (u64, bool) {
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    let secs = secs.max(min);
    (secs, std::time::Duration::from_secs(secs) != duration)
}
