//! How a run of herder ended: what the reconciler reports, and the CLI turns into an exit
//! code (see `cli::exit`).

/// How a run of herder ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything stopped in order after a shutdown was asked for.
    Stopped,
    /// A `critical` child failed permanently, so everything was stopped in order.
    CriticalFailed,
    /// A second shutdown signal killed every child at once.
    Killed,
}
