//! Kernel notifications of cgroup changes, so nothing polls: one thread waits on an epoll set for every child.
//!
//! * cgroup v2 files (`cgroup.events` for `populated`, `memory.events` for `oom_kill`, `pids.events` for `max`)
//!   signal a change as an inotify `IN_MODIFY` (kernfs notifies on every value change);
//! * cgroup v1 files do not (checked on this kernel: no inotify event on `memory.oom_control` or `pids.events`),
//!   but v1 memory offers an eventfd that fires when the cgroup runs out of memory, registered through
//!   `cgroup.event_control` ([`Subscription::watch_v1_oom`], only for a child with a memory limit: without one
//!   its own cgroup never runs out, and the exit check still names a kill charged to an ancestor);
//! * v1 `pids` has no notification at all, but the kernel logs the first refused fork of each cgroup
//!   ("cgroup: fork rejected by pids controller in /herder-x/web-3"): the thread reads `/dev/kmsg` (opened once,
//!   from its end, non-blocking) and routes such a line by its last two path components, the
//!   `herder-<instance>/<child>-<incarnation>` name. Where `/dev/kmsg` cannot be read (no `CAP_SYSLOG`),
//!   `pids.events` is read when the child exits instead ([`pids_refusals_live`] tells which).
//!
//! A [`Subscription`] bumps a `watch` counter on any change of its files; the owner then reads what it needs.
//! The thread, like the reaper's, is process-wide and outlives any tokio runtime. Bound: one inotify watch per
//! file, one eventfd per v1 memory cgroup with a limit and one map entry per v1 pids cgroup, removed with the
//! subscription (`fs.inotify.max_user_watches` caps the total; a failed watch is reported and that child falls
//! back to reading at exit); at most [`KMSG_BATCH`] kernel log records are read per wake-up, so a kernel
//! flooding its log cannot hold the thread.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use tokio::sync::watch;

/// The epoll token of the inotify descriptor; eventfds use their descriptor number (never 0 here: it is
/// herder's stdin or a lower descriptor than any eventfd).
const INOTIFY_TOKEN: u64 = u64::MAX;
/// The epoll token of `/dev/kmsg`.
const KMSG_TOKEN: u64 = u64::MAX - 1;
/// Kernel log records read per wake-up at most (each read returns one record of at most ~1 KiB).
const KMSG_BATCH: usize = 256;
/// What the pids controller logs at a cgroup's first refused fork, followed by the cgroup's path.
const PIDS_REFUSAL: &str = "cgroup: fork rejected by pids controller in ";

#[derive(Default)]
struct Routes {
    files: HashMap<WatchDescriptor, Arc<watch::Sender<u64>>>,
    eventfds: HashMap<u64, (EventFd, Arc<watch::Sender<u64>>)>,
    /// v1 pids cgroups by their last two path components.
    pids: HashMap<String, Arc<watch::Sender<u64>>>,
}

struct Shared {
    inotify: Inotify,
    epoll: Epoll,
    /// The kernel log, when readable.
    kmsg: Option<Mutex<File>>,
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
            let kmsg = open_kmsg().and_then(|file| {
                epoll
                    .add(
                        file.as_fd(),
                        EpollEvent::new(EpollFlags::EPOLLIN, KMSG_TOKEN),
                    )
                    .ok()?;
                Some(Mutex::new(file))
            });
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
                kmsg,
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
            if event.data() == KMSG_TOKEN {
                if let Some(kmsg) = &s.kmsg {
                    let mut file = kmsg.lock().unwrap_or_else(|p| p.into_inner());
                    read_kmsg(&mut file, |key| {
                        if let Some(tx) = s.lock().pids.get(key) {
                            tx.send_modify(|n| *n += 1);
                        }
                    });
                }
            } else if event.data() == INOTIFY_TOKEN {
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
    pids_key: Option<String>,
    sender: Arc<watch::Sender<u64>>,
    /// Bumped on every change of any watched file.
    pub changes: watch::Receiver<u64>,
}

/// Watches `files` (cgroup v2 event files) and, with `v1_pids`, the kernel's log of refused forks in that v1
/// pids cgroup.
pub fn subscribe(files: &[PathBuf], v1_pids: Option<&Path>) -> io::Result<Subscription> {
    let s = shared().map_err(io::Error::other)?;
    let (tx, changes) = watch::channel(0u64);
    let mut subscription = Subscription {
        files: Vec::new(),
        eventfd: None,
        pids_key: None,
        sender: Arc::new(tx),
        changes,
    };
    for file in files {
        let wd = s
            .inotify
            .add_watch(file.as_path(), AddWatchFlags::IN_MODIFY)
            .map_err(io::Error::from)?;
        s.lock().files.insert(wd, Arc::clone(&subscription.sender));
        subscription.files.push(wd);
    }
    if let Some(key) = v1_pids.filter(|_| s.kmsg.is_some()).and_then(route_key) {
        s.lock()
            .pids
            .insert(key.clone(), Arc::clone(&subscription.sender));
        subscription.pids_key = Some(key);
    }
    Ok(subscription)
}

impl Subscription {
    /// Whether a v1 OOM eventfd is armed.
    pub fn watches_v1_oom(&self) -> bool {
        self.eventfd.is_some()
    }

