//! The rest of a Compose service: healthcheck, restart, deploy (replicas, limits, restart
//! policy, update order), stop, user, labels and the per-service limits.

use serde_json::{Map, Value, json};

use super::Import;
use super::compose::object;
use super::compose_service::{Context, scalar};
use super::source::pointer;
use super::units::{compose_bytes, go_duration, signal};
use crate::convert::note::Note;

/// Maps the remaining fields of `service` (at `base`) into `fields`.
pub(super) fn map(
    cx: &Context<'_>,
    service: &Map<String, Value>,
    base: &str,
    fields: &mut Map<String, Value>,
    import: &mut Import,
    errors: &mut Vec<Note>,
) {
    let at = |key: &str| format!("{base}{}", pointer(&[key]));
    let note = |pointer: &str, message: String| cx.source.note(pointer, message);
    if let Some(health) = service.get("healthcheck").and_then(Value::as_object) {
        healthcheck(cx, health, &at("healthcheck"), fields, import, errors);
    }
    // restart: compose does not restart by default.
    let restart = service.get("restart").map(scalar);
    let mut policy = match restart.as_deref() {
        None | Some("no") => json!("never"),
        Some("always") => json!("always"),
        Some("unless-stopped") => {
            import.unmapped.push(note(
                &at("restart"),
                "`unless-stopped`: herder has no stopped-by-hand state that survives it; `always`"
                    .into(),
            ));
            json!("always")
        }
        Some(text) if text == "on-failure" || text.starts_with("on-failure:") => {
            match text.split_once(':') {
                Some((_, count)) => match count.parse::<u32>() {
                    Ok(count) if count > 0 => {
                        import.unmapped.push(note(&at("restart"), format!("on-failure:{count}: herder counts {count} restarts within a window (60s), not in total")));
                        json!({"policy": "on-failure", "limit": {"count": count, "window": "60s"}})
                    }
                    _ => {
                        errors.push(cx.source.value_note(
                            &at("restart"),
                            format!("`{text}`: the retry count is not a positive number"),
                        ));
                        json!("on-failure")
                    }
                },
                None => json!("on-failure"),
            }
        }
        Some(other) => {
            errors.push(cx.source.value_note(
                &at("restart"),
                format!(
                    "unknown restart policy `{other}` (no, always, on-failure[:N], unless-stopped)"
                ),
            ));
            json!("never")
        }
    };
    if restart.is_some() {
        import.mapped.push(note(&at("restart"), "restart".into()));
    }
    let deploy = service.get("deploy").and_then(Value::as_object);
    let deploy_at = at("deploy");
    if let Some(deploy) = deploy {
        if let Some(restart_policy) = deploy.get("restart_policy").and_then(Value::as_object) {
            policy = deploy_restart(
                cx,
                restart_policy,
                &format!("{deploy_at}/restart_policy"),
                import,
                errors,
            );
        }
        for (key, item) in deploy {
            let item_at = format!("{deploy_at}{}", pointer(&[key]));
            match key.as_str() {
                "replicas" => match item.as_u64() {
                    Some(n) if (1..=1000).contains(&n) => {
                        fields.insert("replicas".into(), Value::from(n));
                        import.mapped.push(note(&item_at, "replicas".into()));
                    }
                    Some(0) => {
                        fields.insert("enabled".into(), Value::Bool(false));
                        import
                            .mapped
                            .push(note(&item_at, "replicas 0: enabled false".into()));
                    }
                    _ => errors.push(
                        cx.source
                            .value_note(&item_at, "replicas must be a number from 0 to 1000"),
                    ),
                },
                "resources" => resources(cx, item, &item_at, fields, import, errors),
                "restart_policy" => {}
                "update_config" => match item.get("order").and_then(Value::as_str) {
                    Some(order @ ("start-first" | "stop-first")) => {
                        fields.insert("update".into(), Value::from(order));
                        import
                            .mapped
                            .push(note(&item_at, format!("update order → update: {order}")));
                    }
                    _ => import.unmapped.push(note(
                        &item_at,
                        "update_config other than `order`: not mapped".into(),
                    )),
                },
                _ => import.unmapped.push(note(
                    &item_at,
                    format!("deploy.{key}: a swarm/orchestrator setting: not mapped"),
                )),
            }
        }
    }
    fields.insert("restart".into(), policy);
    if let Some(scale) = service.get("scale").and_then(Value::as_u64)
        && (1..=1000).contains(&scale)
    {
        fields.insert("replicas".into(), Value::from(scale));
        import.mapped.push(note(&at("scale"), "replicas".into()));
    }
    limits(cx, service, base, fields, import, errors);
    let mut stop = Map::new();
    if let Some(text) = service.get("stop_signal").map(scalar)
        && let Some(signal) = stop_signal(cx, &text, &at("stop_signal"), import)
    {
        stop.insert("signal".into(), signal);
        import
            .mapped
            .push(note(&at("stop_signal"), "stop.signal".into()));
    }
    if let Some(text) = service.get("stop_grace_period").map(scalar) {
        match go_duration(&text) {
            Some(duration) => {
                stop.insert("timeout".into(), Value::from(duration));
                import
                    .mapped
                    .push(note(&at("stop_grace_period"), "stop.timeout".into()));
            }
            None => errors.push(cx.source.value_note(
                &at("stop_grace_period"),
                format!("`{text}` is not a duration (e.g. 10s)"),
            )),
        }
    }
    if !stop.is_empty() {
        fields.insert("stop".into(), Value::Object(stop));
    }
    if let Some(user) = service.get("user").map(scalar) {
        let (user, group) = match user.split_once(':') {
            Some((user, group)) => (user.to_owned(), Some(group.to_owned())),
            None => (user, None),
        };
        fields.insert("user".into(), Value::from(user));
        if let Some(group) = group {
            fields.insert("group".into(), Value::from(group));
        }
        import.mapped.push(note(
            &at("user"),
            "user/group (applied when herder runs as root)".into(),
        ));
    }
    match service.get("labels") {
        Some(Value::Object(map)) => {
            let labels: Map<String, Value> = map
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(scalar(v))))
                .collect();
            fields.insert("labels".into(), Value::Object(labels));
            import.mapped.push(note(&at("labels"), "labels".into()));
        }
        Some(Value::Array(items)) => {
            let labels: Map<String, Value> = items
                .iter()
                .map(|item| {
                    let text = scalar(item);
                    let (k, v) = text.split_once('=').unwrap_or((&text, ""));
                    (k.to_owned(), Value::from(v))
                })
                .collect();
            fields.insert("labels".into(), Value::Object(labels));
            import.mapped.push(note(&at("labels"), "labels".into()));
        }
        _ => {}
    }
}

