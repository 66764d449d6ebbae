//! Scale figures through the real binary, printed (no harness), at 1,000, 5,000 and
//! 10,000 children (`HERDER_BENCH_SIZES=1000,5000` picks others), each size in one run:
//!
//! * cold start: `herder up` on N `sleep` manifests until the N-th child has exec'd,
//!   against a bare spawn loop of the same N (`std::process::Command`) in the same run
//!   (target: within 1.5×);
//! * `rename()` of a new manifest → the exec of its child, p50/p99 over 100 samples, each
//!   a new manifest with a unique `sleep` argument, 10–50 ms apart (targets: p50 < 10 ms,
//!   p99 < 30 ms, not growing with N);
//! * SIGKILL of a child (restart `always`, backoff `initial: 0s`) → the exec of its
//!   replacement, p50/p99 over 20 samples: herder's exit → restart reaction;
//! * `herder status --format json`, end to end (median of 5; target < 100 ms at 10,000);
//! * herder's idle PSS per child (`/proc/PID/smaps_rollup` after 3 s idle; target
//!   < 10 KiB) and its idle CPU over 5 s;
//! * `herder stop --all` until the last child is gone, then `start --all` until all are
//!   running again (target: under 1 s plus the children's own exit time);
//! * `herder down` (SIGTERM) until the last child is gone, and herder's own exit after it
//!   (target: within 200 ms).
//!
//! Execs and exits are timed by the kernel: the proc connector (a netlink socket, as root)
//! reports each with its `CLOCK_MONOTONIC` timestamp. Without the privilege the bench
//! says so and stops. The bench raises its own limits for 10,000 children (`RLIMIT_NOFILE`
//! to 262,144, `kernel.pid_max` to 4,194,304 when lower), never herder's defaults.
//! "rescan + plan over 5,000 unchanged files" is in `benches/reload.rs`.
//!
//! Run with `cargo build --release && cargo bench --bench scale`. herder inherits the
//! environment: `HERDER_CGROUPS=off` measures without cgroups (two descriptors a child
//! instead of three and more, for a machine whose descriptor limit cannot be raised).

use std::collections::HashSet;
use std::io::Read as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod connector;
use connector::{Connector, ProcEvent, monotonic_ns};

const SAMPLES: usize = 100;
/// How many children are killed for the exit → restart figure.
const KILLS: usize = 20;
/// The restart policy of the sampled children: restart at once, so the exit → restart
/// figure is herder's reaction, not a backoff (the peer harness uses the same).
const RESTART_AT_ONCE: &str = "restart: {policy: always, backoff: {initial: 0s, max: 1s}}\n";

fn main() {
    let herder = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/herder");
    if !herder.is_file() {
        eprintln!(
            "{} is missing: build it first with `cargo build --release`",
            herder.display()
        );
        std::process::exit(2);
    }
    let sizes: Vec<usize> = std::env::var("HERDER_BENCH_SIZES")
        .unwrap_or_else(|_| "1000,5000,10000".to_owned())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let descriptors = raise_limits(sizes.iter().copied().max().unwrap_or(0));
    let Some(connector) = Connector::connect() else {
        eprintln!("the proc connector needs root (CAP_NET_ADMIN): no figures");
        std::process::exit(2);
    };
    let events = connector.listen();
    for size in sizes {
        // herder holds two pipes a child, with cgroups also an eventfd (v1 memory OOM
        // events) and, up to a quarter of the limit, open counter files; the samples add
        // children.
        let cgroups = std::env::var("HERDER_CGROUPS").as_deref() != Ok("off");
        let (per_child, counters) = if cgroups {
            (3, descriptors / 4)
        } else {
            (2, 0)
        };
        let needed = (size + SAMPLES) as u64 * per_child + counters + 1024;
        if needed > descriptors {
            println!(
                "--- {size} children: skipped, herder needs about {needed} descriptors, the limit is {descriptors} (HERDER_CGROUPS=off needs 2 a child)"
            );
            continue;
        }
        measure(&herder, size, &events);
    }
}

