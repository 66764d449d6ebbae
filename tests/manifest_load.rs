//! Loading from disk: the directory scan rules, bad files of every kind, and the desired set.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use herder::manifest::load::MAX_FILE_BYTES;
use herder::manifest::{
    Code, desired_set, list_manifest_files, load_dir, load_file, load_paths, parse_file,
};

const API: &str = "name: api\ncommand: [./api]\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap_or_else(|err| panic!("{err}"));
    }
    fs::write(&path, text).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    path
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"))
}

fn names(files: &[PathBuf], root: &Path) -> Vec<String> {
    files
        .iter()
        .map(|f| f.strip_prefix(root).unwrap_or(f).display().to_string())
        .collect()
}

#[test]
fn scan_follows_the_ignore_rules() {
    let dir = tempdir();
    let root = dir.path();
    for name in [
        "a.yaml",
        "b.yml",
        "sub/c.yaml",
        ".hidden.yaml",
        "a.yaml~",
        ".a.yaml.swp",
        "a.yaml.swp",
        "4913",
        "#a.yaml#",
        "a.yaml.tmp",
        "notes.txt",
        ".git/config.yaml",
    ] {
        write(root, name, API);
    }
    let files = list_manifest_files(root).unwrap_or_default();
    assert_eq!(names(&files, root), ["a.yaml", "b.yml", "sub/c.yaml"]);
}

#[test]
fn listing_is_in_path_order_across_folders() {
    let dir = tempdir();
    let root = dir.path();
    // Byte order would put `a.b/…` and `a.yaml` before `a/…`; path order compares
    // component by component.
    for name in [
        "b.yaml",
        "a.yaml",
        "a.b/y.yaml",
        "a/x.yaml",
        "a/b/z.yaml",
        "a-c.yaml",
    ] {
        write(root, name, API);
    }
    let files = list_manifest_files(root).unwrap_or_default();
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(files, sorted);
    assert_eq!(
        names(&files, root),
        [
            "a/b/z.yaml",
            "a/x.yaml",
            "a-c.yaml",
            "a.b/y.yaml",
            "a.yaml",
            "b.yaml"
        ]
    );
}

#[test]
fn symlinks_are_followed_and_loops_end() {
    let dir = tempdir();
    let root = dir.path();
    write(root, "real/a.yaml", API);
    symlink(root.join("real"), root.join("linked")).unwrap_or_else(|err| panic!("{err}"));
    symlink(root, root.join("real/loop")).unwrap_or_else(|err| panic!("{err}"));
    let files = list_manifest_files(root).unwrap_or_default();
    // `real` and `linked` are the same directory: it is read once.
    assert_eq!(files.len(), 1, "{files:?}");
}

#[test]
fn kubernetes_configmap_layout_is_read_once_through_the_links() {
    let dir = tempdir();
    let root = dir.path();
    write(root, "..2026_01_01_00_00_00.000/api.yaml", API);
    symlink("..2026_01_01_00_00_00.000", root.join("..data")).unwrap_or_else(|err| panic!("{err}"));
    symlink("..data/api.yaml", root.join("api.yaml")).unwrap_or_else(|err| panic!("{err}"));
    let files = list_manifest_files(root).unwrap_or_default();
    assert_eq!(names(&files, root), ["api.yaml"]);
    assert!(load_file(&files[0]).is_ok());
}

#[test]
fn multi_document_files_and_empty_files() {
    let parsed = parse_file(
        Path::new("m.yaml"),
        b"---\nname: a\ncommand: x\n---\n# nothing\n---\nname: b\ncommand: y\n",
    );
    assert!(parsed.is_ok(), "{:?}", parsed.diagnostics);
    let docs: Vec<(&str, usize)> = parsed
        .docs
        .iter()
        .map(|d| (d.manifest.name.as_str(), d.doc_index))
        .collect();
    assert_eq!(docs, [("a", 0), ("b", 2)]);
    for empty in [&b""[..], b"\n", b"# only a comment\n", b"---\n"] {
        let parsed = parse_file(Path::new("e.yaml"), empty);
        assert!(
            parsed.is_ok() && parsed.docs.is_empty(),
            "{empty:?}: {:?}",
            parsed.diagnostics
        );
    }
}

#[test]
fn errors_found_after_parsing_are_located_in_the_right_document() {
    // Locations are worked out from the file's text only when something is reported:
    // an error of the typed stage (a duration the schema's pattern accepts but that does
    // not fit), and one of the set (a missing dependency), each in a later document.
    let dir = tempdir();
    let file = write(
        dir.path(),
        "m.yaml",
        "name: a\ncommand: x\n---\nname: b\ncommand: y\nstart_timeout: 99999999999999999999h\n---\nname: c\ncommand: z\ndependencies: [a, nowhere]\n",
    );
    let loaded = load_paths(&[file]).unwrap_or_default();
    let found: Vec<(usize, u32, u32, &str)> = loaded
        .diagnostics
        .iter()
        .map(|d| (d.document, d.line, d.column, d.pointer.as_str()))
        .collect();
    assert_eq!(
        found,
        [(1, 6, 16, "/start_timeout"), (2, 10, 19, "/dependencies/1")]
    );
}

