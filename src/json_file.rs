//! Small JSON files in the state directory (`schedule.json`, `holds.json`): read whole,
//! written whole and atomically (a synced temporary file renamed over the old one), so a
//! crash leaves the old content or the new, never half of it.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The content of `path`; the default when there is no path, or the file is missing or
/// unreadable (the caller then starts afresh).
pub fn load<T: DeserializeOwned + Default>(path: Option<&Path>) -> T {
    path.and_then(|path| fs::read(path).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Writes `value` to `path` atomically.
pub fn save<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let temporary = path.with_extension("json.tmp");
    let mut file = fs::File::create(&temporary)?;
    file.write_all(&serde_json::to_vec_pretty(value).map_err(io::Error::other)?)?;
    file.sync_all()?;
    fs::rename(&temporary, path)
}