fn healthcheck(
    cx: &Context<'_>,
    health: &Map<String, Value>,
    at: &str,
    fields: &mut Map<String, Value>,
    import: &mut Import,
    errors: &mut Vec<Note>,
) {
    if health.get("disable").and_then(Value::as_bool) == Some(true) {
        import.mapped.push(
            cx.source
                .note(at, "healthcheck disabled: no readiness probe"),
        );
        return;
    }
    let command = match health.get("test") {
        Some(Value::String(line)) => Some(Value::from(line.as_str())),
        Some(Value::Array(items)) => {
            let words: Vec<String> = items.iter().map(scalar).collect();
            match words.split_first() {
                Some((first, rest)) if first == "CMD" && !rest.is_empty() => Some(json!(rest)),
                Some((first, [line])) if first == "CMD-SHELL" => Some(Value::from(line.as_str())),
                Some((first, _)) if first == "NONE" => None,
                _ => {
                    errors.push(cx.source.value_note(&format!("{at}/test"), "healthcheck `test` must be [\"CMD\", args…], [\"CMD-SHELL\", command], [\"NONE\"] or a string"));
                    None
                }
            }
        }
        _ => None,
    };
    let Some(command) = command else { return };
    let mut probe = probe_timing(cx, health, at, errors);
    probe.insert("exec".into(), json!({"command": command}));
    if health.contains_key("start_interval") {
        import.unmapped.push(cx.source.note(
            &format!("{at}/start_interval"),
            "`start_interval`: herder probes at one interval: not mapped",
        ));
    }
    fields.insert("readiness".into(), Value::Object(probe));
    import.mapped.push(cx.source.note(at, "healthcheck → readiness (compose does not restart an unhealthy container, so it gates dependents only)"));
}

