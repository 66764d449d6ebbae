//! herder's exit codes, documented in `herder --help` and the README.

use crate::reconcile::Outcome;

/// The exit codes of every herder command.
///
/// | code | meaning |
/// |---|---|
/// | 0 | success; for `validate`, every manifest is valid |
/// | 1 | the manifests are invalid (`validate`), or the command failed |
/// | 2 | usage error (bad arguments) or an I/O error (a path that cannot be read) |
/// | 3 | `herder up`: a `critical` child failed, so everything was stopped |
/// | 4 | no running herder instance to talk to (operator commands) |
/// | 130 | `herder up`: a second SIGINT/SIGTERM killed every child at once |
#[derive(Debug)]
pub enum Exit {}

impl Exit {
    /// Success; for `validate`, every manifest is valid.
    pub const OK: u8 = 0;
    /// The manifests are invalid, or the command failed.
    pub const INVALID: u8 = 1;
    /// Bad arguments, or a path that cannot be read.
    pub const USAGE: u8 = 2;
    /// An operator command was refused or failed (the same code as [`Exit::INVALID`]).
    pub const FAILED: u8 = 1;
    /// `herder up`: a `critical` child failed permanently; everything was stopped in order.
    pub const CRITICAL_FAILED: u8 = 3;
    /// No running herder instance was found, or the one named does not answer.
    pub const NO_INSTANCE: u8 = 4;
    /// `herder up`: a second shutdown signal killed every child at once.
    pub const KILLED: u8 = 130;

    /// The exit code of `herder up` for how the reconciler ended.
    pub fn of(outcome: Outcome) -> u8 {
        match outcome {
            Outcome::Stopped => Self::OK,
            Outcome::CriticalFailed => Self::CRITICAL_FAILED,
            Outcome::Killed => Self::KILLED,
        }
    }
}
