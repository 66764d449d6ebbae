//! The futures the actor's loop selects on, each pending forever while its source is absent.

use futures_channel::mpsc;
use futures_util::StreamExt as _;
use tokio::sync::{oneshot, watch};

use super::{Internal, SpawnOutcome};
use crate::supervise::child::cgroup::ActorCgroup;
use crate::supervise::child::notified::NotifyView;
use crate::supervise::memwatch::MemoryWatch;
use crate::supervise::os::ExitStatus;
use crate::supervise::reaper::ExitReceiver;

pub(super) async fn wait_spawn(
    spawning: &mut Option<oneshot::Receiver<SpawnOutcome>>,
) -> SpawnOutcome {
    match spawning {
        Some(rx) => rx.await.unwrap_or_else(|_| SpawnOutcome {
            result: Err("the spawn task ended without an answer".to_owned()),
            made: None,
            fallback: None,
            cancelled: false,
        }),
        None => std::future::pending().await,
    }
}

pub(super) async fn cgroup_changed(cgroup: &mut Option<ActorCgroup>) {
    match cgroup.as_mut() {
        Some(cg) => cg.changed().await,
        None => std::future::pending().await,
    }
}

pub(super) async fn recv_internal(
    inbox: &mut Option<(
        mpsc::UnboundedSender<Internal>,
        mpsc::UnboundedReceiver<Internal>,
    )>,
) -> Option<Internal> {
    match inbox {
        Some((_, rx)) => rx.next().await,
        None => std::future::pending().await,
    }
}

pub(super) async fn notify_changed(notify: &mut Option<watch::Receiver<NotifyView>>) {
    match notify {
        Some(rx) => {
            if rx.changed().await.is_err() {
                // The reader ended (its socket failed): nothing more will come.
                *notify = None;
            }
        }
        None => std::future::pending().await,
    }
}

pub(super) async fn wait_exit(exit: &mut Option<ExitReceiver>) -> ExitStatus {
    match exit {
        Some(rx) => rx.await.unwrap_or_else(|_| ExitStatus::unknown()),
        None => std::future::pending().await,
    }
}

pub(super) async fn wait_memory(memory: &mut Option<(MemoryWatch, oneshot::Receiver<u64>)>) -> u64 {
    match memory {
        Some((_, rx)) => match rx.await {
            Ok(rss) => rss,
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

pub(super) async fn changed(rx: &mut Option<watch::Receiver<u64>>) {
    match rx {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}
