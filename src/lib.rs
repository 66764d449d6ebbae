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

// In pipeline order (one group per stage, so that rustfmt keeps the order).
// Manifests are loaded and validated, then planned against what runs:
pub mod manifest;
pub mod plan;
// the directory is watched for changes:
pub mod watch;
// children are supervised as processes, and reconciled with the plan:
pub mod supervise;
// (what the reconciler reports, and when oneshots run)
pub mod events;
pub mod reconcile;
pub mod schedule;
// it is served over the control socket, the metrics and web listeners, and to systemd:
pub mod api;
pub mod sd_notify;
pub mod web;
// and wired together for `herder up`:
pub mod daemon;
// Beside the pipeline: translations, paths and error chains, and the command line.
pub mod cli;
pub mod convert;
pub mod error_chain;
pub mod paths;
