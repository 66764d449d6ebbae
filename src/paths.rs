//! Where an instance keeps its socket and its state (DESIGN §6).
//!
//! Every manifest directory is one instance, named after the directory's canonical path
//! (its last component plus a short hash of the whole path), so several instances run side
//! by side and a restarted instance finds its own state file again.
//!
//! * sockets: `$XDG_RUNTIME_DIR/herder/<instance>.sock`, else `/tmp/herder-$UID/<instance>.sock`;
//! * state (logs, events, state file): `$XDG_STATE_HOME/herder/<instance>/`, else
//!   `~/.local/state/herder/<instance>/`.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

/// The instance name of a manifest directory: `<last component>-<8 hex digits>`.
pub fn instance_name(canonical_dir: &Path) -> String {
    // FNV-1a: stable across runs and Rust versions, unlike `DefaultHasher`'s contract.
    struct Fnv(u64);
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
    let mut hasher = Fnv(0xcbf2_9ce4_8422_2325);
    canonical_dir.hash(&mut hasher);
    let base: String = canonical_dir
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
        hasher.finish() as u32
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
}
