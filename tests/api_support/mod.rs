//! A running `herder up` for the control API tests, isolated in its own temporary
//! directory (`XDG_RUNTIME_DIR` and `XDG_STATE_HOME` point into it, so instance discovery
//! sees only this instance), and helpers to run the `herder` CLI against it.
//!
//! Every wait is bounded: output is read by threads into channels read with
//! `recv_timeout`, and a failure names what was awaited.
#![allow(dead_code)] // each test file uses a different part

mod explicit;
mod lines;
mod procs;

// Each test file uses a different part of these too.
#[allow(unused_imports)]
pub use lines::{Follower, Lines};
#[allow(unused_imports)]
pub use procs::*;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long any single step may take before the test fails.
pub const STEP: Duration = Duration::from_secs(20);

/// The `herder` binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_herder")
}

/// A child that prints, echoes SIGHUP and runs until stopped; every command is permitted.
pub const WEB: &str = r#"name: web
command: ["sh", "-c", "echo web started; trap 'echo got HUP' HUP; while :; do sleep 0.1; done"]
command_permissions: {restart: true, stop: true, signals: [SIGHUP]}
stop: {timeout: 2s}
"#;

/// A child whose manifest permits no command.
pub const LOCKED: &str = r#"name: locked
command: ["sh", "-c", "while :; do sleep 0.2; done"]
command_permissions: {restart: false, stop: false, signals: []}
stop: {timeout: 2s}
"#;

/// Output of a finished CLI run.
#[derive(Debug)]
pub struct Output {
    /// Exit code (`-1` when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The CLI process's pid (what the audit record must name).
    pub pid: u32,
}

impl Output {
    /// Panics with the whole output unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(self.code, code, "unexpected exit code; output: {self:#?}");
        self
    }

    /// stdout parsed as one JSON document.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

/// A fresh temporary root holding `herder.d` with `manifests` (`file name`, YAML) in it.
fn manifest_dir(manifests: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("herder.d");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, yaml) in manifests {
        std::fs::write(dir.join(name), yaml).unwrap();
    }
    (root, dir)
}

/// A running `herder up`.
pub struct Instance {
    /// Holds everything; removed on drop.
    pub root: tempfile::TempDir,
    /// The manifest directory.
    pub dir: PathBuf,
    /// The socket it serves.
    pub socket: PathBuf,
    /// Its state directory (logs, events, state file).
    pub state: PathBuf,
    up: Option<Child>,
    /// Its standard error (lifecycle events, errors).
    pub stderr: Lines,
    /// The state directory given with `--state-dir` (then `--socket` is given too), if any.
    explicit_state: Option<PathBuf>,
    /// More arguments of `herder up` (`--metrics ADDR`, `--web ADDR`).
    up_args: Vec<String>,
    /// More environment of `herder up` (`HERDER_CGROUPS=v2`).
    pub up_env: Vec<(String, String)>,
    /// Every event of the running `herder up`, followed from its first on first use: waits wake on it.
    events: std::sync::OnceLock<Follower>,
}

/// The longest a wait goes without looking again when no event arrives (a status can change without one of the
/// awaited child's events, for instance when the first generation is applied).
const RECHECK: Duration = Duration::from_millis(250);

impl Instance {
    /// Writes `manifests` (`file name`, YAML) and starts `herder up --quiet` on them; returns
    /// once the socket is bound.
    pub fn start(manifests: &[(&str, &str)]) -> Self {
        Self::start_with(manifests, &[])
    }

    /// [`Instance::start`] with more arguments of `herder up`.
    pub fn start_with(manifests: &[(&str, &str)], up_args: &[&str]) -> Self {
        let (root, dir) = manifest_dir(manifests);
        let mut instance = Self {
            socket: PathBuf::new(),
            state: PathBuf::new(),
            dir,
            up: None,
            stderr: Lines::none(),
            root,
            explicit_state: None,
            up_args: up_args.iter().map(|arg| arg.to_string()).collect(),
            up_env: Vec::new(),
            events: std::sync::OnceLock::new(),
        };
        instance.launch();
        instance
    }

    /// Starts `herder up` on this directory (again).
    pub fn launch(&mut self) {
        // A follower of an earlier `herder up` has ended with it.
        self.events = std::sync::OnceLock::new();
        let mut up = self.command(&["up", "--quiet"]);
        up.args(&self.up_args);
        up.envs(self.up_env.iter().map(|(k, v)| (k, v)));
        if let Some(state) = &self.explicit_state {
            up.arg("--socket").arg(&self.socket);
            up.arg("--state-dir").arg(state);
        }
        let mut up = up
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        self.stderr = Lines::spawn(up.stderr.take().unwrap());
        self.up = Some(up);
        let line = self
            .stderr
            .wait_for("`herder up` to bind its socket", |line| {
                line.contains("herder: watching")
            });
        let socket = line
            .split("(socket ")
            .nth(1)
            .and_then(|rest| rest.split(", state").next())
            .unwrap_or_else(|| panic!("no socket in {line:?}"));
        self.socket = PathBuf::from(socket);
        let state = line
            .split(", state ")
            .nth(1)
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap_or_else(|| panic!("no state directory in {line:?}"));
        self.state = PathBuf::from(state);
    }

