//! Rules the Kubernetes API server enforces that its JSON Schemas (and so
//! `kubernetes-validate`) do not: object and container names, label syntax, selectors
//! that match their template, Job restart policies, `successThreshold: 1` for liveness and
//! startup probes, unique container names, no probes on plain init containers.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::convert::names::{
    is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_label_key, is_label_value,
};

/// Every rule broken by `objects`, one message each, naming the object and the field.
pub fn lint<'a>(objects: impl IntoIterator<Item = &'a Value>) -> Vec<String> {
    let mut problems = Vec::new();
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or("?");
        let name = object["metadata"]["name"].as_str().unwrap_or("");
        let mut report = |message: String| problems.push(format!("{kind} {name:?}: {message}"));
        lint_object(kind, name, object, &mut report);
    }
    problems
}

fn lint_object(kind: &str, name: &str, object: &Value, report: &mut impl FnMut(String)) {
    let name_ok = match kind {
        "Service" => is_dns1035_label(name),
        "Role" | "RoleBinding" => !name.is_empty() && !name.contains(['/', '%']),
        _ => is_dns1123_subdomain(name),
    };
    if !name_ok {
        report("invalid metadata.name".into());
    }
    if kind == "CronJob" && name.len() > super::cronjob::MAX_NAME {
        report(format!(
            "a CronJob's name has at most {} characters",
            super::cronjob::MAX_NAME
        ));
    }
    if let Some(namespace) = object["metadata"]["namespace"].as_str()
        && !is_dns1123_label(namespace)
    {
        report(format!("namespace {namespace:?} is not a DNS-1123 label"));
    }
    labels(&object["metadata"]["labels"], "metadata.labels", report);
    annotations(&object["metadata"]["annotations"], report);
    let spec = if kind == "CronJob" {
        &object["spec"]["jobTemplate"]["spec"]
    } else {
        &object["spec"]
    };
    match kind {
        "Deployment" | "Job" | "CronJob" => {
            let template = &spec["template"];
            labels(&template["metadata"]["labels"], "template labels", report);
            annotations(&template["metadata"]["annotations"], report);
            let selector = &spec["selector"]["matchLabels"];
            if kind == "Deployment" || !selector.is_null() {
                labels(selector, "selector", report);
                selector_matches(selector, &template["metadata"]["labels"], report);
            }
            let policy = template["spec"]["restartPolicy"]
                .as_str()
                .unwrap_or("Always");
            let allowed: &[&str] = if kind != "Deployment" {
                &["OnFailure", "Never"]
            } else {
                &["Always"]
            };
            if !allowed.contains(&policy) {
                report(format!("restartPolicy {policy} is not allowed in a {kind}"));
            }
            pod(&template["spec"], report);
        }
        "Service" => {
            labels(&spec["selector"], "Service selector", report);
            let ports = spec["ports"].as_array().map_or(&[][..], Vec::as_slice);
            if ports.is_empty() && spec["clusterIP"] != "None" {
                report("a Service without ports must be headless".into());
            }
            let mut names = BTreeSet::new();
            for port in ports {
                let port_name = port["name"].as_str().unwrap_or("");
                if ports.len() > 1 && port_name.is_empty() {
                    report("ports of a multi-port Service need names".into());
                }
                if !port_name.is_empty() && (!is_dns1035_label(port_name) || port_name.len() > 15) {
                    report(format!(
                        "port name {port_name:?} is not an IANA service name"
                    ));
                }
                if !names.insert(port_name) {
                    report(format!("port name {port_name:?} is used twice"));
                }
            }
        }
        _ => {}
    }
}

fn labels(labels: &Value, what: &str, report: &mut impl FnMut(String)) {
    let Some(labels) = labels.as_object() else {
        return;
    };
    for (key, value) in labels {
        if !is_label_key(key) {
            report(format!("{what}: invalid label key {key:?}"));
        }
        if !value.as_str().is_some_and(is_label_value) {
            report(format!("{what}: invalid value of label {key:?}"));
        }
    }
}

fn annotations(annotations: &Value, report: &mut impl FnMut(String)) {
    for key in annotations
        .as_object()
        .into_iter()
        .flat_map(|map| map.keys())
    {
        if !is_label_key(key) {
            report(format!("invalid annotation key {key:?}"));
        }
    }
}

