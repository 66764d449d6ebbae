//! What every importer needs: child names from foreign service names, dependency cycles,
//! the environment in its shortest form, and the key order of a written manifest.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::convert::names::to_child_name;
use crate::convert::note::Note;

/// Key order of a written manifest: the order of docs/manifest.md, then sorted.
pub const KEY_ORDER: &[&str] = &[
    "name",
    "description",
    "labels",
    "enabled",
    "kind",
    "command",
    "working_dir",
    "environment",
    "inherit_environment",
    "secrets",
    "dependencies",
    "condition",
    "restart",
    "policy",
    "backoff",
    "initial",
    "max",
    "multiplier",
    "jitter",
    "limit",
    "count",
    "window",
    "criticality",
    "start_timeout",
    "readiness",
    "health_check",
    "http",
    "url",
    "status",
    "tcp",
    "host",
    "port",
    "exec",
    "log_line",
    "signal",
    "interval",
    "timeout",
    "start_period",
    "failure_threshold",
    "success_threshold",
    "resource_limits",
    "memory",
    "cpu",
    "open_files",
    "processes",
    "stop",
    "update",
    "replicas",
    "user",
    "group",
    "value",
    "secret_ref",
    "file",
    "env",
    "required",
];

/// Child names for foreign service names (in source order, each with where it is
/// declared): a DNS label each, with a note for every renamed one. Two services that end
/// up with the same name, or a name with nothing usable in it, are errors.
pub fn child_names(
    services: &[(String, Note)],
    mapped: &mut Vec<Note>,
) -> Result<BTreeMap<String, String>, Vec<Note>> {
    let mut names = BTreeMap::new();
    let mut taken: BTreeMap<String, &str> = BTreeMap::new();
    let mut errors = Vec::new();
    for (original, at) in services {
        let Some(name) = to_child_name(original) else {
            errors.push(Note {
                message: format!("service `{original}` has no letter or digit to make a name of"),
                ..at.clone()
            });
            continue;
        };
        if let Some(other) = taken.get(&name) {
            errors.push(Note {
                message: format!("services `{other}` and `{original}` both become `{name}` (names must be DNS labels: lowercase letters, digits, `-`); rename one"),
                ..at.clone()
            });
            continue;
        }
        if &name != original {
            mapped.push(Note {
                message: format!("renamed `{original}` to `{name}` (a child name is a DNS label)"),
                ..at.clone()
            });
        }
        taken.insert(name.clone(), original);
        names.insert(original.clone(), name);
    }
    if errors.is_empty() {
        Ok(names)
    } else {
        Err(errors)
    }
}

/// A dependency cycle, as `a → b → a`, if `graph` (child → what it depends on) has one.
pub fn find_cycle(graph: &BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Active,
        Done,
    }
    let mut marks: BTreeMap<&str, Mark> = BTreeMap::new();
    for start in graph.keys() {
        if marks.contains_key(start.as_str()) {
            continue;
        }
        // Iterative depth-first search: (node, index of the next edge).
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        marks.insert(start, Mark::Active);
        while let Some((node, next)) = stack.last().copied() {
            let edges = graph.get(node).map_or(&[][..], Vec::as_slice);
            if let Some(target) = edges.get(next) {
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
                match marks.get(target.as_str()) {
                    Some(Mark::Active) => {
                        let from = stack.iter().position(|(n, _)| *n == target).unwrap_or(0);
                        let mut cycle: Vec<String> =
                            stack[from..].iter().map(|(n, _)| (*n).to_owned()).collect();
                        cycle.push(target.clone());
                        return Some(cycle);
                    }
                    Some(Mark::Done) => {}
                    None => {
                        marks.insert(target, Mark::Active);
                        stack.push((target, 0));
                    }
                }
            } else {
                marks.insert(node, Mark::Done);
                stack.pop();
            }
        }
    }
    None
}

/// Environment variables as a manifest writes them: a `{KEY: value}` map, or the list form
/// when a variable comes from a secret. Later entries of a name replace earlier ones.
pub fn environment(vars: &[(String, String)], secrets: &[(String, String)]) -> Option<Value> {
    let mut seen = BTreeSet::new();
    let mut entries: Vec<(&str, Value)> = Vec::new();
    for (name, value) in vars.iter().rev() {
        if seen.insert(name.as_str()) {
            entries.push((name, Value::from(value.as_str())));
        }
    }
    entries.reverse();
    if entries.is_empty() && secrets.is_empty() {
        return None;
    }
    if secrets.is_empty() {
        let map: Map<String, Value> = entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        return Some(Value::Object(map));
    }
    let mut list: Vec<Value> = entries
        .into_iter()
        .filter(|(name, _)| !secrets.iter().any(|(var, _)| var == name))
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    for (var, secret) in secrets {
        list.push(json!({"name": var, "secret_ref": secret}));
    }
    Some(Value::Array(list))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Location;
    use std::path::Path;

    fn at() -> Note {
        Note::new(Path::new("f"), Location::START, "", "")
    }

    #[test]
    fn names_are_normalised_and_collisions_refused() {
        let mut mapped = Vec::new();
        let ok = child_names(&[("web_1".into(), at()), ("db".into(), at())], &mut mapped);
        assert_eq!(
            ok.ok().and_then(|m| m.get("web_1").cloned()).as_deref(),
            Some("web-1")
        );
        assert_eq!(mapped.len(), 1);
        let clash = child_names(
            &[("web_1".into(), at()), ("web-1".into(), at())],
            &mut mapped,
        );
        assert!(clash.is_err_and(|e| e[0].message.contains("both become `web-1`")));
    }

    #[test]
    fn cycles_are_found() {
        let graph: BTreeMap<String, Vec<String>> = [
            ("a", vec!["b"]),
            ("b", vec!["c"]),
            ("c", vec!["a"]),
            ("d", vec![]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
        .collect();
        assert_eq!(
            find_cycle(&graph),
            Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
        let acyclic: BTreeMap<String, Vec<String>> = [
            ("a".to_owned(), vec!["b".to_owned()]),
            ("b".to_owned(), vec![]),
        ]
        .into();
        assert_eq!(find_cycle(&acyclic), None);
    }

    #[test]
    fn environment_forms() {
        let vars = [
            ("A".to_owned(), "1".to_owned()),
            ("A".to_owned(), "2".to_owned()),
        ];
        assert_eq!(environment(&vars, &[]), Some(json!({"A": "2"})));
        let secrets = [("TOKEN".to_owned(), "token".to_owned())];
        assert_eq!(
            environment(&vars, &secrets),
            Some(json!([{"name": "A", "value": "2"}, {"name": "TOKEN", "secret_ref": "token"}]))
        );
        assert_eq!(environment(&[], &[]), None);
    }
}
