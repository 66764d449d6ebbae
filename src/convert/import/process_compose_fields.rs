//! The probes, restart and stop settings of a process-compose process.

use serde_json::{Map, Value, json};

use super::Import;
use super::process_compose::Process;
use super::units::{seconds, signal};
use crate::convert::note::Note;

impl Process<'_> {
    pub(super) fn probes(
        &self,
        fields: &mut Map<String, Value>,
        import: &mut Import,
        errors: &mut Vec<Note>,
    ) {
        for (key, field) in [
            ("readiness_probe", "readiness"),
            ("liveness_probe", "health_check"),
        ] {
            let Some(probe) = self.process.get(key).and_then(Value::as_object) else {
                continue;
            };
            let at = self.at(key);
            let mut out = Map::new();
            if let Some(exec) = probe.get("exec").and_then(Value::as_object) {
                let command = exec.get("command").cloned().unwrap_or(Value::Null);
                if exec.contains_key("working_dir") {
                    import.unmapped.push(self.source.note(&format!("{at}/exec/working_dir"), "an exec probe runs in the child's working directory: `working_dir` not mapped"));
                }
                out.insert("exec".into(), json!({"command": command}));
            } else if let Some(http) = probe.get("http_get").and_then(Value::as_object) {
                let scheme = http.get("scheme").and_then(Value::as_str).unwrap_or("http");
                if scheme != "http" {
                    import.unmapped.push(self.source.note(
                        &format!("{at}/http_get/scheme"),
                        format!(
                            "scheme `{scheme}`: herder probes plain HTTP only: probe not mapped"
                        ),
                    ));
                    continue;
                }
                let host = http
                    .get("host")
                    .and_then(Value::as_str)
                    .unwrap_or("127.0.0.1");
                let port = http
                    .get("num_port")
                    .and_then(Value::as_u64)
                    .or_else(|| {
                        http.get("port")
                            .and_then(|p| p.as_u64().or_else(|| p.as_str()?.parse().ok()))
                    })
                    .unwrap_or(80);
                let path = http.get("path").and_then(Value::as_str).unwrap_or("/");
                let path = if path.starts_with('/') {
                    path.to_owned()
                } else {
                    format!("/{path}")
                };
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.to_owned()
                };
                let mut check = json!({"url": format!("http://{host}:{port}{path}")});
                if let Some(status) = http.get("status_code").and_then(Value::as_u64) {
                    check["status"] = Value::from(status);
                }
                if http.contains_key("headers") {
                    import.unmapped.push(self.source.note(
                        &format!("{at}/http_get/headers"),
                        "probe headers: herder sends none: not mapped",
                    ));
                }
                out.insert("http".into(), check);
            } else {
                errors.push(self.source.note(&at, "a probe needs `exec` or `http_get`"));
                continue;
            }
            // process-compose's defaults: every 10s, 1s timeout, 3 failures, 1 success.
            let number = |name: &str, default: u64| {
                probe.get(name).and_then(Value::as_u64).unwrap_or(default)
            };
            out.insert(
                "interval".into(),
                Value::from(seconds(number("period_seconds", 10).max(1))),
            );
            out.insert(
                "timeout".into(),
                Value::from(seconds(number("timeout_seconds", 1).max(1))),
            );
            let delay = number("initial_delay_seconds", 0);
            if delay > 0 {
                out.insert("start_period".into(), Value::from(seconds(delay)));
            }
            out.insert(
                "failure_threshold".into(),
                Value::from(number("failure_threshold", 3).max(1)),
            );
            if field == "readiness" {
                out.insert(
                    "success_threshold".into(),
                    Value::from(number("success_threshold", 1).max(1)),
                );
            }
            fields.insert(field.into(), Value::Object(out));
            import
                .mapped
                .push(self.source.note(&at, format!("{key} → {field}")));
        }
        if let Some(line) = self.process.get("ready_log_line").and_then(Value::as_str) {
            let at = self.at("ready_log_line");
            if fields.contains_key("readiness") {
                import.unmapped.push(self.source.note(
                    &at,
                    "`ready_log_line` with a readiness probe: the probe is kept",
                ));
            } else {
                fields.insert("readiness".into(), json!({"log_line": regex::escape(line)}));
                import.mapped.push(self.source.note(&at, "ready_log_line → readiness.log_line (escaped: process-compose matches a substring)"));
            }
        }
    }

    pub(super) fn availability(
        &self,
        fields: &mut Map<String, Value>,
        import: &mut Import,
        errors: &mut Vec<Note>,
    ) {
        let Some(availability) = self.process.get("availability").and_then(Value::as_object) else {
            // process-compose does not restart by default.
            fields.insert("restart".into(), Value::from("never"));
            return;
        };
        let at = self.at("availability");
        let policy = match availability
            .get("restart")
            .and_then(Value::as_str)
            .unwrap_or("no")
        {
            "no" => "never",
            "always" => "always",
            "on_failure" => "on-failure",
            "exit_on_failure" => {
                fields.insert("criticality".into(), Value::from("critical"));
                import.mapped.push(self.source.note(&format!("{at}/restart"), "exit_on_failure → restart never, criticality critical (its failure stops everything)"));
                "never"
            }
            other => {
                errors.push(self.source.value_note(
                    &format!("{at}/restart"),
                    format!("unknown restart `{other}` (no, always, on_failure, exit_on_failure)"),
                ));
                "never"
            }
        };
        let mut restart = json!({"policy": policy});
        if let Some(backoff) = availability
            .get("backoff_seconds")
            .and_then(Value::as_u64)
            .filter(|b| *b > 0)
        {
            // process-compose waits the same time before every restart.
            restart["backoff"] = json!({"initial": seconds(backoff), "max": seconds(backoff), "multiplier": 1.0, "jitter": 0.0});
        }
        if let Some(max) = availability
            .get("max_restarts")
            .and_then(Value::as_u64)
            .filter(|m| *m > 0)
        {
            restart["limit"] = json!({"count": max, "window": "1h"});
            import.unmapped.push(self.source.note(&format!("{at}/max_restarts"), format!("max_restarts {max}: herder counts restarts within a window (1h here), not in total")));
        }
        for key in ["exit_on_end", "exit_on_skipped"] {
            if availability.get(key).and_then(Value::as_bool) == Some(true) {
                import.unmapped.push(self.source.note(
                    &format!("{at}/{key}"),
                    format!("`{key}`: no herder equivalent: not mapped"),
                ));
            }
        }
        // The short form when the policy is all there is.
        let restart = match restart.as_object() {
            Some(spec) if spec.len() == 1 => Value::from(policy),
            _ => restart,
        };
        fields.insert("restart".into(), restart);
        import
            .mapped
            .push(self.source.note(&at, "availability → restart"));
    }

    pub(super) fn shutdown(&self, fields: &mut Map<String, Value>, import: &mut Import) {
        let Some(shutdown) = self.process.get("shutdown").and_then(Value::as_object) else {
            return;
        };
        let at = self.at("shutdown");
        let mut stop = Map::new();
        if let Some(number) = shutdown.get("signal") {
            let text = number.as_i64().map_or_else(
                || number.as_str().unwrap_or_default().to_owned(),
                |n| n.to_string(),
            );
            match signal(&text) {
                Some(signal) => {
                    stop.insert("signal".into(), Value::from(signal.name()));
                }
                None => import.unmapped.push(self.source.note(
                    &format!("{at}/signal"),
                    format!("signal {text} is not one herder sends: SIGTERM is used"),
                )),
            }
        }
        if let Some(timeout) = shutdown.get("timeout_seconds").and_then(Value::as_u64) {
            stop.insert("timeout".into(), Value::from(seconds(timeout)));
        }
        for key in ["command", "parent_only", "send_keys"] {
            if shutdown.contains_key(key) {
                import.unmapped.push(self.source.note(
                    &format!("{at}/{key}"),
                    format!("shutdown `{key}`: herder signals the whole process group: not mapped"),
                ));
            }
        }
        if !stop.is_empty() {
            fields.insert("stop".into(), Value::Object(stop));
            import.mapped.push(self.source.note(&at, "shutdown → stop"));
        }
    }
}
