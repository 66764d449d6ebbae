//! Secrets tracking: the secret files the documents in force read, so that a rotated
//! secret (a changed digest in a child's spec) is noticed without any manifest changing.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use super::Scanner;
use super::fingerprint::Fingerprint;
use crate::manifest::validate::base_dir;
use crate::manifest::{ManifestDoc, child_specs};

impl Scanner {
    /// Digests the secrets of the documents in force again: a secret file changed.
    pub(super) fn rebuild_secret_specs(&mut self) {
        for path in &self.with_secrets {
            if let Some(entry) = self.files.get_mut(path) {
                entry.specs = entry.in_force().iter().flat_map(child_specs).collect();
            }
        }
    }

    /// Remembers the secret files the documents in force read (and their folders), so that
    /// an unchanged scan can still notice a rotated secret.
    pub(super) fn remember_secrets(&mut self) {
        let docs = self
            .with_secrets
            .iter()
            .flat_map(|path| self.in_force(path));
        let files = secret_files(docs);
        // The folders are resolved: `herder.d/../secrets` is outside the manifest directory,
        // though it starts with it, and inotify reports events under the real path.
        self.secret_dirs = files
            .iter()
            .filter_map(|path| path.parent())
            .map(|dir| fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()))
            .collect();
        self.secret_files = files
            .into_iter()
            .map(|path| {
                // A fingerprint too young to vouch for the value is not kept: the next scan
                // sees a difference and digests the secret again.
                let fingerprint = Fingerprint::of(&path).filter(Fingerprint::settled);
                (path, fingerprint)
            })
            .collect();
    }
}

/// The secret files the documents reference, resolved against their manifests' folders.
pub(super) fn secret_files<'a>(docs: impl Iterator<Item = &'a ManifestDoc>) -> BTreeSet<PathBuf> {
    let mut files = BTreeSet::new();
    for doc in docs.filter(|doc| !doc.manifest.secrets.is_empty()) {
        let base = base_dir(&doc.file);
        for secret in &doc.manifest.secrets {
            if let Some(file) = &secret.file {
                files.insert(base.join(file));
            }
        }
    }
    files
}