/// Every selector label is on the template with the same value (otherwise the API server
/// rejects a Deployment: "selector does not match template labels").
fn selector_matches(selector: &Value, template: &Value, report: &mut impl FnMut(String)) {
    let Some(selector) = selector.as_object() else {
        report("no selector".into());
        return;
    };
    if selector.is_empty() {
        report("empty selector".into());
    }
    for (key, value) in selector {
        if template.get(key) != Some(value) {
            report(format!("selector label {key:?} is not on the pod template"));
        }
    }
}

fn pod(pod: &Value, report: &mut impl FnMut(String)) {
    let mut names = BTreeSet::new();
    let containers = pod["containers"].as_array().map_or(&[][..], Vec::as_slice);
    if containers.is_empty() {
        report("a pod needs a container".into());
    }
    let init = pod["initContainers"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    for (container, is_init) in containers
        .iter()
        .map(|c| (c, false))
        .chain(init.iter().map(|c| (c, true)))
    {
        let name = container["name"].as_str().unwrap_or("");
        if !is_dns1123_label(name) {
            report(format!("container name {name:?} is not a DNS-1123 label"));
        }
        if !names.insert(name) {
            report(format!("container name {name:?} is used twice"));
        }
        if container["image"].as_str().is_none_or(str::is_empty) {
            report(format!("container {name:?} has no image"));
        }
        let sidecar = is_init && container["restartPolicy"] == "Always";
        for probe in ["livenessProbe", "startupProbe"] {
            let threshold = &container[probe]["successThreshold"];
            if !threshold.is_null() && threshold != 1 {
                report(format!("{name:?}: {probe}.successThreshold must be 1"));
            }
        }
        if is_init && !sidecar {
            for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
                if !container[probe].is_null() {
                    report(format!("init container {name:?} may not have a {probe}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {
                "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/name": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "i"}]},
                },
            },
        })
    }

    #[test]
    fn a_good_deployment_passes() {
        assert_eq!(lint([&deployment()]), Vec::<String>::new());
    }

    #[test]
    fn each_rule_is_caught() {
        type Breakage = fn(&mut Value);
        let cases: Vec<(Breakage, &str)> = vec![
            (
                |d| d["metadata"]["name"] = json!("Web"),
                "invalid metadata.name",
            ),
            (
                |d| d["metadata"]["labels"]["bad key"] = json!("x"),
                "invalid label key",
            ),
            (
                |d| d["metadata"]["labels"]["k"] = json!("-x"),
                "invalid value of label",
            ),
            (
                |d| d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] = json!("api"),
                "selector label",
            ),
            (
                |d| d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never"),
                "restartPolicy Never",
            ),
            (
                |d| {
                    d["spec"]["template"]["spec"]["containers"][0]["livenessProbe"] =
                        json!({"successThreshold": 2})
                },
                "successThreshold must be 1",
            ),
            (
                |d| {
                    d["spec"]["template"]["spec"]["containers"][0]["startupProbe"] =
                        json!({"successThreshold": 3})
                },
                "startupProbe.successThreshold",
            ),
            (
                |d| {
                    d["spec"]["template"]["spec"]["initContainers"] =
                        json!([{"name": "web", "image": "i"}])
                },
                "used twice",
            ),
            (
                |d| {
                    d["spec"]["template"]["spec"]["initContainers"] =
                        json!([{"name": "w", "image": "i", "readinessProbe": {}}])
                },
                "may not have a readinessProbe",
            ),
            (
                |d| d["spec"]["template"]["spec"]["containers"][0]["name"] = json!("a_b"),
                "not a DNS-1123 label",
            ),
        ];
        for (break_it, expected) in cases {
            let mut object = deployment();
            break_it(&mut object);
            let problems = lint([&object]);
            assert!(
                problems.iter().any(|p| p.contains(expected)),
                "expected {expected:?} in {problems:?}"
            );
        }
        let mut job = deployment();
        job["kind"] = json!("Job");
        job["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        assert!(
            lint([&job])
                .iter()
                .any(|p| p.contains("restartPolicy Always"))
        );
        let service = json!({"kind": "Service", "metadata": {"name": "1db"}, "spec": {"selector": {"a": "b"}}});
        let problems = lint([&service]);
        assert!(
            problems.iter().any(|p| p.contains("invalid metadata.name")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("headless")),
            "{problems:?}"
        );
        let sidecar = {
            let mut d = deployment();
            d["spec"]["template"]["spec"]["initContainers"] = json!([{"name": "s", "image": "i", "restartPolicy": "Always", "readinessProbe": {}}]);
            d
        };
        assert_eq!(lint([&sidecar]), Vec::<String>::new());
    }
}