#[test]
fn binary_huge_and_unreadable_files_are_located_errors() {
    let binary = parse_file(Path::new("b.yaml"), b"name: a\n\x00\x01\x02");
    assert_eq!(binary.diagnostics.len(), 1);
    assert_eq!(
        (
            binary.diagnostics[0].code,
            binary.diagnostics[0].line,
            binary.diagnostics[0].column
        ),
        (Code::Binary, 2, 1)
    );

    let latin1 = parse_file(Path::new("l.yaml"), b"name: caf\xe9\n");
    assert_eq!(
        (latin1.diagnostics[0].code, latin1.diagnostics[0].column),
        (Code::Binary, 10)
    );

    let huge = vec![b'#'; usize::try_from(MAX_FILE_BYTES).unwrap_or(usize::MAX) + 10];
    let parsed = parse_file(Path::new("h.yaml"), &huge);
    assert_eq!(parsed.diagnostics[0].code, Code::TooLarge);

    let dir = tempdir();
    let dangling = dir.path().join("gone.yaml");
    symlink(dir.path().join("nowhere"), &dangling).unwrap_or_else(|err| panic!("{err}"));
    let loaded = load_paths(&[dir.path().to_path_buf()]).unwrap_or_default();
    assert_eq!(loaded.diagnostics.len(), 1);
    assert_eq!(loaded.diagnostics[0].code, Code::Io);
    assert_eq!(loaded.diagnostics[0].message, "cannot read file: not found");
    assert_eq!(loaded.diagnostics[0].file, dangling);
}

#[test]
fn hostile_input_never_panics() {
    let deep = "a: ".repeat(200) + "1\n";
    let nested = "[".repeat(10_000);
    let anchors = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n";
    for text in [
        deep.as_str(),
        nested.as_str(),
        anchors,
        "\u{feff}name: a\ncommand: x\n",
        ":\n",
        "- - -\n",
        "{",
        "!!binary x",
    ] {
        let parsed = parse_file(Path::new("x.yaml"), text.as_bytes());
        for diagnostic in &parsed.diagnostics {
            assert!(diagnostic.line >= 1 && diagnostic.column >= 1);
        }
    }
}

#[test]
fn desired_set_expands_replicas_and_digests_secrets() {
    let dir = tempdir();
    let root = dir.path();
    write(root, "secrets/token", "s3cret\n");
    write(
        root,
        "svc/web.yaml",
        "name: web\ncommand: [./web]\nreplicas: 3\nenvironment:\n  - {name: T, secret_ref: token}\nsecrets:\n  - {name: token, file: ../secrets/token}\n",
    );
    write(
        root,
        "db.yaml",
        "name: db\ncommand: [./db]\nenabled: false\n",
    );
    let (desired, diagnostics) = load_dir(root).unwrap_or_else(|err| panic!("{err}"));
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let names: Vec<&str> = desired.children.keys().map(String::as_str).collect();
    assert_eq!(names, ["db", "web-0", "web-1", "web-2"]);
    let web1 = &desired.children["web-1"];
    assert_eq!(web1.replica, Some(1));
    assert_eq!(
        web1.base_dir,
        std::path::absolute(root.join("svc")).unwrap_or_default()
    );
    let digest = web1.secret_digests.get("token").copied();
    assert!(digest.is_some());

    // A rotated secret changes the digest; the value itself is nowhere in the set.
    write(root, "secrets/token", "rotated\n");
    let (rotated, _) = load_dir(root).unwrap_or_else(|err| panic!("{err}"));
    assert_ne!(
        rotated.children["web-1"]
            .secret_digests
            .get("token")
            .copied(),
        digest
    );
    assert!(!format!("{rotated:?}").contains("rotated"));

    let docs: Vec<_> = load_paths(&[root.to_path_buf()])
        .unwrap_or_default()
        .docs()
        .cloned()
        .collect();
    assert_eq!(desired_set(&docs, 7).generation, 7);
}

#[test]
fn a_bad_file_is_left_out_of_the_desired_set() {
    let dir = tempdir();
    write(dir.path(), "good.yaml", API);
    write(
        dir.path(),
        "bad.yaml",
        "name: web\ncommand: [./web]\nrestart_polcy: always\n",
    );
    let (desired, diagnostics) = load_dir(dir.path()).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(desired.children.keys().collect::<Vec<_>>(), ["api"]);
    assert_eq!(diagnostics.len(), 1);
}

#[test]
fn unreadable_directory_is_a_load_error() {
    assert!(list_manifest_files(Path::new("/nonexistent/herder.d")).is_err());
}

#[test]
fn errors_only_the_typed_model_sees_are_located_in_their_document() {
    // The schema accepts an empty program name; deserialization rejects it.
    let parsed = parse_file(
        Path::new("m.yaml"),
        b"name: ok\ncommand: [./ok]\n---\nname: api\ncommand: [\"\", --port]\n",
    );
    let found: Vec<_> = parsed
        .diagnostics
        .iter()
        .map(|d| {
            (
                d.code,
                d.document,
                d.line,
                d.column,
                d.pointer.as_str(),
                d.message.as_str(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [(
            Code::Schema,
            1,
            5,
            10,
            "/command",
            "the command needs a program to run"
        )]
    );
    assert_eq!(parsed.docs.len(), 1);
}
