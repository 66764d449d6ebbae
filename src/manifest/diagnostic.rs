//! Located diagnostics: one type for every manifest problem, rendered as a human code frame
//! or as stable JSON for editors and CI.
//!
//! A diagnostic never contains a secret value: messages about anything under `environment`
//! or `secrets` describe the problem without echoing the value.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file (and so the run of `herder validate`) is invalid.
    Error,
    /// Worth a look, but the manifest is accepted.
    Warning,
}

/// What kind of problem a diagnostic reports: a stable identifier for tooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// The file could not be read (missing, unreadable, a directory).
    Io,
    /// The file is not text: it holds NUL bytes or is not UTF-8.
    Binary,
    /// The file is larger than herder accepts.
    TooLarge,
    /// The YAML itself is malformed (syntax, tabs, duplicate keys, truncation).
    Syntax,
    /// The YAML uses something a manifest cannot express in JSON (complex keys, tags, `.inf`).
    Unsupported,
    /// The document violates the JSON Schema (types, unknown fields, enum values, patterns, ranges).
    Schema,
    /// A rule within one manifest that the schema cannot express (exactly one probe check, regexes, references).
    Invalid,
    /// Two manifests declare the same child name (replica names included).
    DuplicateName,
    /// A dependency names a child that no manifest declares.
    MissingDependency,
    /// Dependencies form a cycle.
    Cycle,
    /// A secret's value cannot be obtained.
    Secret,
    /// A limit this machine cannot enforce (a warning of `herder validate`, from the cgroups it finds).
    Unenforced,
}

impl Code {
    /// The identifier as it appears in both output forms.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Io => "io",
            Self::Binary => "binary",
            Self::TooLarge => "too-large",
            Self::Syntax => "syntax",
            Self::Unsupported => "unsupported",
            Self::Schema => "schema",
            Self::Invalid => "invalid",
            Self::DuplicateName => "duplicate-name",
            Self::MissingDependency => "missing-dependency",
            Self::Cycle => "cycle",
            Self::Secret => "secret",
            Self::Unenforced => "unenforced",
        }
    }
}

/// A position in a source file: 1-based line and column (in characters), and how many
/// characters of that line the offending token spans.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Location {
    /// Line, from 1.
    pub line: u32,
    /// Column in characters, from 1.
    pub column: u32,
    /// Characters to underline on `line`, at least 1.
    pub length: u32,
}

impl Location {
    /// The start of a file.
    pub const START: Location = Location {
        line: 1,
        column: 1,
        length: 1,
    };
}

/// One problem in one manifest file, with its location.
///
/// The JSON form (see [`Report`]) is stable: fields are only ever added.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// `error` or `warning`.
    pub severity: Severity,
    /// Stable identifier of the kind of problem.
    pub code: Code,
    /// The file at fault.
    pub file: PathBuf,
    /// Line, from 1.
    pub line: u32,
    /// Column in characters, from 1.
    pub column: u32,
    /// Characters the offending token spans on `line`, at least 1.
    pub length: u32,
    /// JSON pointer into the document (`/readiness/http/url`), `""` for the whole document.
    pub pointer: String,
    /// Index of the document within the file (`---` separated), from 0.
    pub document: usize,
    /// What is wrong, a lowercase sentence fragment.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error at `location` in document `document` of `file`.
    pub fn error(
        code: Code,
        file: &Path,
        document: usize,
        location: Location,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Error,
            code,
            file: file.to_path_buf(),
            line: location.line,
            column: location.column,
            length: location.length.max(1),
            pointer: pointer.into(),
            document,
            message: message.into(),
            hint: None,
        }
    }

    /// The same diagnostic with a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The same diagnostic as a warning.
    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    /// Whether this diagnostic makes its file invalid.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The one-line form: `file:line:col: error[code]: message [pointer]`.
    pub fn summary(&self) -> String {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut line = format!(
            "{}:{}:{}: {severity}[{}]: {}",
            self.file.display(),
            self.line,
            self.column,
            self.code.as_str(),
            self.message
        );
        if !self.pointer.is_empty() {
            let _ = write!(line, " [{}]", self.pointer);
        }
        line
    }

    /// The human form: a header, the location, a code frame from `source` (the file's text,
    /// when available) with the token underlined, and the hint. `color` adds ANSI colours.
    pub fn render(&self, source: Option<&str>, color: bool) -> String {
        let paint = Paint { color };
        let (severity, tone) = match self.severity {
            Severity::Error => ("error", RED),
            Severity::Warning => ("warning", YELLOW),
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}{}",
            paint.apply(tone, &format!("{severity}[{}]", self.code.as_str())),
            paint.apply(BOLD, &format!(": {}", self.message))
        );
        let gutter = " ".repeat(self.line.to_string().len());
        let pointer = if self.pointer.is_empty() {
            String::new()
        } else {
            format!(" at {}", self.pointer)
        };
        let _ = writeln!(
            out,
            "{gutter}{} {}:{}:{}{pointer}",
            paint.apply(BLUE, "-->"),
            self.file.display(),
            self.line,
            self.column
        );
        let source_line = source.and_then(|text| {
            text.lines()
                .nth(usize::try_from(self.line).ok()?.checked_sub(1)?)
        });
        if let Some(text) = source_line {
            let bar = paint.apply(BLUE, "|");
            let column = self.column.saturating_sub(1) as usize;
            let frame = Frame::cut(text, column, self.length.max(1) as usize);
            let _ = writeln!(out, "{gutter} {bar}");
            let _ = writeln!(
                out,
                "{} {bar} {}",
                paint.apply(BLUE, &self.line.to_string()),
                frame.text
            );
            let indent = " ".repeat(frame.caret_at);
            let carets = "^".repeat(frame.carets);
            let _ = writeln!(out, "{gutter} {bar} {indent}{}", paint.apply(tone, &carets));
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "{gutter} {} {hint}", paint.apply(BLUE, "= hint:"));
        }
        out
    }
}

