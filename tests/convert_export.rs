//! `herder export kubernetes`, through the binary: golden files for the examples and the
//! export corpus (`HERDER_BLESS=1` rewrites them after a deliberate change), the lint over
//! every export, YAML that reads back as the same objects, determinism, secret values kept
//! out, and the errors.
//!
//! `.ci/run` validates the same exports with `kubernetes-validate --strict`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use herder::convert::kubernetes::{self, Options, lint::lint};
use herder::manifest::load_paths;
use herder::manifest::yaml_json::parse_documents;

const CORPUS: &str = "tests/corpus/convert/export";
const IMAGE: &str = "example.com/app:1";
const CANARY: &str = "CANARY-SECRET-VALUE-7f3a";

/// Every exported directory: the examples and each corpus case.
fn cases() -> Vec<(String, PathBuf)> {
    let mut cases = vec![("examples".to_owned(), PathBuf::from("examples/herder.d"))];
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .unwrap_or_else(|err| panic!("cannot list {CORPUS}: {err}"))
        .filter_map(|entry| Some(entry.ok()?.path().join("herder.d")))
        .filter(|dir| dir.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        cases.push((name, dir));
    }
    cases
}

fn herder(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_herder"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("SENTRY_DSN")
        .output()
        .unwrap_or_else(|err| panic!("cannot run herder: {err}"))
}