/// Raises this process's (and so herder's) descriptor limit and the pid limit for `most`
/// children; says what it changed. Returns the descriptor limit in force.
fn raise_limits(most: usize) -> u64 {
    let want = 262_144;
    let limit = libc::rlimit {
        rlim_cur: want,
        rlim_max: want,
    };
    // SAFETY: setrlimit reads one rlimit, which `limit` is.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } == 0 {
        println!("RLIMIT_NOFILE raised to {want} for the bench and its herder");
    } else {
        // Without CAP_SYS_RESOURCE the hard limit is the ceiling: raise the soft one to it.
        let mut current = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit, which `current` is; setrlimit reads it.
        unsafe {
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut current);
            current.rlim_cur = current.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &current);
        }
        println!(
            "RLIMIT_NOFILE cannot be raised past its hard limit {} here (no CAP_SYS_RESOURCE)",
            current.rlim_max
        );
    }
    let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    if most > 0
        && pid_max < 4_194_304
        && std::fs::write("/proc/sys/kernel/pid_max", "4194304").is_ok()
    {
        println!("kernel.pid_max raised from {pid_max} to 4194304");
    }
    let mut now = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit, which `now` is.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut now) };
    now.rlim_cur
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Every figure at `size` children.
fn measure(herder: &Path, size: usize, events: &mpsc::Receiver<ProcEvent>) {
    // The machine may be shared: the load says how much the figures can be trusted.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!("--- {size} children (load average {})", load.join(" "));
    let marker = 7_000_000 + size as u64;
    let wanted = format!("sleep\0{marker}\0").into_bytes();

    // A bare spawn loop: the floor for starting `size` processes from one process.
    let bare_start = Instant::now();
    let mut bare: Vec<Child> = (0..size)
        .map(|_| {
            Command::new("sleep")
                .arg(marker.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn sleep")
        })
        .collect();
    let bare_time = bare_start.elapsed();
    for child in &mut bare {
        let _ = child.kill();
    }
    for child in &mut bare {
        let _ = child.wait();
    }
    drain(events);

    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("herder.d");
    let stage = root.path().join("stage");
    std::fs::create_dir_all(&dir).expect("manifest directory");
    std::fs::create_dir_all(&stage).expect("staging directory");
    for i in 0..size {
        std::fs::write(
            dir.join(format!("c-{i:05}.yaml")),
            format!("name: c-{i:05}\ncommand: [\"sleep\", \"{marker}\"]\n"),
        )
        .expect("write a manifest");
    }
    let socket = root.path().join("herder.sock");
    let t0 = monotonic_ns();
    let mut up = Herder::start(herder, &dir, &socket, &root.path().join("state"));
    let mut children = HashSet::new();
    let last_exec = collect_execs(
        events,
        up.pid(),
        &wanted,
        size,
        &mut children,
        Duration::from_secs(300),
    );
    let cold = Duration::from_nanos(last_exec.saturating_sub(t0));
    println!(
        "cold start to the {size}th exec: {:.0} ms; bare spawn loop: {:.0} ms (ratio {:.2}, target ≤ 1.5)",
        ms(cold),
        ms(bare_time),
        cold.as_secs_f64() / bare_time.as_secs_f64()
    );
    up.wait_ready(size, Duration::from_secs(300));

    // Idle: PSS and CPU.
    std::thread::sleep(Duration::from_secs(3));
    let cpu_before = cpu_ticks(up.pid());
    std::thread::sleep(Duration::from_secs(5));
    let cpu = cpu_ticks(up.pid()).saturating_sub(cpu_before);
    let pss = pss_kib(up.pid());
    println!(
        "idle: PSS {pss} KiB = {:.1} KiB per child (target < 10), CPU {} ms over 5 s",
        pss as f64 / size as f64,
        cpu * 1000 / clock_ticks()
    );

    let mut status_times: Vec<Duration> = (0..5)
        .map(|_| {
            let start = Instant::now();
            let _ = up.status();
            start.elapsed()
        })
        .collect();
    status_times.sort();
    println!(
        "herder status --format json: median {:.1} ms of 5 (target < 100 ms at 10,000)",
        ms(status_times[2])
    );

    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut samples = Vec::with_capacity(SAMPLES);
    let mut sampled: Vec<(i32, Vec<u8>)> = Vec::with_capacity(SAMPLES);
    drain(events);
    for k in 0..SAMPLES {
        let name = format!("s-{k:04}");
        let argument = format!("{}", 900_000 + k);
        let staged = stage.join(format!("{name}.yaml"));
        std::fs::write(
            &staged,
            format!("name: {name}\ncommand: [\"sleep\", \"{argument}\"]\n{RESTART_AT_ONCE}"),
        )
        .expect("stage a manifest");
        let wanted = format!("sleep\0{argument}\0").into_bytes();
        let renamed = monotonic_ns();
        std::fs::rename(&staged, dir.join(format!("{name}.yaml"))).expect("rename into place");
        let mut one = HashSet::new();
        let at = collect_execs(
            events,
            up.pid(),
            &wanted,
            1,
            &mut one,
            Duration::from_secs(20),
        );
        sampled.extend(one.iter().map(|pid| (*pid, wanted.clone())));
        children.extend(one);
        samples.push(Duration::from_nanos(at.saturating_sub(renamed)));
        std::thread::sleep(Duration::from_millis(10 + rng.next() % 41));
    }
    samples.sort();
    println!(
        "rename → child exec, {} samples: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms (targets: p50 < 10, p99 < 30)",
        samples.len(),
        ms(percentile(&samples, 0.50)),
        ms(percentile(&samples, 0.90)),
        ms(percentile(&samples, 0.99)),
        ms(samples[samples.len() - 1]),
    );
    let total = size + SAMPLES;

    // exit → restart: SIGKILL a child whose restart has no delay, until its new exec.
    let mut reactions = Vec::with_capacity(KILLS);
    for (pid, wanted) in sampled.iter().take(KILLS) {
        drain(events);
        let killed = monotonic_ns();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let mut one = HashSet::new();
        let at = collect_execs(
            events,
            up.pid(),
            wanted,
            1,
            &mut one,
            Duration::from_secs(20),
        );
        children.remove(pid);
        children.extend(one);
        reactions.push(Duration::from_nanos(at.saturating_sub(killed)));
        std::thread::sleep(Duration::from_millis(10 + rng.next() % 41));
    }
    reactions.sort();
    println!(
        "SIGKILL → replacement exec (backoff initial 0s), {} samples: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        reactions.len(),
        ms(percentile(&reactions, 0.50)),
        ms(percentile(&reactions, 0.99)),
        ms(reactions[reactions.len() - 1]),
    );

    // stop --all until the last child is gone; start --all until all exec'd again.
    drain(events);
    let stop_t0 = monotonic_ns();
    up.cli(&["stop", "--all"]);
    let cli_done = Duration::from_nanos(monotonic_ns().saturating_sub(stop_t0));
    let last_exit = collect_exits(events, &children, None, Duration::from_secs(300)).0;
    println!(
        "stop --all of {total}: last child gone after {:.0} ms (CLI returned after {:.0} ms)",
        ms(Duration::from_nanos(last_exit.saturating_sub(stop_t0))),
        ms(cli_done)
    );
    let start_t0 = monotonic_ns();
    up.cli(&["start", "--all"]);
    children.clear();
    let mut any = HashSet::new();
    let last = collect_execs(
        events,
        up.pid(),
        b"sleep\0",
        total,
        &mut any,
        Duration::from_secs(300),
    );
    children = any;
    println!(
        "start --all of {total}: last exec after {:.0} ms",
        ms(Duration::from_nanos(last.saturating_sub(start_t0)))
    );
    up.wait_ready(total, Duration::from_secs(300));

    // down: SIGTERM until the last child is gone, and herder's exit after it.
    drain(events);
    let down_t0 = monotonic_ns();
    up.signal_term();
    let (last_exit, herder_exit) = collect_exits(
        events,
        &children,
        Some(up.pid() as i32),
        Duration::from_secs(300),
    );
    up.wait_exit(Duration::from_secs(60));
    println!(
        "down (SIGTERM) of {total}: last child gone after {:.0} ms; herder exited {:.0} ms after it (target ≤ 200)",
        ms(Duration::from_nanos(last_exit.saturating_sub(down_t0))),
        ms(Duration::from_nanos(
            herder_exit.unwrap_or(0).saturating_sub(last_exit)
        ))
    );
}

/// Discards the events seen so far.
fn drain(events: &mpsc::Receiver<ProcEvent>) {
    while events.try_recv().is_ok() {}
}

/// Waits for `count` execs of children of `parent` whose command line starts with
/// `wanted` (other processes of a shared machine run `sleep` too); records their pids;
/// returns the kernel time of the last.
fn collect_execs(
    events: &mpsc::Receiver<ProcEvent>,
    parent: u32,
    wanted: &[u8],
    count: usize,
    pids: &mut HashSet<i32>,
    limit: Duration,
) -> u64 {
    let deadline = Instant::now() + limit;
    let mut cmdline = Vec::with_capacity(64);
    let mut last = 0;
    let mut seen = 0;
    while seen < count {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "only {seen} of {count} execs within {limit:?}"
        );
        let Ok(event) = events.recv_timeout(left) else {
            continue;
        };
        if let ProcEvent::Exec { pid, at } = event
            && starts_with(pid, wanted, &mut cmdline)
            && parent_of(pid) == Some(parent)
            && pids.insert(pid)
        {
            seen += 1;
            last = at;
        }
    }
    last
}

