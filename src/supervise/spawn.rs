//! The spawner: one long-lived thread that performs every `fork`/`exec` herder does.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the process (prctl(2): "the
//! 'parent' in this case is considered to be the thread that created this process"). tokio worker and blocking
//! threads come and go, so children forked from them would be killed at random; every child and every exec probe
//! is therefore forked from this single thread, which lives as long as the process.
//!
//! The spawner forks while holding the reaper's routing lock and registers the new pid before releasing it (see
//! [`super::reaper`]): a child that exits at once is never reaped before its owner is known.
//!
//! Everything the child does between `fork` and `exec` is computed here first ([`os::ChildSetup`]): the program
//! is resolved against `PATH`, the working directory is checked (so a bad directory is reported as such, not as
//! a missing program), users and groups are looked up. The child itself only makes async-signal-safe syscalls.

use std::ffi::CString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::mpsc;

use tokio::sync::oneshot;

use super::os::{self, ChildSetup, Credentials};
use super::proc;
use super::reaper::{ExitReceiver, Reaper, ReaperError};

/// The command to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Executed directly: the first element is the program, looked up in `PATH` unless it contains a `/`.
    Argv(Vec<String>),
    /// Run by `/bin/sh -c`.
    Shell(String),
}

/// What happens to the standard output and error of the new process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Both go to pipes whose read ends are returned in [`Spawned`].
    Piped,
    /// Both go to `/dev/null`.
    Null,
}

/// A command with where and as whom it runs: what a child's main process and its `exec` probes share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// What to run.
    pub command: Command,
    /// The complete environment (herder has already decided what is inherited).
    pub env: Vec<(String, String)>,
    /// Working directory; must exist.
    pub cwd: PathBuf,
    /// User to run as (name or numeric id); applied only when herder runs as root.
    pub user: Option<String>,
    /// Group to run as (name or numeric id); applied only when herder runs as root.
    pub group: Option<String>,
}

impl Program {
    /// The same environment, directory and identity, running `command` instead.
    pub fn with_command(self, command: Command) -> Self {
        Self { command, ..self }
    }
}

/// A low-level, fully resolved request to start one process.
#[derive(Debug)]
pub struct SpawnRequest {
    /// What to run, where and as whom.
    pub program: Program,
    /// `RLIMIT_NOFILE` (soft and hard) for the process.
    pub nofile: Option<u64>,
    /// Where stdout and stderr go.
    pub output: Output,
    /// Open `cgroup.procs` files the process joins before it executes (empty: stays in herder's cgroups).
    pub cgroups: Vec<OwnedFd>,
    /// A descriptor the process gets at a number of its own (`readiness: {notification_fd: N}`: the
    /// write end of a pipe at N, which the process writes a newline to when ready).
    pub extra_fd: Option<(OwnedFd, u32)>,
}

/// A process that was started: it has successfully `exec`ed.
#[derive(Debug)]
pub struct Spawned {
    /// Its pid, which is also its process group and session id.
    pub pid: i32,
    /// Its start time in clock ticks after boot (`/proc/PID/stat` field 22), to recognise it later.
    pub start_time: Option<u64>,
    /// Resolves once the reaper has collected its exit status.
    pub exit: ExitReceiver,
    /// Read end of its stdout pipe, with [`Output::Piped`].
    pub stdout: Option<OwnedFd>,
    /// Read end of its stderr pipe, with [`Output::Piped`].
    pub stderr: Option<OwnedFd>,
}

/// Why a process could not be started. Messages name the program or path, never environment values.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The command is an empty list.
    #[error("the command is empty")]
    EmptyCommand,
    /// The program does not exist (or, for a script, its interpreter does not).
    #[error("command not found: `{program}`{}", if *.in_path { " (searched PATH)" } else { "" })]
    NotFound {
        /// The program as written.
        program: String,
        /// Whether it was looked up in `PATH`.
        in_path: bool,
    },
    /// The program exists but cannot be executed.
    #[error("permission denied: `{program}` is not executable")]
    PermissionDenied {
        /// The program as written or resolved.
        program: String,
    },
    /// The working directory is missing or not a directory.
    #[error("working directory `{}` is unusable", .path.display())]
    WorkingDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: io::Error,
    },
    /// `user:` names no user.
    #[error("unknown user `{0}`")]
    UnknownUser(String),
    /// `group:` names no group.
    #[error("unknown group `{0}`")]
    UnknownGroup(String),
    /// `fork`, the child's set-up or `exec` failed otherwise.
    #[error("cannot start `{program}`")]
    Exec {
        /// The program.
        program: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The spawner or reaper is not running.
    #[error("the process spawner is not available: {0}")]
    Unavailable(String),
}

struct Job {
    request: SpawnRequest,
    reply: oneshot::Sender<Result<Spawned, SpawnError>>,
}

/// Handle to the process-wide spawner thread. Cheap to copy around as `&'static`.
#[derive(Debug)]
pub struct Spawner {
    jobs: mpsc::Sender<Job>,
    reaper: &'static Reaper,
}

