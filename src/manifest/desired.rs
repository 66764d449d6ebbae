//! The desired set: every child the manifest directory asks for, after replica expansion.
//!
//! A `DesiredSet` is built whole by each rescan and replaces the previous generation at
//! once, so no reader ever sees a half-loaded directory.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::load::ManifestDoc;
use super::model::{Manifest, Secret};
use super::validate::base_dir;

/// One child to run: a manifest, expanded by replica.
#[derive(Clone, Debug, PartialEq)]
pub struct ChildSpec {
    /// The child's name: the manifest's `name`, or `<name>-<i>` for a replica.
    pub name: String,
    /// The replica index when the manifest has `replicas > 1`.
    pub replica: Option<u32>,
    /// The manifest the child was declared by.
    pub manifest: Arc<Manifest>,
    /// The file that declared it.
    pub source: PathBuf,
    /// The folder relative paths (`working_dir`, secret files) are resolved against.
    pub base_dir: PathBuf,
    /// A digest of each secret's current value, by secret name, so that a rotated secret
    /// is seen as a change. Digests only; values are read at spawn time and never kept here.
    pub secret_digests: BTreeMap<String, u64>,
}

impl ChildSpec {
    /// `self == other`, with shared values compared by pointer first: successive
    /// generations share the specs and manifests of unchanged files.
    pub fn same_as(&self, other: &ChildSpec) -> bool {
        std::ptr::eq(self, other)
            || (self.name == other.name
                && self.replica == other.replica
                && self.source == other.source
                && self.base_dir == other.base_dir
                && self.secret_digests == other.secret_digests
                && (Arc::ptr_eq(&self.manifest, &other.manifest)
                    || self.manifest == other.manifest))
    }

    /// The names of the children this one depends on, replicas expanded by the caller.
    pub fn dependency_names(&self) -> impl Iterator<Item = &str> {
        self.manifest
            .dependencies
            .iter()
            .map(|dep| dep.0.name.as_str())
    }
}

/// Every child the directory declares, by name, at one generation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DesiredSet {
    /// Increases by one with every applied rescan.
    pub generation: u64,
    /// The children, by name (sorted, so output is stable).
    pub children: BTreeMap<String, Arc<ChildSpec>>,
}

impl DesiredSet {
    /// The children a dependency on `name` stands for (see [`expand`]).
    pub fn expand<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        expand(&self.children, name)
    }

    /// Whether both sets hold the same children. Specs shared by both (successive
    /// generations share the specs of unchanged files) compare by pointer, so two sets of
    /// thousands of children compare in microseconds.
    pub fn same_children(&self, other: &DesiredSet) -> bool {
        self.children.len() == other.children.len()
            && self
                .children
                .iter()
                .zip(&other.children)
                .all(|((name_a, a), (name_b, b))| name_a == name_b && a.same_as(b))
    }
}

/// The children of `children` a dependency on `name` stands for: the child of that name,
/// and every replica of a replicated manifest of that name. A replica `<name>-<i>` sorts
/// right after `<name>-`, so this is a range lookup, not a walk over the whole set.
pub fn expand<'a, V: AsRef<ChildSpec>>(
    children: &'a BTreeMap<String, V>,
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    let direct = children
        .get_key_value(name)
        .map(|(child, _)| child.as_str());
    let prefix = format!("{name}-");
    let replicas = children
        .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
        .take_while(move |(child, _)| child.starts_with(&prefix))
        .filter(move |(_, spec)| {
            let spec = spec.as_ref();
            spec.replica.is_some() && spec.manifest.name == name
        })
        .map(|(child, _)| child.as_str());
    direct.into_iter().chain(replicas)
}

/// The child names a manifest declares: its name, or `<name>-0` … `<name>-(N-1)` for
/// `replicas: N > 1`.
pub fn replica_names(manifest: &Manifest) -> Vec<String> {
    if manifest.replicas > 1 {
        (0..manifest.replicas)
            .map(|i| format!("{}-{i}", manifest.name))
            .collect()
    } else {
        vec![manifest.name.clone()]
    }
}

/// Builds the desired set at `generation` from checked documents: replicas expanded,
/// `base_dir` set to each manifest's folder, and a digest of each secret's current value
/// (a secret that cannot be read has no digest). A name declared twice goes to the later
/// document.
pub fn desired_set(docs: &[ManifestDoc], generation: u64) -> DesiredSet {
    let mut children = BTreeMap::new();
    for spec in docs.iter().flat_map(child_specs) {
        children.insert(spec.name.clone(), spec);
    }
    DesiredSet {
        generation,
        children,
    }
}

/// The children one document declares, replicas expanded, in index order.
pub fn child_specs(doc: &ManifestDoc) -> Vec<Arc<ChildSpec>> {
    let base_dir = base_dir(&doc.file);
    let secret_digests: BTreeMap<String, u64> = doc
        .manifest
        .secrets
        .iter()
        .filter_map(|secret| Some((secret.name.clone(), secret_digest(secret, &base_dir)?)))
        .collect();
    let replicated = doc.manifest.replicas > 1;
    (0u32..)
        .zip(replica_names(&doc.manifest))
        .map(|(index, name)| {
            Arc::new(ChildSpec {
                name,
                replica: replicated.then_some(index),
                manifest: Arc::clone(&doc.manifest),
                source: doc.file.clone(),
                base_dir: base_dir.clone(),
                secret_digests: secret_digests.clone(),
            })
        })
        .collect()
}

/// A digest of a secret's current value; the value itself is dropped at once.
fn secret_digest(secret: &Secret, base_dir: &Path) -> Option<u64> {
    let value = match (&secret.file, &secret.env) {
        (Some(file), _) => std::fs::read(base_dir.join(file)).ok()?,
        (None, Some(var)) => std::env::var_os(var)?.into_encoded_bytes(),
        (None, None) => return None,
    };
    let mut hasher = std::hash::DefaultHasher::new();
    value.hash(&mut hasher);
    Some(hasher.finish())
}