    /// Adds the OOM eventfd of the v1 memory cgroup `dir` (once; a second call does nothing).
    pub fn watch_v1_oom(&mut self, dir: &Path) -> io::Result<()> {
        if self.eventfd.is_some() {
            return Ok(());
        }
        let s = shared().map_err(io::Error::other)?;
        let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        let oom = File::open(dir.join("memory.oom_control"))?;
        let mut control = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.event_control"))?;
        control.write_all(format!("{} {}", efd.as_raw_fd(), oom.as_raw_fd()).as_bytes())?;
        let token = efd.as_raw_fd() as u64;
        // Armed and routed under the lock the thread takes to route, so a notification right away is not lost.
        let mut routes = s.lock();
        s.epoll
            .add(efd.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, token))?;
        routes
            .eventfds
            .insert(token, (efd, Arc::clone(&self.sender)));
        drop(routes);
        self.eventfd = Some(token);
        Ok(())
    }
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
        if let Some(key) = self.pids_key.take() {
            routes.pids.remove(&key);
        }
        if let Some(token) = self.eventfd.take()
            && let Some((efd, _)) = routes.eventfds.remove(&token)
        {
            // The descriptor is closed below, which removes it from the set anyway.
            let _ = s.epoll.delete(efd.as_fd());
        }
    }
}

/// `/dev/kmsg`, positioned at its end (only what the kernel logs from now on is read), when readable.
fn open_kmsg() -> Option<File> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("/dev/kmsg")
        .ok()?;
    file.seek(io::SeekFrom::End(0)).ok()?;
    Some(file)
}

/// Reads what the kernel logged since the last call (at most [`KMSG_BATCH`] records) and hands the route key
/// of every refused fork to `refused`.
fn read_kmsg(file: &mut File, mut refused: impl FnMut(&str)) {
    // One record per read; a buffer smaller than the record would fail with EINVAL.
    let mut buf = [0u8; 8192];
    for _ in 0..KMSG_BATCH {
        match file.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if let Some(key) = refusal(&String::from_utf8_lossy(&buf[..n])) {
                    refused(key);
                }
            }
            // Records were overwritten before this read: the next read returns the oldest kept one.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// The route key of a "fork rejected by pids controller" kernel log record (`prio,seq,time,flags;message`).
fn refusal(record: &str) -> Option<&str> {
    let message = record.split_once(';')?.1;
    let path = message.lines().next()?.strip_prefix(PIDS_REFUSAL)?;
    last_two(path.trim())
}

/// A cgroup directory's route key: its last two components, `herder-<instance>/<child>-<incarnation>`, the
/// same whatever hierarchy or mount the path starts from.
fn route_key(dir: &Path) -> Option<String> {
    last_two(dir.to_str()?).map(str::to_owned)
}

fn last_two(path: &str) -> Option<&str> {
    let path = path.trim_end_matches('/');
    let cut = path.rfind('/')?;
    let start = path[..cut].rfind('/').map_or(0, |i| i + 1);
    let key = &path[start..];
    (start < cut).then_some(key)
}

/// Whether refused forks in a v1 pids cgroup are seen as they happen (the kernel log is readable), not only
/// when the child exits.
pub fn pids_refusals_live() -> bool {
    shared().is_ok_and(|s| s.kmsg.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_fork_names_the_incarnation() {
        let record = "6,20481,912345678,-;cgroup: fork rejected by pids controller in /herder-d-28210a88/bomb-1\n";
        assert_eq!(refusal(record), Some("herder-d-28210a88/bomb-1"));
        assert_eq!(refusal("6,1,2,-;cgroup: something else\n"), None);
        assert_eq!(refusal("no separator"), None);
    }

    #[test]
    fn keys_are_the_last_two_components() {
        assert_eq!(
            route_key(Path::new("/sys/fs/cgroup/pids/a/herder-x/web-3")).as_deref(),
            Some("herder-x/web-3")
        );
        assert_eq!(last_two("/herder-x/web-3/"), Some("herder-x/web-3"));
        assert_eq!(last_two("web-3"), None);
        assert_eq!(last_two("/web-3"), None);
    }
}
