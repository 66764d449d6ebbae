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
