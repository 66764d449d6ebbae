//! Signals a manifest may name (`stop.signal`, `command_permissions.signals`).

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A POSIX signal, by name.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "UPPERCASE")]
#[allow(missing_docs)]
pub enum Signal {
    Sighup,
    Sigint,
    Sigquit,
    Sigkill,
    Sigusr1,
    Sigusr2,
    Sigterm,
    Sigalrm,
    Sigcont,
    Sigstop,
    Sigtstp,
    Sigwinch,
    Sigpwr,
}

impl Signal {
    /// Every signal a manifest may name.
    pub const ALL: [Signal; 13] = [
        Self::Sighup,
        Self::Sigint,
        Self::Sigquit,
        Self::Sigkill,
        Self::Sigusr1,
        Self::Sigusr2,
        Self::Sigterm,
        Self::Sigalrm,
        Self::Sigcont,
        Self::Sigstop,
        Self::Sigtstp,
        Self::Sigwinch,
        Self::Sigpwr,
    ];

    /// The signal number.
    pub fn number(self) -> i32 {
        match self {
            Self::Sighup => libc::SIGHUP,
            Self::Sigint => libc::SIGINT,
            Self::Sigquit => libc::SIGQUIT,
            Self::Sigkill => libc::SIGKILL,
            Self::Sigusr1 => libc::SIGUSR1,
            Self::Sigusr2 => libc::SIGUSR2,
            Self::Sigterm => libc::SIGTERM,
            Self::Sigalrm => libc::SIGALRM,
            Self::Sigcont => libc::SIGCONT,
            Self::Sigstop => libc::SIGSTOP,
            Self::Sigtstp => libc::SIGTSTP,
            Self::Sigwinch => libc::SIGWINCH,
            Self::Sigpwr => libc::SIGPWR,
        }
    }

    /// The canonical name, e.g. `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sighup => "SIGHUP",
            Self::Sigint => "SIGINT",
            Self::Sigquit => "SIGQUIT",
            Self::Sigkill => "SIGKILL",
            Self::Sigusr1 => "SIGUSR1",
            Self::Sigusr2 => "SIGUSR2",
            Self::Sigterm => "SIGTERM",
            Self::Sigalrm => "SIGALRM",
            Self::Sigcont => "SIGCONT",
            Self::Sigstop => "SIGSTOP",
            Self::Sigtstp => "SIGTSTP",
            Self::Sigwinch => "SIGWINCH",
            Self::Sigpwr => "SIGPWR",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Signal {
    type Err = String;

    /// Accepts `SIGTERM`, `TERM` or `term`.
    fn from_str(text: &str) -> Result<Self, String> {
        let upper = text.to_ascii_uppercase();
        let full = if upper.starts_with("SIG") {
            upper
        } else {
            format!("SIG{upper}")
        };
        Self::ALL
            .into_iter()
            .find(|signal| signal.name() == full)
            .ok_or_else(|| format!("unknown signal `{text}`"))
    }
}
