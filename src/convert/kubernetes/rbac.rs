//! The least RBAC the waiting init containers need: one ServiceAccount per waiting child,
//! bound to a Role that may only read the Jobs it waits for (by name) and, when it waits for
//! pods by selector, pods in the namespace.

use serde_json::{Map, Value, json};

use super::Child;
use super::deps::Wait;

/// The ServiceAccount (and Role, RoleBinding) name of a child whose pods wait.
pub fn account_name(child: &str) -> String {
    format!("{child}-wait")
}

/// ServiceAccount, Role and RoleBinding for `waits`.
pub fn objects(child: &Child<'_>, waits: &[Wait]) -> Vec<Value> {
    let name = account_name(&child.doc.manifest.name);
    let jobs: Vec<&str> = waits
        .iter()
        .filter_map(|wait| match wait {
            Wait::Job { dependency } => Some(dependency.as_str()),
            _ => None,
        })
        .collect();
    let mut rules = Vec::new();
    if !jobs.is_empty() {
        rules.push(json!({
            "apiGroups": ["batch"],
            "resources": ["jobs"],
            "resourceNames": jobs,
            "verbs": ["get", "list", "watch"],
        }));
    }
    if waits.iter().any(|wait| matches!(wait, Wait::Pods { .. })) {
        rules.push(json!({
            "apiGroups": [""],
            "resources": ["pods"],
            "verbs": ["get", "list", "watch"],
        }));
    }
    let subject =
        json!({"kind": "ServiceAccount", "name": name, "namespace": child.options.namespace});
    vec![
        json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": child.metadata(&name, Map::new()),
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": child.metadata(&name, Map::new()),
            "rules": rules,
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": child.metadata(&name, Map::new()),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [subject],
        }),
    ]
}
