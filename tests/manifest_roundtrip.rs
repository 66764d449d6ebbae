//! Property: any valid manifest, serialized and parsed again (through the whole loader:
//! YAML, schema, serde and the per-document checks), is equal to itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use herder::manifest::export::{ExportSettings, KubernetesSettings};
use herder::manifest::model::{
    Backoff, Check, Command, CommandPermissions, Condition, Criticality, Dependency,
    DependencySpec, EnvVar, Environment, ExecCheck, HttpCheck, Kind, Logs, Manifest, Missed,
    Overlap, Port, PortSpec, Probe, Protocol, ResourceLimits, Restart, RestartLimit, RestartPolicy,
    RestartSpec, Schedule, Secret, Signal, Stop, TcpCheck, UpdateStrategy,
};
use herder::manifest::parse_file;
use herder::manifest::units::{ByteSize, Duration};
use proptest::collection::{btree_map, btree_set, vec};
use proptest::option;
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    "[a-z]([a-z0-9-]{0,20}[a-z0-9])?"
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,24}"
}

fn duration(min_ms: u64) -> impl Strategy<Value = Duration> {
    (min_ms..10_000_000u64, 0u32..1_000_000).prop_map(|(ms, ns)| {
        Duration(
            std::time::Duration::from_millis(ms) + std::time::Duration::from_nanos(u64::from(ns)),
        )
    })
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        vec("\\PC{1,12}", 1..4).prop_map(Command::Exec),
        "\\PC{1,30}".prop_map(Command::Shell),
    ]
}

fn signal() -> impl Strategy<Value = Signal> {
    proptest::sample::select(Signal::ALL.to_vec())
}

fn probe(readiness: bool) -> impl Strategy<Value = Probe> {
    let http = ("[a-z0-9.]{1,15}", 1u16.., 100u16..600).prop_map(|(host, port, status)| {
        Check::Http(HttpCheck {
            url: format!("http://{host}:{port}/healthz"),
            status,
        })
    });
    let tcp =
        ("[a-z0-9.]{1,15}", 1u16..).prop_map(|(host, port)| Check::Tcp(TcpCheck { host, port }));
    let exec = command().prop_map(|command| Check::Exec(ExecCheck { command }));
    // `log_line` is readiness-only: liveness probes get a TCP check in its place.
    let line = "[a-z ]{1,20}".prop_map(move |line| {
        if readiness {
            Check::LogLine(line)
        } else {
            Check::Tcp(TcpCheck {
                host: "127.0.0.1".into(),
                port: 80,
            })
        }
    });
    let check = prop_oneof![http, tcp, exec, line];
    (
        check,
        duration(1),
        duration(1),
        duration(0),
        1u32..10,
        1u32..10,
    )
        .prop_map(
            move |(
                check,
                interval,
                timeout,
                start_period,
                failure_threshold,
                success_threshold,
            )| {
                Probe {
                    check,
                    interval,
                    timeout,
                    start_period,
                    failure_threshold,
                    success_threshold,
                }
            },
        )
}

type PortDraw = Option<(u16, bool, Option<String>)>;
type EveryDraw = Option<(u64, usize, bool)>;

/// Ports and schedules, boxed: one more level of nested strategies overflows the stack of
/// a debug build.
fn extras() -> BoxedStrategy<(PortDraw, EveryDraw)> {
    (
        option::of((1u16.., any::<bool>(), option::of("127\\.0\\.0\\.[0-9]"))),
        option::of((1u64..86_400, 0usize..3, any::<bool>())),
    )
        .boxed()
}

fn restart() -> impl Strategy<Value = Restart> {
    (
        option::of(proptest::sample::select(vec![
            RestartPolicy::Always,
            RestartPolicy::OnFailure,
            RestartPolicy::Never,
        ])),
        duration(0),
        duration(0),
        1.0f64..100.0,
        0.0f64..=1.0,
        1u32..100,
        duration(1),
    )
        .prop_map(|(policy, a, b, multiplier, jitter, count, window)| {
            let (initial, max) = if a <= b { (a, b) } else { (b, a) };
            Restart(RestartSpec {
                policy,
                backoff: Backoff {
                    initial,
                    max,
                    multiplier,
                    jitter,
                },
                limit: RestartLimit { count, window },
            })
        })
}

prop_compose! {
    fn secrets_and_environment()(
        secret_names in btree_set(name(), 0..3),
        values in btree_map("[A-Z_][A-Z0-9_]{0,10}", text(), 0..4),
        from_file in any::<bool>(),
        required in any::<bool>(),
    ) -> (Vec<Secret>, Environment) {
        let secrets: Vec<Secret> = secret_names.iter().map(|name| Secret {
            name: name.clone(),
            file: from_file.then(|| PathBuf::from(format!("secrets/{name}"))),
            env: (!from_file).then(|| name.to_uppercase().replace('-', "_")),
            required,
        }).collect();
        let mut vars: Vec<EnvVar> = values.into_iter().map(|(name, value)| EnvVar { name, value: Some(value), secret_ref: None }).collect();
        for secret in &secrets {
            vars.push(EnvVar { name: format!("S_{}", secret.name.to_uppercase().replace('-', "_")), value: None, secret_ref: Some(secret.name.clone()) });
        }
        (secrets, Environment(vars))
    }
}

