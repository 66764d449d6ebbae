//! The invalid-manifest corpus: every case is wrong in one way, and its diagnostics (human
//! form, line and column exact) are compared with the snapshot next to it.
//!
//! `tests/corpus/invalid/schema/` holds structural cases (the schema alone rejects them, so
//! an independent JSON Schema validator must reject them too), `semantic/` cases that are
//! structurally valid but break a rule of the set or of one manifest, and `yaml/` cases about
//! the YAML itself. Set `HERDER_BLESS=1` to rewrite the snapshots after a deliberate change.

use std::fs;
use std::path::{Path, PathBuf};

use herder::manifest::{Code, Diagnostic, Report, load_paths};

const CORPUS: &str = "tests/corpus/invalid";

/// Every case of one corpus group: `.yaml` files and directories (a set of files).
fn cases(group: &str) -> Vec<PathBuf> {
    let dir = Path::new(CORPUS).join(group);
    let mut cases: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot list {}: {err}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_dir() || path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases in {}", dir.display());
    cases
}

fn diagnostics(case: &Path) -> Vec<Diagnostic> {
    load_paths(&[case.to_path_buf()])
        .unwrap_or_else(|err| panic!("{}: {err}", case.display()))
        .diagnostics
}

/// The human form of every diagnostic, as `herder validate` prints it without colour.
fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| d.render(fs::read_to_string(&d.file).ok().as_deref(), false))
        .collect::<Vec<_>>()
        .join("\n")
}

fn snapshot_path(case: &Path) -> PathBuf {
    case.with_extension("expected")
}

/// Checks every case of `group` against its snapshot and returns the diagnostics.
fn check_group(group: &str) -> Vec<(PathBuf, Vec<Diagnostic>)> {
    let bless = std::env::var_os("HERDER_BLESS").is_some();
    let mut mismatches = Vec::new();
    let mut results = Vec::new();
    for case in cases(group) {
        let found = diagnostics(&case);
        assert!(
            found.iter().any(Diagnostic::is_error),
            "{} is in the invalid corpus but herder accepts it",
            case.display()
        );
        let text = render(&found);
        let snapshot = snapshot_path(&case);
        if bless {
            fs::write(&snapshot, &text)
                .unwrap_or_else(|err| panic!("{}: {err}", snapshot.display()));
        } else {
            let expected = fs::read_to_string(&snapshot).unwrap_or_default();
            if expected != text {
                mismatches.push(format!(
                    "=== {} (expected {})\n{text}",
                    case.display(),
                    snapshot.display()
                ));
            }
        }
        results.push((case, found));
    }
    assert!(
        mismatches.is_empty(),
        "diagnostics differ from the snapshots (HERDER_BLESS=1 rewrites them):\n{}",
        mismatches.join("\n")
    );
    results
}

#[test]
fn schema_cases_are_rejected_by_the_schema_alone() {
    for (case, found) in check_group("schema") {
        assert!(
            found.iter().all(|d| d.code == Code::Schema),
            "{}: a structural case must fail only in the schema: {found:#?}",
            case.display()
        );
    }
}

#[test]
fn semantic_cases_pass_the_schema_and_fail_a_rule() {
    for (case, found) in check_group("semantic") {
        assert!(
            found
                .iter()
                .all(|d| !matches!(d.code, Code::Schema | Code::Syntax | Code::Unsupported)),
            "{}: a semantic case must be structurally valid: {found:#?}",
            case.display()
        );
    }
}

#[test]
fn yaml_cases_are_located() {
    for (case, found) in check_group("yaml") {
        for diagnostic in &found {
            assert!(
                diagnostic.line >= 1 && diagnostic.column >= 1,
                "{}: {diagnostic:?}",
                case.display()
            );
        }
    }
}

#[test]
fn all_errors_of_a_run_are_reported() {
    // The whole corpus at once: every case still reports, none hides another.
    let mut expected = 0;
    for group in ["schema", "semantic", "yaml"] {
        for case in cases(group) {
            expected += diagnostics(&case).len();
        }
    }
    let all = load_paths(&[PathBuf::from(CORPUS)])
        .map(|l| l.diagnostics)
        .unwrap_or_default();
    // Cross-file checks now see every case together, so the total can only grow.
    assert!(all.len() >= expected, "{} < {expected}", all.len());
}

/// Messages and hints never echo a value from `environment` or `secrets` (the human form's
/// code frame quotes the user's own manifest line, which is not a message).
#[test]
fn secret_values_never_appear() {
    for group in ["schema", "semantic", "yaml"] {
        for case in cases(group) {
            let found = diagnostics(&case);
            let json = serde_json::to_string(&Report::new(1, 0, found.clone())).unwrap_or_default();
            assert!(
                !json.contains("hunter2"),
                "{} leaks a value",
                case.display()
            );
            assert!(
                found.iter().any(|d| d.pointer.starts_with("/environment"))
                    || !case.ends_with("env-value-and-secret.yaml"),
                "the leak check must cover a diagnostic about the value"
            );
        }
    }
}

#[test]
fn shipped_examples_are_valid() {
    let loaded = load_paths(&[PathBuf::from("examples")]).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(loaded.diagnostics, Vec::new(), "the examples must be valid");
    let names: Vec<&str> = loaded
        .docs()
        .map(|doc| doc.manifest.name.as_str())
        .collect();
    assert_eq!(names, ["db", "migrate", "web", "worker"]);
}
