//! `herder validate` end to end: exit codes and the two output forms.

use std::process::{Command, Output};

fn herder(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_herder"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|err| panic!("cannot run herder: {err}"))
}

#[test]
fn valid_examples_exit_0() {
    let output = herder(&["validate", "examples/herder.d"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("4 manifests: 0 errors"));
}

#[test]
fn invalid_manifests_exit_1_with_a_code_frame() {
    let output = herder(&["validate", "tests/corpus/invalid/schema/unknown-field.yaml"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown-field.yaml:3:1"), "{stderr}");
    assert!(stderr.contains("3 | restart_polcy: always"), "{stderr}");
    assert!(stderr.contains("did you mean \"restart\"?"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "NO_COLOR must disable colour");
}

#[test]
fn missing_path_exits_2() {
    let output = herder(&["validate", "does/not/exist"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot access does/not/exist"));
}

#[test]
fn usage_error_exits_2() {
    assert_eq!(
        herder(&["validate", "--format", "xml"]).status.code(),
        Some(2)
    );
    assert_eq!(herder(&["no-such-command"]).status.code(), Some(2));
    assert_eq!(herder(&["--help"]).status.code(), Some(0));
}

#[test]
fn json_form_is_machine_readable() {
    let output = herder(&[
        "validate",
        "--format",
        "json",
        "tests/corpus/invalid/semantic/cycle-three-files",
        "examples/herder.d",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    assert_eq!(report["version"], 1);
    assert_eq!(report["valid"], false);
    assert_eq!(report["files"], 7);
    assert_eq!(report["errors"], 3);
    let first = &report["diagnostics"][0];
    assert_eq!(first["code"], "cycle");
    assert_eq!(first["line"], 3);
    assert_eq!(first["column"], 16);
    assert_eq!(first["pointer"], "/dependencies/0");
    assert_eq!(first["message"], "dependency cycle: a → b → c → a");
}

/// Limits this machine cannot enforce are warnings at the limit, and the manifest stays valid.
#[test]
fn unenforceable_limits_are_located_warnings() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let file = dir.path().join("limited.yaml");
    std::fs::write(
        &file,
        "name: limited\ncommand: [sleep, \"10\"]\nresource_limits:\n  memory: 64Mi\n  cpu: 0.5\n  processes: 16\n  open_files: 256\n",
    )
    .unwrap_or_else(|e| panic!("write: {e}"));
    let path = file.to_string_lossy().into_owned();
    let output = Command::new(env!("CARGO_BIN_EXE_herder"))
        .args(["validate", "--format", "json", &path])
        .env("NO_COLOR", "1")
        .env("HERDER_CGROUPS", "off")
        .output()
        .unwrap_or_else(|err| panic!("cannot run herder: {err}"));
    assert_eq!(
        output.status.code(),
        Some(0),
        "warnings do not fail validation"
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    assert_eq!(report["valid"], true);
    assert_eq!(report["warnings"], 3, "{report}");
    let located: Vec<(String, u64)> = report["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            assert_eq!(d["code"], "unenforced");
            assert_eq!(d["severity"], "warning");
            assert!(
                d["hint"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("HERDER_CGROUPS=off"),
                "{d}"
            );
            (
                d["pointer"].as_str().unwrap_or_default().to_owned(),
                d["line"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        located,
        [
            ("/resource_limits/memory".to_owned(), 4),
            ("/resource_limits/cpu".to_owned(), 5),
            ("/resource_limits/processes".to_owned(), 6),
        ]
    );

    // The human form says the same on stderr, and still exits 0.
    let human = Command::new(env!("CARGO_BIN_EXE_herder"))
        .args(["validate", &path])
        .env("NO_COLOR", "1")
        .env("HERDER_CGROUPS", "off")
        .output()
        .unwrap_or_else(|err| panic!("cannot run herder: {err}"));
    assert_eq!(human.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&human.stderr);
    assert!(
        stderr.contains("warning[unenforced]: no cpu cgroup here"),
        "{stderr}"
    );
    assert!(
        stderr.contains("limited.yaml:5:8 at /resource_limits/cpu"),
        "{stderr}"
    );
    assert!(stderr.contains("0 errors, 3 warnings"), "{stderr}");
}
