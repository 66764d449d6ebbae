//! Operator holds that outlast herder: a `stop` or `quarantine` is kept in `holds.json` in
//! the state directory until `start` or `release`, with since when and why, and restored
//! into the core before the first generation is applied, so a held child is not started
//! by a restart of herder. Bounded by the number of children.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::core::{Hold, Slot};

/// One hold as kept on disk and shown in status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldRecord {
    /// `true` for a quarantine, `false` for a stop.
    pub quarantined: bool,
    /// The `--reason` given, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the hold began, RFC 3339 UTC.
    pub since: String,
}

/// The holds in force, mirrored to a file.
#[derive(Debug, Default)]
pub struct HoldStore {
    path: Option<PathBuf>,
    records: BTreeMap<String, HoldRecord>,
}

impl HoldStore {
    /// The holds kept at `path` (none when it is missing or unreadable); `None` keeps
    /// them in memory only.
    pub fn open(path: Option<PathBuf>) -> Self {
        let records = path
            .as_ref()
            .and_then(|path| fs::read(path).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Self { path, records }
    }

    /// The holds to restore into the core.
    pub fn holds(&self) -> impl Iterator<Item = (String, Hold)> + '_ {
        self.records.iter().map(|(name, record)| {
            let hold = if record.quarantined {
                Hold::Quarantined {
                    reason: record.reason.clone(),
                }
            } else {
                Hold::Stopped
            };
            (name.clone(), hold)
        })
    }

    /// The record of `name`'s hold.
    pub fn get(&self, name: &str) -> Option<&HoldRecord> {
        self.records.get(name)
    }

    /// Brings the records in line with the slots' holds after commands: a new hold is
    /// recorded as of now with `reason`, an ended one is dropped; the file is rewritten
    /// when anything changed.
    pub fn sync(&mut self, slots: &BTreeMap<String, Slot>, reason: Option<&str>) -> io::Result<()> {
        let mut changed = false;
        self.records.retain(|name, record| {
            let kept = match slots.get(name).and_then(|slot| slot.hold.as_ref()) {
                Some(Hold::Quarantined { .. }) => record.quarantined,
                Some(Hold::Stopped) => !record.quarantined,
                None => false,
            };
            changed |= !kept;
            kept
        });
        for (name, slot) in slots {
            let Some(hold) = &slot.hold else { continue };
            if self.records.contains_key(name) {
                continue;
            }
            let (quarantined, reason) = match hold {
                Hold::Quarantined { reason } => (true, reason.clone()),
                Hold::Stopped => (false, reason.map(str::to_owned)),
            };
            self.records.insert(
                name.clone(),
                HoldRecord {
                    quarantined,
                    reason,
                    since: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                },
            );
            changed = true;
        }
        if changed {
            self.write()?;
        }
        Ok(())
    }

    fn write(&self) -> io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let temporary = path.with_extension("json.tmp");
        let mut file = fs::File::create(&temporary)?;
        file.write_all(&serde_json::to_vec_pretty(&self.records).map_err(io::Error::other)?)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    }
}
