//! The console's access token and the sessions it opens.
//!
//! A random token is made at start, written 0600 next to the control socket (in the 0700
//! runtime directory) and printed once as a URL. Opening that URL trades the token for a
//! session: an `HttpOnly`, `SameSite=Strict` cookie (EventSource cannot send headers, so
//! the streams need a cookie) and a CSRF value the page sends back on every POST. Sessions
//! are bounded ([`MAX_SESSIONS`]; the oldest is forgotten first) and live as long as
//! herder. Every comparison is in constant time.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use subtle::ConstantTimeEq;

/// Sessions kept at most.
pub const MAX_SESSIONS: usize = 64;

/// The name of the session cookie.
pub const COOKIE: &str = "herder_session";

/// 32 random bytes from the kernel, in hex.
pub fn random_hex() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes `token` to `path`, readable by herder's user only (replacing an older file).
pub fn write_token_file(path: &Path, token: &str) -> io::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(token.as_bytes())?;
    file.write_all(b"\n")
}

/// Whether two secrets are equal, in constant time.
pub fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// One session: its cookie value and its CSRF value.
#[derive(Clone, Debug)]
struct Session {
    id: String,
    csrf: String,
}

/// The token and the sessions opened with it.
#[derive(Debug)]
pub struct Access {
    token: String,
    sessions: Mutex<VecDeque<Session>>,
}

impl Access {
    /// Access guarded by `token`.
    pub fn new(token: String) -> Self {
        Self {
            token,
            sessions: Mutex::new(VecDeque::new()),
        }
    }

    /// Whether `given` is the token.
    pub fn token_matches(&self, given: &str) -> bool {
        same(given, &self.token)
    }

    /// Opens a session; returns its cookie value.
    pub fn open(&self) -> io::Result<String> {
        let session = Session {
            id: random_hex()?,
            csrf: random_hex()?,
        };
        let id = session.id.clone();
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if sessions.len() == MAX_SESSIONS {
            sessions.pop_front();
        }
        sessions.push_back(session);
        Ok(id)
    }

    /// The CSRF value of the session with cookie value `id`, if it is open.
    pub fn csrf(&self, id: &str) -> Option<String> {
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        // Every session is compared, so the time does not tell which one matched.
        let mut found = None;
        for session in sessions.iter() {
            if same(&session.id, id) {
                found = Some(session.csrf.clone());
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn sessions_are_bounded_and_the_token_file_is_private() {
        let access = Access::new(random_hex().unwrap());
        assert!(!access.token_matches("nope"));
        let first = access.open().unwrap();
        assert_eq!(first.len(), 64);
        assert!(access.csrf(&first).is_some());
        assert!(access.csrf("forged").is_none());
        for _ in 0..MAX_SESSIONS {
            access.open().unwrap();
        }
        assert!(
            access.csrf(&first).is_none(),
            "the oldest session was forgotten"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.web-token");
        write_token_file(&path, "t0k").unwrap();
        write_token_file(&path, "t0k2").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "t0k2\n");
    }
}
