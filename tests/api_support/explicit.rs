//! Instances with an explicit `--socket` and `--state-dir`, and the waits, event reads and raw requests of
//! the reload and supervision end-to-end tests.

use super::*;

impl Instance {
    /// Writes `manifests` into a fresh manifest directory for a `herder up` that is given
    /// `--socket` and `--state-dir` explicitly (the CLI finds it through `HERDER_SOCKET`),
    /// without starting it: write more files first (secrets), then [`Instance::launch`].
    pub fn prepare(manifests: &[(&str, &str)]) -> Self {
        let (root, dir) = manifest_dir(manifests);
        Self {
            socket: root.path().join("herder.sock"),
            state: root.path().join("state"),
            explicit_state: Some(root.path().join("state")),
            up_args: Vec::new(),
            up_env: Vec::new(),
            events: std::sync::OnceLock::new(),
            dir,
            up: None,
            stderr: Lines::none(),
            root,
        }
    }

    /// [`Instance::prepare`], then [`Instance::launch`].
    pub fn start_explicit(manifests: &[(&str, &str)]) -> Self {
        let mut instance = Self::prepare(manifests);
        instance.launch();
        instance
    }

    /// The state directory (logs, events.jsonl, children.json).
    pub fn state_dir(&self) -> PathBuf {
        match &self.explicit_state {
            Some(state) => state.clone(),
            None => self.root.path().join("state"),
        }
    }

    /// `herder status --format json`.
    pub fn status(&self) -> Value {
        self.herder(&["status", "--format", "json"])
            .expect_code(0)
            .json()
    }

    /// Waits until `name` is ready and returns its status.
    pub fn ready(&self, name: &str) -> Value {
        self.wait_state(name, "ready")
    }

    /// Waits until `name` is ready with a pid other than `old_pid`, and returns its status.
    pub fn ready_with_new_pid(&self, name: &str, old_pid: i64, why: &str) -> Value {
        wait_until(
            &format!("{name} ready with a pid other than {old_pid} ({why})"),
            || self.context(),
            self.on_events(|| {
                self.find_child(name)
                    .filter(|c| c["state"] == "ready" && c["pid"].as_i64() != Some(old_pid))
            }),
        )
    }

    /// Waits until `name` is no longer in the status.
    pub fn wait_gone(&self, name: &str, why: &str) {
        wait_until(
            &format!("{name} to leave the status ({why})"),
            || self.context(),
            self.on_events(|| self.find_child(name).is_none().then_some(())),
        );
    }

    /// What a failed wait prints: the status and herder's stderr so far.
    pub fn context(&self) -> String {
        let status = self
            .herder(&["status", "--format", "json"])
            .stdout
            .to_string();
        format!(
            "last status: {status}\nherder stderr:\n{}",
            self.stderr.all()
        )
    }

    /// The sequence number of the newest event.
    pub fn last_seq(&self) -> u64 {
        let (code, body) = self.api_get("/v1/events?limit=1");
        assert_eq!(code, 200, "{body:#}");
        body["last_seq"]
            .as_u64()
            .unwrap_or_else(|| panic!("no last_seq in {body:#}"))
    }

    /// Every event after `seq`.
    pub fn events_since(&self, seq: u64) -> Vec<Value> {
        events(self, &["--since", &seq.to_string()])
    }

    /// Waits for an event after `seq` that satisfies `want`; returns it.
    pub fn wait_event(&self, since: u64, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        wait_until(
            what,
            || {
                format!(
                    "events since {since}:\n{}\n{}",
                    self.events_since(since)
                        .iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join("\n"),
                    self.context()
                )
            },
            self.on_events(|| self.events_since(since).into_iter().find(|e| want(e))),
        )
    }

    /// The event stream after `since` (`herder events -f --since SEQ --format json`), one
    /// JSON event per line of its `stdout`: `stdout.wait_json` blocks on the stream itself
    /// (bounded by [`STEP`]) instead of polling `herder events`. Events after `since` that
    /// happened before the call are replayed first, so nothing between is missed.
    pub fn event_stream(&self, since: u64) -> Follower {
        let since = since.to_string();
        self.follow(&["events", "-f", "--format", "json", "--since", &since])
    }

    /// Sends `signal` to `herder up`.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), signal).unwrap();
    }

    /// `GET path` on the control socket, by hand (HTTP/1.1, `Connection: close`): the status
    /// code and the body as JSON.
    pub fn api_get(&self, path: &str) -> (u16, Value) {
        self.api_call("GET", path, None)
    }

    /// `POST path` with a JSON body on the control socket, by hand: the status code and the
    /// body as JSON.
    pub fn api_post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.api_call("POST", path, Some(body))
    }

    fn api_call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        use std::io::Write as _;
        let mut stream = std::os::unix::net::UnixStream::connect(&self.socket).unwrap();
        stream.set_read_timeout(Some(STEP)).unwrap();
        let body = body.map(Value::to_string).unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: herder\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status code in {head:?}"));
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        };
        let json = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("body of {path} is not JSON ({e}): {body}"));
        (code, json)
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}
