//! The seam between a child's actor and the OS: starting processes and signalling their groups.
//!
//! The actor and its probes reach processes only through a [`Launcher`] held in the child context, so the
//! timing logic above it (probe intervals, backoff, timeouts) can run against a fake one under a paused clock.
//! [`Real`], the default, is the process-wide [`Spawner`] and `killpg`.

use std::fmt::Debug;
use std::io;

use futures_util::future::BoxFuture;
use nix::sys::signal::Signal;
use tokio::sync::watch;

use super::os;
use super::spawn::{SpawnRequest, Spawned, Spawner};
use crate::error_chain::ErrorChain;

/// Starts processes and signals process groups on behalf of the child actors.
pub trait Launcher: Send + Sync + Debug {
    /// Starts the process `request` describes; the error is a one-line reason.
    fn spawn(&self, request: SpawnRequest) -> BoxFuture<'static, Result<Spawned, String>>;
    /// Sends `signal` to process group `pgid`; `Ok(false)` when the group no longer exists.
    fn signal_group(&self, pgid: i32, signal: Signal) -> io::Result<bool>;
    /// `true` while a process is still in group `pgid`.
    fn group_exists(&self, pgid: i32) -> bool;
    /// Changes once per reaped process (`None`: no reaper to watch), to re-check a stopping group.
    fn reaps(&self) -> Option<watch::Receiver<u64>>;
}

/// The real processes: the process-wide spawner and reaper, and `killpg`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Real;

impl Launcher for Real {
    fn spawn(&self, request: SpawnRequest) -> BoxFuture<'static, Result<Spawned, String>> {
        Box::pin(async move {
            let spawner = Spawner::global().map_err(|e| e.to_string())?;
            spawner
                .spawn(request)
                .await
                .map_err(|e| ErrorChain::inline(&e).to_string())
        })
    }

    fn signal_group(&self, pgid: i32, signal: Signal) -> io::Result<bool> {
        os::signal_group(pgid, signal)
    }

    fn group_exists(&self, pgid: i32) -> bool {
        os::group_exists(pgid)
    }

    fn reaps(&self) -> Option<watch::Receiver<u64>> {
        Spawner::global().ok().map(|s| s.reaper().reaps())
    }
}
