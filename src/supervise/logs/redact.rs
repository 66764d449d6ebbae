//! Redaction of a child's known secret values from its captured output.
//!
//! Every secret a child's environment receives (`environment[].secret_ref`) is replaced by
//! [`MARKER`] in each captured line, before the line reaches the ring, the file, followers or
//! the foreground stream. The pump redacts whole lines, so a value split across two reads of
//! the pipe is caught; a line longer than the 16 KiB split is cut where no value straddles the
//! cut. A rotated secret applies at once: the next spawn request carries the new value and
//! hands it to the log before the process starts, and the previous values stay redacted too
//! (an old incarnation may still be running).
//!
//! The rule has limits, documented in `docs/operations.md`: values shorter than
//! [`MIN_SECRET_LEN`] bytes are not redacted (they would blank out ordinary words and
//! numbers), a multi-line value is redacted line by line, and a value the child prints
//! transformed (base64, URL-encoded, reversed, split by other output) cannot be recognised.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, MatchKind};

/// Values shorter than this many bytes are not redacted.
pub const MIN_SECRET_LEN: usize = 6;

/// What replaces a secret value in captured output.
pub const MARKER: &str = "[redacted]";

/// Secret values remembered per child: the current and the earlier ones, newest last.
pub const MAX_VALUES: usize = 64;

/// Finds and replaces the secret values of one child.
#[derive(Debug, Default)]
pub struct Redactor {
    matcher: Option<AhoCorasick>,
    values: Vec<String>,
    longest: usize,
}

impl Redactor {
    /// A redactor for `values` (each non-empty line of each value at least
    /// [`MIN_SECRET_LEN`] bytes long), keeping at most [`MAX_VALUES`] of them, newest last.
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut kept: Vec<String> = Vec::new();
        for value in values {
            for line in value.lines().map(|l| l.trim_end_matches('\r')) {
                if line.len() >= MIN_SECRET_LEN && !kept.iter().any(|k| k == line) {
                    kept.push(line.to_owned());
                }
            }
        }
        if kept.len() > MAX_VALUES {
            kept.drain(..kept.len() - MAX_VALUES);
        }
        let matcher = (!kept.is_empty())
            .then(|| {
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&kept)
                    .ok()
            })
            .flatten();
        let longest = kept.iter().map(String::len).max().unwrap_or(0);
        Self {
            matcher,
            values: kept,
            longest,
        }
    }

    /// This redactor with `values` added (the earlier values stay, up to [`MAX_VALUES`]).
    pub fn with<'a>(&self, values: impl IntoIterator<Item = &'a str>) -> Self {
        let all: Vec<String> = (self.values.iter().cloned())
            .chain(values.into_iter().map(str::to_owned))
            .collect();
        Self::new(all.iter().map(String::as_str))
    }

    /// Whether there is anything to redact.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// The longest value, in bytes: a cut of a long line must see this many bytes past it.
    pub fn longest(&self) -> usize {
        self.longest
    }

    /// `text` with every value replaced by [`MARKER`].
    pub fn redact<'a>(&self, text: &'a [u8]) -> Cow<'a, [u8]> {
        let Some(matcher) = &self.matcher else {
            return Cow::Borrowed(text);
        };
        if matcher.find(text).is_none() {
            return Cow::Borrowed(text);
        }
        let mut out = Vec::with_capacity(text.len());
        matcher.replace_all_with_bytes(text, &mut out, |_, _, out| {
            out.extend_from_slice(MARKER.as_bytes());
            true
        });
        Cow::Owned(out)
    }

    /// Where to cut the first `max` bytes off `text` (at least `max + longest` bytes long)
    /// so that no value straddles the cut: `max`, or the end of the value that would.
    pub fn cut(&self, text: &[u8], max: usize) -> usize {
        let Some(matcher) = &self.matcher else {
            return max;
        };
        let window = &text[..text.len().min(max + self.longest)];
        matcher
            .find_iter(window)
            .find(|m| m.start() < max && m.end() > max)
            .map_or(max, |m| m.end())
    }
}

/// The secret values `env` gives the child: the values of the variables its manifest fills
/// from `secret_ref`s.
pub fn secret_values<'a>(
    manifest: &'a crate::manifest::Manifest,
    env: &'a [(String, String)],
) -> impl Iterator<Item = &'a str> + 'a {
    manifest
        .environment
        .0
        .iter()
        .filter(|var| var.secret_ref.is_some())
        .filter_map(move |var| {
            env.iter()
                .rev()
                .find(|(key, _)| *key == var.name)
                .map(|(_, value)| value.as_str())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_replaced_and_short_ones_kept() {
        let r = Redactor::new(["s3cr3t-token", "abc", "two\nline-value"]);
        assert_eq!(
            &*r.redact(b"x s3cr3t-token y s3cr3t-token"),
            b"x [redacted] y [redacted]"
        );
        assert_eq!(&*r.redact(b"abc two"), b"abc two", "too short to redact");
        assert_eq!(&*r.redact(b"got line-value"), b"got [redacted]");
        assert!(matches!(r.redact(b"nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_cut_never_splits_a_value() {
        let r = Redactor::new(["0123456789"]);
        let text = b"aaaa0123456789bbbbbbbbbbbbb";
        assert_eq!(r.cut(text, 8), 14, "moved past the value");
        assert_eq!(r.cut(text, 4), 4, "a value starting at the cut is whole");
        assert_eq!(r.cut(text, 16), 16);
    }

    #[test]
    fn earlier_values_stay_and_the_count_is_bounded() {
        let r = Redactor::new(["old-secret"]).with(["new-secret"]);
        assert_eq!(
            &*r.redact(b"old-secret new-secret"),
            b"[redacted] [redacted]"
        );
        let many: Vec<String> = (0..MAX_VALUES + 5)
            .map(|i| format!("secret-{i:04}"))
            .collect();
        let r = Redactor::new(many.iter().map(String::as_str));
        assert_eq!(r.values.len(), MAX_VALUES);
        assert_eq!(
            &*r.redact(b"secret-0000"),
            b"secret-0000",
            "the oldest went"
        );
    }
}
