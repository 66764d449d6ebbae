//! The control socket's file: binding it safely, and finding running instances.
//!
//! Binding follows the usual Unix-socket hygiene:
//!
//! * the socket's directory is created with mode 0700; the default runtime directory must
//!   belong to herder's user (a `/tmp/herder-$UID` planted by someone else is refused);
//! * an existing socket file is probed: a refused connection means a stale file from a
//!   crashed instance, which is removed; an accepted one means another instance serves it,
//!   and binding is refused;
//! * the socket is bound under a temporary name inside a fresh private (0700) directory,
//!   chmod-ed to 0600 and only then hard-linked under its name, which never replaces an
//!   existing file: nobody can connect before its mode is final, and of two instances
//!   starting at once only one wins. (A umask would do the first half, but it is
//!   process-wide and other threads create files concurrently.)
//! * the file is removed when the server stops, if it is still the one bound.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};

use super::error::ApiError;
use crate::paths;

/// Longest socket path the kernel accepts (`sun_path` is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// A bound control socket, ready for [`serve`](super::serve). Dropping it removes the
/// socket file.
#[derive(Debug)]
pub struct Listener {
    pub(super) inner: UnixListener,
    pub(super) file: SocketFile,
}

impl Listener {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.file.path
    }
}

/// The socket file, removed on drop if it is still the one this process bound (same inode).
#[derive(Debug)]
pub(super) struct SocketFile {
    pub(super) path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|meta| meta.dev() == self.dev && meta.ino() == self.ino);
        if ours && let Err(error) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), %error, "cannot remove the control socket");
        }
    }
}

/// Binds the control socket at `socket`: creates its directory (0700), removes a stale
/// socket file, refuses when another instance serves it, and makes the socket 0600 before
/// it appears under its name.
pub async fn bind(socket: &Path) -> Result<Listener, ApiError> {
    if socket.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(ApiError::PathTooLong {
            path: socket.to_path_buf(),
        });
    }
    let dir = match socket.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    prepare_dir(&dir, dir == paths::runtime_dir())?;
    remove_if_stale(socket).await?;
    let bind_error = |source| ApiError::Bind {
        path: socket.to_path_buf(),
        source,
    };
    // A private directory next to the final name: the same filesystem, so it can be linked.
    let staging = dir.join(format!(".herder-bind-{}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .map_err(bind_error)?;
    let staged = staging.join("sock");
    let bound = stage(&staged, socket);
    // The staging directory is empty again whether or not staging worked.
    let _ = std::fs::remove_file(&staged);
    let _ = std::fs::remove_dir(&staging);
    let inner = bound?;
    let meta = std::fs::symlink_metadata(socket).map_err(bind_error)?;
    Ok(Listener {
        inner,
        file: SocketFile {
            path: socket.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
        },
    })
}

/// Binds at `staged`, sets mode 0600 and links it as `socket` without replacing a file.
fn stage(staged: &Path, socket: &Path) -> Result<UnixListener, ApiError> {
    let bind_error = |source| ApiError::Bind {
        path: socket.to_path_buf(),
        source,
    };
    let listener = UnixListener::bind(staged).map_err(bind_error)?;
    std::fs::set_permissions(staged, std::fs::Permissions::from_mode(0o600)).map_err(bind_error)?;
    // A hard link never replaces an existing name, unlike rename(2).
    match std::fs::hard_link(staged, socket) {
        Ok(()) => Ok(listener),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Err(ApiError::InUse {
            path: socket.to_path_buf(),
        }),
        Err(error) => Err(bind_error(error)),
    }
}

/// Creates `dir` with mode 0700 if missing; a `private` directory (the default runtime
/// directory) must also belong to this user and is made 0700.
fn prepare_dir(dir: &Path, private: bool) -> Result<(), ApiError> {
    let dir_error = |source| ApiError::SocketDir {
        path: dir.to_path_buf(),
        source,
    };
    let created = match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => true,
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => false,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .recursive(true)
                .create(dir)
                .map_err(dir_error)?;
            true
        }
        Err(error) => return Err(dir_error(error)),
    };
    if !(private || created) {
        return Ok(());
    }
    let meta = std::fs::metadata(dir).map_err(dir_error)?;
    if !meta.is_dir() {
        return Err(dir_error(io::Error::new(
            io::ErrorKind::NotADirectory,
            "not a directory",
        )));
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(ApiError::ForeignSocketDir {
            path: dir.to_path_buf(),
            owner: meta.uid(),
            euid,
        });
    }
    if meta.mode() & 0o777 != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(dir_error)?;
    }
    Ok(())
}