fn export(dir: &Path, extra: &[&str]) -> Output {
    let dir = dir.to_string_lossy();
    let mut args = vec!["export", "kubernetes", dir.as_ref(), "--image", IMAGE];
    args.extend_from_slice(extra);
    herder(&args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn exports_match_the_golden_files() {
    let bless = std::env::var_os("HERDER_BLESS").is_some();
    let mut differ = Vec::new();
    for (name, dir) in cases() {
        let output = export(&dir, &[]);
        assert!(output.status.success(), "{name}: {}", text(&output.stderr));
        for (suffix, actual) in [
            ("yaml", text(&output.stdout)),
            ("stderr", text(&output.stderr)),
        ] {
            let path = PathBuf::from(CORPUS)
                .join("expected")
                .join(format!("{name}.{suffix}"));
            if bless {
                std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
                    .unwrap_or_else(|err| panic!("{err}"));
                std::fs::write(&path, &actual).unwrap_or_else(|err| panic!("{err}"));
            } else if std::fs::read_to_string(&path).unwrap_or_default() != actual {
                differ.push(format!("{}:\n{actual}", path.display()));
            }
        }
    }
    assert!(
        differ.is_empty(),
        "exports differ from the golden files (HERDER_BLESS=1 rewrites them):\n{}",
        differ.join("\n")
    );
}

#[test]
fn every_export_passes_the_lint_and_reads_back_as_the_same_objects() {
    for (name, dir) in cases() {
        let loaded = load_paths(std::slice::from_ref(&dir)).unwrap_or_else(|err| panic!("{err}"));
        assert!(!loaded.has_errors(), "{name}: {:?}", loaded.diagnostics);
        let docs: Vec<_> = loaded.docs().collect();
        let options = Options {
            image: Some(IMAGE.into()),
            namespace: "default".into(),
            instance: name.clone(),
            wait_image: kubernetes::DEFAULT_WAIT_IMAGE.into(),
            kubectl_image: kubernetes::DEFAULT_KUBECTL_IMAGE.into(),
        };
        let export =
            kubernetes::export(&docs, &options).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(lint(export.objects()), Vec::<String>::new(), "{name}");
        let output = herder(&[
            "export",
            "kubernetes",
            &dir.to_string_lossy(),
            "--image",
            IMAGE,
        ]);
        let yaml = text(&output.stdout);
        let read: Vec<serde_json::Value> = parse_documents(&yaml)
            .unwrap_or_else(|err| panic!("{name}: the YAML does not parse: {err}"))
            .into_iter()
            .map(|doc| doc.result.map(|(value, _)| value).unwrap_or_default())
            .collect();
        let objects: Vec<serde_json::Value> = export.objects().cloned().collect();
        assert_eq!(read.len(), objects.len(), "{name}");
        for (back, object) in read.iter().zip(&objects) {
            // The binary derives the instance label from the directory, as the test does.
            assert_eq!(
                back, object,
                "{name}: an object reads back different:\n{yaml}"
            );
        }
    }
}

#[test]
fn the_same_directory_exports_the_same_bytes() {
    let dir = PathBuf::from(CORPUS).join("jobs/herder.d");
    let first = export(&dir, &[]);
    let second = export(&dir, &[]);
    assert!(first.status.success());
    assert_eq!(first.stdout, second.stdout);
    assert_eq!(first.stderr, second.stderr);
}

#[test]
fn secret_values_are_never_written() {
    let dir = PathBuf::from(CORPUS).join("basic/herder.d");
    let out = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
    let target = out.path().join("k8s");
    let output = Command::new(env!("CARGO_BIN_EXE_herder"))
        .args([
            "export",
            "kubernetes",
            &dir.to_string_lossy(),
            "--image",
            IMAGE,
            "-o",
        ])
        .arg(&target)
        .env("SENTRY_DSN", CANARY)
        .output()
        .unwrap_or_else(|err| panic!("{err}"));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(!stderr.contains(CANARY), "{stderr}");
    assert!(
        stderr.contains("kubectl create secret generic api-secrets"),
        "{stderr}"
    );
    assert!(stderr.contains("--from-file=api-token="), "{stderr}");
    let mut files: Vec<String> = std::fs::read_dir(&target)
        .unwrap_or_else(|err| panic!("{err}"))
        .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
        .collect();
    files.sort();
    assert_eq!(files, ["api.yaml", "cache.yaml", "front.yaml"]);
    for file in files {
        let written = std::fs::read_to_string(target.join(&file)).unwrap_or_default();
        assert!(!written.contains(CANARY), "{file}");
        assert!(written.starts_with("---\n"), "{file}");
    }
    let api = std::fs::read_to_string(target.join("api.yaml")).unwrap_or_default();
    assert!(api.contains("secretKeyRef"), "{api}");
}

#[test]
fn a_child_without_an_image_is_an_error_at_its_name() {
    let output = herder(&["export", "kubernetes", "examples/herder.d"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("examples/herder.d/db.yaml:3:1: error: no container image [/name]"),
        "{stderr}"
    );
    assert!(
        stderr.contains("4 children without a container image"),
        "{stderr}"
    );
}

#[test]
fn an_invalid_directory_exports_nothing() {
    let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
    std::fs::write(
        dir.path().join("a.yaml"),
        "name: a\ncommand: [x]\nrestart: sometimes\n",
    )
    .unwrap_or_else(|err| panic!("{err}"));
    let output = export(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("a.yaml:3:10"), "{stderr}");
    assert!(stderr.contains("nothing exported"), "{stderr}");
}

#[test]
fn namespace_and_instance_options_reach_every_object() {
    let dir = PathBuf::from(CORPUS).join("jobs/herder.d");
    let output = export(&dir, &["--namespace", "shop", "--instance", "shop-prod"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let yaml = text(&output.stdout);
    let docs = parse_documents(&yaml).unwrap_or_else(|err| panic!("{err}"));
    assert!(!docs.is_empty());
    for doc in docs {
        let (value, _) = doc.result.unwrap_or_else(|err| panic!("{err:?}"));
        assert_eq!(value["metadata"]["namespace"], "shop");
        assert_eq!(
            value["metadata"]["labels"]["app.kubernetes.io/instance"],
            "shop-prod"
        );
    }
    let bad = export(&dir, &["--namespace", "Not_A_Namespace"]);
    assert_eq!(bad.status.code(), Some(2));
}
