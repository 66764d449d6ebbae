//! Compose interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?error}`, `${VAR?error}`, `${VAR:+replacement}`, `${VAR+replacement}` and `$$`
//! for a literal `$`, with defaults and replacements interpolated in turn (the Compose
//! Specification's rules). Errors name the variable, never a value.

/// Deepest nesting of `${…}` inside defaults.
const MAX_NESTING: usize = 16;

/// `text` with every variable replaced; `lookup` gives a variable's value (`None`: unset).
pub fn interpolate(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    expand(text, lookup, 0)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn expand(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    depth: usize,
) -> Result<String, String> {
    if depth > MAX_NESTING {
        return Err("variables nested too deeply".into());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        match rest.chars().next() {
            Some('$') => {
                out.push('$');
                rest = &rest[1..];
            }
            Some('{') => {
                let body_len = closing_brace(&rest[1..])
                    .ok_or_else(|| format!("unclosed `${{` in `{}`", shorten(text)))?;
                let body = &rest[1..1 + body_len];
                out.push_str(&braced(body, lookup, depth)?);
                rest = &rest[2 + body_len..];
            }
            Some(c) if is_name_start(c) => {
                let len = rest.find(|c: char| !is_name(c)).unwrap_or(rest.len());
                out.push_str(&lookup(&rest[..len]).unwrap_or_default());
                rest = &rest[len..];
            }
            // A `$` before anything else stays as it is.
            _ => out.push('$'),
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The length of the text before the `}` that closes a `${` (nested `${…}` skipped).
fn closing_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '$' if chars.peek().is_some_and(|(_, n)| *n == '{') => {
                depth += 1;
                chars.next();
            }
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn braced(
    body: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    depth: usize,
) -> Result<String, String> {
    let name_len = body.find(|c: char| !is_name(c)).unwrap_or(body.len());
    let name = &body[..name_len];
    if name.is_empty() || !name.starts_with(is_name_start) {
        return Err(format!("`${{{body}}}` does not name a variable"));
    }
    let operator = &body[name_len..];
    let value = lookup(name);
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let (op, arg) = if operator.is_empty() {
        ("", "")
    } else if let Some(op) = [":-", ":?", ":+"]
        .into_iter()
        .find(|op| operator.starts_with(op))
    {
        (op, &operator[2..])
    } else if let Some(op) = ["-", "?", "+"]
        .into_iter()
        .find(|op| operator.starts_with(op))
    {
        (op, &operator[1..])
    } else {
        return Err(format!(
            "`${{{body}}}`: unknown operator after `{name}` (use :-, -, :?, ?, :+ or +)"
        ));
    };
    match op {
        "" => Ok(value.unwrap_or_default()),
        ":-" if non_empty => Ok(value.unwrap_or_default()),
        "-" if set => Ok(value.unwrap_or_default()),
        ":-" | "-" => expand(arg, lookup, depth + 1),
        ":?" | "?" if (op == ":?" && !non_empty) || (op == "?" && !set) => {
            let reason = expand(arg, lookup, depth + 1)?;
            let reason = if reason.is_empty() {
                "required".to_owned()
            } else {
                reason
            };
            Err(format!("variable `{name}` is not set: {reason}"))
        }
        ":?" | "?" => Ok(value.unwrap_or_default()),
        ":+" if non_empty => expand(arg, lookup, depth + 1),
        "+" if set => expand(arg, lookup, depth + 1),
        _ => Ok(String::new()),
    }
}

fn shorten(text: &str) -> String {
    if text.chars().count() > 40 {
        let short: String = text.chars().take(40).collect();
        format!("{short}…")
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".into()),
            "EMPTY" => Some(String::new()),
            "OTHER" => Some("other".into()),
            _ => None,
        }
    }

    fn run(text: &str) -> Result<String, String> {
        interpolate(text, &env)
    }

    #[test]
    fn the_specification_forms() {
        assert_eq!(run("a $SET b ${SET}c").as_deref(), Ok("a value b valuec"));
        assert_eq!(run("${UNSET}|$UNSET|").as_deref(), Ok("||"));
        assert_eq!(
            run("${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} ${SET:-d}").as_deref(),
            Ok("d d  value")
        );
        assert_eq!(
            run("${SET:+r} ${EMPTY:+r} ${EMPTY+r} ${UNSET+r}").as_deref(),
            Ok("r  r ")
        );
        assert_eq!(
            run("${UNSET:-${OTHER}} ${UNSET:-${ALSO:-deep}}").as_deref(),
            Ok("other deep")
        );
        assert_eq!(run("$$SET $$ costs $5").as_deref(), Ok("$SET $ costs $5"));
        assert_eq!(run("${EMPTY?x}").as_deref(), Ok(""));
    }

    #[test]
    fn errors_name_the_variable() {
        assert_eq!(
            run("${UNSET:?give it}"),
            Err("variable `UNSET` is not set: give it".into())
        );
        assert_eq!(
            run("${EMPTY:?}"),
            Err("variable `EMPTY` is not set: required".into())
        );
        assert!(run("${UNSET?}").is_err());
        assert!(run("${SET").is_err_and(|e| e.contains("unclosed")));
        assert!(run("${1X}").is_err());
        assert!(run("${SET/x/y}").is_err_and(|e| e.contains("operator")));
        // A value never appears in an error.
        assert!(run("${SET:?${OTHER}}").is_ok());
    }
}
