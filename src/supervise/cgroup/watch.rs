//! Kernel notifications of cgroup changes, so nothing polls: one thread waits on an epoll set for every child.
//!
//! * cgroup v2 files (`cgroup.events` for `populated`, `memory.events` for `oom_kill`, `pids.events` for `max`)
//!   signal a change as an inotify `IN_MODIFY` (kernfs notifies on every value change);
//! * cgroup v1 files do not (checked on this kernel: no inotify event on `memory.oom_control` or `pids.events`),
//!   but v1 memory offers an eventfd that fires on every OOM of the cgroup, registered through
//!   `cgroup.event_control`. v1 `pids.events` is read when the child exits instead.
//!
//! A [`Subscription`] bumps a `watch` counter on any change of its files; the owner then reads what it needs.
//! The thread, like the reaper's, is process-wide and outlives any tokio runtime. Bound: one inotify watch per
//! file and one eventfd per v1 memory cgroup, removed with the subscription (`fs.inotify.max_user_watches`
//! caps the total; a failed watch is reported and that child falls back to reading at exit).

use std::collections::HashMap;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use tokio::sync::watch;

/// The epoll token of the inotify descriptor; eventfds use their descriptor number (never 0 here: it is
/// herder's stdin or a lower descriptor than any eventfd).
const INOTIFY_TOKEN: u64 = u64::MAX;

#[derive(Default)]
struct Routes {
    files: HashMap<WatchDescriptor, Arc<watch::Sender<u64>>>,
    eventfds: HashMap<u64, (EventFd, Arc<watch::Sender<u64>>)>,
}

struct Shared {
    inotify: Inotify,
    epoll: Epoll,
    routes: Mutex<Routes>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Routes> {
        // Single inserts and removals cannot leave the maps inconsistent.
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn shared() -> Result<&'static Shared, String> {
    static WATCHER: OnceLock<Result<Shared, String>> = OnceLock::new();
    WATCHER
        .get_or_init(|| {
            let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
                .map_err(|e| format!("inotify: {e}"))?;
            let epoll =
                Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| format!("epoll: {e}"))?;
            epoll
                .add(
                    inotify.as_fd(),
                    EpollEvent::new(EpollFlags::EPOLLIN, INOTIFY_TOKEN),
                )
                .map_err(|e| format!("epoll: {e}"))?;
            std::thread::Builder::new()
                .name("herder-cgwatch".into())
                .spawn(|| {
                    // `shared()` is initialised before this thread can observe it: OnceLock blocks until then.
                    if let Ok(s) = shared() {
                        run(s);
                    }
                })
                .map_err(|e| format!("cannot start the cgroup watch thread: {e}"))?;
            Ok(Shared {
                inotify,
                epoll,
                routes: Mutex::new(Routes::default()),
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn run(s: &Shared) {
    let mut events = [EpollEvent::empty(); 64];
    loop {
        let ready = match s.epoll.wait(&mut events, EpollTimeout::NONE) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                tracing::error!(error = %e, "the cgroup watch stopped");
                return;
            }
        };
        for event in &events[..ready] {
            if event.data() == INOTIFY_TOKEN {
                let changed = s.inotify.read_events().unwrap_or_default();
                let routes = s.lock();
                for change in changed {
                    if let Some(tx) = routes.files.get(&change.wd) {
                        tx.send_modify(|n| *n += 1);
                    }
                }
            } else {
                let routes = s.lock();
                if let Some((efd, tx)) = routes.eventfds.get(&event.data()) {
                    // Resets the counter; EAGAIN (already read) changes nothing.
                    let _ = efd.read();
                    tx.send_modify(|n| *n += 1);
                }
            }
        }
    }
}

/// Notifications for one child's cgroup files; dropping it removes the watches.
#[derive(Debug)]
pub struct Subscription {
    files: Vec<WatchDescriptor>,
    eventfd: Option<u64>,
    /// Bumped on every change of any watched file.
    pub changes: watch::Receiver<u64>,
}

/// Watches `files` (cgroup v2 event files) and, with `v1_memory`, the OOM eventfd of that v1 memory cgroup.
pub fn subscribe(files: &[PathBuf], v1_memory: Option<&Path>) -> io::Result<Subscription> {
    let s = shared().map_err(io::Error::other)?;
    let (tx, changes) = watch::channel(0u64);
    let tx = Arc::new(tx);
    let mut subscription = Subscription {
        files: Vec::new(),
        eventfd: None,
        changes,
    };
    for file in files {
        let wd = s
            .inotify
            .add_watch(file.as_path(), AddWatchFlags::IN_MODIFY)
            .map_err(io::Error::from)?;
        s.lock().files.insert(wd, Arc::clone(&tx));
        subscription.files.push(wd);
    }
    if let Some(dir) = v1_memory {
        let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        let oom = std::fs::File::open(dir.join("memory.oom_control"))?;
        let mut control = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.event_control"))?;
        control.write_all(format!("{} {}", efd.as_raw_fd(), oom.as_raw_fd()).as_bytes())?;
        let token = efd.as_raw_fd() as u64;
        s.epoll
            .add(efd.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, token))?;
        s.lock().eventfds.insert(token, (efd, Arc::clone(&tx)));
        subscription.eventfd = Some(token);
    }
    Ok(subscription)
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let Ok(s) = shared() else { return };
        let mut routes = s.lock();
        for wd in self.files.drain(..) {
            routes.files.remove(&wd);
            // Fails once the directory is gone (the kernel dropped the watch already).
            let _ = s.inotify.rm_watch(wd);
        }
        if let Some(token) = self.eventfd.take()
            && let Some((efd, _)) = routes.eventfds.remove(&token)
        {
            // The descriptor is closed below, which removes it from the set anyway.
            let _ = s.epoll.delete(efd.as_fd());
        }
    }
}
