//! `herder import compose | process-compose | procfile`, through the binary: golden files
//! for the corpora in `tests/corpus/convert/{compose,process-compose,procfile}/<case>/`
//! (`herder.d/` and `expected.stderr`; `HERDER_BLESS=1` rewrites them), every import
//! validated by `herder validate`, the runnable ones brought up with `herder up`, and every
//! kind of bad input refused with its location and nothing written.

mod api_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use api_support::Instance;

const CORPUS: &str = "tests/corpus/convert";

/// `(format, source file name)` of each corpus.
const FORMATS: [(&str, &str); 3] = [
    ("compose", "compose.yaml"),
    ("process-compose", "process-compose.yaml"),
    ("procfile", "Procfile"),
];

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `herder ARGS` in `dir`, with an environment that holds nothing the corpora interpolate.
fn herder_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herder"));
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("NO_COLOR", "1");
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command
        .output()
        .unwrap_or_else(|err| panic!("cannot run herder: {err}"))
}

/// Copies a case's inputs (not its expected output) into `to`.
fn copy_inputs(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap_or_else(|err| panic!("{}: {err}", from.display())) {
        let entry = entry.unwrap_or_else(|err| panic!("{err}"));
        let name = entry.file_name();
        if name == "herder.d" || name == "expected.stderr" {
            continue;
        }
        let target = to.join(&name);
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap_or_else(|err| panic!("{err}"));
            copy_inputs(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap_or_else(|err| panic!("{err}"));
        }
    }
}

fn cases() -> Vec<(&'static str, &'static str, PathBuf)> {
    let mut cases = Vec::new();
    for (format, file) in FORMATS {
        let dir = Path::new(CORPUS).join(format);
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
            .filter_map(|e| Some(e.ok()?.path()))
            .filter(|p| p.join(file).is_file())
            .collect();
        dirs.sort();
        cases.extend(dirs.into_iter().map(|d| (format, file, d)));
    }
    cases
}

