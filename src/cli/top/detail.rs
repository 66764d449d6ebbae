//! The detail view of one child, from `GET /v1/children/{name}`: its status, limits and
//! their enforcement, probes, dependencies with their current state, and the spec in force
//! (which holds secret references only; the server never sends values).

use serde_json::Value;

use super::model::Status;

/// The detail of `child` as lines of text; `status` gives the dependencies' states.
pub fn lines(child: &Value, status: &Status) -> Vec<String> {
    let mut out = Vec::new();
    let text = |value: &Value| match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    for key in [
        "name",
        "state",
        "reason",
        "pid",
        "incarnation",
        "restarts",
        "ready",
        "healthy",
        "last_exit",
        "kind",
        "ports",
        "notify_state",
        "notify_status",
        "source",
        "log_file",
    ] {
        if let Some(value) = child.get(key) {
            out.push(format!("{key:<12} {}", text(value)));
        }
    }
    if let Some(usage) = child.get("usage").and_then(Value::as_object) {
        let parts: Vec<String> = usage
            .iter()
            .map(|(key, value)| format!("{key}={}", text(value)))
            .collect();
        out.push(format!("{:<12} {}", "usage", parts.join(" ")));
    }
    out.push(String::new());
    out.push("limits:".to_owned());
    match child.get("limits").and_then(Value::as_array) {
        Some(limits) if !limits.is_empty() => {
            for limit in limits {
                out.push(format!(
                    "  {:<12} {:<10} enforced by {}",
                    text(&limit["name"]),
                    text(&limit["value"]),
                    text(&limit["enforcement"])
                ));
            }
        }
        _ => out.push("  none".to_owned()),
    }
    let spec = child.get("spec").cloned().unwrap_or(Value::Null);
    out.push("probes:".to_owned());
    let mut probes = false;
    for key in ["readiness", "health_check"] {
        if let Some(probe) = spec.get(key).filter(|probe| !probe.is_null()) {
            out.push(format!("  {key:<12} {probe}"));
            probes = true;
        }
    }
    if !probes {
        out.push("  none".to_owned());
    }
    out.push("dependencies:".to_owned());
    match spec.get("dependencies").and_then(Value::as_array) {
        Some(deps) if !deps.is_empty() => {
            for dep in deps {
                let (name, condition) = match dep {
                    Value::String(name) => (name.clone(), "ready".to_owned()),
                    other => (
                        text(&other["name"]),
                        other
                            .get("condition")
                            .map_or_else(|| "ready".to_owned(), text),
                    ),
                };
                let state = status
                    .children
                    .iter()
                    .find(|row| row.name == name)
                    .map_or("unknown", |row| row.state.as_str());
                out.push(format!("  {name:<12} needs {condition:<10} is {state}"));
            }
        }
        _ => out.push("  none".to_owned()),
    }
    out.push(String::new());
    out.push("spec in force (secrets are references, never values):".to_owned());
    let pretty = serde_json::to_string_pretty(&spec).unwrap_or_default();
    out.extend(pretty.lines().map(|line| format!("  {line}")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::top::model::Row;

    #[test]
    fn shows_limits_probes_and_dependency_states() {
        let status = Status {
            children: vec![Row {
                name: "db".into(),
                state: "ready".into(),
                ..Row::default()
            }],
            ..Status::default()
        };
        let child = serde_json::json!({
            "name": "web", "state": "waiting",
            "limits": [{"name": "memory", "value": "64Mi", "enforcement": "cgroup"}],
            "spec": {"readiness": {"tcp": "127.0.0.1:80"}, "dependencies": ["db", {"name": "cache", "condition": "started"}],
                     "environment": [{"name": "TOKEN", "secret_ref": "token"}]}
        });
        let text = lines(&child, &status).join("\n");
        assert!(
            text.contains("memory       64Mi       enforced by cgroup"),
            "{text}"
        );
        assert!(
            text.contains("db           needs ready      is ready"),
            "{text}"
        );
        assert!(
            text.contains("cache        needs started    is unknown"),
            "{text}"
        );
        assert!(text.contains("readiness"), "{text}");
        assert!(text.contains("\"secret_ref\": \"token\""), "{text}");
    }
}
