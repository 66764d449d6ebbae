//! The desired set: every child the manifest directory asks for, after replica expansion.
//!
//! A `DesiredSet` is built whole by each rescan and replaces the previous generation at
//! once, so no reader ever sees a half-loaded directory.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
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
/// (a secret that cannot be read has no digest).
pub fn desired_set(docs: &[ManifestDoc], generation: u64) -> DesiredSet {
    let mut children = BTreeMap::new();
    for doc in docs {
        let base_dir = base_dir(&doc.file);
        let secret_digests: BTreeMap<String, u64> = doc
            .manifest
            .secrets
            .iter()
            .filter_map(|secret| Some((secret.name.clone(), secret_digest(secret, &base_dir)?)))
            .collect();
        let replicated = doc.manifest.replicas > 1;
        for (index, name) in (0u32..).zip(replica_names(&doc.manifest)) {
            children.insert(
                name.clone(),
                Arc::new(ChildSpec {
                    name,
                    replica: replicated.then_some(index),
                    manifest: Arc::clone(&doc.manifest),
                    source: doc.file.clone(),
                    base_dir: base_dir.clone(),
                    secret_digests: secret_digests.clone(),
                }),
            );
        }
    }
    DesiredSet {
        generation,
        children,
    }
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
