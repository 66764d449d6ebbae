//! Semantic checks the schema cannot express: within one manifest ([`check_manifest`]) and
//! across the whole set ([`check_set`]). Every diagnostic names the file at fault.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::desired::replica_names;
use super::diagnostic::{Code, Diagnostic};
use super::load::{ManifestDoc, describe_io};
use super::model::{Check, Condition, Kind, Probe};

/// The candidate closest to `input`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(input, candidate), candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// Checks one typed manifest: exactly one check per probe, `log_line` only for readiness,
/// regexes that compile, environment entries with exactly one source, declared secrets,
/// secrets with exactly one source, no duplicate names, sane durations.
pub fn check_manifest(doc: &ManifestDoc) -> Vec<Diagnostic> {
    let m = &*doc.manifest;
    let mut out = Vec::new();
    check_probe(doc, "/readiness", m.readiness.as_ref(), true, &mut out);
    check_probe(
        doc,
        "/health_check",
        m.health_check.as_ref(),
        false,
        &mut out,
    );
    check_environment(doc, &mut out);
    check_secrets(doc, &mut out);
    check_dependencies(doc, &mut out);
    if m.start_timeout.get().is_zero() {
        out.push(doc.error_at(
            Code::Invalid,
            "/start_timeout",
            "start_timeout must be greater than 0s",
        ));
    }
    let backoff = &m.restart.backoff;
    if backoff.initial > backoff.max {
        out.push(
            doc.error_at(
                Code::Invalid,
                "/restart/backoff/initial",
                format!(
                    "backoff initial ({}) is longer than backoff max ({})",
                    backoff.initial, backoff.max
                ),
            )
            .with_hint("lower `initial` or raise `max`"),
        );
    }
    if m.restart.limit.window.get().is_zero() {
        out.push(doc.error_at(
            Code::Invalid,
            "/restart/limit/window",
            "restart limit window must be greater than 0s",
        ));
    }
    if let Some(longest) = replica_names(m).last()
        && longest.len() > 63
    {
        out.push(
            doc.error_at(
                Code::Invalid,
                "/name",
                format!("replica name \"{longest}\" is longer than 63 characters"),
            )
            .with_hint("shorten the name: replicas are named `<name>-<index>`"),
        );
    }
    out
}

fn check_probe(
    doc: &ManifestDoc,
    base: &str,
    probe: Option<&Probe>,
    readiness: bool,
    out: &mut Vec<Diagnostic>,
) {
    let Some(probe) = probe else { return };
    let checks = probe.checks();
    let names: Vec<&str> = checks.iter().map(check_name).collect();
    match names.as_slice() {
        [] => out.push(
            doc.error_at_key(
                Code::Invalid,
                base,
                format!("{} declares no check", &base[1..]),
            )
            .with_hint("add one of `http`, `tcp`, `exec` or `log_line`"),
        ),
        [_] => {}
        [_, rest @ ..] => {
            for name in rest {
                out.push(
                    doc.error_at_key(
                        Code::Invalid,
                        &format!("{base}/{name}"),
                        format!(
                            "{} declares more than one check ({})",
                            &base[1..],
                            names.join(", ")
                        ),
                    )
                    .with_hint("a probe performs exactly one check; keep one of them"),
                );
            }
        }
    }
    if let Some(pattern) = &probe.log_line {
        let pointer = format!("{base}/log_line");
        if !readiness {
            out.push(
                doc.error_at_key(
                    Code::Invalid,
                    &pointer,
                    "log_line can only be used by the readiness probe",
                )
                .with_hint("a liveness check must be repeatable: use `http`, `tcp` or `exec`"),
            );
        } else if let Err(err) = regex::Regex::new(pattern) {
            out.push(doc.error_at(
                Code::Invalid,
                &pointer,
                format!("invalid regular expression: {}", regex_reason(&err)),
            ));
        }
    }
    if probe.interval.get().is_zero() {
        out.push(doc.error_at(
            Code::Invalid,
            &format!("{base}/interval"),
            "interval must be greater than 0s",
        ));
    }
    if probe.timeout.get().is_zero() {
        out.push(doc.error_at(
            Code::Invalid,
            &format!("{base}/timeout"),
            "timeout must be greater than 0s",
        ));
    }
}

