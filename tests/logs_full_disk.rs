//! A full disk (a tiny tmpfs as the state directory) and a vanished log directory stop
//! nothing (issue 11): the child keeps running and printing, the lines the file cannot take
//! are counted (status, events), and writing resumes once there is space again.

mod api_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use api_support::{Instance, wait_until};
use serde_json::Value;

const FLOOD: &str = r#"name: flood
command: ["seq", "1", "1000000000000"]
logs: {max_size: 1Mi, keep: 1}
"#;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` at `path`, or says why it cannot.
    fn mount(path: &Path, size: &str) -> Result<Self, String> {
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if out.status.success() {
            Ok(Self(path.to_path_buf()))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: herder may still hold a file open while it exits.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn last_number(instance: &Instance) -> Option<u64> {
    let out = instance.herder(&["logs", "flood", "-n", "1"]);
    out.stdout.trim().parse().ok()
}

#[test]
fn a_full_disk_costs_counted_lines_and_writing_resumes() {
    let mut instance = Instance::prepare(&[("flood.yaml", FLOOD)]);
    let state = instance.state_dir();
    let _tmpfs = match Tmpfs::mount(&state, "2M") {
        Ok(tmpfs) => tmpfs,
        Err(why) => {
            eprintln!("skipped: cannot mount a tmpfs for the state directory ({why})");
            return;
        }
    };
    instance.launch();
    let pid = instance.ready("flood")["pid"].clone();
    let failed = instance.wait_event(0, "the log file to fail with the disk full", |e| {
        e["type"] == "log-write-failed" && e["child"] == "flood"
    });
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("No space left")),
        "{failed:#}"
    );
    let full = instance.child("flood");
    assert!(full["logs"]["lost_lines"].as_u64() > Some(0), "{full:#}");

    // The child is not blocked: it keeps running and its lines keep reaching the ring.
    let before = last_number(&instance).expect("a number in the ring");
    wait_until(
        "the child's output to keep flowing while the disk is full",
        || instance.context(),
        || last_number(&instance).filter(|n| *n > before + 10_000),
    );
    let still = instance.child("flood");
    assert_eq!(still["pid"], pid, "the same process: {still:#}");
    assert_eq!(still["restarts"], 0, "{still:#}");

    // Space comes back: writing resumes and says how much was lost.
    let seq = instance.last_seq();
    std::fs::remove_file(state.join("logs/flood.log.1")).expect("free the rotated file");
    let resumed = instance.wait_event(seq, "the log file to be written again", |e| {
        e["type"] == "log-write-resumed" && e["child"] == "flood"
    });
    assert!(resumed["lost_lines"].as_u64() > Some(0), "{resumed:#}");
    let metrics = instance.herder(&["status", "--format", "json"]).json();
    let lost = metrics["children"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "flood"))
        .map(|c| c["logs"]["lost_lines"].clone())
        .unwrap_or(Value::Null);
    assert!(lost.as_u64() > Some(0), "lost lines stay counted: {lost}");
    instance.herder(&["down"]).expect_code(0);
    assert!(instance.wait_exit().success());
}

const TICKER: &str = r#"name: ticker
command: ["sh", "-c", "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.01; done"]
"#;

#[test]
fn a_vanished_log_directory_is_created_again() {
    let instance = Instance::start_explicit(&[("ticker.yaml", TICKER)]);
    instance.ready("ticker");
    let logs = instance.state_dir().join("logs");
    let file = logs.join("ticker.log");
    wait_until(
        "the first lines in the log file",
        || instance.context(),
        || std::fs::metadata(&file).ok().filter(|m| m.len() > 0),
    );
    std::fs::remove_dir_all(&logs).expect("remove the log directory");
    let again = wait_until(
        "the log file to be created again",
        || instance.context(),
        || {
            std::fs::read_to_string(&file)
                .ok()
                .filter(|t| t.contains("tick"))
        },
    );
    let first: u64 = again
        .lines()
        .next()
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a tick line");
    assert!(first > 1, "the new file continues the output: {again}");
    assert_eq!(instance.child("ticker")["restarts"], 0);
}
