//! The raw calls: the `clone` path that starts a child, and the few libc calls nix has no wrapper for.
//!
//! This is the only file of `supervise` that contains `unsafe`. Each block states the invariant it relies on.

use std::cell::Cell;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// Limits glibc to two malloc arenas. Every thread (tokio workers, the spawner, the
/// reaper, the state-file writer, the watcher) would otherwise get an arena of its own, and
/// a long-running supervisor with little allocation pays their fragmentation in resident
/// memory for nothing.
pub fn limit_malloc_arenas() {
    // SAFETY: mallopt only tunes the allocator; a rejected value leaves the default.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Gives memory that malloc holds but no longer uses back to the system. Loading and
/// validating a large manifest set peaks well above what herder keeps afterwards, and glibc
/// would otherwise hold that peak as resident memory for the life of the process.
pub fn release_free_memory() {
    // SAFETY: malloc_trim only returns free pages of the allocator's own heaps.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Credentials a child switches to, resolved before the fork (name lookups are not async-signal-safe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Target user id.
    pub uid: u32,
    /// Target primary group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

/// Everything the forked child does before `exec`, computed in the parent.
#[derive(Debug, Clone)]
pub struct ChildSetup {
    /// The pid of the forking process, to detect that it died before `PR_SET_PDEATHSIG` took effect.
    pub parent_pid: i32,
    /// `RLIMIT_NOFILE` for the child, soft and hard.
    pub nofile: Option<(u64, u64)>,
    /// Identity to switch to (applied last).
    pub credentials: Option<Credentials>,
}

/// Sets `RLIMIT_NOFILE` (soft and hard) of the running process `pid` (`prlimit`), so an
/// `open_files` change applies without a restart. Its existing descendants keep theirs.
pub fn set_open_files(pid: i32, limit: u64) -> io::Result<()> {
    let new = libc::rlimit {
        rlim_cur: limit as libc::rlim_t,
        rlim_max: limit as libc::rlim_t,
    };
    // SAFETY: `new` is a valid rlimit; a null old-limit pointer is allowed.
    let result = unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, &new, std::ptr::null_mut()) };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A process image to start with [`spawn_process`]: every string already a C string, every
/// descriptor already open, so the child needs no allocation.
#[derive(Debug)]
pub struct Exec {
    /// The resolved program path.
    pub program: CString,
    /// The argument vector (`argv[0]` as the user wrote it).
    pub argv: Vec<CString>,
    /// The complete environment, `KEY=value`.
    pub env: Vec<CString>,
    /// The working directory.
    pub cwd: CString,
    /// Descriptors that become the child's stdin, stdout and stderr.
    pub stdio: [OwnedFd; 3],
    /// Open `cgroup.procs` files (one per hierarchy) the child writes `0` to first, so it executes inside
    /// its cgroups and nothing it forks starts outside.
    pub cgroups: Vec<OwnedFd>,
    /// A descriptor the child gets at the given number (the notification pipe).
    pub extra_fd: Option<(OwnedFd, u32)>,
    /// What the child does before `exec`.
    pub setup: ChildSetup,
}

/// What the child reports back through the memory it shares with the parent.
#[repr(C)]
struct ChildArgs {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    stdio: [libc::c_int; 3],
    /// The slot holding the extra descriptor and the number it gets (`-1`: none).
    extra_fd: [libc::c_int; 2],
    cgroups: *const libc::c_int,
    cgroups_len: usize,
    /// Whether the child shares herder's descriptor table and must first replace it with a copy of the
    /// entries below `keep_below`.
    share_files: bool,
    keep_below: libc::c_uint,
    parent_pid: libc::pid_t,
    nofile: Option<(u64, u64)>,
    credentials: Option<(libc::uid_t, libc::gid_t)>,
    groups: *const libc::gid_t,
    groups_len: usize,
    /// Set by the child when a step before `exec` (or `exec` itself) failed.
    errno: AtomicI32,
    /// Set by the child when it could not stop sharing the descriptor table.
    unshare_failed: AtomicBool,
}

const CHILD_STACK_BYTES: usize = 64 * 1024;

/// Three descriptors just above the standard ones, reserved for the life of the spawner
/// thread, through which every child receives its stdin, stdout and stderr.
///
/// Why: a new process gets a copy of herder's descriptor table and `exec` then closes every
/// close-on-exec entry one by one. With two pipe ends per running child, that is O(children)
/// closes per spawn and O(children²) for a cold start: at 500 children it was the largest
/// single cost of starting them. Instead the child shares herder's table at `clone` and
/// replaces it with a copy of only the entries below [`StdioSlots`]' end
/// (`close_range(CLOSE_RANGE_UNSHARE)`, Linux 5.9; older kernels fall back to a full copy).
/// The slots were taken when few descriptors were open, so that copy holds a handful. Where
/// neither call is allowed (a seccomp filter), the first spawn finds out and every spawn
/// goes back to copying the whole table.
#[derive(Debug)]
pub struct StdioSlots {
    null: OwnedFd,
    /// stdin, stdout, stderr, and the extra descriptor of a request that has one.
    slots: [OwnedFd; 4],
    /// Whether children share the table at `clone` (until a child could not unshare it).
    share: Cell<bool>,
}

impl StdioSlots {
    /// Reserves the slots (`/dev/null` until a spawn points them elsewhere). Call it early,
    /// while few descriptors are open.
    pub fn reserve() -> io::Result<Self> {
        let null = || -> io::Result<OwnedFd> {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")?;
            above_stdio(OwnedFd::from(file))
        };
        Ok(Self {
            slots: [null()?, null()?, null()?, null()?],
            null: null()?,
            share: Cell::new(true),
        })
    }

    /// The lowest descriptor a child does not inherit.
    fn end(&self) -> libc::c_uint {
        let highest = self.slots.iter().map(AsRawFd::as_raw_fd).max().unwrap_or(2);
        libc::c_uint::try_from(highest + 1).unwrap_or(libc::c_uint::MAX)
    }

    /// Points each slot at the corresponding source (`dup3` replaces a slot atomically).
    fn point(&mut self, sources: &[OwnedFd; 3], extra: Option<&OwnedFd>) -> io::Result<()> {
        let sources = sources.iter().chain(extra);
        for (slot, source) in self.slots.iter_mut().zip(sources) {
            nix::unistd::dup3(source, slot, nix::fcntl::OFlag::O_CLOEXEC)?;
        }
        Ok(())
    }

    /// Points every slot back at `/dev/null`, so herder holds no end of a child's pipes (the
    /// log pump sees end-of-file once the child's side is closed).
    fn release(&mut self) {
        for slot in &mut self.slots {
            // Cannot fail for two open descriptors of ours (EBUSY needs a concurrent open of
            // the same number, which a held slot never is).
            let _ = nix::unistd::dup3(&self.null, slot, nix::fcntl::OFlag::O_CLOEXEC);
        }
    }
}

/// Starts `exec` as a new process and returns its pid once it has `exec`ed.
///
/// This is `clone(CLONE_VM | CLONE_VFORK)`, the technique of glibc's `posix_spawn`: the child
/// borrows the parent's memory instead of copying its page tables, and the calling thread is
/// suspended until the child has `exec`ed or exited. A plain `fork` of a multi-threaded
/// supervisor with hundreds of children costs page-table copies, copy-on-write faults in every
/// thread afterwards and TLB shootdowns; this costs none of that, which is what makes
/// starting 500 children take tens of milliseconds instead of seconds.
///
/// The child runs on its own small stack with every signal blocked (a handler running in the
/// child would run on the parent's memory). It first trades the descriptor table it shares
/// with herder for a copy of the few entries below the [`StdioSlots`], which `slots` point at
/// `exec.stdio` for the duration of the call. It resets every disposition to the default, and
/// then only makes raw system calls on data prepared here: a new session (own process group, no
/// controlling terminal), `PR_SET_PDEATHSIG(SIGKILL)` with a `getppid` check that closes the
/// race where the parent already died, `RLIMIT_NOFILE`, the standard descriptors, the working
/// directory, supplementary groups, gid and uid (last, so the steps before still have root's
/// rights), an empty signal mask, and `execve`. A failure is written to shared memory before
/// `_exit(127)`; the parent turns it into an error (the exited child is reaped like any other).
pub fn spawn_process(exec: &Exec, slots: &mut StdioSlots) -> io::Result<i32> {
    let argv: Vec<*const libc::c_char> = exec
        .argv
        .iter()
        .map(|arg| arg.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = exec
        .env
        .iter()
        .map(|var| var.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let groups: Vec<libc::gid_t> = exec
        .setup
        .credentials
        .as_ref()
        .map(|c| c.groups.clone())
        .unwrap_or_default();
    let cgroups: Vec<libc::c_int> = exec.cgroups.iter().map(AsRawFd::as_raw_fd).collect();
    if let Err(error) = slots.point(&exec.stdio, exec.extra_fd.as_ref().map(|(fd, _)| fd)) {
        slots.release();
        return Err(error);
    }
    let prepared = Prepared {
        argv: &argv,
        envp: &envp,
        groups: &groups,
        cgroups: &cgroups,
    };
    let mut spawned = clone_child(exec, slots, &prepared);
    if let Err(ChildFailure::Unshare(_)) = spawned {
        slots.share.set(false);
        spawned = clone_child(exec, slots, &prepared);
    }
    slots.release();
    spawned.map_err(|failure| match failure {
        ChildFailure::Unshare(error) | ChildFailure::Other(error) => error,
    })
}

/// Why [`clone_child`] did not start a process.
enum ChildFailure {
    /// The child could not stop sharing the descriptor table (it exited).
    Unshare(io::Error),
    /// Anything else.
    Other(io::Error),
}

/// The pointer arrays the child reads, built once per spawn.
struct Prepared<'a> {
    argv: &'a [*const libc::c_char],
    envp: &'a [*const libc::c_char],
    groups: &'a [libc::gid_t],
    cgroups: &'a [libc::c_int],
}

/// One attempt of [`spawn_process`], with the slots pointed at the child's stdio.
fn clone_child(exec: &Exec, slots: &StdioSlots, prepared: &Prepared) -> Result<i32, ChildFailure> {
    let Prepared {
        argv,
        envp,
        groups,
        cgroups,
    } = prepared;
    let share_files = slots.share.get();
    let args = ChildArgs {
        program: exec.program.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: exec.cwd.as_ptr(),
        stdio: [
            slots.slots[0].as_raw_fd(),
            slots.slots[1].as_raw_fd(),
            slots.slots[2].as_raw_fd(),
        ],
        extra_fd: match &exec.extra_fd {
            Some((_, target)) => [
                slots.slots[3].as_raw_fd(),
                libc::c_int::try_from(*target).unwrap_or(-1),
            ],
            None => [-1, -1],
        },
        cgroups: cgroups.as_ptr(),
        cgroups_len: cgroups.len(),
        share_files,
        keep_below: slots.end(),
        parent_pid: exec.setup.parent_pid,
        nofile: exec.setup.nofile,
        credentials: exec.setup.credentials.as_ref().map(|c| (c.uid, c.gid)),
        groups: groups.as_ptr(),
        groups_len: groups.len(),
        errno: AtomicI32::new(0),
        unshare_failed: AtomicBool::new(false),
    };
    let flags = libc::CLONE_VM
        | libc::CLONE_VFORK
        | libc::SIGCHLD
        | if share_files { libc::CLONE_FILES } else { 0 };
    let mut stack = vec![0u8; CHILD_STACK_BYTES];
    // SAFETY: the stack grows down on every Linux architecture Rust supports; the top is
    // aligned down to 16 bytes as the ABIs require. `args`, `argv`, `envp`, `groups` and the
    // stack outlive the child's use of them: CLONE_VFORK suspends this thread until the child
    // has exec'ed (dropping the shared memory) or exited.
    let pid = unsafe {
        let top = stack.as_mut_ptr().add(CHILD_STACK_BYTES);
        let top = top.sub(top as usize % 16);
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut previous);
        let pid = libc::clone(
            child_main,
            top.cast(),
            flags,
            std::ptr::from_ref(&args).cast_mut().cast(),
        );
        let clone_error = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
        if pid < 0 {
            return Err(ChildFailure::Other(clone_error));
        }
        pid
    };
    match args.errno.load(Ordering::SeqCst) {
        0 => Ok(pid),
        errno if args.unshare_failed.load(Ordering::SeqCst) => {
            Err(ChildFailure::Unshare(io::Error::from_raw_os_error(errno)))
        }
        errno => Err(ChildFailure::Other(io::Error::from_raw_os_error(errno))),
    }
}

/// The child side of [`spawn_process`]. Only raw system calls on prepared data: no
/// allocation, no locks, nothing that touches state the suspended parent owns.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ChildArgs` of the suspended parent (see `spawn_process`), and
    // every pointer in it stays valid until this process execs or exits.
    unsafe {
        let args = &*(arg as *const ChildArgs);
        // Into the child's cgroups first (the descriptors are above the stdio slots, so before the
        // table is trimmed below): everything after this, and everything it forks, is accounted there.
        for i in 0..args.cgroups_len {
            if libc::write(*args.cgroups.add(i), c"0".as_ptr().cast(), 1) != 1 {
                fail(args);
            }
        }
        // Shared with herder until here (CLONE_FILES): keep a private copy of only the
        // entries below the stdio slots, then nothing this child does touches herder's.
        if args.share_files
            && libc::syscall(
                libc::SYS_close_range,
                args.keep_below,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_UNSHARE,
            ) < 0
            && libc::unshare(libc::CLONE_FILES) < 0
        {
            args.unshare_failed.store(true, Ordering::SeqCst);
            fail(args);
        }
        for sig in 1..libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                // Fails harmlessly for the few signal numbers glibc reserves.
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        if libc::setsid() < 0 {
            fail(args);
        }
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) < 0
        {
            fail(args);
        }
        if libc::getppid() != args.parent_pid {
            // The supervisor died before the death signal was armed: nobody would stop us.
            libc::_exit(127);
        }
        if let Some((soft, hard)) = args.nofile {
            let limit = libc::rlimit {
                rlim_cur: soft as libc::rlim_t,
                rlim_max: hard as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) < 0 {
                fail(args);
            }
        }
        for (target, &source) in args.stdio.iter().enumerate() {
            let target = target as libc::c_int;
            // The sources are the stdio slots, all above 2, so no dup2 clobbers a later source.
            if libc::dup2(source, target) < 0 {
                fail(args);
            }
        }
        // The extra descriptor after the standard ones (a target of 3 or more, so it
        // cannot be one of them); `dup2` onto itself would keep close-on-exec.
        let [source, target] = args.extra_fd;
        if target >= 0 {
            let placed = if source == target {
                libc::fcntl(target, libc::F_SETFD, 0)
            } else {
                libc::dup2(source, target)
            };
            if placed < 0 {
                fail(args);
            }
        }
        if libc::chdir(args.cwd) < 0 {
            fail(args);
        }
        if let Some((uid, gid)) = args.credentials
            && (libc::setgroups(args.groups_len, args.groups) < 0
                || libc::setgid(gid) < 0
                || libc::setuid(uid) < 0)
        {
            fail(args);
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        libc::execve(args.program, args.argv, args.envp);
        fail(args)
    }
}

