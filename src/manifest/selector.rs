//! Label selectors: `team=core,tier!=edge` picks the children whose labels match every
//! term, as `kubectl -l` does (`=` or `==` for equal, `!=` for not equal or absent).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A parsed selector: every term must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector(Vec<Term>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct Term {
    key: String,
    value: String,
    equal: bool,
}

/// Most terms a selector may have.
pub const MAX_TERMS: usize = 32;

impl Selector {
    /// Whether `labels` satisfy every term.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0
            .iter()
            .all(|term| (labels.get(&term.key) == Some(&term.value)) == term.equal)
    }

    /// Several selectors (`-l a=b -l c=d`) as one that needs them all.
    pub fn all(selectors: impl IntoIterator<Item = Selector>) -> Option<Selector> {
        let terms: Vec<Term> = selectors.into_iter().flat_map(|s| s.0).collect();
        (!terms.is_empty()).then_some(Selector(terms))
    }
}

impl FromStr for Selector {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value, equal) = if let Some((k, v)) = part.split_once("!=") {
                (k, v, false)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, v, true)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, v, true)
            } else {
                return Err(format!(
                    "`{part}` is not a label term; write `key=value` or `key!=value`"
                ));
            };
            let (key, value) = (key.trim(), value.trim());
            if key.is_empty() {
                return Err(format!("`{part}` names no label"));
            }
            terms.push(Term {
                key: key.to_owned(),
                value: value.to_owned(),
                equal,
            });
        }
        if terms.is_empty() {
            return Err("the selector is empty; write `key=value`".to_owned());
        }
        if terms.len() > MAX_TERMS {
            return Err(format!("a selector has at most {MAX_TERMS} terms"));
        }
        Ok(Self(terms))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let terms: Vec<String> = self
            .0
            .iter()
            .map(|t| format!("{}{}{}", t.key, if t.equal { "=" } else { "!=" }, t.value))
            .collect();
        f.write_str(&terms.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_all_hold() {
        let labels: BTreeMap<String, String> = [("team".to_owned(), "core".to_owned())]
            .into_iter()
            .collect();
        let parse = |text: &str| text.parse::<Selector>().unwrap_or_else(|e| panic!("{e}"));
        assert!(parse("team=core").matches(&labels));
        assert!(parse("team==core,tier!=edge").matches(&labels));
        assert!(!parse("team=web").matches(&labels));
        assert!(!parse("team!=core").matches(&labels));
        assert!("team".parse::<Selector>().is_err());
        assert!("=x".parse::<Selector>().is_err());
        assert_eq!(parse("a=b, c!=d").to_string(), "a=b,c!=d");
    }
}
