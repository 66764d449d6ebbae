//! Name and label syntax shared by the exporter, its lint and the importers: DNS-1123
//! labels and subdomains, DNS-1035 labels, Kubernetes label keys and values, and turning a
//! foreign service name into a herder child name.

/// Longest DNS label.
pub const MAX_LABEL: usize = 63;

/// Longest DNS subdomain.
pub const MAX_SUBDOMAIN: usize = 253;

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// A DNS-1123 label: lowercase letters, digits and `-`, starting and ending with a letter
/// or digit, at most 63 characters (Kubernetes container and most object names).
pub fn is_dns1123_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_LABEL
        && name.chars().all(|c| is_lower_alnum(c) || c == '-')
        && name.starts_with(is_lower_alnum)
        && name.ends_with(is_lower_alnum)
}

/// A DNS-1035 label: a DNS-1123 label that starts with a letter (Kubernetes Service names).
pub fn is_dns1035_label(name: &str) -> bool {
    is_dns1123_label(name) && name.starts_with(|c: char| c.is_ascii_lowercase())
}

/// A DNS-1123 subdomain: dot-separated DNS-1123 labels, at most 253 characters.
pub fn is_dns1123_subdomain(name: &str) -> bool {
    name.len() <= MAX_SUBDOMAIN && name.split('.').all(is_dns1123_label)
}

/// The name part of a label key, or a label value when not empty: at most 63 characters of
/// letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit.
fn is_label_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_LABEL
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A Kubernetes label (or annotation) key: `[prefix/]name`, where the prefix is a DNS
/// subdomain.
pub fn is_label_key(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => is_dns1123_subdomain(prefix) && is_label_name(name),
        None => is_label_name(key),
    }
}

/// A Kubernetes label value: empty, or a label name.
pub fn is_label_value(value: &str) -> bool {
    value.is_empty() || is_label_name(value)
}

/// A foreign name (`web_1`, `API.Server`) as a herder child name (a DNS label): lowercase,
/// every run of other characters as one `-`, trimmed, at most 63 characters. `None` when
/// nothing of it is left.
pub fn to_child_name(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if is_lower_alnum(c.to_ascii_lowercase()) {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out: String = out.trim_matches('-').chars().take(MAX_LABEL).collect();
    while out.ends_with('-') {
        out.pop();
    }
    (!out.is_empty()).then_some(out)
}

/// A label value made from free text (a directory name): invalid characters become `-`,
/// trimmed to start and end with a letter or digit, at most 63 characters.
pub fn to_label_value(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let mut out: String = trimmed.chars().take(MAX_LABEL).collect();
    while out.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        assert!(is_dns1123_label("web-0"));
        assert!(is_dns1123_label("0web"));
        assert!(!is_dns1035_label("0web"));
        assert!(!is_dns1123_label("web-"));
        assert!(!is_dns1123_label("Web"));
        assert!(!is_dns1123_label(&"a".repeat(64)));
        assert!(is_dns1123_subdomain("app.kubernetes.io"));
        assert!(!is_dns1123_subdomain("app..io"));
    }

    #[test]
    fn label_syntax() {
        assert!(is_label_key("app.kubernetes.io/name"));
        assert!(is_label_key("tier"));
        assert!(!is_label_key("/name"));
        assert!(!is_label_key("a/b/c"));
        assert!(is_label_value(""));
        assert!(is_label_value("v1.2_x"));
        assert!(!is_label_value("has space"));
        assert!(!is_label_value("-x"));
    }

    #[test]
    fn foreign_names_become_dns_labels() {
        assert_eq!(to_child_name("web_1").as_deref(), Some("web-1"));
        assert_eq!(to_child_name("API.Server").as_deref(), Some("api-server"));
        assert_eq!(to_child_name("__x__").as_deref(), Some("x"));
        assert_eq!(to_child_name("___"), None);
        assert_eq!(to_child_name(&"a".repeat(70)).map(|n| n.len()), Some(63));
        assert_eq!(to_label_value("herder.d"), "herder.d");
        assert_eq!(to_label_value("my project!"), "my-project");
    }
}