fn deploy_restart(
    cx: &Context<'_>,
    policy: &Map<String, Value>,
    at: &str,
    import: &mut Import,
    errors: &mut Vec<Note>,
) -> Value {
    let name = match policy
        .get("condition")
        .and_then(Value::as_str)
        .unwrap_or("any")
    {
        "none" => "never",
        "on-failure" => "on-failure",
        "any" => "always",
        other => {
            errors.push(cx.source.value_note(
                &format!("{at}/condition"),
                format!("unknown restart condition `{other}` (none, on-failure, any)"),
            ));
            "never"
        }
    };
    let mut spec = json!({"policy": name});
    if let Some(delay) = policy
        .get("delay")
        .map(scalar)
        .and_then(|d| go_duration(&d))
    {
        spec["backoff"] = json!({"initial": delay});
    }
    if let Some(attempts) = policy
        .get("max_attempts")
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)
    {
        let window = policy
            .get("window")
            .map(scalar)
            .and_then(|w| go_duration(&w))
            .unwrap_or_else(|| "60s".into());
        spec["limit"] = json!({"count": attempts, "window": window});
    }
    import.mapped.push(cx.source.note(
        at,
        "deploy.restart_policy → restart (it wins over `restart`)",
    ));
    spec
}

fn resources(
    cx: &Context<'_>,
    resources: &Value,
    at: &str,
    fields: &mut Map<String, Value>,
    import: &mut Import,
    errors: &mut Vec<Note>,
) {
    let mut limits = fields
        .get("resource_limits")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(given) = resources.get("limits").and_then(Value::as_object) {
        for (key, value) in given {
            let item_at = format!("{at}/limits{}", pointer(&[key]));
            match key.as_str() {
                "memory" => {
                    if let Some(size) = memory(cx, value, &item_at, errors) {
                        limits.insert("memory".into(), size);
                        import
                            .mapped
                            .push(cx.source.note(&item_at, "resource_limits.memory"));
                    }
                }
                "cpus" => {
                    if let Some(cpus) = cpus(cx, value, &item_at, errors) {
                        limits.insert("cpu".into(), cpus);
                        import
                            .mapped
                            .push(cx.source.note(&item_at, "resource_limits.cpu"));
                    }
                }
                "pids" => match value.as_u64() {
                    Some(pids) if pids > 0 => {
                        limits.insert("processes".into(), Value::from(pids));
                        import
                            .mapped
                            .push(cx.source.note(&item_at, "resource_limits.processes"));
                    }
                    _ => import.unmapped.push(
                        cx.source
                            .note(&item_at, "pids limit without a positive count: not mapped"),
                    ),
                },
                _ => import.unmapped.push(
                    cx.source
                        .note(&item_at, format!("limit `{key}`: not mapped")),
                ),
            }
        }
    }
    if resources.get("reservations").is_some() {
        import.unmapped.push(cx.source.note(
            &format!("{at}/reservations"),
            "reservations: herder only limits: not mapped",
        ));
    }
    if !limits.is_empty() {
        fields.insert("resource_limits".into(), Value::Object(limits));
    }
}

