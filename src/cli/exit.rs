//! herder's exit codes, documented in `herder --help` and the README.

/// The exit codes of every herder command.
///
/// | code | meaning |
/// |---|---|
/// | 0 | success; for `validate`, every manifest is valid |
/// | 1 | the manifests are invalid (`validate`), or the command failed |
/// | 2 | usage error (bad arguments) or an I/O error (a path that cannot be read) |
/// | 4 | no running herder instance to talk to (operator commands) |
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
    /// No running herder instance was found, or the one named does not answer.
    pub const NO_INSTANCE: u8 = 4;
}
