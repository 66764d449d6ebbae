//! Cross-file checks and blame: the merged set is checked, and an error the set in force
//! does not have was introduced by this scan's changes, so the changed files at fault go back
//! to their last good version, until no new error remains. A clean set that changes in a way
//! that cannot affect the rest is checked locally.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Proposal, Proposals, Scanner};
use crate::manifest::desired::replica_names;
use crate::manifest::diagnostic::Location;
use crate::manifest::{Code, Diagnostic, Manifest, ManifestDoc, check_set};

impl Scanner {
    /// Runs the cross-file checks, reverting the changed files at fault until the set has no
    /// error the documents in force did not have (as of the last full scan). Returns the
    /// final diagnostics (with those that caused a rejection) and the rejected files.
    ///
    /// Nothing proposed and no secret changed: the documents in force are checked already.
    pub(super) fn check(
        &mut self,
        proposals: &mut Proposals,
        secrets_changed: bool,
    ) -> (Vec<Diagnostic>, BTreeSet<PathBuf>) {
        let changes = |proposals: &Proposals| -> BTreeSet<PathBuf> {
            proposals
                .iter()
                .filter(|(_, proposal)| matches!(proposal, Proposal::New(_)))
                .map(|(path, _)| path.clone())
                .collect()
        };
        let nothing_new =
            !secrets_changed && self.published.is_some() && changes(proposals).is_empty();
        if nothing_new {
            return (self.baseline.clone(), BTreeSet::new());
        }
        if !secrets_changed
            && let Some(scope) = self.local_scope(proposals)
            && check_set(scope).is_empty()
        {
            return (Vec::new(), BTreeSet::new());
        }
        let mut diagnostics = check_set(self.candidate_docs(proposals));
        let mut rejected = BTreeSet::new();
        let mut reasons = Vec::new();
        loop {
            let changed = changes(proposals);
            // An unreadable secret of an unchanged file is that file's own problem, not one a
            // change introduced.
            let new: Vec<&Diagnostic> = diagnostics
                .iter()
                .filter(|d| d.is_error() && !self.baseline.contains(d))
                .filter(|d| d.code != Code::Secret || changed.contains(&d.file))
                .collect();
            let Some(first) = new.first().copied() else {
                break;
            };
            if changed.is_empty() {
                break;
            }
            let mut faulty: BTreeSet<PathBuf> = new
                .iter()
                .filter(|d| changed.contains(&d.file))
                .map(|d| d.file.clone())
                .collect();
            if faulty.is_empty() {
                faulty = self.culprits(&new, &changed, proposals);
                reasons.extend(faulty.iter().map(|path| blame(path, first)));
            }
            reasons.extend(new.into_iter().cloned());
            for path in &faulty {
                proposals.insert(path.clone(), Proposal::Keep);
            }
            rejected.extend(faulty);
            diagnostics = check_set(self.candidate_docs(proposals));
        }
        self.baseline.clone_from(&diagnostics);
        diagnostics.extend(reasons);
        (diagnostics, rejected)
    }

