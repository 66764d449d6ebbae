//! What an actor derives from a [`ChildSpec`]: the parts that may change in place ([`RunConfig`]) and the
//! fully resolved spawn request (environment with secrets, working directory, command).
//!
//! Secrets are read at spawn time, never kept beyond the request, and never appear in an error: errors name the
//! secret and where it was looked for.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::manifest::ChildSpec;
use crate::manifest::model::{Manifest, Secret};
use crate::supervise::backoff::BackoffPolicy;
use crate::supervise::child::state::Policy;
use crate::supervise::logs::Rotation;
use crate::supervise::probe::{Check, ProbeError, ProbeSpec, command_of};
use crate::supervise::spawn::{Output, Program, SpawnRequest};

/// The settings an actor applies to the current and future runs; replaced whole by an in-place update.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// State machine parameters.
    pub policy: Policy,
    /// Restart delays.
    pub backoff: BackoffPolicy,
    /// Spawn → ready, already stretched to the readiness probe's budget.
    pub start_timeout: Duration,
    /// Readiness probe (boxed: most children have none, and every actor holds a config).
    pub readiness: Option<Box<ProbeSpec>>,
    /// Liveness probe (boxed, as `readiness`).
    pub liveness: Option<Box<ProbeSpec>>,
    /// Memory limit in bytes (the RSS watchdog's, when no cgroup enforces it).
    pub memory_limit: Option<u64>,
    /// Log file rotation.
    pub rotation: Rotation,
}

impl RunConfig {
    /// Whether the child gets a notify socket: readiness by `notify`, or a `watchdog`.
    pub fn uses_notify(&self) -> bool {
        matches!(
            self.readiness.as_ref().map(|r| &r.check),
            Some(Check::Notify)
        ) || self.watchdog().is_some()
    }

    /// The `watchdog` period of the health check, if that is its check.
    pub fn watchdog(&self) -> Option<Duration> {
        match self.liveness.as_ref().map(|l| &l.check) {
            Some(Check::Watchdog(period)) => Some(*period),
            _ => None,
        }
    }

    /// Derives the configuration from a manifest.
    pub fn from_manifest(m: &Manifest) -> Result<Self, ProbeError> {
        match Self::lenient(m) {
            (cfg, None) => Ok(cfg),
            (_, Some(e)) => Err(e),
        }
    }

    /// Like [`RunConfig::from_manifest`], but an unusable probe is left out and reported beside the result.
    pub fn lenient(m: &Manifest) -> (Self, Option<ProbeError>) {
        let mut error = None;
        let mut probe =
            |p: &Option<crate::manifest::model::Probe>| match p.as_ref().map(ProbeSpec::from_model)
            {
                Some(Ok(spec)) => Some(Box::new(spec)),
                Some(Err(e)) => {
                    error = Some(e);
                    None
                }
                None => None,
            };
        let readiness = probe(&m.readiness);
        let liveness = probe(&m.health_check);
        let start_timeout = match &readiness {
            Some(r) => m.start_timeout.get().max(r.budget()),
            None => m.start_timeout.get(),
        };
        let cfg = Self {
            policy: Policy {
                kind: m.kind,
                restart: m.restart_policy(),
                limit_count: m.restart.limit.count,
                limit_window: m.restart.limit.window.get(),
                stop_signal: m.stop.signal.into(),
                stop_timeout: m.stop.timeout.get(),
                has_readiness: readiness.is_some(),
            },
            backoff: BackoffPolicy::from(&m.restart.backoff),
            start_timeout,
            readiness,
            liveness,
            memory_limit: m.resource_limits.memory.map(|b| b.0),
            rotation: Rotation {
                max_size: m.logs.max_size.0,
                keep: m.logs.keep,
            },
        };
        (cfg, error)
    }
}

/// Why a spawn request could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// A secret file could not be read. The message names the secret and the path, never a value.
    #[error("secret `{secret}`: cannot read `{}`", .path.display())]
    SecretFile {
        /// The secret's name.
        secret: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A secret's environment variable is not set in herder's environment.
    #[error("secret `{secret}`: environment variable `{var}` is not set")]
    SecretEnv {
        /// The secret's name.
        secret: String,
        /// The variable.
        var: String,
    },
    /// `environment` refers to a secret the manifest does not declare.
    #[error("environment variable `{var}` refers to undeclared secret `{secret}`")]
    UndeclaredSecret {
        /// The variable.
        var: String,
        /// The secret's name.
        secret: String,
    },
    /// The manifest has no command (a `kind: target`, which the reconciler never spawns).
    #[error("the manifest has no command (a target runs nothing)")]
    NoCommand,
}