fn check_name(check: &Check<'_>) -> &'static str {
    match check {
        Check::Http(_) => "http",
        Check::Tcp(_) => "tcp",
        Check::Exec(_) => "exec",
        Check::LogLine(_) => "log_line",
    }
}

/// The regex error's last line (the explanation), without the echoed pattern.
fn regex_reason(err: &regex::Error) -> String {
    let text = err.to_string();
    text.lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .map(|line| line.trim().trim_start_matches("error: ").to_owned())
        .unwrap_or(text)
}

fn check_environment(doc: &ManifestDoc, out: &mut Vec<Diagnostic>) {
    let m = &*doc.manifest;
    let declared: Vec<&str> = m.secrets.iter().map(|s| s.name.as_str()).collect();
    let list_form = doc.spans.contains("/environment/0");
    let mut seen: HashSet<&str> = HashSet::new();
    for (index, var) in m.environment.0.iter().enumerate() {
        let pointer = if list_form {
            format!("/environment/{index}")
        } else {
            format!("/environment/{}", super::spans::escape_segment(&var.name))
        };
        if !seen.insert(&var.name) {
            out.push(doc.error_at_key(
                Code::Invalid,
                &name_pointer(&pointer, list_form),
                format!("environment variable \"{}\" is declared twice", var.name),
            ));
        }
        if var.name.contains('=') || var.name.contains('\0') {
            out.push(doc.error_at_key(
                Code::Invalid,
                &name_pointer(&pointer, list_form),
                "environment variable names cannot contain `=`",
            ));
        }
        match (&var.value, &var.secret_ref) {
            (Some(_), Some(_)) => out.push(
                doc.error_at_key(
                    Code::Invalid,
                    &format!("{pointer}/secret_ref"),
                    format!(
                        "environment variable \"{}\" has both `value` and `secret_ref`",
                        var.name
                    ),
                )
                .with_hint("keep one of them"),
            ),
            (None, None) => out.push(
                doc.error_at(
                    Code::Invalid,
                    &pointer,
                    format!(
                        "environment variable \"{}\" has neither `value` nor `secret_ref`",
                        var.name
                    ),
                )
                .with_hint("add `value: ...` or `secret_ref: <secret name>`"),
            ),
            (None, Some(secret)) if !declared.contains(&secret.as_str()) => {
                let mut diagnostic = doc.error_at(
                    Code::Invalid,
                    &format!("{pointer}/secret_ref"),
                    format!("secret_ref \"{secret}\" names no secret declared under `secrets`"),
                );
                diagnostic = match did_you_mean(secret, declared.iter().copied()) {
                    Some(best) => diagnostic.with_hint(format!("did you mean \"{best}\"?")),
                    None => diagnostic.with_hint(format!(
                        "declare it: `secrets: [{{name: {secret}, file: ...}}]`"
                    )),
                };
                out.push(diagnostic);
            }
            _ => {}
        }
    }
}

fn name_pointer(pointer: &str, list_form: bool) -> String {
    if list_form {
        format!("{pointer}/name")
    } else {
        pointer.to_owned()
    }
}

fn check_secrets(doc: &ManifestDoc, out: &mut Vec<Diagnostic>) {
    let mut seen = BTreeSet::new();
    for (index, secret) in doc.manifest.secrets.iter().enumerate() {
        let pointer = format!("/secrets/{index}");
        if !seen.insert(secret.name.as_str()) {
            out.push(doc.error_at(
                Code::Invalid,
                &format!("{pointer}/name"),
                format!("secret \"{}\" is declared twice", secret.name),
            ));
        }
        match (&secret.file, &secret.env) {
            (Some(_), Some(_)) => out.push(
                doc.error_at_key(
                    Code::Invalid,
                    &format!("{pointer}/env"),
                    format!("secret \"{}\" has both `file` and `env`", secret.name),
                )
                .with_hint("a secret is read from exactly one source"),
            ),
            (None, None) => out.push(
                doc.error_at(
                    Code::Invalid,
                    &pointer,
                    format!("secret \"{}\" has neither `file` nor `env`", secret.name),
                )
                .with_hint("add `file: <path>` or `env: <VARIABLE>`"),
            ),
            _ => {}
        }
    }
}

fn check_dependencies(doc: &ManifestDoc, out: &mut Vec<Diagnostic>) {
    let m = &*doc.manifest;
    let mut seen = BTreeSet::new();
    for (index, dep) in m.dependencies.iter().enumerate() {
        let pointer = dependency_pointer(doc, index);
        if dep.0.name == m.name {
            out.push(doc.error_at(
                Code::Cycle,
                &pointer,
                format!("\"{}\" depends on itself", m.name),
            ));
        }
        if !seen.insert(dep.0.name.as_str()) {
            out.push(doc.error_at(
                Code::Invalid,
                &pointer,
                format!("dependency \"{}\" is listed twice", dep.0.name),
            ));
        }
    }
}

/// The pointer of a dependency's name: the item itself in the short form, its `name` in the long one.
fn dependency_pointer(doc: &ManifestDoc, index: usize) -> String {
    let long = format!("/dependencies/{index}/name");
    if doc.spans.contains(&long) {
        long
    } else {
        format!("/dependencies/{index}")
    }
}

/// Checks the set as a whole: names unique across files (replica names included),
/// dependencies that exist, no dependency cycles, `condition: completed` only on oneshots,
/// and secrets that can be read (their values are read and dropped, never shown).
pub fn check_set(docs: &[ManifestDoc]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut order: Vec<&ManifestDoc> = docs.iter().collect();
    order.sort_by(|a, b| (&a.file, a.doc_index).cmp(&(&b.file, b.doc_index)));

    // Child names (replicas expanded) → the declaring document.
    let mut children: BTreeMap<String, &ManifestDoc> = BTreeMap::new();
    // Base names → the declaring document (the first one, in file order).
    let mut bases: BTreeMap<&str, &ManifestDoc> = BTreeMap::new();
    for doc in &order {
        let m = &*doc.manifest;
        let mut clash = None;
        for child in replica_names(m) {
            if let Some(first) = children.get(&child) {
                clash = Some((child, *first));
                break;
            }
        }
        match clash {
            Some((child, first)) => {
                let location = first.spans.value("/name");
                let what = if child == m.name && child == first.manifest.name {
                    format!("duplicate name \"{child}\"")
                } else {
                    format!(
                        "child name \"{child}\" collides with a child of \"{}\"",
                        first.manifest.name
                    )
                };
                out.push(
                    doc.error_at(Code::DuplicateName, "/name", what)
                        .with_hint(format!(
                            "\"{}\" is declared at {}:{}:{}; names must be unique in the directory",
                            first.manifest.name,
                            first.file.display(),
                            location.line,
                            location.column
                        )),
                );
            }
            None => {
                for child in replica_names(m) {
                    children.insert(child, doc);
                }
                bases.insert(&m.name, doc);
            }
        }
    }

    // Dependencies exist; `completed` needs a oneshot.
    let resolve = |name: &str| bases.get(name).or_else(|| children.get(name)).copied();
    let mut edges: BTreeMap<&str, Vec<(&str, usize)>> = BTreeMap::new();
    for doc in &order {
        let m = &*doc.manifest;
        if !bases
            .get(m.name.as_str())
            .is_some_and(|d| std::ptr::eq(*d, *doc))
        {
            continue;
        }
        for (index, dep) in m.dependencies.iter().enumerate() {
            let pointer = dependency_pointer(doc, index);
            match resolve(&dep.0.name) {
                None => {
                    let diagnostic = doc.error_at(
                        Code::MissingDependency,
                        &pointer,
                        format!(
                            "dependency \"{}\" is not declared by any manifest",
                            dep.0.name
                        ),
                    );
                    out.push(match did_you_mean(&dep.0.name, bases.keys().copied()) {
                        Some(best) => diagnostic.with_hint(format!("did you mean \"{best}\"?")),
                        None => diagnostic,
                    });
                }
                Some(target) => {
                    if dep.0.condition == Condition::Completed
                        && target.manifest.kind != Kind::Oneshot
                    {
                        out.push(
                            doc.error_at(
                                Code::Invalid,
                                &pointer,
                                format!("condition `completed` needs a oneshot, but \"{}\" is a service", target.manifest.name),
                            )
                            .with_hint("use `condition: ready` or `started`, or make the dependency `kind: oneshot`"),
                        );
                    }
                    if target.manifest.name != m.name {
                        edges
                            .entry(&m.name)
                            .or_default()
                            .push((&target.manifest.name, index));
                    }
                }
            }
        }
    }
    for cycle in find_cycles(&edges) {
        let path = |start: usize| {
            let mut names: Vec<&str> = cycle[start..]
                .iter()
                .chain(&cycle[..start])
                .map(|(n, _)| *n)
                .collect();
            names.push(names[0]);
            names.join(" → ")
        };
        for (position, (name, dep_index)) in cycle.iter().enumerate() {
            if let Some(doc) = bases.get(name) {
                out.push(
                    doc.error_at(
                        Code::Cycle,
                        &dependency_pointer(doc, *dep_index),
                        format!("dependency cycle: {}", path(position)),
                    )
                    .with_hint("remove one of these dependencies"),
                );
            }
        }
    }

    // Many manifests usually share a few secret files: open each once.
    let mut readable = HashMap::new();
    for doc in &order {
        check_secret_sources(doc, &mut readable, &mut out);
    }
    out
}

/// One cycle per strongly connected component with more than one child: a list of
/// `(name, index of its dependency on the next name)`, starting at the smallest name.
fn find_cycles<'a>(edges: &BTreeMap<&'a str, Vec<(&'a str, usize)>>) -> Vec<Vec<(&'a str, usize)>> {
    let mut cycles = Vec::new();
    let mut covered: BTreeSet<&str> = BTreeSet::new();
    for &start in edges.keys() {
        if covered.contains(start) {
            continue;
        }
        // Breadth-first search from `start` back to itself gives a shortest cycle through it.
        let mut parent: BTreeMap<&str, (&str, usize)> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut closed = None;
        'search: while let Some(node) = queue.pop_front() {
            for &(next, index) in edges.get(node).map(Vec::as_slice).unwrap_or_default() {
                if next == start {
                    closed = Some((node, index));
                    break 'search;
                }
                if !parent.contains_key(next) {
                    parent.insert(next, (node, index));
                    queue.push_back(next);
                }
            }
        }
        let Some((mut node, mut index)) = closed else {
            continue;
        };
        let mut cycle = Vec::new();
        loop {
            cycle.push((node, index));
            if node == start {
                break;
            }
            let Some(&(prev, prev_index)) = parent.get(node) else {
                break;
            };
            (node, index) = (prev, prev_index);
        }
        cycle.reverse();
        if cycle.iter().any(|(name, _)| covered.contains(name)) {
            continue;
        }
        covered.extend(cycle.iter().map(|(name, _)| *name));
        cycles.push(cycle);
    }
    cycles
}

