//! The container environment: literal values as `env`, secrets as `secretKeyRef`s to one
//! `Secret` per child, and the `kubectl create secret` command that creates it from the
//! same files and variables herder reads. No secret value is ever read or written.

use std::path::Path;

use serde_json::{Value, json};

use super::Child;
use crate::manifest::model::Secret;

/// The name of a child's Secret.
pub fn secret_name(child: &str) -> String {
    format!("{child}-secrets")
}

/// A herder secret name as a Secret data key (`[-._a-zA-Z0-9]+`).
fn secret_key(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `text` quoted for a POSIX shell when it needs it (a NUL byte, which no path or name
/// holds, is dropped).
fn shell_quote(text: &str) -> String {
    let clean = text.replace('\0', "");
    shlex::try_quote(&clean).map_or_else(|_| format!("'{clean}'"), |quoted| quoted.into_owned())
}

/// The child's `env` list; pushes the command that creates its Secret, if it uses any.
pub fn container_env(child: &mut Child<'_>, secret_commands: &mut Vec<String>) -> Vec<Value> {
    let manifest = std::sync::Arc::clone(&child.doc.manifest);
    let name = manifest.name.as_str();
    let mut env = Vec::new();
    let declares = |var: &str| manifest.environment.0.iter().any(|v| v.name == var);
    if manifest.inherit_environment {
        child.warn(
            "/inherit_environment",
            "a container has no host environment to inherit: only the image's environment and `environment` are set",
        );
    }
    if manifest.replicas > 1 && !declares("HERDER_REPLICA") {
        match manifest.kind {
            crate::manifest::model::Kind::Oneshot => env.push(json!({
                "name": "HERDER_REPLICA",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}},
            })),
            crate::manifest::model::Kind::Service | crate::manifest::model::Kind::Target => child.warn(
                "/replicas",
                "the pods of a Deployment have no index: `HERDER_REPLICA` is not set, and `HERDER_NAME` is the pod's name",
            ),
        }
    }
    if !declares("HERDER_NAME") {
        env.push(match (manifest.replicas > 1, manifest.kind) {
            (false, _) => json!({"name": "HERDER_NAME", "value": name}),
            (true, crate::manifest::model::Kind::Oneshot) => {
                json!({"name": "HERDER_NAME", "value": format!("{name}-$(HERDER_REPLICA)")})
            }
            (true, _) => json!({
                "name": "HERDER_NAME",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
            }),
        });
    }
    let mut used: Vec<&Secret> = Vec::new();
    for var in &manifest.environment.0 {
        if let Some(value) = &var.value {
            env.push(json!({"name": var.name, "value": value}));
        } else if let Some(reference) = &var.secret_ref
            && let Some(secret) = manifest.secrets.iter().find(|s| &s.name == reference)
        {
            let mut key_ref = json!({"name": secret_name(name), "key": secret_key(&secret.name)});
            if !secret.required {
                key_ref["optional"] = Value::Bool(true);
            }
            env.push(json!({"name": var.name, "valueFrom": {"secretKeyRef": key_ref}}));
            if !used.contains(&secret) {
                used.push(secret);
            }
        }
    }
    if !used.is_empty() {
        secret_commands.push(create_secret_command(child, &used));
    }
    env
}

/// `kubectl create secret generic <child>-secrets --from-file=key=path …`.
fn create_secret_command(child: &Child<'_>, secrets: &[&Secret]) -> String {
    let base = child.doc.file.parent().unwrap_or(Path::new(""));
    let mut command = format!(
        "kubectl create secret generic {}",
        secret_name(&child.doc.manifest.name)
    );
    command.push_str(&format!(
        " --namespace {}",
        shell_quote(&child.options.namespace)
    ));
    for secret in secrets {
        let key = secret_key(&secret.name);
        if let Some(file) = &secret.file {
            let path = base.join(file);
            command.push_str(&format!(
                " --from-file={key}={}",
                shell_quote(&path.display().to_string())
            ));
        } else if let Some(var) = &secret.env {
            command.push_str(&format!(" --from-literal={key}=\"${{{var}}}\""));
        }
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(
            shell_quote("herder.d/../secrets/a"),
            "herder.d/../secrets/a"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(secret_key("api token"), "api_token");
    }
}
