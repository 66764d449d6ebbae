//! herder under a `Type=notify` supervisor, end to end: started with `NOTIFY_SOCKET` and
//! `WATCHDOG_USEC`, it sends `READY=1` with a status summary once the first generation is
//! applied, `WATCHDOG=1` pings, and `STOPPING=1` when it shuts down. The supervisor's side
//! is a real datagram socket read by the test.

mod api_support;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use api_support::{STEP, binary};

/// The next datagram that contains `want`, within [`STEP`]; every message seen so far.
fn wait_message(socket: &UnixDatagram, want: &str, seen: &mut Vec<String>) -> String {
    let deadline = Instant::now() + STEP;
    let mut buffer = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no {want:?} from herder; got {seen:?}");
        socket.set_read_timeout(Some(left)).unwrap();
        if let Ok(n) = socket.recv(&mut buffer) {
            let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
            seen.push(message.clone());
            if message.contains(want) {
                return message;
            }
        }
    }
}

#[test]
fn ready_status_watchdog_and_stopping_go_to_the_supervisor() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("herder.d");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("web.yaml"),
        "name: web\ncommand: [\"sleep\", \"60\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("bad.yaml"),
        "name: bad\ncommand: [\"sleep\", \"60\"]\n",
    )
    .unwrap();
    let notify = root.path().join("notify.sock");
    let socket = UnixDatagram::bind(&notify).unwrap();
    let mut up = Command::new(binary())
        .args(["up", "--quiet", "--socket"])
        .arg(root.path().join("herder.sock"))
        .arg("--state-dir")
        .arg(root.path().join("state"))
        .arg(&dir)
        .env("NOTIFY_SOCKET", &notify)
        .env("WATCHDOG_USEC", "400000")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    let ready = wait_message(&socket, "READY=1", &mut seen);
    assert!(
        ready.contains("STATUS=") && ready.contains("manifest errors"),
        "{ready:?}"
    );
    wait_message(&socket, "WATCHDOG=1", &mut seen);
    // A broken edit shows in the next summary.
    std::fs::write(dir.join("bad.yaml"), "name: bad\ncommand: 5\n").unwrap();
    wait_message(&socket, "1 manifest errors", &mut seen);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(up.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    wait_message(&socket, "STOPPING=1", &mut seen);
    let deadline = Instant::now() + STEP;
    while up.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "herder up did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}