fn limits(
    cx: &Context<'_>,
    service: &Map<String, Value>,
    base: &str,
    fields: &mut Map<String, Value>,
    import: &mut Import,
    errors: &mut Vec<Note>,
) {
    let at = |key: &str| format!("{base}{}", pointer(&[key]));
    let mut limits = fields
        .get("resource_limits")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(value) = service.get("mem_limit")
        && let Some(size) = memory(cx, value, &at("mem_limit"), errors)
    {
        limits.insert("memory".into(), size);
        import
            .mapped
            .push(cx.source.note(&at("mem_limit"), "resource_limits.memory"));
    }
    if let Some(value) = service.get("cpus")
        && let Some(cpus) = cpus(cx, value, &at("cpus"), errors)
    {
        limits.insert("cpu".into(), cpus);
        import
            .mapped
            .push(cx.source.note(&at("cpus"), "resource_limits.cpu"));
    }
    if let Some(pids) = service
        .get("pids_limit")
        .and_then(Value::as_u64)
        .filter(|p| *p > 0)
    {
        limits.insert("processes".into(), Value::from(pids));
        import.mapped.push(
            cx.source
                .note(&at("pids_limit"), "resource_limits.processes"),
        );
    }
    if let Some(ulimits) = service.get("ulimits").and_then(Value::as_object) {
        for (key, value) in ulimits {
            let item_at = format!("{}{}", at("ulimits"), pointer(&[key]));
            let soft = value
                .as_u64()
                .or_else(|| value.get("soft").and_then(Value::as_u64));
            match (key.as_str(), soft) {
                ("nofile", Some(soft)) if soft > 0 => {
                    limits.insert("open_files".into(), Value::from(soft));
                    import.mapped.push(
                        cx.source
                            .note(&item_at, "resource_limits.open_files (the soft limit)"),
                    );
                }
                ("nproc", Some(soft)) if soft > 0 => {
                    limits.insert("processes".into(), Value::from(soft));
                    import
                        .mapped
                        .push(cx.source.note(&item_at, "resource_limits.processes"));
                }
                _ => import.unmapped.push(
                    cx.source
                        .note(&item_at, format!("ulimit `{key}`: not mapped")),
                ),
            }
        }
    }
    if !limits.is_empty() {
        fields.insert("resource_limits".into(), Value::Object(limits));
    }
}

/// A `Map` of one probe's timing from a compose healthcheck.
fn probe_timing(
    cx: &Context<'_>,
    health: &Map<String, Value>,
    at: &str,
    errors: &mut Vec<Note>,
) -> Map<String, Value> {
    // Compose's defaults: 30s interval and timeout, 3 retries, no start period.
    let mut probe = object(vec![
        ("interval", Value::from("30s")),
        ("timeout", Value::from("30s")),
    ]);
    for (key, field) in [
        ("interval", "interval"),
        ("timeout", "timeout"),
        ("start_period", "start_period"),
    ] {
        if let Some(text) = health.get(key) {
            match go_duration(&scalar(text)) {
                Some(duration) => {
                    probe.insert(field.into(), Value::from(duration));
                }
                None => errors.push(cx.source.value_note(
                    &format!("{at}/{key}"),
                    format!("`{}` is not a duration (e.g. 10s, 1m30s)", scalar(text)),
                )),
            }
        }
    }
    let retries = health
        .get("retries")
        .and_then(Value::as_u64)
        .unwrap_or(3)
        .max(1);
    probe.insert("failure_threshold".into(), Value::from(retries));
    probe
}

/// A signal for `stop.signal`, or a note.
fn stop_signal(cx: &Context<'_>, text: &str, at: &str, import: &mut Import) -> Option<Value> {
    match signal(text) {
        Some(signal) => Some(Value::from(signal.name())),
        None => {
            import.unmapped.push(cx.source.note(
                at,
                format!("stop signal `{text}` is not one herder sends: SIGTERM is used"),
            ));
            None
        }
    }
}

/// A compose byte size for `resource_limits.memory`, or an error.
fn memory(cx: &Context<'_>, value: &Value, at: &str, errors: &mut Vec<Note>) -> Option<Value> {
    let text = scalar(value);
    let size = compose_bytes(&text);
    if size.is_none() {
        errors.push(
            cx.source
                .value_note(at, format!("`{text}` is not a size (e.g. 512m, 1g)")),
        );
    }
    size.map(Value::from)
}

/// A number of CPUs (`0.5`, `"1.5"`) for `resource_limits.cpu`, or an error.
fn cpus(cx: &Context<'_>, value: &Value, at: &str, errors: &mut Vec<Note>) -> Option<Value> {
    match scalar(value).parse::<f64>() {
        Ok(cpus) if (0.001..=1024.0).contains(&cpus) => Some(json!(cpus)),
        _ => {
            errors.push(
                cx.source
                    .value_note(at, format!("`{}` is not a number of CPUs", scalar(value))),
            );
            None
        }
    }
}
