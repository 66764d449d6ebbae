//! `herder top` end to end in a real terminal: tmux runs it against a real `herder up`;
//! keys go in with `send-keys` and the screen comes back with `capture-pane`. It filters,
//! restarts a child (the new pid appears, the command is audited with the reason typed),
//! follows its log, and survives the instance being killed and started again.

mod api_support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use api_support::{Instance, STEP, WEB, events};

const DB: &str = r#"name: db
command: ["sh", "-c", "echo db up; while :; do sleep 0.2; done"]
stop: {timeout: 2s}
"#;

struct Tmux {
    server: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.server)
            .args(args)
            .output()
            .unwrap()
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "top"]).stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "top"];
        args.extend_from_slice(keys);
        assert!(self.run(&args).status.success());
    }

    fn text(&self, text: &str) {
        assert!(
            self.run(&["send-keys", "-t", "top", "-l", text])
                .status
                .success()
        );
    }

    /// The screen once `want` accepts it (bounded).
    fn wait(&self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let screen = self.screen();
            if want(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {what}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn row<'a>(screen: &'a str, name: &str) -> &'a str {
    screen
        .lines()
        .find(|line| line.contains(&format!(" {name} ")) && line.contains('│'))
        .unwrap_or("")
}

#[test]
fn top_filters_restarts_follows_and_reconnects_in_tmux() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("skipped: tmux is not installed (apt-get install tmux; .ci/run does)");
        return;
    }
    let mut instance = Instance::start(&[("web.yaml", WEB), ("db.yaml", DB)]);
    let pid = instance.wait_state("web", "ready")["pid"].as_i64().unwrap();
    instance.wait_state("db", "ready");
    let tmux = Tmux {
        server: format!("herder-top-{}", std::process::id()),
    };
    let command = format!(
        "exec env XDG_RUNTIME_DIR={} NO_COLOR=1 {} top --socket {}",
        instance.runtime_dir().display(),
        api_support::binary(),
        instance.socket.display()
    );
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        "120",
        "-y",
        "30",
        &command,
    ]);
    assert!(started.status.success(), "{started:?}");
    tmux.wait("both children ready and connected", |s| {
        s.contains("connected") && row(s, "web").contains("ready") && row(s, "db").contains("ready")
    });
    assert!(row(&tmux.screen(), "web").contains(&pid.to_string()));

    // Filter to web, then restart it with a reason.
    tmux.keys(&["/"]);
    tmux.text("web");
    tmux.keys(&["Enter"]);
    tmux.wait("the filter", |s| {
        s.contains("children 1/2") && row(s, "db").is_empty()
    });
    tmux.keys(&["r"]);
    tmux.wait("the confirmation", |s| s.contains("restart web?"));
    tmux.text("from tmux");
    tmux.keys(&["Enter"]);
    tmux.wait("the command accepted", |s| {
        s.contains("restart web: accepted")
    });
    let restarted = tmux.wait("a new pid for web", |s| {
        let row = row(s, "web");
        row.contains("ready") && !row.contains(&pid.to_string())
    });
    let new_pid = instance.child("web")["pid"].as_i64().unwrap();
    assert!(
        row(&restarted, "web").contains(&new_pid.to_string()),
        "{restarted}"
    );
    let audited = events(&instance, &[]);
    assert!(
        audited.iter().any(|e| e["type"] == "command"
            && e["verb"] == "restart"
            && e["reason"] == "from tmux"
            && e["allowed"] == true),
        "{audited:#?}"
    );

    // Its log pane follows the new incarnation.
    tmux.wait("web's log", |s| {
        s.contains("logs: web") && s.matches("web started").count() >= 1
    });

    // The instance goes away and comes back: top says so and reconnects.
    instance.kill();
    tmux.wait("the lost connection", |s| {
        s.contains("disconnected, reconnecting")
    });
    instance.launch();
    let back = instance.wait_state("web", "ready")["pid"].as_i64().unwrap();
    tmux.wait("the reconnection with the new pid", |s| {
        s.contains("connected")
            && !s.contains("disconnected")
            && row(s, "web").contains(&back.to_string())
    });

    tmux.keys(&["?"]);
    tmux.wait("the help", |s| {
        s.contains("keys (Esc closes)") && s.contains("quarantine")
    });
    // Esc alone (an Esc followed at once by a key reads as Alt-key).
    tmux.keys(&["Escape"]);
    tmux.wait("the help closed", |s| !s.contains("keys (Esc closes)"));
    tmux.keys(&["q"]);
    let deadline = Instant::now() + STEP;
    while tmux.run(&["has-session", "-t", "top"]).status.success() {
        assert!(
            Instant::now() < deadline,
            "top did not quit:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(Path::new(&instance.socket).exists());
}