/// Records the failed step's errno for the parent and ends the child.
///
/// # Safety
/// Only for the child of [`spawn_process`].
unsafe fn fail(args: &ChildArgs) -> ! {
    // SAFETY: errno is readable in any thread; `_exit` is async-signal-safe.
    unsafe {
        args.errno
            .store(*libc::__errno_location(), Ordering::SeqCst);
        libc::_exit(127)
    }
}

/// Moves `fd` above the standard descriptors, so a child's `dup2` onto 0, 1 and 2 never
/// overwrites another of its sources (possible when herder itself runs with one closed).
pub fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // std duplicates with F_DUPFD_CLOEXEC from descriptor 3 up.
    fd.try_clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervise::os::own_pid;

    fn null() -> OwnedFd {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .unwrap();
        above_stdio(OwnedFd::from(file)).unwrap()
    }

    /// Starts `program` with null stdio. The process is left to whichever reaper runs in this
    /// test binary (waiting for it here could race with one).
    fn spawn(program: &str, slots: &mut StdioSlots) -> io::Result<i32> {
        let exec = Exec {
            program: CString::new(program).unwrap(),
            argv: vec![CString::new("true").unwrap()],
            env: Vec::new(),
            cwd: CString::new("/").unwrap(),
            stdio: [null(), null(), null()],
            cgroups: Vec::new(),
            extra_fd: None,
            setup: ChildSetup {
                parent_pid: own_pid(),
                nofile: None,
                credentials: None,
            },
        };
        spawn_process(&exec, slots)
    }

    #[test]
    fn children_start_with_a_shared_or_a_copied_descriptor_table() {
        let mut slots = StdioSlots::reserve().unwrap();
        for share in [true, false] {
            // `false`: as after a child could not unshare it (a seccomp filter).
            slots.share.set(share);
            assert!(spawn("/bin/true", &mut slots).unwrap() > 0, "exec'ed");
            let missing = spawn("/no/such/program", &mut slots).unwrap_err();
            assert_eq!(missing.raw_os_error(), Some(libc::ENOENT));
            assert_eq!(
                slots.share.get(),
                share,
                "this kernel lets the child unshare"
            );
        }
    }
}
