//! Several children flood their output at once (issue 11): herder's memory stays bounded,
//! rotation is exact to a line, a slow follower is skipped ahead with a visible gap, a quiet
//! child loses nothing, and the flooders keep running.

mod api_support;

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::process::Stdio;

use api_support::{Instance, Lines, wait_until};

const FLOODERS: usize = 4;
const MAX_SIZE: u64 = 256 << 10;
/// The longest line in a file: the stamp, the stream and a 100-byte line.
const LONGEST_LINE: u64 = 24 + 1 + 6 + 1 + 100 + 1;
/// Rotations of every flooder's file to wait for (a debug build on a shared machine
/// pumps a few MB/s; the release figures are in the flood benchmark).
const ROTATIONS: usize = 4;
/// herder's peak resident memory may not exceed this (a debug build idles at about
/// 15 MiB; the pipeline's stated bound for four flooders is about 14 MiB more).
const PEAK_RSS_BOUND_KIB: u64 = 96 * 1024;

fn flooder(i: usize) -> (String, String) {
    let line = "x".repeat(99);
    (
        format!("flood{i}.yaml"),
        format!(
            "name: flood{i}\ncommand: [\"yes\", \"{line}\"]\nlogs: {{max_size: 256Ki, keep: 2}}\n\
             stop: {{timeout: 2s}}\ncommand_permissions: {{stop: true}}\n"
        ),
    )
}

const QUIET: &str = r#"name: quiet
command: ["sh", "-c", "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.02; done"]
"#;

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("herder's status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

#[test]
fn flooding_children_keep_memory_bounded_and_rotation_exact() {
    let files: Vec<(String, String)> = (0..FLOODERS).map(flooder).collect();
    let mut manifests: Vec<(&str, &str)> = files
        .iter()
        .map(|(f, y)| (f.as_str(), y.as_str()))
        .collect();
    manifests.push(("quiet.yaml", QUIET));
    let instance = Instance::start(&manifests);
    for i in 0..FLOODERS {
        instance.ready(&format!("flood{i}"));
    }
    instance.ready("quiet");

    // A follower that reads slowly: it must be skipped ahead, and say so.
    let mut follower = instance
        .command(&["logs", "-f", "-n", "0", "flood0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("herder logs -f");
    let follower_err = Lines::spawn(follower.stderr.take().expect("stderr"));
    let mut slow = follower.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut total = 0usize;
        // The slowness under test: 4 KiB every 5 ms, against a flood of tens of MB/s.
        while let Ok(n) = slow.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        total
    });

    let logs = instance.state.join("logs");
    let mut rotations = [0usize; FLOODERS];
    let mut seen: [Option<u64>; FLOODERS] = [None; FLOODERS];
    wait_until(
        "every flooder's log file to rotate four times",
        || instance.context(),
        || {
            for i in 0..FLOODERS {
                let inode = std::fs::metadata(logs.join(format!("flood{i}.log.1")))
                    .ok()
                    .map(|m| m.ino());
                if inode.is_some() && inode != seen[i] {
                    seen[i] = inode;
                    rotations[i] += 1;
                }
            }
            rotations.iter().all(|r| *r >= ROTATIONS).then_some(())
        },
    );
    let peak = vm_hwm_kib(instance.pid());
    follower_err.wait_for("the slow follower to be told it was skipped ahead", |l| {
        l.contains("were no longer in memory")
    });

    for i in 0..FLOODERS {
        let child = instance.child(&format!("flood{i}"));
        assert_eq!(child["restarts"], 0, "flood{i} kept running: {child:#}");
        assert_eq!(
            child["logs"]["lost_lines"], 0,
            "the file took every line: {child:#}"
        );
        instance
            .herder(&["stop", &format!("flood{i}")])
            .expect_code(0);
    }
    for i in 0..FLOODERS {
        instance.wait_state(&format!("flood{i}"), "stopped");
        let base = logs.join(format!("flood{i}.log"));
        let size = |suffix: &str| {
            let mut path = base.clone().into_os_string();
            path.push(suffix);
            std::fs::metadata(&path).map(|m| m.len()).ok()
        };
        for suffix in ["", ".1", ".2"] {
            let len = size(suffix).unwrap_or_else(|| panic!("flood{i}.log{suffix} exists"));
            assert!(
                len <= MAX_SIZE,
                "flood{i}.log{suffix} is {len} bytes, over max_size"
            );
            if !suffix.is_empty() {
                assert!(
                    len > MAX_SIZE - LONGEST_LINE,
                    "flood{i}.log{suffix} is {len} bytes: rotated more than a line early"
                );
            }
        }
        assert_eq!(size(".3"), None, "keep: 2 keeps two rotated files");
    }
    assert!(
        peak <= PEAK_RSS_BOUND_KIB,
        "herder's peak RSS was {peak} KiB with {FLOODERS} flooders and a slow follower"
    );
    eprintln!("herder's peak RSS with {FLOODERS} flooders: {peak} KiB");

    // The quiet child lost nothing while the others flooded.
    let quiet = instance
        .herder(&["logs", "quiet", "-n", "1000"])
        .expect_code(0);
    let ticks: Vec<u64> = quiet
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("tick ")?.parse().ok())
        .collect();
    assert!(
        ticks.len() > 10,
        "the quiet child printed: {}",
        quiet.stdout
    );
    assert!(
        ticks.windows(2).all(|w| w[1] == w[0] + 1),
        "the quiet child's lines are all there, in order: {ticks:?}"
    );
    let _ = follower.kill();
    let _ = follower.wait();
    let read = reader.join().expect("reader thread");
    assert!(read > 0, "the follower got lines at all");
}