    /// The runtime directory the instance's socket lives in.
    pub fn runtime_dir(&self) -> PathBuf {
        self.root.path().join("run")
    }

    /// A `herder` command with this instance's environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary());
        command
            .args(args)
            .env("XDG_RUNTIME_DIR", self.runtime_dir())
            .env("XDG_STATE_HOME", self.root.path().join("state"))
            .env("NO_COLOR", "1")
            .env_remove("HERDER_SOCKET")
            .env_remove("HERDER_STATE_DIR");
        if self.explicit_state.is_some() {
            command.env("HERDER_SOCKET", &self.socket);
        }
        command
    }

    /// Runs the CLI to completion (bounded).
    pub fn herder(&self, args: &[&str]) -> Output {
        run_bounded(self.command(args))
    }

    /// Starts a CLI that keeps running (`logs -f`, `events -f`).
    pub fn follow(&self, args: &[&str]) -> Follower {
        let mut child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = Lines::spawn(child.stdout.take().unwrap());
        let stderr = Lines::spawn(child.stderr.take().unwrap());
        Follower {
            child,
            stdout,
            stderr,
        }
    }

    /// The pid of `herder up`.
    pub fn pid(&self) -> u32 {
        self.up.as_ref().unwrap().id()
    }

    /// The status of `name` from `herder status --format json`.
    pub fn child(&self, name: &str) -> Value {
        self.find_child(name)
            .unwrap_or_else(|| panic!("no child {name} in the status"))
    }

    /// The status of `name`, if the instance has it yet.
    pub fn find_child(&self, name: &str) -> Option<Value> {
        let status = self
            .herder(&["status", "--format", "json"])
            .expect_code(0)
            .json();
        status["children"]
            .as_array()
            .and_then(|children| children.iter().find(|c| c["name"] == name).cloned())
    }

    /// Waits until `name` reports `state` (right after start the first generation may not be
    /// applied yet). `herder status` is asked again whenever herder records an event, and at
    /// least every [`RECHECK`], within [`STEP`].
    pub fn wait_state(&self, name: &str, state: &str) -> Value {
        let deadline = Instant::now() + STEP;
        loop {
            let child = self.find_child(name).unwrap_or_default();
            if child["state"] == state {
                return child;
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "{name} never reached {state}; last status {child:#}; herder stderr:\n{}",
                self.stderr.all()
            );
            self.next_event(RECHECK.min(deadline - now));
        }
    }

    /// `probe` for [`wait_until`], made to wait for herder's next event (at most [`RECHECK`])
    /// after each miss, so that a wait looks again when something happened, not on a clock.
    fn on_events<'a, T>(
        &'a self,
        mut probe: impl FnMut() -> Option<T> + 'a,
    ) -> impl FnMut() -> Option<T> + 'a {
        move || {
            let found = probe();
            if found.is_none() {
                self.next_event(RECHECK);
            }
            found
        }
    }

    /// Waits up to `within` for herder's next event (from a follower started on first use, so an
    /// event recorded since the last look wakes it at once).
    fn next_event(&self, within: Duration) {
        let stream = self
            .events
            .get_or_init(|| self.follow(&["events", "-f", "--format", "json", "--since", "0"]));
        if !stream.stdout.next_within(within) {
            // The follower has ended (herder is stopping): do not spin on it.
            std::thread::sleep(within.min(Duration::from_millis(20)));
        }
    }

    /// Waits (bounded) for `herder up` to exit and returns its status.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let up = self.up.as_mut().unwrap();
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(status) = up.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "herder up did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills `herder up` with SIGKILL (leaving its socket file behind) and reaps it.
    pub fn kill(&mut self) {
        let up = self.up.as_mut().unwrap();
        up.kill().unwrap();
        up.wait().unwrap();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(up) = self.up.as_mut()
            && up.try_wait().ok().flatten().is_none()
        {
            // Ordered shutdown first, so no child outlives the test.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(up.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + STEP;
            while up.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = up.kill();
            let _ = up.wait();
        }
    }
}

/// Runs `command` to completion within [`STEP`], killing it if it hangs.
pub fn run_bounded(mut command: Command) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let read = |mut stream: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stream.read_to_string(&mut text);
            text
        })
    };
    let out = read(Box::new(stdout));
    let err = read(Box::new(stderr));
    let deadline = Instant::now() + STEP;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "`herder {:?}` did not finish",
                command.get_args().collect::<Vec<_>>()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        code: status.code().unwrap_or(-1),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        pid,
    }
}

/// The events of `herder events --format json` (one JSON object per line).
pub fn events(instance: &Instance, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["events", "--format", "json", "--limit", "10000"];
    all.extend_from_slice(args);
    instance
        .herder(&all)
        .expect_code(0)
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Mode bits of `path` (without the file type).
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

/// Polls `probe` until it returns `Some` (every 20 ms, within [`STEP`]); panics naming
/// `what` (which should say what bug a timeout suggests) and `context()`.
pub fn wait_until<T>(
    what: &str,
    context: impl Fn() -> String,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + STEP;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {STEP:?}: {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
