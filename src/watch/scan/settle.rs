//! The removal settle rule: a half-written save never retires a child. A child whose file
//! is gone, empty, or no longer declares it (and no other file does) stays in force, with its
//! last good manifest, until the loss has held for the settle time, confirmed by a later scan.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

use tokio::time::Instant;

use super::cache::same_docs;
use super::{Proposal, Proposals, Scanner};
use crate::manifest::ManifestDoc;
use crate::manifest::desired::replica_names;

impl Scanner {
    /// Keeps the children a file's new content drops (and no other file declares) in force
    /// next to that new content, until the loss has held for the settle time: additions and
    /// changes apply at once, removals wait. A dropped manifest that shares its name with the
    /// new content (replicas scaled down) holds the whole file back instead. Returns the
    /// files on hold.
    pub(super) fn hold_removals(
        &mut self,
        proposals: &mut Proposals,
        now: Instant,
        may_confirm: bool,
    ) -> BTreeSet<PathBuf> {
        // A name stays declared if a proposal declares it, or if more documents in force
        // declare it than the proposals' files do (another file keeps it).
        let mut proposed_names = HashSet::new();
        let mut shadowed: HashMap<String, usize> = HashMap::new();
        for (path, proposal) in proposals.iter() {
            for doc in self.candidate(path, proposal) {
                proposed_names.extend(replica_names(&doc.manifest));
            }
            for doc in self.in_force(path) {
                for name in replica_names(&doc.manifest) {
                    *shadowed.entry(name).or_default() += 1;
                }
            }
        }
        let still_declared = |name: &String| {
            proposed_names.contains(name)
                || self.declared.get(name).copied().unwrap_or_default()
                    > shadowed.get(name).copied().unwrap_or_default()
        };
        let mut holding = BTreeSet::new();
        for (path, proposal) in proposals.iter_mut() {
            let Proposal::New(new_docs) = proposal else {
                self.pending.remove(path);
                continue;
            };
            let in_force = self.in_force(path).to_vec();
            let dropped: Vec<&ManifestDoc> = in_force
                .iter()
                .filter(|doc| {
                    replica_names(&doc.manifest)
                        .iter()
                        .any(|name| !still_declared(name))
                })
                .collect();
            if dropped.is_empty() {
                self.pending.remove(path);
                continue;
            }
            let since = *self.pending.entry(path.clone()).or_insert(now);
            if may_confirm && now.saturating_duration_since(since) >= self.settle {
                continue;
            }
            holding.insert(path.clone());
            let rescaled = dropped.iter().any(|old| {
                new_docs
                    .iter()
                    .any(|new| new.manifest.name == old.manifest.name)
            });
            let mut merged = new_docs.clone();
            merged.extend(dropped.into_iter().cloned());
            *proposal = if rescaled || same_docs(&merged, &in_force) {
                Proposal::Keep
            } else {
                Proposal::New(merged)
            };
        }
        holding
    }
}