static SPAWNER: OnceLock<Result<Spawner, String>> = OnceLock::new();

impl Spawner {
    /// The process-wide spawner (and reaper), started on first use.
    pub fn global() -> Result<&'static Spawner, SpawnError> {
        let slot = SPAWNER.get_or_init(|| Spawner::start().map_err(|e| e.to_string()));
        slot.as_ref()
            .map_err(|msg| SpawnError::Unavailable(msg.clone()))
    }

    fn start() -> Result<Spawner, String> {
        let reaper = Reaper::global().map_err(|e: ReaperError| e.to_string())?;
        let child_nofile = match os::raise_nofile_soft_limit() {
            Ok(previous_soft) => os::nofile_limit()
                .ok()
                .map(|(_, hard)| (previous_soft, hard)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot raise the open-files limit");
                None
            }
        };
        let slots = os::StdioSlots::reserve()
            .map_err(|e| format!("cannot reserve the descriptors for children's stdio: {e}"))?;
        let (jobs, rx) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("herder-spawner".into())
            .spawn(move || {
                let mut ctx = ThreadCtx {
                    reaper,
                    default_nofile: child_nofile,
                    parent_pid: os::own_pid(),
                    slots,
                };
                while let Ok(job) = rx.recv() {
                    let result = ctx.spawn(job.request);
                    // The requester may have given up; the process is then still reaped and simply unowned.
                    let _ = job.reply.send(result);
                }
            });
        match spawned {
            Ok(_) => Ok(Spawner { jobs, reaper }),
            Err(e) => Err(format!("cannot start the spawner thread: {e}")),
        }
    }

    /// Starts a process. Resolves once it has `exec`ed (or failed to).
    pub async fn spawn(&self, request: SpawnRequest) -> Result<Spawned, SpawnError> {
        let (reply, rx) = oneshot::channel();
        self.jobs
            .send(Job { request, reply })
            .map_err(|_| SpawnError::Unavailable("spawner thread ended".into()))?;
        rx.await
            .map_err(|_| SpawnError::Unavailable("spawner thread ended".into()))?
    }

    /// The reaper the spawner registers its processes with.
    pub fn reaper(&self) -> &'static Reaper {
        self.reaper
    }
}

struct ThreadCtx {
    reaper: &'static Reaper,
    default_nofile: Option<(u64, u64)>,
    parent_pid: i32,
    slots: os::StdioSlots,
}

impl ThreadCtx {
    fn spawn(&mut self, req: SpawnRequest) -> Result<Spawned, SpawnError> {
        let (argv0, args): (String, Vec<String>) = match req.program.command {
            Command::Shell(script) => ("/bin/sh".into(), vec!["-c".into(), script]),
            Command::Argv(mut argv) => {
                if argv.is_empty() {
                    return Err(SpawnError::EmptyCommand);
                }
                let first = argv.remove(0);
                (first, argv)
            }
        };
        check_working_dir(&req.program.cwd)?;
        let path_var = req
            .program
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_str());
        let program = resolve_program(&argv0, &req.program.cwd, path_var)?;
        let credentials =
            resolve_credentials(req.program.user.as_deref(), req.program.group.as_deref())?;

        let nofile = req.nofile.map(|n| (n, n)).or(self.default_nofile);
        let exec_failed = |e: io::Error| exec_error(&argv0, &program, e);
        let (stdio, stdout, stderr) = standard_streams(req.output).map_err(exec_failed)?;
        let exec = os::Exec {
            program: c_string(program.as_os_str().as_encoded_bytes())?,
            argv: std::iter::once(argv0.as_str())
                .chain(args.iter().map(String::as_str))
                .map(|arg| c_string(arg.as_bytes()))
                .collect::<Result<_, _>>()?,
            env: req
                .program
                .env
                .iter()
                .map(|(key, value)| c_string(format!("{key}={value}").as_bytes()))
                .collect::<Result<_, _>>()?,
            cwd: c_string(req.program.cwd.as_os_str().as_encoded_bytes())?,
            stdio,
            cgroups: req.cgroups,
            extra_fd: req.extra_fd,
            setup: ChildSetup {
                parent_pid: self.parent_pid,
                nofile,
                credentials,
            },
        };

        let mut routes = self.reaper.lock();
        let pid = os::spawn_process(&exec, &mut self.slots).map_err(exec_failed)?;
        let exit = routes.register(pid);
        // Read while the pid cannot be reaped, hence cannot be reused.
        let start_time = proc::start_time(pid);
        drop(routes);
        Ok(Spawned {
            pid,
            start_time,
            exit,
            stdout,
            stderr,
        })
    }
}

/// The child's stdin (`/dev/null`), stdout and stderr, and the read ends herder keeps.
type Streams = ([OwnedFd; 3], Option<OwnedFd>, Option<OwnedFd>);