/// Removes `socket` if it is a socket nobody accepts on; refuses if someone does.
async fn remove_if_stale(socket: &Path) -> Result<(), ApiError> {
    match std::fs::symlink_metadata(socket) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ApiError::Bind {
                path: socket.to_path_buf(),
                source,
            });
        }
        Ok(_) => {}
    }
    match UnixStream::connect(socket).await {
        Ok(_) => Err(ApiError::InUse {
            path: socket.to_path_buf(),
        }),
        Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %socket.display(), "removing a stale control socket");
            std::fs::remove_file(socket).map_err(|source| ApiError::Bind {
                path: socket.to_path_buf(),
                source,
            })
        }
        // Not a socket, or not ours to judge: leave it and say why binding cannot proceed.
        Err(source) => Err(ApiError::Bind {
            path: socket.to_path_buf(),
            source,
        }),
    }
}

/// Why no single running instance could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// No socket in the runtime directory accepts connections.
    #[error("no running herder instance (start one with `herder up DIR`)")]
    NoInstance,
    /// Several do.
    #[error("{} herder instances are running; choose one with --socket:{}", sockets.len(), list(sockets))]
    Several {
        /// Their sockets.
        sockets: Vec<PathBuf>,
    },
}

fn list(sockets: &[PathBuf]) -> String {
    sockets
        .iter()
        .map(|socket| format!("\n  {}", socket.display()))
        .collect()
}

/// Whether something accepts connections on `socket`.
pub async fn is_live(socket: &Path) -> bool {
    UnixStream::connect(socket).await.is_ok()
}

/// The socket of the one running instance among the `*.sock` files of `runtime_dir`.
pub async fn discover(runtime_dir: &Path) -> Result<PathBuf, DiscoverError> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(runtime_dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "sock"))
                .collect()
        })
        .unwrap_or_default();
    candidates.sort();
    let mut live = Vec::new();
    for candidate in candidates {
        if is_live(&candidate).await {
            live.push(candidate);
        }
    }
    match live.len() {
        0 => Err(DiscoverError::NoInstance),
        1 => Ok(live.remove(0)),
        _ => Err(DiscoverError::Several { sockets: live }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bind_secures_replaces_stale_and_refuses_live() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        let socket = dir.join("a.sock");

        let listener = bind(&socket).await.unwrap();
        let dir_mode = std::fs::metadata(&dir).unwrap().mode() & 0o777;
        let sock_mode = std::fs::symlink_metadata(&socket).unwrap().mode() & 0o777;
        assert_eq!((dir_mode, sock_mode), (0o700, 0o600));
        assert!(matches!(bind(&socket).await, Err(ApiError::InUse { .. })));
        assert_eq!(discover(&dir).await.unwrap(), socket);
        // No staging directory is left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);

        // A socket file nobody listens on is stale: leak the file, drop the listener.
        let SocketFile { path, .. } = &listener.file;
        let path = path.clone();
        std::mem::forget(listener.file);
        drop(listener.inner);
        assert!(path.exists());
        assert!(matches!(
            discover(&dir).await,
            Err(DiscoverError::NoInstance)
        ));
        let again = bind(&socket).await.unwrap();
        assert!(is_live(&socket).await);
        drop(again);
        assert!(!socket.exists(), "dropping the listener removes the socket");
    }

    #[tokio::test]
    async fn overlong_paths_and_several_instances() {
        let long = PathBuf::from(format!("/tmp/{}.sock", "x".repeat(120)));
        assert!(matches!(
            bind(&long).await,
            Err(ApiError::PathTooLong { .. })
        ));

        let tmp = tempfile::tempdir().unwrap();
        let a = bind(&tmp.path().join("a.sock")).await.unwrap();
        let b = bind(&tmp.path().join("b.sock")).await.unwrap();
        let error = discover(tmp.path()).await.unwrap_err();
        assert!(matches!(&error, DiscoverError::Several { sockets } if sockets.len() == 2));
        assert!(error.to_string().contains("--socket"), "{error}");
        drop((a, b));
    }
}
