//! The controller loop tying watch, plan and supervise together.
//!
//! [`core`] decides (a synchronous state machine: input in, effects out, re-planning from
//! scratch every time); [`run`] is the thin async shell that turns child reports, new
//! desired sets, operator commands and signals into inputs and carries out the effects.

pub mod admission;
pub mod command;
pub mod control;
pub mod core;
pub mod holds;
pub mod outcome;
mod requests;
pub mod run;
pub mod state;
mod views;

#[cfg(test)]
mod around_tests;
#[cfg(test)]
mod tests;

pub use command::{Command, CommandError, Verb, VerbName};
pub use control::{ChildDetail, ChildStatus, Control, ControlError, Peer, Request, StatusReport};
pub use core::{Effect, Input, Observation, Reconciler};
pub use outcome::Outcome;
pub use state::State;
