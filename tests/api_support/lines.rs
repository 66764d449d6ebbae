//! Output of processes the tests run, read line by line on threads: bounded waits for a line.

use super::*;

/// Lines of a running process's stream, read by a thread.
pub struct Lines {
    rx: Receiver<String>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Lines {
    /// No stream (yet): waits time out, and nothing was seen.
    pub fn none() -> Self {
        Self {
            rx: mpsc::channel().1,
            seen: Arc::default(),
        }
    }

    /// Reads `stream` line by line on a thread of its own.
    pub fn spawn(stream: impl Read + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                log.lock().unwrap().push(line.clone());
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { rx, seen }
    }

    /// The next line that satisfies `want`, within [`STEP`]; panics naming `what`.
    pub fn wait_for(&self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) if want(&line) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "timed out waiting for {what}; lines so far:\n{}",
                        self.all()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("stream ended before {what}; lines:\n{}", self.all())
                }
            }
        }
    }

    /// The next line parsed as JSON that satisfies `want`.
    pub fn wait_json(&self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let line = self.wait_for(what, |line| {
            serde_json::from_str::<Value>(line).is_ok_and(|v| want(&v))
        });
        serde_json::from_str(&line).unwrap()
    }

    /// Waits up to `within` for the next line; false at the timeout or once the stream has ended.
    pub fn next_within(&self, within: Duration) -> bool {
        self.rx.recv_timeout(within).is_ok()
    }

    /// Every line read so far.
    pub fn all(&self) -> String {
        self.seen.lock().unwrap().join("\n")
    }
}

/// A CLI process still running (`-f`), killed on drop.
pub struct Follower {
    pub(super) child: Child,
    /// Its standard output.
    pub stdout: Lines,
    /// Its standard error.
    pub stderr: Lines,
}

impl Follower {
    /// Waits (bounded) for it to exit by itself.
    pub fn wait_exit(mut self) -> ExitStatus {
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the follower did not exit; stderr:\n{}",
                self.stderr.all()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
