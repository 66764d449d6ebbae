//! Semantic checks the schema cannot express: within one manifest ([`check_manifest`]) and
//! across the whole set ([`check_set`]). Every diagnostic names the file at fault.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::collections::hash_map::Entry;
use std::path::Path;

// The set checks hash every child name on every load and rescan: foldhash is several
// times faster than SipHash on short strings, and names come from the operator's files.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use super::diagnostic::{Code, Diagnostic};
use super::load::ManifestDoc;
use super::model::{CHECK_KEYS, Check, Condition, Kind, Manifest, Probe};
use super::spans::Spans;
use super::suggest::did_you_mean;
use super::validate_graph::find_cycles;
use super::validate_ports::{check_port_owners, check_ports};
use super::validate_schedule::check_schedule;
use super::validate_secrets::{Readable, check_secret_sources, check_secrets};

/// Checks one typed manifest: `log_line` only for readiness,
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
    check_schedule(doc, &mut out);
    check_ports(doc, &mut out);
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
    if let Some(longest) = child_names(m).next_back()
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

/// Checks the written form of both probes before typing: exactly one check key each, each
/// error at the offending key (a probe without its one check has no typed form).
pub fn check_probe_shapes(
    value: &serde_json::Value,
    spans: &Spans,
    file: &Path,
    index: usize,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for base in ["/readiness", "/health_check"] {
        let Some(probe) = value.pointer(base).and_then(serde_json::Value::as_object) else {
            continue;
        };
        let names: Vec<&str> = CHECK_KEYS
            .into_iter()
            .filter(|key| probe.contains_key(*key))
            .collect();
        let at_key = |pointer: &str, message: String| {
            Diagnostic::error(
                Code::Invalid,
                file,
                index,
                spans.key(pointer),
                pointer,
                message,
            )
        };
        match names.as_slice() {
            [] => out.push(
                at_key(base, format!("{} declares no check", &base[1..]))
                    .with_hint(format!("add one of {}", backticked(&CHECK_KEYS))),
            ),
            [_] => {}
            [_, rest @ ..] => {
                for name in rest {
                    out.push(
                        at_key(
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
    }
    out
}

/// `` `a`, `b`, `c` or `d` ``.
fn backticked(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [only] => format!("`{only}`"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|w| format!("`{w}`")).collect();
            format!("{} or `{last}`", init.join(", "))
        }
    }
}

fn check_probe(
    doc: &ManifestDoc,
    base: &str,
    probe: Option<&Probe>,
    readiness: bool,
    out: &mut Vec<Diagnostic>,
) {
    let Some(probe) = probe else { return };
    if let Check::Http(http) = &probe.check
        && let Err(reason) = http.target()
    {
        out.push(
            doc.error_at(Code::Invalid, &format!("{base}/http/url"), reason)
                .with_hint("write it as `http://host:port/path` (IPv6 hosts in brackets)"),
        );
    }
    if let Check::LogLine(pattern) = &probe.check {
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
    let key = probe.check.key();
    match &probe.check {
        Check::Notify | Check::NotificationFd(_) if !readiness => out.push(
            doc.error_at_key(
                Code::Invalid,
                &format!("{base}/{key}"),
                format!("{key} can only be used by the readiness probe"),
            )
            .with_hint("for a liveness check over sd_notify, use `health_check: {watchdog: 10s}`"),
        ),
        Check::Watchdog(_) if readiness => out.push(
            doc.error_at_key(
                Code::Invalid,
                &format!("{base}/watchdog"),
                "watchdog can only be used by the health check",
            )
            .with_hint("use `readiness: {notify: true}` and `health_check: {watchdog: 10s}`"),
        ),
        Check::Watchdog(period) if period.get().is_zero() => out.push(doc.error_at(
            Code::Invalid,
            &format!("{base}/watchdog"),
            "watchdog must be greater than 0s",
        )),
        _ => {}
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
    // The pointers are only needed for a diagnostic, so only then looked up and built.
    let list_form = || doc.spans.contains("/environment/0");
    let mut seen: HashSet<&str> = HashSet::new();
    for (index, var) in m.environment.0.iter().enumerate() {
        let pointer = || {
            if list_form() {
                format!("/environment/{index}")
            } else {
                format!("/environment/{}", super::spans::escape_segment(&var.name))
            }
        };
        if !seen.insert(&var.name) {
            out.push(doc.error_at_key(
                Code::Invalid,
                &name_pointer(&pointer(), list_form()),
                format!("environment variable \"{}\" is declared twice", var.name),
            ));
        }
        if var.name.contains('=') || var.name.contains('\0') {
            out.push(doc.error_at_key(
                Code::Invalid,
                &name_pointer(&pointer(), list_form()),
                "environment variable names cannot contain `=`",
            ));
        }
        match (&var.value, &var.secret_ref) {
            (Some(_), Some(_)) => out.push(
                doc.error_at_key(
                    Code::Invalid,
                    &format!("{}/secret_ref", pointer()),
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
                    &pointer(),
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
                    &format!("{}/secret_ref", pointer()),
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

fn check_dependencies(doc: &ManifestDoc, out: &mut Vec<Diagnostic>) {
    let m = &*doc.manifest;
    let mut seen = BTreeSet::new();
    for (index, dep) in m.dependencies.iter().enumerate() {
        if dep.0.name == m.name {
            out.push(doc.error_at(
                Code::Cycle,
                &dependency_pointer(doc, index),
                format!("\"{}\" depends on itself", m.name),
            ));
        }
        if !seen.insert(dep.0.name.as_str()) {
            out.push(doc.error_at(
                Code::Invalid,
                &dependency_pointer(doc, index),
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
///
/// This runs over the whole set on every load and every rescan, so it works on borrowed
/// names and hash maps, and sorts only what a diagnostic shows.
pub fn check_set<'a>(docs: impl IntoIterator<Item = &'a ManifestDoc>) -> Vec<Diagnostic> {
    let mut order: Vec<&ManifestDoc> = docs.into_iter().collect();
    order.sort_by(|a, b| (&a.file, a.doc_index).cmp(&(&b.file, b.doc_index)));
    check_sorted_set(&order)
}

/// [`check_set`] on documents already in file order (by path, then document index), as
/// [`load_paths`](super::load::load_paths) reads them: comparing thousands of paths
/// component by component only to find them sorted is a measurable part of a load.
pub(super) fn check_sorted_set(order: &[&ManifestDoc]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    // Child names (replicas expanded) → the declaring document.
    let mut children: HashMap<Cow<'_, str>, &ManifestDoc> = HashMap::with_capacity(order.len());
    // Base names → their node in `nodes`, which holds the declaring document (the first
    // one, in file order).
    let mut bases: HashMap<&str, usize> = HashMap::with_capacity(order.len());
    let mut nodes: Vec<&ManifestDoc> = Vec::with_capacity(order.len());
    for doc in order {
        let m = &*doc.manifest;
        let clash = child_names(m).find_map(|child| {
            let first = *children.get(child.as_ref())?;
            Some((child, first))
        });
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
                for child in child_names(m) {
                    children.insert(child, doc);
                }
                match bases.entry(&m.name) {
                    Entry::Occupied(node) => nodes[*node.get()] = doc,
                    Entry::Vacant(node) => {
                        node.insert(nodes.len());
                        nodes.push(doc);
                    }
                }
            }
        }
    }

    // Dependencies exist; `completed` needs a oneshot.
    let resolve = |name: &str| {
        bases
            .get(name)
            .map(|&node| nodes[node])
            .or_else(|| children.get(name).copied())
    };
    // Sorted only if a suggestion is needed.
    let mut base_names: Option<Vec<&str>> = None;
    // `edges[node]`: `(dependency's node, index of the dependency)`, in declaration order.
    let mut edges: Vec<Vec<(usize, usize)>> = vec![Vec::new(); nodes.len()];
    for doc in order {
        let m = &*doc.manifest;
        let Some(&node) = bases.get(m.name.as_str()) else {
            continue;
        };
        if !std::ptr::eq(nodes[node], *doc) {
            continue;
        }
        for (index, dep) in m.dependencies.iter().enumerate() {
            match resolve(&dep.0.name) {
                None => {
                    let diagnostic = doc.error_at(
                        Code::MissingDependency,
                        &dependency_pointer(doc, index),
                        format!(
                            "dependency \"{}\" is not declared by any manifest",
                            dep.0.name
                        ),
                    );
                    let candidates = base_names.get_or_insert_with(|| {
                        let mut names: Vec<&str> = bases.keys().copied().collect();
                        names.sort_unstable();
                        names
                    });
                    out.push(
                        match did_you_mean(&dep.0.name, candidates.iter().copied()) {
                            Some(best) => diagnostic.with_hint(format!("did you mean \"{best}\"?")),
                            None => diagnostic,
                        },
                    );
                }
                Some(target) => {
                    if dep.0.condition == Condition::Completed
                        && target.manifest.kind != Kind::Oneshot
                    {
                        out.push(
                            doc.error_at(
                                Code::Invalid,
                                &dependency_pointer(doc, index),
                                format!("condition `completed` needs a oneshot, but \"{}\" is a {}", target.manifest.name, target.manifest.kind.as_str()),
                            )
                            .with_hint("use `condition: ready` or `started`, or make the dependency `kind: oneshot`"),
                        );
                    }
                    if dep.0.restart && target.manifest.is_target() {
                        out.push(
                            doc.error_at_key(
                                Code::Invalid,
                                &format!("/dependencies/{index}/restart"),
                                format!("\"{}\" is a target, which has no process to restart: `restart: true` has no effect", target.manifest.name),
                            )
                            .with_hint("put `restart: true` on a dependency on the process itself")
                            .warning(),
                        );
                    }
                    if target.manifest.name != m.name
                        && let Some(&target_node) = bases.get(target.manifest.name.as_str())
                    {
                        edges[node].push((target_node, index));
                    }
                }
            }
        }
    }
    let names: Vec<&str> = nodes.iter().map(|doc| doc.manifest.name.as_str()).collect();
    for cycle in find_cycles(&names, &edges) {
        let path = |start: usize| {
            let mut path: Vec<&str> = cycle[start..]
                .iter()
                .chain(&cycle[..start])
                .map(|&(node, _)| names[node])
                .collect();
            path.push(path[0]);
            path.join(" → ")
        };
        for (position, &(node, dep_index)) in cycle.iter().enumerate() {
            let doc = nodes[node];
            out.push(
                doc.error_at(
                    Code::Cycle,
                    &dependency_pointer(doc, dep_index),
                    format!("dependency cycle: {}", path(position)),
                )
                .with_hint("remove one of these dependencies"),
            );
        }
    }

    // Many manifests usually share a few secret files: open each once.
    let mut readable = Readable::new();
    for doc in order {
        check_secret_sources(doc, &mut readable, &mut out);
    }
    out.extend(check_port_owners(order.iter().copied()));
    out
}

/// The child names a manifest declares, in the order of
/// [`replica_names`](super::desired::replica_names), borrowing the name of a single child.
fn child_names(m: &Manifest) -> impl DoubleEndedIterator<Item = Cow<'_, str>> {
    let replicas = if m.replicas > 1 { m.replicas } else { 0 };
    let single = (replicas == 0).then_some(Cow::Borrowed(m.name.as_str()));
    single
        .into_iter()
        .chain((0..replicas).map(move |i| Cow::Owned(format!("{}-{i}", m.name))))
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
