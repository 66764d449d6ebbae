//! The desired set: every child the manifest directory asks for, after replica expansion.
//!
//! A `DesiredSet` is built whole by each rescan and replaces the previous generation at
//! once, so no reader ever sees a half-loaded directory.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::model::Manifest;

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
        self.manifest.dependencies.iter().map(|dep| dep.0.name.as_str())
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
