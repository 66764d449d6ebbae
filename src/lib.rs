//! herder keeps a set of Linux processes in line with a directory of YAML manifests.
//!
//! ```text
//!  herder.d/*.yaml ──watch──▶ load ──▶ validate ──▶ DesiredSet (generation g)
//!                                                        │
//!                          plan(desired, observed) ─▶ Plan { start, replace, update, retire }
//!                                                        │
//!  observed ◀── child actors (one per incarnation) ◀── reconciler (level-triggered)
//! ```
//!
//! The pure core is [`manifest`] (load → validate) and [`plan`]; the effects live at the
//! edge in [`supervise`], [`reconcile`], [`watch`] and [`api`]. The entry point is
//! [`cli::run`].
#![warn(missing_docs, clippy::unwrap_used)]

pub mod api;
pub mod cli;
pub mod convert;
pub mod error_chain;
pub mod events;
pub mod manifest;
pub mod paths;
pub mod plan;
pub mod reconcile;
pub mod schedule;
pub mod supervise;
pub mod watch;
pub mod web;
