//! Readiness the child reports itself, end to end through the binary: sd_notify
//! (`readiness: {notify: true}`) gates dependents and its `STATUS=` shows in status; a
//! stranger's and an oversized notification are refused; `systemd-notify` works; a missed
//! watchdog restarts the child; `notification_fd` (s6) makes it ready.

mod api_support;

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;

use api_support::{Instance, wait_until};

/// A child that speaks sd_notify with Python's standard library: `STATUS=warming up`, then,
/// once `gate` exists, `READY=1` and `STATUS=serving`, then a `WATCHDOG=1` every 100 ms
/// while `pings` exists, and `RELOADING=1` once `pings.reload` exists.
fn notifier(dir: &Path) -> String {
    let script = dir.join("notifier.py");
    std::fs::write(
        &script,
        r#"import os, socket, sys, time
gate, pings = sys.argv[1], sys.argv[2]
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
def send(text):
    s.sendto(text.encode(), addr)
send("STATUS=warming up")
while not os.path.exists(gate):
    time.sleep(0.02)
send("READY=1\nSTATUS=serving")
reloading = False
while True:
    if os.path.exists(pings):
        send("WATCHDOG=1")
    if not reloading and os.path.exists(pings + ".reload"):
        send("RELOADING=1")
        reloading = True
    time.sleep(0.1)
"#,
    )
    .unwrap();
    script.display().to_string()
}

fn notify_socket_of(pid: i64) -> SocketAddr {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let value = environ
        .split(|b| *b == 0)
        .find_map(|entry| entry.strip_prefix(b"NOTIFY_SOCKET=@"))
        .expect("the child has NOTIFY_SOCKET in the abstract namespace")
        .to_vec();
    SocketAddr::from_abstract_name(value).unwrap()
}

#[test]
fn a_notify_child_gates_its_dependents_and_strangers_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let (gate, pings) = (root.path().join("gate"), root.path().join("pings"));
    let api = format!(
        "name: api\ncommand: [\"python3\", \"{}\", \"{}\", \"{}\"]\nreadiness: {{notify: true}}\nstart_timeout: 60s\n",
        notifier(root.path()),
        gate.display(),
        pings.display()
    );
    let instance = Instance::start_explicit(&[
        ("api.yaml", &api),
        (
            "web.yaml",
            "name: web\ncommand: [\"sleep\", \"60\"]\ndependencies: [api]\n",
        ),
    ]);
    let api_status = wait_until(
        "api's STATUS= in status",
        || instance.context(),
        || Some(instance.child("api")).filter(|c| c["notify_status"] == "warming up"),
    );
    assert_eq!(api_status["state"], "starting", "{api_status:#}");
    assert_eq!(instance.child("web")["state"], "waiting");

    // A stranger (this test) and an oversized datagram: refused, the child stays starting.
    let pid = api_status["pid"].as_i64().unwrap();
    let address = notify_socket_of(pid);
    let stranger = UnixDatagram::unbound().unwrap();
    let refused = |what: &str, why: &str| {
        wait_until(
            what,
            || instance.stderr.all(),
            || {
                let log = instance.stderr.all();
                (log.contains("refused a notification") && log.contains(why)).then_some(())
            },
        )
    };
    stranger.send_to_addr(b"READY=1", &address).unwrap();
    refused("the stranger's refusal", "not a process of the child");
    stranger.send_to_addr(&vec![b'x'; 5000], &address).unwrap();
    refused(
        "the oversized one's refusal",
        "5000 bytes is over the limit of 4096",
    );
    assert_eq!(instance.child("api")["state"], "starting");
    assert_eq!(instance.child("web")["state"], "waiting");

    std::fs::write(&gate, "").unwrap();
    let ready = instance.ready("api");
    wait_until(
        "STATUS=serving",
        || instance.context(),
        || (instance.child("api")["notify_status"] == "serving").then_some(()),
    );
    assert_eq!(ready["pid"].as_i64(), Some(pid));
    instance.ready("web");
    let table = instance.herder(&["status"]).expect_code(0).stdout;
    assert!(table.contains("status: serving"), "{table}");
    std::fs::write(root.path().join("pings.reload"), "").unwrap();
    wait_until(
        "RELOADING=1 in status",
        || instance.context(),
        || (instance.child("api")["notify_state"] == "reloading").then_some(()),
    );
}

#[test]
fn a_missed_watchdog_restarts_the_child() {
    let root = tempfile::tempdir().unwrap();
    let (gate, pings) = (root.path().join("gate"), root.path().join("pings"));
    std::fs::write(&gate, "").unwrap();
    std::fs::write(&pings, "").unwrap();
    let api = format!(
        "name: api\ncommand: [\"python3\", \"{}\", \"{}\", \"{}\"]\nreadiness: {{notify: true}}\nhealth_check: {{watchdog: 500ms}}\nrestart: {{backoff: {{initial: 10ms, max: 20ms}}}}\n",
        notifier(root.path()),
        gate.display(),
        pings.display()
    );
    let instance = Instance::start_explicit(&[("api.yaml", &api)]);
    let first = instance.ready("api");
    let pid = first["pid"].as_i64().unwrap();
    let environ = std::fs::read_to_string(format!("/proc/{pid}/environ")).unwrap_or_default();
    assert!(
        environ.contains("WATCHDOG_USEC=500000"),
        "the child is told the period"
    );
    // Pinging: healthy, and still the same process well past one period.
    let since = instance.last_seq();
    wait_until(
        "healthy",
        || instance.context(),
        || (instance.child("api")["healthy"] == true).then_some(()),
    );
    let steady = wait_until(
        "the same process, pinging, past two periods",
        || instance.context(),
        || Some(instance.child("api")).filter(|c| c["uptime_secs"].as_f64() >= Some(1.2)),
    );
    assert_eq!(steady["pid"].as_i64(), Some(pid), "{steady:#}");
    assert_eq!(steady["restarts"], 0, "{steady:#}");
    // The pings stop: unhealthy, restarted by policy.
    std::fs::remove_file(&pings).unwrap();
    let unhealthy = instance.wait_event(since, "the watchdog's unhealthy event", |e| {
        e["type"] == "unhealthy"
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.contains("no WATCHDOG=1"))
    });
    assert_eq!(unhealthy["child"], "api");
    instance.ready_with_new_pid("api", pid, "a restart after the missed watchdog");
}

#[test]
fn systemd_notify_and_a_notification_fd_make_children_ready() {
    let have_systemd_notify = std::process::Command::new("systemd-notify")
        .arg("--help")
        .output()
        .is_ok_and(|o| o.status.success());
    let mut manifests = vec![(
        "fd.yaml",
        "name: fd\ncommand: \"read line < /dev/null; echo ready >&3; exec sleep 60\"\nreadiness: {notification_fd: 3}\n".to_owned(),
    )];
    if have_systemd_notify {
        manifests.push((
            "sd.yaml",
            "name: sd\ncommand: \"systemd-notify --ready --status=\\\"up and running\\\"; exec sleep 60\"\nreadiness: {notify: true}\n".to_owned(),
        ));
    } else {
        println!("skipping the systemd-notify half: no systemd-notify on this machine");
    }
    let borrowed: Vec<(&str, &str)> = manifests.iter().map(|(f, y)| (*f, y.as_str())).collect();
    let instance = Instance::start_explicit(&borrowed);
    instance.ready("fd");
    if have_systemd_notify {
        instance.ready("sd");
        assert_eq!(instance.child("sd")["notify_status"], "up and running");
    }
}