/// Widest source line a code frame shows, in characters; longer lines are cut around the
/// column, as compilers do, and marked with `…` where they were cut.
pub const FRAME_WIDTH: usize = 120;
/// Characters shown before the column in a cut line.
const FRAME_BEFORE: usize = 40;

/// The part of a source line a code frame shows, and where its carets go.
struct Frame {
    text: String,
    caret_at: usize,
    carets: usize,
}

impl Frame {
    /// The window of `line` around `column` (0-based, in characters) with `length` carets.
    fn cut(line: &str, column: usize, length: usize) -> Self {
        let chars = line.chars().count();
        let (start, end) = if chars <= FRAME_WIDTH {
            (0, chars)
        } else {
            let start = column.saturating_sub(FRAME_BEFORE).min(chars - FRAME_WIDTH);
            (start, start + FRAME_WIDTH)
        };
        let shown: String = line
            .chars()
            .skip(start)
            .take(end - start)
            .map(|c| if c == '\t' { ' ' } else { c })
            .collect();
        let before = if start > 0 { "…" } else { "" };
        let after = if end < chars { "…" } else { "" };
        let caret_at = column.saturating_sub(start) + usize::from(start > 0);
        let room = (end - start + usize::from(start > 0)).saturating_sub(caret_at);
        Self {
            text: format!("{before}{shown}{after}"),
            caret_at,
            carets: length.min(room.max(1)),
        }
    }
}

/// The stable JSON form of a run of `herder validate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Version of this format; bumped only on incompatible changes.
    pub version: u32,
    /// `true` when there are no errors (warnings allowed).
    pub valid: bool,
    /// Number of files read.
    pub files: usize,
    /// Number of manifests (documents) that parsed.
    pub manifests: usize,
    /// Number of diagnostics of severity `error`.
    pub errors: usize,
    /// Number of diagnostics of severity `warning`.
    pub warnings: usize,
    /// Every diagnostic, sorted by file, line and column.
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// The current format version.
    pub const VERSION: u32 = 1;

    /// A report over `files` files and `manifests` documents.
    pub fn new(files: usize, manifests: usize, diagnostics: Vec<Diagnostic>) -> Self {
        let errors = diagnostics.iter().filter(|d| d.is_error()).count();
        Self {
            version: Self::VERSION,
            valid: errors == 0,
            files,
            manifests,
            errors,
            warnings: diagnostics.len() - errors,
            diagnostics,
        }
    }
}

/// Sorts diagnostics by file, position and message, so output is stable.
pub fn sort_diagnostics(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        (&a.file, a.line, a.column, &a.message).cmp(&(&b.file, b.line, b.column, &b.message))
    });
}

const RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[1;33m";
const BLUE: &str = "\x1b[1;34m";
const BOLD: &str = "\x1b[1m";

struct Paint {
    color: bool,
}

impl Paint {
    fn apply(&self, style: &str, text: &str) -> String {
        if self.color {
            format!("{style}{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Diagnostic {
        Diagnostic::error(
            Code::Schema,
            Path::new("a.yaml"),
            0,
            Location {
                line: 2,
                column: 1,
                length: 13,
            },
            "/restart_polcy",
            "unknown field \"restart_polcy\"",
        )
        .with_hint("did you mean \"restart\"?")
    }

    #[test]
    fn human_form_has_a_code_frame_and_hint() {
        let text = sample().render(Some("name: a\nrestart_polcy: always\n"), false);
        assert_eq!(
            text,
            "error[schema]: unknown field \"restart_polcy\"\n \
             --> a.yaml:2:1 at /restart_polcy\n  \
             |\n\
             2 | restart_polcy: always\n  \
             | ^^^^^^^^^^^^^\n  \
             = hint: did you mean \"restart\"?\n"
        );
    }

    #[test]
    fn a_long_line_is_cut_around_the_column() {
        let mut line = "x".repeat(200_000);
        line.replace_range(100_000..100_005, "oops!");
        let mut diagnostic = sample();
        diagnostic.line = 1;
        diagnostic.column = 100_001;
        diagnostic.length = 5;
        let text = diagnostic.render(Some(&line), false);
        let frame: Vec<&str> = text.lines().collect();
        let shown = frame[3].split(" | ").nth(1).expect("the source line");
        assert_eq!(shown.chars().count(), FRAME_WIDTH + 2, "{shown}");
        assert!(shown.starts_with('…') && shown.ends_with('…'), "{shown}");
        let carets = frame[4].split(" | ").nth(1).expect("the carets");
        let at = carets.find('^').expect("carets");
        assert_eq!(&shown.chars().skip(at).take(5).collect::<String>(), "oops!");
        assert_eq!(carets.trim(), "^^^^^");
        assert!(
            text.len() < 1000,
            "the frame is short: {} bytes",
            text.len()
        );
    }

    #[test]
    fn colour_only_when_asked() {
        assert!(!sample().render(None, false).contains('\x1b'));
        assert!(sample().render(None, true).contains('\x1b'));
    }

    #[test]
    fn json_form_is_stable() {
        let json = serde_json::to_value(Report::new(1, 1, vec![sample()])).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({
                "version": 1, "valid": false, "files": 1, "manifests": 1, "errors": 1, "warnings": 0,
                "diagnostics": [{
                    "severity": "error", "code": "schema", "file": "a.yaml", "line": 2, "column": 1,
                    "length": 13, "pointer": "/restart_polcy", "document": 0,
                    "message": "unknown field \"restart_polcy\"", "hint": "did you mean \"restart\"?"
                }]
            })
        );
    }
}
