//! What a child uses: memory (current and peak), CPU time, recent CPU share and processes.
//!
//! From its cgroup where it has one (v2 `memory.current`, `memory.peak`, `cpu.stat`, `pids.current`; v1
//! `memory.usage_in_bytes`, `memory.max_usage_in_bytes`, `cpuacct.usage`, `pids.current`), else from `/proc`
//! over its process group. Read when asked (`herder status`), never on a timer: one `pread` per counter of a
//! child, on descriptors opened at its first reading while the descriptor table is less than half full.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::detect::V1;
use super::incarnation::{ChildCgroup, Dirs};
use crate::supervise::{os, proc};

/// One reading of a child's usage; `None` where this host cannot tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    /// Memory in use, bytes.
    pub memory_bytes: Option<u64>,
    /// The most memory used since the incarnation started, bytes.
    pub memory_peak_bytes: Option<u64>,
    /// CPU time used since the incarnation started, seconds.
    pub cpu_seconds: Option<f64>,
    /// CPU share since the previous reading (100 = one core), once there are two readings.
    pub cpu_percent: Option<f64>,
    /// Processes (and, in a cgroup, threads) in the tree.
    pub processes: Option<u64>,
}

/// The value of `key` in a flat-keyed cgroup file (`populated 1`, `oom_kill 3`, `usage_usec 123`).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        if k == key {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

/// A counter file of one cgroup, opened once and read again from offset 0 (a cgroup file
/// regenerates its content on every read from the start): a `pread` per reading instead of
/// an open, a read and a close, which is most of the cost of a reading.
#[derive(Debug)]
enum Counter {
    /// Kept open.
    Open(File),
    /// Opened per reading, relative to the open directory that holds the cgroup (herder's base of the
    /// hierarchy): descriptors are scarce. A walk of two path components instead of the whole absolute path,
    /// which was most of a status of thousands of children.
    At(Arc<OwnedFd>, PathBuf),
    /// Opened per reading by its absolute path: the first open failed.
    Path(PathBuf),
}

