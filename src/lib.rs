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
//! edge in [`watch`], [`supervise`], [`reconcile`] and [`api`]. [`daemon`] wires them
//! together for `herder up`; the entry point is [`cli::run`], which only parses arguments,
//! presents, and calls the library.
#![warn(missing_docs, clippy::unwrap_used)]

// In pipeline order: manifests are loaded and validated, planned against what runs, watched
// for changes, supervised as processes, reconciled, served, and wired up; then the helpers
// they share and the command line.
pub mod api;
pub mod cli;
pub mod convert;
pub mod daemon;
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