    /// The documents that decide the cross-file verdict of `proposals`, when a clean set
    /// changes in a way that cannot affect the rest of it: files that declare only names
    /// nobody declares yet, and edits that keep every document's names, replicas, kind,
    /// dependencies and secrets. Then no document outside the changed ones and their
    /// dependencies can gain an error (nothing outside depends on a new name, and no edge
    /// of the graph changed), so when these check clean the whole set does: a new manifest
    /// among thousands is checked against its few dependencies, not against all of them.
    /// `None` when the whole set must be checked.
    pub(super) fn local_scope<'a>(
        &'a self,
        proposals: &'a Proposals,
    ) -> Option<Vec<&'a ManifestDoc>> {
        if !self.baseline.is_empty() {
            return None;
        }
        let desired = &self.published.as_ref()?.desired;
        let mut scope: Vec<&ManifestDoc> = Vec::new();
        for (path, proposal) in proposals {
            let Proposal::New(docs) = proposal else {
                continue;
            };
            let old = self.in_force(path);
            let fresh = old.is_empty()
                && docs.iter().all(|doc| {
                    names(&doc.manifest)
                        .iter()
                        .all(|name| desired.expand(name).next().is_none())
                });
            let reshaped = old.len() != docs.len()
                || old
                    .iter()
                    .zip(docs)
                    .any(|(old, new)| !same_shape(&old.manifest, &new.manifest));
            if !fresh && reshaped {
                return None;
            }
            scope.extend(docs);
        }
        // The documents in force the scope depends on, transitively, in their candidate
        // version, so that every dependency resolves within the scope.
        let mut seen: HashSet<*const Manifest> =
            scope.iter().map(|doc| Arc::as_ptr(&doc.manifest)).collect();
        let mut pending: Vec<&ManifestDoc> = scope.clone();
        while let Some(doc) = pending.pop() {
            for dependency in &doc.manifest.dependencies {
                for child in desired.expand(&dependency.0.name) {
                    let Some(spec) = desired.children.get(child) else {
                        continue;
                    };
                    let docs = match proposals.get(&spec.source) {
                        Some(proposal) => self.candidate(&spec.source, proposal),
                        None => self.in_force(&spec.source),
                    };
                    for target in docs
                        .iter()
                        .filter(|d| d.manifest.name == spec.manifest.name)
                    {
                        if seen.insert(Arc::as_ptr(&target.manifest)) {
                            scope.push(target);
                            pending.push(target);
                        }
                    }
                }
            }
        }
        Some(scope)
    }

    /// Every document the set would hold with `proposals` applied, in file order.
    pub(super) fn candidate_docs<'a>(
        &'a self,
        proposals: &'a Proposals,
    ) -> impl Iterator<Item = &'a ManifestDoc> + 'a {
        let mut proposed = proposals.iter().peekable();
        // Both maps are sorted the same way, and every proposal is for a known file.
        self.files.iter().flat_map(move |(path, entry)| {
            match proposed.next_if(|(proposed, _)| proposed.as_os_str() == path.as_os_str()) {
                Some((_, proposal)) => self.candidate(path, proposal),
                None => entry.in_force(),
            }
        })
    }

    /// The changed files behind errors that point at unchanged files: those that declare, or
    /// used to declare, a name the erring files declare or depend on. All changed files if
    /// none matches.
    pub(super) fn culprits(
        &self,
        errors: &[&Diagnostic],
        changed: &BTreeSet<PathBuf>,
        proposals: &Proposals,
    ) -> BTreeSet<PathBuf> {
        let mut involved = BTreeSet::new();
        for error in errors {
            let docs = match proposals.get(&error.file) {
                Some(proposal) => self.candidate(&error.file, proposal),
                None => self.in_force(&error.file),
            };
            for doc in docs {
                involved.extend(names(&doc.manifest));
                involved.extend(doc.manifest.dependencies.iter().map(|d| d.0.name.clone()));
            }
        }
        let culprits: BTreeSet<PathBuf> = changed
            .iter()
            .filter(|path| {
                let before = self.in_force(path).iter();
                let after = proposals
                    .get(*path)
                    .map(|proposal| self.candidate(path, proposal))
                    .unwrap_or_default()
                    .iter();
                before
                    .chain(after)
                    .any(|doc| names(&doc.manifest).iter().any(|n| involved.contains(n)))
            })
            .cloned()
            .collect();
        if culprits.is_empty() {
            changed.clone()
        } else {
            culprits
        }
    }
}

/// Whether two manifests look the same to the cross-file checks.
pub(super) fn same_shape(a: &Manifest, b: &Manifest) -> bool {
    a.name == b.name
        && a.replicas == b.replicas
        && a.kind == b.kind
        && a.dependencies == b.dependencies
        && a.secrets == b.secrets
}

/// The child names and the base name a manifest declares.
pub(super) fn names(manifest: &Manifest) -> Vec<String> {
    let mut names = replica_names(manifest);
    if manifest.replicas > 1 {
        names.push(manifest.name.clone());
    }
    names
}

/// The diagnostic put on a changed file whose change was undone because it broke another
/// (unchanged) file.
pub(super) fn blame(path: &Path, error: &Diagnostic) -> Diagnostic {
    Diagnostic::error(
        error.code,
        path,
        0,
        Location::START,
        "",
        format!(
            "change not applied: it would break {}:{}:{}: {}",
            error.file.display(),
            error.line,
            error.column,
            error.message
        ),
    )
    .with_hint(
        "its last good version stays in force; fix the other file first, or change both together",
    )
}