prop_compose! {
    fn manifest()(
        name in name(),
        description in option::of(text()),
        labels in btree_map("[a-z]{1,8}", text(), 0..3),
        enabled in any::<bool>(),
        oneshot in any::<bool>(),
        command in command(),
        working_dir in option::of("[a-z./]{1,12}".prop_map(PathBuf::from)),
        (secrets, environment) in secrets_and_environment().boxed(),
        inherit_environment in any::<bool>(),
        dependencies in btree_map(name(), (0u8..3, any::<bool>()), 0..3),
        restart in restart().boxed(),
        critical in any::<bool>(),
        start_timeout in duration(1),
        readiness in option::of(probe(true)).boxed(),
        health_check in option::of(probe(false)).boxed(),
        memory in option::of(any::<u64>().prop_map(ByteSize)),
        cpu in option::of(0.001f64..1024.0),
        open_files in option::of(1u64..1_000_000),
        processes in option::of(1u64..100_000),
        stop_signal in signal(),
        stop_timeout in duration(0),
        start_first in any::<bool>(),
        replicas in 1u32..20,
        permissions in (any::<bool>(), any::<bool>(), vec(signal(), 0..4)),
        user in option::of("[a-z]{1,8}"),
        group in option::of("[a-z]{1,8}"),
        logs in (any::<u64>().prop_map(ByteSize), 0u32..=100),
        image in option::of(option::of("[a-z]{1,8}(/[a-z]{1,8})?(:[0-9.]{1,5})?")),
        (port, every) in extras(),
    ) -> Manifest {
        // Replicas and start-first may only share a port declared `reuse_port`.
        let ports = port.into_iter().map(|(port, udp, host)| Port(PortSpec {
            port,
            protocol: if udp { Protocol::Udp } else { Protocol::Tcp },
            host,
            reuse_port: true,
        })).collect();
        let schedule = every.filter(|_| oneshot).map(|(secs, overlap, run_once)| Schedule {
            every: Some(Duration::from_secs(secs)),
            overlap: [Overlap::Skip, Overlap::Queue, Overlap::Replace][overlap],
            missed: if run_once { Missed::RunOnce } else { Missed::Skip },
            ..Schedule::default()
        });
        let dependencies = dependencies.into_iter().filter(|(dep, _)| *dep != name).map(|(dep, (condition, restart))| Dependency(DependencySpec {
            name: dep,
            condition: [Condition::Started, Condition::Ready, Condition::Completed][usize::from(condition)],
            restart,
        })).collect();
        Manifest {
            name, description, labels, enabled,
            kind: if oneshot { Kind::Oneshot } else { Kind::Service },
            command: Some(command), working_dir, environment, inherit_environment, secrets, dependencies, restart,
            criticality: if critical { Criticality::Critical } else { Criticality::Optional },
            start_timeout, readiness, health_check,
            resource_limits: ResourceLimits { memory, cpu, open_files, processes },
            stop: Stop { signal: stop_signal, timeout: stop_timeout },
            update: if start_first { UpdateStrategy::StartFirst } else { UpdateStrategy::StopFirst },
            replicas,
            command_permissions: CommandPermissions { restart: permissions.0, stop: permissions.1, signals: permissions.2 },
            user, group,
            logs: Logs { max_size: logs.0, keep: logs.1 },
            schedule, ports,
            export: ExportSettings { kubernetes: image.map(|image| KubernetesSettings { image }) },
        }
    }
}

/// `manifest()`, and now and then the same manifest as a `kind: target`: only the fields a
/// target takes, the rest at their defaults.
fn manifest_or_target() -> impl Strategy<Value = Manifest> {
    (manifest(), any::<bool>()).prop_map(|(m, target)| {
        if !target {
            return m;
        }
        let mut out: Manifest =
            serde_json::from_value(serde_json::json!({"name": m.name, "kind": "target"}))
                .expect("a bare target deserializes");
        out.description = m.description;
        out.labels = m.labels;
        out.enabled = m.enabled;
        out.dependencies = m.dependencies;
        out
    })
}

fn reparse(text: &str) -> Result<Manifest, String> {
    let parsed = parse_file(Path::new("roundtrip.yaml"), text.as_bytes());
    if !parsed.diagnostics.is_empty() {
        return Err(format!("{:#?}", parsed.diagnostics));
    }
    match parsed.docs.as_slice() {
        [doc] => Ok((*doc.manifest).clone()),
        docs => Err(format!("{} documents", docs.len())),
    }
}

proptest! {
    #[test]
    fn serialized_manifests_parse_back_equal(manifest in manifest_or_target()) {
        // JSON is YAML 1.2, in flow style; pretty-printed it is also multi-line.
        for text in [serde_json::to_string(&manifest), serde_json::to_string_pretty(&manifest)] {
            let text = text.map_err(|err| TestCaseError::fail(err.to_string()))?;
            let back = reparse(&text).map_err(|err| TestCaseError::fail(format!("{text}\n{err}")))?;
            prop_assert_eq!(&back, &manifest);
        }
    }
}

#[test]
fn defaults_are_omitted_and_restored() {
    let text = "name: api\ncommand: [./api]\n";
    let manifest = reparse(text).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(
        serde_json::to_value(&manifest).unwrap_or_default(),
        serde_json::json!({"name": "api", "command": ["./api"]})
    );
    assert_eq!(manifest.restart_policy(), RestartPolicy::Always);
    assert_eq!(manifest.labels, BTreeMap::new());
    assert!(manifest.enabled && manifest.inherit_environment);
}
