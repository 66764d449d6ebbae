//! Schedules of oneshots: when their slots are ([`slots`], pure), which slots were claimed
//! ([`claims`], kept in the state directory so that a slot runs at most once across reloads
//! and restarts of herder), and the dispatcher task that runs them ([`dispatch`]).

pub mod claims;
pub mod dispatch;
pub mod slots;