/// Waits until every pid of `pids` has exited (and `also`, when given); returns the kernel
/// time of the last child's exit and of `also`'s.
fn collect_exits(
    events: &mpsc::Receiver<ProcEvent>,
    pids: &HashSet<i32>,
    also: Option<i32>,
    limit: Duration,
) -> (u64, Option<u64>) {
    let deadline = Instant::now() + limit;
    let mut left: HashSet<i32> = pids.iter().copied().filter(|pid| alive(*pid)).collect();
    let mut last = monotonic_ns();
    let mut also_at = None;
    while !left.is_empty() || (also.is_some() && also_at.is_none()) {
        let remaining = deadline.saturating_duration_since(Instant::now());
        assert!(
            !remaining.is_zero(),
            "{} children still running after {limit:?}",
            left.len()
        );
        let Ok(event) = events.recv_timeout(remaining.min(Duration::from_millis(500))) else {
            // A lost event (a full socket): look at what is left directly.
            left.retain(|pid| alive(*pid));
            if let Some(pid) = also
                && also_at.is_none()
                && !alive(pid)
            {
                also_at = Some(monotonic_ns());
            }
            continue;
        };
        if let ProcEvent::Exit { pid, at } = event {
            if left.remove(&pid) {
                last = at;
            }
            if Some(pid) == also {
                also_at = Some(at);
            }
        }
    }
    (last, also_at)
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// The parent pid of `pid`, from `/proc/PID/stat`.
fn parent_of(pid: i32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn starts_with(pid: i32, wanted: &[u8], buffer: &mut Vec<u8>) -> bool {
    buffer.clear();
    std::fs::File::open(format!("/proc/{pid}/cmdline"))
        .and_then(|mut file| file.read_to_end(buffer))
        .is_ok_and(|_| buffer.starts_with(wanted))
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let num = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    num(14) + num(15)
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .unwrap_or(100)
        .max(1)
}

fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("Pss:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// A tiny deterministic generator for the pauses between samples.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The `herder up` under measurement.
struct Herder {
    binary: PathBuf,
    socket: PathBuf,
    child: Child,
}

impl Herder {
    fn start(binary: &Path, dir: &Path, socket: &Path, state: &Path) -> Self {
        // stderr (one line per event) goes to a file: a pipe drained by this process would
        // make herder's printing depend on this process being scheduled.
        let log_path = state.with_extension("stderr");
        let log = std::fs::File::create(&log_path).expect("stderr file");
        let child = Command::new(binary)
            .arg("up")
            .arg(dir)
            .arg("--quiet")
            .arg("--socket")
            .arg(socket)
            .arg("--state-dir")
            .arg(state)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start herder up");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .contains("herder: watching")
        {
            assert!(
                Instant::now() < deadline,
                "herder up did not start watching within 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            binary: binary.to_path_buf(),
            socket: socket.to_path_buf(),
            child,
        }
    }

    fn status(&self) -> serde_json::Value {
        let output = Command::new(&self.binary)
            .args(["status", "--format", "json", "--socket"])
            .arg(&self.socket)
            .output()
            .expect("herder status");
        serde_json::from_slice(&output.stdout).unwrap_or_default()
    }

    fn wait_ready(&self, count: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let status = self.status();
            let ready = status["children"].as_array().map_or(0, |all| {
                all.iter().filter(|c| c["state"] == "ready").count()
            });
            if ready >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {ready} of {count} children ready after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs `herder ARGS --socket …` to completion.
    fn cli(&self, args: &[&str]) {
        let status = Command::new(&self.binary)
            .args(args)
            .arg("--socket")
            .arg(&self.socket)
            .stdout(Stdio::null())
            .status()
            .expect("run the herder CLI");
        assert!(status.success(), "herder {args:?} failed: {status}");
    }

    fn signal_term(&self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM herder");
    }

    fn wait_exit(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.child.try_wait().expect("wait herder").is_none() {
            assert!(
                Instant::now() < deadline,
                "herder did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Herder {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
