//! Operator commands: a child and a verb. The verb's name ([`VerbName`]) is what the CLI,
//! the API route and the audit log spell; the [`Verb`] carries what that verb needs (the
//! signal, the quarantine's reason).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::manifest::model::Signal;

/// An operator command on one child.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// The child it is about.
    pub child: String,
    /// What to do.
    pub verb: Verb,
}

/// What an operator command does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verb {
    /// Restart its process now.
    Restart,
    /// Stop it and keep it stopped until `start`.
    Stop,
    /// Undo a stop, or start a failed child afresh.
    Start,
    /// SIGSTOP its process group.
    Pause,
    /// SIGCONT its process group.
    Resume,
    /// Stop it and hold it out of reconciliation until `release`, with the reason it keeps.
    Quarantine(Option<String>),
    /// End a quarantine.
    Release,
    /// Send a signal to its process group.
    Signal(Signal),
    /// Start a oneshot now (its schedule, if any, carries on).
    Run,
}

impl Verb {
    /// The command of this verb on `child`.
    pub fn on(&self, child: impl Into<String>) -> Command {
        Command {
            child: child.into(),
            verb: self.clone(),
        }
    }

    /// Its name, as the CLI and the API spell it.
    pub fn name(&self) -> VerbName {
        match self {
            Self::Restart => VerbName::Restart,
            Self::Stop => VerbName::Stop,
            Self::Start => VerbName::Start,
            Self::Pause => VerbName::Pause,
            Self::Resume => VerbName::Resume,
            Self::Quarantine(_) => VerbName::Quarantine,
            Self::Release => VerbName::Release,
            Self::Signal(_) => VerbName::Signal,
            Self::Run => VerbName::Run,
        }
    }
}

/// The name of a verb: the `{verb}` of `POST /v1/children/{name}/{verb}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerbName {
    /// [`Verb::Restart`].
    Restart,
    /// [`Verb::Stop`].
    Stop,
    /// [`Verb::Start`].
    Start,
    /// [`Verb::Pause`].
    Pause,
    /// [`Verb::Resume`].
    Resume,
    /// [`Verb::Quarantine`].
    Quarantine,
    /// [`Verb::Release`].
    Release,
    /// [`Verb::Signal`].
    Signal,
    /// [`Verb::Run`].
    Run,
}

impl VerbName {
    /// Every verb.
    pub const ALL: [VerbName; 9] = [
        Self::Restart,
        Self::Stop,
        Self::Start,
        Self::Pause,
        Self::Resume,
        Self::Quarantine,
        Self::Release,
        Self::Signal,
        Self::Run,
    ];

    /// The spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Restart => "restart",
            Self::Stop => "stop",
            Self::Start => "start",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Quarantine => "quarantine",
            Self::Release => "release",
            Self::Signal => "signal",
            Self::Run => "run",
        }
    }

    /// The verb of this name, for the verbs that need nothing more; `None` for `signal`
    /// (which needs a signal). `reason` becomes a quarantine's reason.
    pub fn verb(self, reason: Option<String>) -> Option<Verb> {
        Some(match self {
            Self::Restart => Verb::Restart,
            Self::Stop => Verb::Stop,
            Self::Start => Verb::Start,
            Self::Pause => Verb::Pause,
            Self::Resume => Verb::Resume,
            Self::Quarantine => Verb::Quarantine(reason),
            Self::Release => Verb::Release,
            Self::Run => Verb::Run,
            Self::Signal => return None,
        })
    }
}

impl fmt::Display for VerbName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VerbName {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|verb| verb.as_str() == text)
            .ok_or_else(|| format!("unknown command `{text}`"))
    }
}

/// Why a command was not carried out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No child of that name.
    #[error("no child named `{0}`")]
    UnknownChild(String),
    /// The child has no running process to act on.
    #[error("`{0}` has no running process")]
    NotRunning(String),
    /// The child is quarantined; only `release` applies.
    #[error("`{0}` is quarantined; release it first")]
    Quarantined(String),
    /// `run` names a child that is not a oneshot.
    #[error("`{0}` is not a oneshot; `run` starts oneshots")]
    NotOneshot(String),
    /// The child is a `kind: target`: it has no process for a verb to act on.
    #[error("`{0}` is a target: it has no process (act on its dependencies instead)")]
    Target(String),
    /// `run` names a oneshot whose run is still going.
    #[error("`{0}` is running already")]
    AlreadyRunning(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in VerbName::ALL {
            assert_eq!(name.as_str().parse::<VerbName>(), Ok(name));
            assert_eq!(
                serde_json::to_value(name).ok(),
                Some(serde_json::Value::from(name.as_str()))
            );
            if let Some(verb) = name.verb(None) {
                assert_eq!(verb.name(), name);
            }
        }
        assert!("explode".parse::<VerbName>().is_err());
        assert_eq!(Verb::Signal(Signal::Sighup).name(), VerbName::Signal);
    }
}
