//! Which slot each schedule claimed last, kept in `schedule.json` in the state directory.
//!
//! A slot is claimed (written and synced) before its run is asked for, so a slot runs at
//! most once even when herder is killed right after, reloaded, or restarted: a claimed
//! slot never fires again. Bounded by the number of scheduled children: entries of
//! children no longer scheduled are dropped at the next write.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;

use super::slots::Slot;

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
        let last = path
            .as_ref()
            .and_then(|path| fs::read(path).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
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
        let Some(path) = &self.path else {
            return Ok(());
        };
        let temporary = path.with_extension("json.tmp");
        let mut file = fs::File::create(&temporary)?;
        file.write_all(&serde_json::to_vec(&self.last).map_err(io::Error::other)?)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
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