/// Resolves `path` against `base` unless absolute.
pub fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// The child's working directory.
pub fn working_dir(spec: &ChildSpec) -> PathBuf {
    match &spec.manifest.working_dir {
        Some(dir) => resolve(&spec.base_dir, dir),
        None => spec.base_dir.clone(),
    }
}

fn lookup_env<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

async fn secret_value(
    secret: &Secret,
    base_dir: &Path,
    herder_env: &[(String, String)],
) -> Result<Option<String>, RequestError> {
    if let Some(file) = &secret.file {
        let path = resolve(base_dir, file);
        return match tokio::fs::read_to_string(&path).await {
            Ok(v) => Ok(Some(
                v.strip_suffix('\n')
                    .map(|s| s.strip_suffix('\r').unwrap_or(s))
                    .unwrap_or(&v)
                    .to_string(),
            )),
            Err(_) if !secret.required => Ok(None),
            Err(source) => Err(RequestError::SecretFile {
                secret: secret.name.clone(),
                path,
                source,
            }),
        };
    }
    if let Some(var) = &secret.env {
        return match lookup_env(herder_env, var) {
            Some(v) => Ok(Some(v.to_string())),
            None if !secret.required => Ok(None),
            None => Err(RequestError::SecretEnv {
                secret: secret.name.clone(),
                var: var.clone(),
            }),
        };
    }
    Ok(None)
}

/// The child's complete environment: herder's (if inherited), then `HERDER_NAME` / `HERDER_REPLICA`, then the
/// manifest's `environment` with secrets read now.
pub async fn environment(
    spec: &ChildSpec,
    herder_env: &[(String, String)],
) -> Result<Vec<(String, String)>, RequestError> {
    let m = &spec.manifest;
    let mut env: Vec<(String, String)> = if m.inherit_environment {
        herder_env.to_vec()
    } else {
        Vec::new()
    };
    let set = |env: &mut Vec<(String, String)>, k: &str, v: String| {
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v));
    };
    set(&mut env, "HERDER_NAME", spec.name.clone());
    if let Some(i) = spec.replica {
        set(&mut env, "HERDER_REPLICA", i.to_string());
    }
    for var in &m.environment.0 {
        if let Some(value) = &var.value {
            set(&mut env, &var.name, value.clone());
        } else if let Some(secret_name) = &var.secret_ref {
            let secret = m
                .secrets
                .iter()
                .find(|s| &s.name == secret_name)
                .ok_or_else(|| RequestError::UndeclaredSecret {
                    var: var.name.clone(),
                    secret: secret_name.clone(),
                })?;
            if let Some(value) = secret_value(secret, &spec.base_dir, herder_env).await? {
                set(&mut env, &var.name, value);
            }
        }
    }
    Ok(env)
}

/// The spawn request for the child's main process.
pub async fn request(
    spec: &ChildSpec,
    herder_env: &[(String, String)],
) -> Result<SpawnRequest, RequestError> {
    let m = &spec.manifest;
    Ok(SpawnRequest {
        program: program(spec, herder_env).await?,
        nofile: m.resource_limits.open_files,
        output: Output::Piped,
        cgroups: Vec::new(),
        extra_fd: None,
    })
}

/// The child's command with its environment (secrets read now), working directory and identity. Built per
/// spawn and per `exec` probe attempt rather than kept, so an idle child holds no copy of its environment.
pub async fn program(
    spec: &ChildSpec,
    herder_env: &[(String, String)],
) -> Result<Program, RequestError> {
    let m = &spec.manifest;
    Ok(Program {
        command: command_of(m.command.as_ref().ok_or(RequestError::NoCommand)?),
        env: environment(spec, herder_env).await?,
        cwd: working_dir(spec),
        user: m.user.clone(),
        group: m.group.clone(),
    })
}