/// The `*.yaml` files of a directory, by name.
fn manifests(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| {
                    let path = e.ok()?.path();
                    let name = path.file_name()?.to_string_lossy().into_owned();
                    name.ends_with(".yaml")
                        .then(|| (name, std::fs::read_to_string(&path).unwrap_or_default()))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn imports_match_the_golden_files_and_pass_validation() {
    let bless = std::env::var_os("HERDER_BLESS").is_some();
    let mut differ = Vec::new();
    for (format, file, case) in cases() {
        let work = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
        copy_inputs(&case, work.path());
        let output = herder_in(work.path(), &["import", format, file], &[]);
        let stderr = text(&output.stderr);
        assert!(output.status.success(), "{}: {stderr}", case.display());
        let written = work.path().join("herder.d");
        assert_eq!(
            std::fs::read_to_string(written.join("herder.schema.json")).unwrap_or_default(),
            herder::manifest::schema_text(),
            "{}: the schema beside the manifests",
            case.display()
        );
        // `herder validate` accepts what was written (secrets from the environment set).
        let validate = herder_in(
            work.path(),
            &["validate", "herder.d"],
            &[("DB_PASSWORD", "x")],
        );
        assert!(
            validate.status.success(),
            "{}: herder validate: {}",
            case.display(),
            text(&validate.stderr)
        );
        let actual = manifests(&written);
        assert!(!actual.is_empty(), "{}", case.display());
        let expected_dir = case.join("herder.d");
        if bless {
            let _ = std::fs::remove_dir_all(&expected_dir);
            std::fs::create_dir_all(&expected_dir).unwrap_or_else(|err| panic!("{err}"));
            for (name, body) in &actual {
                std::fs::write(expected_dir.join(name), body).unwrap_or_else(|err| panic!("{err}"));
            }
            std::fs::write(case.join("expected.stderr"), &stderr)
                .unwrap_or_else(|err| panic!("{err}"));
            continue;
        }
        if manifests(&expected_dir) != actual {
            differ.push(format!(
                "{}: manifests differ:\n{}",
                case.display(),
                actual
                    .iter()
                    .map(|(n, b)| format!("--- {n}\n{b}"))
                    .collect::<String>()
            ));
        }
        if std::fs::read_to_string(case.join("expected.stderr")).unwrap_or_default() != stderr {
            differ.push(format!("{}: summary differs:\n{stderr}", case.display()));
        }
    }
    assert!(
        differ.is_empty(),
        "imports differ from the golden files (HERDER_BLESS=1 rewrites them):\n{}",
        differ.join("\n")
    );
}

#[test]
fn existing_files_are_kept_unless_forced() {
    let work = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
    copy_inputs(&Path::new(CORPUS).join("procfile/runnable"), work.path());
    let first = herder_in(
        work.path(),
        &["import", "procfile", "Procfile", "-o", "out"],
        &[],
    );
    assert!(first.status.success(), "{}", text(&first.stderr));
    std::fs::write(work.path().join("out/web.yaml"), "# mine\n")
        .unwrap_or_else(|err| panic!("{err}"));
    let again = herder_in(
        work.path(),
        &["import", "procfile", "Procfile", "-o", "out"],
        &[],
    );
    assert_eq!(again.status.code(), Some(1));
    let stderr = text(&again.stderr);
    assert!(
        stderr.contains("already exist")
            && stderr.contains("out/web.yaml")
            && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(work.path().join("out/web.yaml")).unwrap_or_default(),
        "# mine\n"
    );
    let forced = herder_in(
        work.path(),
        &["import", "procfile", "Procfile", "-o", "out", "--force"],
        &[],
    );
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert!(
        std::fs::read_to_string(work.path().join("out/web.yaml"))
            .unwrap_or_default()
            .contains("name: web")
    );
}

#[test]
fn profiles_select_services() {
    let work = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
    copy_inputs(&Path::new(CORPUS).join("compose/full"), work.path());
    let output = herder_in(
        work.path(),
        &["import", "compose", "compose.yaml", "--profile", "debug"],
        &[],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(work.path().join("herder.d/admin.yaml").is_file());
    assert!(!work.path().join("herder.d/cache.yaml").exists());
}

/// Bad input: `(format, file name, contents, expected message, expected file:line:col)`.
const BAD: &[(&str, &str, &str, &str, &str)] = &[
    (
        "compose",
        "compose.yaml",
        "services:\n  web:\n    command: [unclosed\n",
        "malformed YAML",
        "compose.yaml:4:1",
    ),
    (
        "compose",
        "compose.yaml",
        "servics:\n  web: {command: x}\n",
        "unknown top-level key `servics` (did you mean `services`?)",
        "compose.yaml:1:1",
    ),
    (
        "compose",
        "compose.yaml",
        "services:\n  web_1: {command: a}\n  web-1: {command: b}\n",
        "both become `web-1`",
        "compose.yaml:2:3",
    ),
    (
        "compose",
        "compose.yaml",
        "services:\n  a: {command: x, depends_on: [b]}\n  b: {command: y, depends_on: [a]}\n",
        "dependency cycle: a → b → a",
        "compose.yaml:2:3",
    ),
    (
        "compose",
        "compose.yaml",
        "services:\n  web:\n    command: echo ${TOKEN:?set TOKEN first}\n",
        "variable `TOKEN` is not set: set TOKEN first",
        "compose.yaml:3:14",
    ),
    (
        "compose",
        "compose.yaml",
        "services:\n  web:\n    comand: x\n",
        "unknown key `comand` in service `web` (did you mean `command`?)",
        "compose.yaml:3:5",
    ),
    (
        "compose",
        "compose.yaml",
        "services:\n  web:\n    command: x\n    depends_on: [db]\n",
        "depends on `db`, which is not imported",
        "compose.yaml:4:18",
    ),
    (
        "process-compose",
        "process-compose.yaml",
        "version: \"0.5\"\nprocess:\n  a: {command: x}\n",
        "unknown top-level key `process` (did you mean `processes`?)",
        "process-compose.yaml:2:1",
    ),
    (
        "process-compose",
        "process-compose.yaml",
        "processes:\n  a:\n    command: x\n    depends_on: {b: {condition: process_started}}\n  b:\n    command: y\n    depends_on: {a: {condition: process_healthy}}\n",
        "dependency cycle",
        "process-compose.yaml:2:3",
    ),
    (
        "procfile",
        "Procfile",
        "web: a\nWeb: b\n",
        "both become `web`",
        "Procfile:2:1",
    ),
    (
        "procfile",
        "Procfile",
        "web: a\nweb: b\n",
        "declared twice",
        "Procfile:2:1",
    ),
    (
        "procfile",
        "Procfile",
        "# nothing\n",
        "nothing to import",
        "Procfile:1:1",
    ),
];

#[test]
fn bad_input_is_refused_with_its_location_and_nothing_is_written() {
    for (format, file, contents, message, location) in BAD {
        let work = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
        std::fs::write(work.path().join(file), contents).unwrap_or_else(|err| panic!("{err}"));
        let output = herder_in(work.path(), &["import", format, file], &[]);
        let stderr = text(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{format} {contents:?}: {stderr}"
        );
        assert!(
            stderr.contains(message),
            "{format} {contents:?}: expected {message:?} in:\n{stderr}"
        );
        assert!(
            stderr.contains(&format!("{location}: error:")),
            "{format} {contents:?}: expected {location} in:\n{stderr}"
        );
        assert!(stderr.contains("nothing written"), "{stderr}");
        assert!(
            !work.path().join("herder.d").exists(),
            "{format} {contents:?} wrote something"
        );
    }
}

#[test]
fn a_missing_source_file_is_an_error() {
    let work = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
    let output = herder_in(work.path(), &["import", "compose", "nope.yaml"], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("nope.yaml:1:1: error: cannot read: not found"),
        "{}",
        text(&output.stderr)
    );
}

/// Imports a runnable corpus case into a fresh instance's directory and starts it.
fn up(format: &str, file: &str, case: &str) -> Instance {
    let mut instance = Instance::prepare(&[]);
    copy_inputs(
        &Path::new(CORPUS).join(format).join(case),
        instance.root.path(),
    );
    let output = herder_in(
        instance.root.path(),
        &["import", format, file, "-o", "herder.d"],
        &[],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    instance.launch();
    instance
}

#[test]
fn an_imported_compose_stack_comes_up() {
    let instance = up("compose", "compose.yaml", "runnable");
    instance.wait_state("migrate", "completed");
    instance.ready("web");
    for worker in ["worker-0", "worker-1"] {
        instance.wait_state(worker, "ready");
    }
    let logs = instance.herder(&["logs", "worker-1"]).expect_code(0);
    assert!(logs.stdout.contains("worker 1 up with hello"), "{logs:#?}");
}

#[test]
fn an_imported_process_compose_file_comes_up() {
    let instance = up("process-compose", "process-compose.yaml", "runnable");
    instance.wait_state("setup", "completed");
    instance.ready("server");
    instance.ready("logger");
    instance.wait_state("tail-worker-1", "ready");
    let logs = instance.herder(&["logs", "logger"]).expect_code(0);
    assert!(logs.stdout.contains("logger ready in test"), "{logs:#?}");
    assert_eq!(
        instance.child("later")["state"],
        "disabled",
        "{}",
        instance.child("later")
    );
}

#[test]
fn an_imported_procfile_comes_up() {
    let instance = up("procfile", "Procfile", "runnable");
    instance.wait_state("release", "completed");
    instance.ready("web");
    instance.ready("worker-1");
    let logs = instance.herder(&["logs", "worker-1"]).expect_code(0);
    assert!(logs.stdout.contains("worker on port 18680"), "{logs:#?}");
}
