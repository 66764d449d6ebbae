//! Which slot each schedule claimed last, kept in `schedule.json` in the state directory.
//!
//! A slot is claimed (written and synced) before its run is asked for, so a slot runs at
//! most once even when herder is killed right after, reloaded, or restarted: a claimed
//! slot never fires again. Bounded by the number of scheduled children: entries of
//! children no longer scheduled are dropped at the next write.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use super::slots::Slot;
use crate::json_file;

/// The last claimed slot of every schedule, and where they are kept.
#[derive(Debug)]
pub struct Claims {
    path: Option<PathBuf>,
    last: BTreeMap<String, Slot>,
}

impl Claims {
    /// The claims kept at `path` (none when it does not exist or cannot be read: every
    /// schedule then starts afresh); `None` keeps them in memory only.
    pub fn open(path: Option<PathBuf>) -> Self {
        let last = json_file::load(path.as_deref());
        Self { path, last }
    }

    /// The last slot `child` claimed.
    pub fn last(&self, child: &str) -> Option<Slot> {
        self.last.get(child).copied()
    }

    /// Records `slot` as claimed by `child`, keeping only the children in `keep`, and
    /// writes the file (to a temporary file, synced, then renamed over the old one).
    pub fn claim<'a>(
        &mut self,
        child: &str,
        slot: Slot,
        keep: impl IntoIterator<Item = &'a str>,
    ) -> io::Result<()> {
        let keep: Vec<&str> = keep.into_iter().collect();
        self.last.retain(|name, _| keep.contains(&name.as_str()));
        self.last.insert(child.to_owned(), slot);
        match &self.path {
            Some(path) => json_file::save(path, &self.last),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_survive_a_reopen_and_drop_old_children() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("schedule.json");
        let mut claims = Claims::open(Some(path.clone()));
        assert_eq!(claims.last("a"), None);
        claims
            .claim("a", 10, ["a", "b"])
            .unwrap_or_else(|e| panic!("{e}"));
        claims
            .claim("b", 20, ["a", "b"])
            .unwrap_or_else(|e| panic!("{e}"));
        claims
            .claim("b", 30, ["b"])
            .unwrap_or_else(|e| panic!("{e}"));
        let again = Claims::open(Some(path));
        assert_eq!((again.last("a"), again.last("b")), (None, Some(30)));
    }
}