fn check_secret_sources(
    doc: &ManifestDoc,
    readable: &mut HashMap<PathBuf, Result<(), String>>,
    out: &mut Vec<Diagnostic>,
) {
    let base = base_dir(&doc.file);
    for (index, secret) in doc.manifest.secrets.iter().enumerate() {
        if let Some(file) = &secret.file {
            let path = base.join(file);
            // Opening proves the secret readable without reading its value.
            let opened = readable
                .entry(path)
                .or_insert_with_key(|path| open_secret(path).map_err(|err| describe_io(&err)));
            if let Err(err) = opened
                && secret.required
            {
                out.push(
                    doc.error_at(
                        Code::Secret,
                        &format!("/secrets/{index}/file"),
                        format!("secret \"{}\": cannot read {}: {err}", secret.name, file.display()),
                    )
                    .with_hint("create the file, fix the path (relative to this manifest's folder) or set `required: false`"),
                );
            }
        }
        if let Some(var) = &secret.env
            && secret.required
            && std::env::var_os(var).is_none()
        {
            out.push(
                doc.error_at(
                    Code::Secret,
                    &format!("/secrets/{index}/env"),
                    format!(
                        "secret \"{}\": variable {var} is not set in herder's environment",
                        secret.name
                    ),
                )
                .with_hint("it must be set when herder starts the child")
                .warning(),
            );
        }
    }
}

