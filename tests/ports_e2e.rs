//! Declared ports, end to end through the binary: a port held by a process outside herder
//! makes the child wait, with the holder named in status and in a `port-held` event; a
//! stop while it waits is carried out at once; the child starts once the port is freed.

mod api_support;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};

use api_support::Instance;

#[test]
fn a_held_port_makes_the_child_wait_until_the_holder_lets_go() {
    // A port free now, then held by a process herder does not supervise.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let holder_code = format!(
        "import socket,sys\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('127.0.0.1',{port}))\ns.listen()\nprint('held',flush=True)\nsys.stdin.read()\n"
    );
    let scripts = tempfile::tempdir().unwrap();
    let script = scripts.path().join("holder.py");
    std::fs::write(&script, holder_code).unwrap();
    let mut holder = Command::new("python3")
        .arg(&script)
        .arg("port-holder-marker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "held");

    let web = format!(
        "name: web\ncommand: [\"python3\", \"-m\", \"http.server\", \"{port}\", \"--bind\", \"127.0.0.1\"]\nports: [{{port: {port}, host: 127.0.0.1}}]\nreadiness: {{tcp: {{host: 127.0.0.1, port: {port}}}, interval: 100ms}}\n"
    );
    let instance = Instance::start_explicit(&[("web.yaml", &web)]);
    let waiting = instance.wait_state("web", "waiting");
    let reason = waiting["reason"].as_str().unwrap_or_default().to_owned();
    assert!(
        reason.contains(&format!(
            "port 127.0.0.1:{port}/tcp is held by pid {}",
            holder.id()
        )) && reason.contains("port-holder-marker"),
        "{waiting:#}"
    );
    assert!(waiting.get("pid").is_none(), "nothing spawned: {waiting:#}");
    instance.wait_event(0, "a port-held event", |e| {
        e["type"] == "port-held" && e["child"] == "web"
    });

    // A stop while it waits does not wait for the port.
    instance
        .herder(&["stop", "web", "--wait", "--timeout", "10s"])
        .expect_code(0);
    assert_eq!(instance.child("web")["state"], "stopped");
    instance.herder(&["start", "web"]).expect_code(0);
    instance.wait_state("web", "waiting");

    // The holder lets go: the child starts (its own bind succeeds) and is ready. herder
    // never signalled the holder: it is still alive until we end it.
    assert!(
        holder.try_wait().unwrap().is_none(),
        "herder must not touch the holder"
    );
    drop(holder.stdin.take());
    holder.wait().unwrap();
    let ready = instance.wait_state("web", "ready");
    assert!(ready["pid"].as_i64().is_some(), "{ready:#}");
}