/// The directories counters are opened relative to, one per hierarchy (a handful), opened once.
fn base_dir(dir: &Path) -> Option<Arc<OwnedFd>> {
    static BASES: Mutex<Vec<(PathBuf, Arc<OwnedFd>)>> = Mutex::new(Vec::new());
    let mut bases = BASES.lock().ok()?;
    if let Some((_, fd)) = bases.iter().find(|(path, _)| path == dir) {
        return Some(Arc::clone(fd));
    }
    let fd = Arc::new(
        nix::fcntl::open(
            dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok()?,
    );
    bases.push((dir.to_path_buf(), Arc::clone(&fd)));
    Some(fd)
}

/// Counters stay open only while descriptor numbers are below half the soft
/// `RLIMIT_NOFILE`. The kernel hands out the lowest free number, so a descriptor at or
/// above that line means the table is at least half full: the rest is left to what a child
/// cannot do without (its pipes, its OOM eventfd, a new spawn).
fn keep_below() -> u64 {
    static LIMIT: OnceLock<u64> = OnceLock::new();
    *LIMIT.get_or_init(|| os::nofile_limit().map_or(1024, |(soft, _)| soft) / 2)
}

impl Counter {
    fn new(path: PathBuf) -> Self {
        match File::open(&path) {
            Ok(file) if u64::try_from(file.as_raw_fd()).is_ok_and(|fd| fd < keep_below()) => {
                Self::Open(file)
            }
            Ok(_) => {
                // The cgroup directory's parent is the base; the file is two components below it.
                let base = path.parent().and_then(Path::parent);
                let relative = base.and_then(|b| path.strip_prefix(b).ok());
                match (base.and_then(base_dir), relative) {
                    (Some(fd), Some(relative)) => Self::At(fd, relative.to_path_buf()),
                    _ => Self::Path(path),
                }
            }
            Err(_) => Self::Path(path),
        }
    }

    /// The file's content now (its first [`COUNTER_BYTES`] bytes), or `None` once the
    /// cgroup is gone.
    fn text(&self) -> Option<String> {
        let mut buf = [0u8; COUNTER_BYTES];
        let len = match self {
            Self::Open(file) => file.read_at(&mut buf, 0).ok()?,
            Self::At(dir, relative) => File::from(
                nix::fcntl::openat(
                    &**dir,
                    relative,
                    OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .ok()?,
            )
            .read(&mut buf)
            .ok()?,
            Self::Path(path) => File::open(path).ok()?.read(&mut buf).ok()?,
        };
        Some(String::from_utf8_lossy(&buf[..len]).into_owned())
    }

    fn number(&self) -> Option<u64> {
        self.text()?.trim().parse().ok()
    }
}

/// How much of a counter file is read: numbers, and the first lines of `cpu.stat`
/// (`usage_usec` comes first).
const COUNTER_BYTES: usize = 256;

/// The counter files of one cgroup that a reading looks at.
#[derive(Debug)]
struct Counters {
    memory: Option<Counter>,
    memory_peak: Option<Counter>,
    /// v2 `cpu.stat` (`usage_usec`), or v1 `cpuacct.usage` (nanoseconds).
    cpu: Option<(Counter, bool)>,
    processes: Option<Counter>,
}

impl Counters {
    fn new(dirs: &Dirs, v2_memory: bool, v2_pids: bool) -> Self {
        let at = |dir: &Path, file: &str| Some(Counter::new(dir.join(file)));
        let (memory, memory_peak) = match (&dirs.unified, dirs.v1.get(&V1::Memory)) {
            (Some(dir), _) if v2_memory => (at(dir, "memory.current"), at(dir, "memory.peak")),
            (_, Some(dir)) => (
                at(dir, "memory.usage_in_bytes"),
                at(dir, "memory.max_usage_in_bytes"),
            ),
            _ => (None, None),
        };
        let cpu = match (&dirs.unified, dirs.v1.get(&V1::Cpuacct)) {
            (Some(dir), _) => Some((Counter::new(dir.join("cpu.stat")), true)),
            (None, Some(dir)) => Some((Counter::new(dir.join("cpuacct.usage")), false)),
            (None, None) => None,
        };
        let processes = match (&dirs.unified, dirs.v1.get(&V1::Pids)) {
            (Some(dir), _) if v2_pids => at(dir, "pids.current"),
            (_, Some(dir)) => at(dir, "pids.current"),
            _ => None,
        };
        Self {
            memory,
            memory_peak,
            cpu,
            processes,
        }
    }

    /// Reads the counters (without `cpu_percent`); `dirs` counts the processes where no
    /// controller does.
    fn read(&self, dirs: &Dirs) -> Usage {
        Usage {
            memory_bytes: self.memory.as_ref().and_then(Counter::number),
            memory_peak_bytes: self.memory_peak.as_ref().and_then(Counter::number),
            cpu_seconds: self.cpu.as_ref().and_then(|(counter, v2)| {
                if *v2 {
                    keyed(&counter.text()?, "usage_usec").map(|us| us as f64 / 1e6)
                } else {
                    counter.number().map(|ns| ns as f64 / 1e9)
                }
            }),
            cpu_percent: None,
            processes: match &self.processes {
                Some(counter) => counter.number(),
                None => Some(dirs.pids().len() as u64),
            },
        }
    }
}

/// The usage of the main process `pid` alone from `/proc/PID/stat`, for a child without a cgroup: one read,
/// where a sum over its process group would scan every process of the machine per child.
pub fn read_process(pid: i32) -> Usage {
    let Some(stat) = proc::stat(pid) else {
        return Usage::default();
    };
    let ticks = os::clock_ticks_per_second().max(1);
    Usage {
        memory_bytes: Some(stat.rss_pages * os::page_size()),
        cpu_seconds: Some(stat.cpu_ticks as f64 / ticks as f64),
        ..Usage::default()
    }
}

/// A child's usage source, shared by its actor (which sets the cgroup once made) and its handles (which read).
#[derive(Debug, Default)]
pub struct Meter {
    cgroup: OnceLock<Arc<ChildCgroup>>,
    /// The cgroup's counter files, opened at the first reading.
    counters: OnceLock<Counters>,
    cpu: CpuMeter,
}

impl Meter {
    /// Measures from `cgroup` from now on.
    pub fn set(&self, cgroup: Arc<ChildCgroup>) {
        // Set once per incarnation; a second cgroup is never made.
        let _ = self.cgroup.set(cgroup);
    }

    /// Reads the usage now: from the cgroup, else from the main process `pid`, else nothing.
    pub fn read(&self, pid: Option<i32>) -> Usage {
        let mut usage = match (self.cgroup.get(), pid) {
            (Some(cg), _) => self
                .counters
                .get_or_init(|| Counters::new(&cg.dirs, cg.v2_has("memory"), cg.v2_has("pids")))
                .read(&cg.dirs),
            (None, Some(pid)) => read_process(pid),
            (None, None) => return Usage::default(),
        };
        if let Some(cpu) = usage.cpu_seconds {
            usage.cpu_percent = self.cpu.percent(cpu, Instant::now());
        }
        usage
    }
}

/// Turns successive CPU-time readings into a recent CPU share. Readings closer than [`CpuMeter::MIN_WINDOW`]
/// to the previous one are measured against the one before, so frequent callers still see a stable figure.
#[derive(Debug, Default)]
pub struct CpuMeter {
    samples: Mutex<[Option<(Instant, f64)>; 2]>,
}

impl CpuMeter {
    /// The shortest window a share is measured over.
    pub const MIN_WINDOW: std::time::Duration = std::time::Duration::from_millis(500);

    /// Records `cpu_seconds` read now and returns the share in percent of one core.
    pub fn percent(&self, cpu_seconds: f64, now: Instant) -> Option<f64> {
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let [older, newer] = *samples;
        let base = match newer {
            Some((at, _)) if now.duration_since(at) >= Self::MIN_WINDOW => {
                *samples = [newer, Some((now, cpu_seconds))];
                newer
            }
            Some(_) => older.or(newer),
            None => {
                *samples = [None, Some((now, cpu_seconds))];
                None
            }
        };
        let (at, then) = base?;
        let wall = now.duration_since(at).as_secs_f64();
        (wall > 0.0).then(|| (cpu_seconds - then).max(0.0) / wall * 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_counter_read_relative_to_its_base_reads_the_file_now() {
        let base = tempfile::tempdir().expect("a temporary directory");
        let file = base.path().join("web-1").join("pids.current");
        std::fs::create_dir(base.path().join("web-1")).expect("the cgroup directory");
        std::fs::write(&file, "3\n").expect("the counter");
        let fd = base_dir(base.path()).expect("the base opens");
        let again = base_dir(base.path()).expect("the base again");
        assert!(Arc::ptr_eq(&fd, &again), "each base is opened once");
        let counter = Counter::At(fd, PathBuf::from("web-1/pids.current"));
        assert_eq!(counter.number(), Some(3));
        std::fs::write(&file, "5\n").expect("the counter changes");
        assert_eq!(counter.number(), Some(5));
        std::fs::remove_dir_all(base.path().join("web-1")).expect("the cgroup goes");
        assert_eq!(counter.number(), None, "a removed cgroup reads as gone");
    }

    #[test]
    fn keyed_files() {
        let events = "populated 1\nfrozen 0\n";
        assert_eq!(keyed(events, "populated"), Some(1));
        assert_eq!(keyed(events, "frozen"), Some(0));
        assert_eq!(
            keyed("usage_usec 250\nuser_usec 1\n", "usage_usec"),
            Some(250)
        );
        assert_eq!(keyed("max 3", "max"), Some(3));
        assert_eq!(keyed("", "max"), None);
    }

    #[test]
    fn cpu_share_over_a_stable_window() {
        let meter = CpuMeter::default();
        let t0 = Instant::now();
        assert_eq!(meter.percent(1.0, t0), None);
        let share = meter.percent(1.5, t0 + Duration::from_secs(1));
        assert!((share.unwrap_or(0.0) - 50.0).abs() < 1e-6, "{share:?}");
        // 10 ms later: still measured against t0's reading, not over 10 ms.
        let share = meter.percent(1.5, t0 + Duration::from_millis(1010));
        assert!((share.unwrap_or(0.0) - 49.5).abs() < 0.1, "{share:?}");
    }
}