/// Opens a secret file for reading (proving it readable) without reading its value.
fn open_secret(path: &Path) -> std::io::Result<()> {
    let file = fs::File::open(path)?;
    if file.metadata()?.is_dir() {
        return Err(std::io::Error::from(std::io::ErrorKind::IsADirectory));
    }
    Ok(())
}

/// The folder relative paths of a manifest are resolved against: the manifest file's own.
pub fn base_dir(file: &Path) -> std::path::PathBuf {
    let parent = file.parent().unwrap_or(Path::new(""));
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_close_matches_only() {
        assert_eq!(
            did_you_mean("restart_polcy", ["restart", "name"]),
            Some("restart")
        );
        assert_eq!(did_you_mean("zzz", ["restart", "name"]), None);
    }

    #[test]
    fn cycles_are_found_once_with_their_path() {
        let mut edges: BTreeMap<&str, Vec<(&str, usize)>> = BTreeMap::new();
        edges.insert("a", vec![("b", 0)]);
        edges.insert("b", vec![("c", 1)]);
        edges.insert("c", vec![("a", 0)]);
        edges.insert("d", vec![("a", 0)]);
        let cycles = find_cycles(&edges);
        assert_eq!(cycles, vec![vec![("a", 0), ("b", 1), ("c", 0)]]);
    }
}
