//! `herder validate [PATH...]`: check manifests and report every problem.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use super::exit::Exit;
use super::{Format, color_enabled, print_error, unenforced};
use crate::manifest::diagnostic::sort_diagnostics;
use crate::manifest::load::MAX_FILE_BYTES;
use crate::manifest::{Report, load_paths};

/// Arguments of `herder validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Manifest files and directories (scanned recursively).
    #[arg(default_value = "herder.d")]
    pub paths: Vec<PathBuf>,
    /// Output format: `human` (code frames, on stderr) or `json` (a stable report, on stdout).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// Validates the paths as one set; exit 0 when valid, 1 when not, 2 on an I/O error. Limits this machine
/// cannot enforce are warnings ([`unenforced`]).
pub fn run(args: &ValidateArgs) -> u8 {
    let loaded = match load_paths(&args.paths) {
        Ok(loaded) => loaded,
        Err(err) => {
            print_error(&err);
            return Exit::USAGE;
        }
    };
    let manifests = loaded.docs().count();
    let mut diagnostics = unenforced::warnings(loaded.docs(), &unenforced::detect());
    diagnostics.extend(loaded.diagnostics);
    sort_diagnostics(&mut diagnostics);
    let report = Report::new(loaded.files.len(), manifests, diagnostics);
    let written = match args.format {
        Format::Json => write_json(&report),
        Format::Human => write_human(&report, color_enabled(&std::io::stderr())),
    };
    if let Err(err) = written {
        print_error(&err);
        return Exit::USAGE;
    }
    if report.valid {
        Exit::OK
    } else {
        Exit::INVALID
    }
}

fn write_json(report: &Report) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, report)?;
    writeln!(stdout)
}

/// Prints each diagnostic with its code frame, then the summary line, on stderr.
pub(super) fn write_human(report: &Report, color: bool) -> std::io::Result<()> {
    let mut stderr = std::io::stderr().lock();
    let mut sources: HashMap<&Path, Option<String>> = HashMap::new();
    for diagnostic in &report.diagnostics {
        let source = sources
            .entry(&diagnostic.file)
            .or_insert_with(|| read_source(&diagnostic.file));
        writeln!(stderr, "{}", diagnostic.render(source.as_deref(), color))?;
    }
    let summary = format!(
        "{} file{}, {} manifest{}: {} error{}, {} warning{}",
        report.files,
        plural(report.files),
        report.manifests,
        plural(report.manifests),
        report.errors,
        plural(report.errors),
        report.warnings,
        plural(report.warnings)
    );
    writeln!(stderr, "{summary}")
}

/// The file's text for code frames, when it is small UTF-8 text.
fn read_source(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() > MAX_FILE_BYTES {
        return None;
    }
    String::from_utf8(std::fs::read(path).ok()?).ok()
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
