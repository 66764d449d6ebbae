//! Where an instance keeps its socket and its state (DESIGN §6).
//!
//! Every manifest directory is one instance, named after the directory's canonical path
//! (its last component plus a short hash of the path's bytes), so several instances run side
//! by side and a restarted instance finds its own state file again.
//!
//! * sockets: `$XDG_RUNTIME_DIR/herder/<instance>.sock`, else `/tmp/herder-$UID/<instance>.sock`;
//! * state (logs, events, state file): `$XDG_STATE_HOME/herder/<instance>/`, else
//!   `~/.local/state/herder/<instance>/`.

use std::hash::{Hash, Hasher};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// FNV-1a, 64 bits: a fixed function of the bytes fed to it, the same for every build.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The instance name of a manifest directory: `<last component>-<8 hex digits>`, the digits
/// a hash of the path's bytes (stable across builds and Rust releases).
pub fn instance_name(canonical_dir: &Path) -> String {
    let mut hasher = Fnv::new();
    hasher.write(canonical_dir.as_os_str().as_bytes());
    named(canonical_dir, hasher.finish())
}

/// The instance name herder 0.1 derived, by feeding the path to FNV through `Path`'s `Hash`
/// implementation, whose byte stream Rust does not promise to keep: looked at only to find
/// what a killed herder of that version left running (one release; remove after 0.2).
pub fn legacy_instance_name(canonical_dir: &Path) -> String {
    let mut hasher = Fnv::new();
    canonical_dir.hash(&mut hasher);
    named(canonical_dir, hasher.finish())
}

fn named(dir: &Path, hash: u64) -> String {
    let base: String = dir
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    format!(
        "{}-{:08x}",
        if base.is_empty() { "root" } else { &base },
        hash as u32
    )
}

/// The directory that holds the control sockets (created 0700 by the server).
pub fn runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("herder"),
        None => PathBuf::from(format!("/tmp/herder-{}", nix::unistd::geteuid())),
    }
}

/// The default socket of an instance.
pub fn socket_path(instance: &str) -> PathBuf {
    runtime_dir().join(format!("{instance}.sock"))
}

/// The default state directory of an instance.
pub fn state_dir(instance: &str) -> PathBuf {
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home =
                std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
            home.join(".local/state")
        }
    };
    base.join("herder").join(instance)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_are_stable_and_distinct() {
        let a = instance_name(Path::new("/srv/app/herder.d"));
        assert_eq!(a, instance_name(Path::new("/srv/app/herder.d")));
        assert!(a.starts_with("herder_d-"), "{a}");
        assert_ne!(a, instance_name(Path::new("/srv/other/herder.d")));
        assert!(instance_name(Path::new("/")).starts_with("root-"));
    }

    /// Issue 15, defect 1: the name is a function of the path's bytes alone, so every build
    /// of herder finds the same socket and state directory.
    #[test]
    fn instance_names_do_not_depend_on_the_compiler() {
        assert_eq!(
            instance_name(Path::new("/srv/app/herder.d")),
            "herder_d-ce8560f8"
        );
        let legacy = legacy_instance_name(Path::new("/srv/app/herder.d"));
        assert!(legacy.starts_with("herder_d-"), "{legacy}");
    }
}