fn standard_streams(output: Output) -> io::Result<Streams> {
    let null = || -> io::Result<OwnedFd> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?;
        os::above_stdio(OwnedFd::from(file))
    };
    let pipe = || -> io::Result<(OwnedFd, OwnedFd)> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        Ok((read, os::above_stdio(write)?))
    };
    match output {
        Output::Null => Ok(([null()?, null()?, null()?], None, None)),
        Output::Piped => {
            let (out_read, out_write) = pipe()?;
            let (err_read, err_write) = pipe()?;
            Ok((
                [null()?, out_write, err_write],
                Some(out_read),
                Some(err_read),
            ))
        }
    }
}

/// A C string, or a clear error for text with a NUL byte in it.
fn c_string(bytes: &[u8]) -> Result<CString, SpawnError> {
    CString::new(bytes).map_err(|_| SpawnError::Exec {
        program: String::from_utf8_lossy(bytes.split(|b| *b == 0).next().unwrap_or_default())
            .into_owned(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "contains a NUL byte"),
    })
}

fn check_working_dir(cwd: &Path) -> Result<(), SpawnError> {
    match std::fs::metadata(cwd) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(SpawnError::WorkingDir {
            path: cwd.to_path_buf(),
            source: io::Error::from_raw_os_error(libc::ENOTDIR),
        }),
        Err(source) => Err(SpawnError::WorkingDir {
            path: cwd.to_path_buf(),
            source,
        }),
    }
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Resolves `program` the way `execvp` would in the child: relative to `cwd` if it contains a `/`, else the
/// first executable regular file of that name in `PATH`.
fn resolve_program(
    program: &str,
    cwd: &Path,
    path_var: Option<&str>,
) -> Result<PathBuf, SpawnError> {
    if program.contains('/') {
        let path = cwd.join(program);
        return match std::fs::metadata(&path) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(path),
            Ok(_) => Err(SpawnError::PermissionDenied {
                program: program.into(),
            }),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                Err(SpawnError::PermissionDenied {
                    program: program.into(),
                })
            }
            Err(_) => Err(SpawnError::NotFound {
                program: program.into(),
                in_path: false,
            }),
        };
    }
    let mut denied = false;
    for dir in path_var.unwrap_or(DEFAULT_PATH).split(':') {
        let dir = if dir.is_empty() {
            cwd.to_path_buf()
        } else {
            cwd.join(dir)
        };
        let candidate = dir.join(program);
        if let Ok(m) = std::fs::metadata(&candidate)
            && m.is_file()
        {
            if m.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
            denied = true;
        }
    }
    if denied {
        Err(SpawnError::PermissionDenied {
            program: program.into(),
        })
    } else {
        Err(SpawnError::NotFound {
            program: program.into(),
            in_path: true,
        })
    }
}

fn resolve_credentials(
    user: Option<&str>,
    group: Option<&str>,
) -> Result<Option<Credentials>, SpawnError> {
    if user.is_none() && group.is_none() {
        return Ok(None);
    }
    if !os::is_root() {
        tracing::warn!(
            ?user,
            ?group,
            "user/group are applied only when herder runs as root; ignored"
        );
        return Ok(None);
    }
    let user_entry = match user {
        Some(name) => Some(lookup_user(name)?),
        None => None,
    };
    let gid = match group {
        Some(name) => lookup_group(name)?,
        None => match &user_entry {
            Some(u) => u.gid,
            None => nix::unistd::getgid(),
        },
    };
    let (uid, groups) = match &user_entry {
        Some(u) => {
            let cname = std::ffi::CString::new(u.name.clone())
                .map_err(|_| SpawnError::UnknownUser(u.name.clone()))?;
            let groups = nix::unistd::getgrouplist(&cname, gid).unwrap_or_else(|_| vec![gid]);
            (u.uid, groups)
        }
        None => (nix::unistd::getuid(), vec![gid]),
    };
    Ok(Some(Credentials {
        uid: uid.as_raw(),
        gid: gid.as_raw(),
        groups: groups.into_iter().map(|g| g.as_raw()).collect(),
    }))
}

fn lookup_user(name: &str) -> Result<nix::unistd::User, SpawnError> {
    let found = match name.parse::<u32>() {
        Ok(uid) => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)),
        Err(_) => nix::unistd::User::from_name(name),
    };
    found
        .ok()
        .flatten()
        .ok_or_else(|| SpawnError::UnknownUser(name.into()))
}

fn lookup_group(name: &str) -> Result<nix::unistd::Gid, SpawnError> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(nix::unistd::Gid::from_raw(gid));
    }
    match nix::unistd::Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid),
        _ => Err(SpawnError::UnknownGroup(name.into())),
    }
}

fn exec_error(argv0: &str, resolved: &Path, e: io::Error) -> SpawnError {
    match e.raw_os_error() {
        Some(libc::ENOENT) => SpawnError::NotFound {
            program: argv0.into(),
            in_path: false,
        },
        Some(libc::EACCES) => SpawnError::PermissionDenied {
            program: resolved.display().to_string(),
        },
        _ => SpawnError::Exec {
            program: argv0.into(),
            source: e,
        },
    }
}
