//! `herder plan [DIR]`: what applying DIR would do to the running instance, or to nothing
//! when no instance watches DIR.
//!
//! With a running instance (DIR's own, or the one `--socket` names) the instance loads DIR
//! and plans it against what it runs, so the answer is exactly what a reload would do.
//! `--socket` without DIR plans the instance's own watched directory. Without an instance,
//! DIR is planned locally against an empty system: every child would start.
//!
//! The plan goes to stdout (human or `--format json`), diagnostics of files that were left
//! out to stderr (human) or into the JSON; exit 1 when DIR has errors.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::Value;

use super::exit::Exit;
use super::remote::{RemoteError, block_on, emit, socket_for_dir, to_json};
use super::{Format, color_enabled};
use crate::api::Client;
use crate::api::socket::is_live;
use crate::api::wire::{PlanDocument, PlanRequest, PlanText};
use crate::manifest::{Diagnostic, Severity, load_dir};
use crate::plan::{self, Observed};

/// Arguments of `herder plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The manifest directory [default: herder.d, or with --socket the instance's own].
    pub dir: Option<PathBuf>,
    /// Output format: `human` (one line per step) or `json`.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// The control socket of the instance to plan against.
    #[arg(long, value_name = "PATH", env = "HERDER_SOCKET")]
    pub socket: Option<PathBuf>,
}

/// Prints the plan; exit 0, 1 when the directory has errors, 2 when it cannot be read,
/// 4 when the instance `--socket` names does not answer.
pub fn run(args: &PlanArgs) -> u8 {
    block_on(async {
        let dir = match (&args.dir, &args.socket) {
            (None, Some(socket)) => {
                return remote(&Client::new(socket), None, args.format).await;
            }
            (dir, _) => dir.clone().unwrap_or_else(|| PathBuf::from("herder.d")),
        };
        let canonical = dir.canonicalize().map_err(|source| RemoteError::Dir {
            dir: dir.clone(),
            source,
        })?;
        match &args.socket {
            Some(socket) => remote(&Client::new(socket), Some(canonical), args.format).await,
            None => {
                let socket = socket_for_dir(&canonical)?;
                if is_live(&socket).await {
                    remote(&Client::new(socket), Some(canonical), args.format).await
                } else {
                    local(&canonical, args.format)
                }
            }
        }
    })
}

/// Asks the instance: its watched directory (`dir` = `None`) or `dir`.
async fn remote(client: &Client, dir: Option<PathBuf>, format: Format) -> Result<u8, RemoteError> {
    let query = match format {
        Format::Human => "human",
        Format::Json => "json",
    };
    let path = format!("/v1/plan?format={query}");
    match format {
        Format::Human => {
            let answer: PlanText = match dir {
                Some(dir) => client.post(&path, &PlanRequest { dir }).await?,
                None => client.get(&path).await?,
            };
            print_diagnostics(&answer.diagnostics);
            emit(&answer.text)?;
            Ok(code(&answer.diagnostics))
        }
        Format::Json => {
            let answer: Value = match dir {
                Some(dir) => client.post(&path, &PlanRequest { dir }).await?,
                None => client.get(&path).await?,
            };
            let diagnostics: Vec<Diagnostic> = answer
                .get("diagnostics")
                .cloned()
                .and_then(|value| serde_json::from_value(value).ok())
                .unwrap_or_default();
            emit(&to_json(&answer, true)?)?;
            Ok(code(&diagnostics))
        }
    }
}

/// Plans `dir` against nothing running.
fn local(dir: &Path, format: Format) -> Result<u8, RemoteError> {
    let (desired, diagnostics) = load_dir(dir)?;
    let plan = plan::plan(&desired, &Observed::default());
    let text = match format {
        Format::Human => {
            eprintln!(
                "no running instance for {}: planning against nothing running",
                dir.display()
            );
            print_diagnostics(&diagnostics);
            plan::render(&plan, plan::Format::Human)
        }
        Format::Json => to_json(&PlanDocument::new(&plan, &diagnostics), true)?,
    };
    emit(&text)?;
    Ok(code(&diagnostics))
}

fn print_diagnostics(diagnostics: &[Diagnostic]) {
    let color = color_enabled(&std::io::stderr());
    for diagnostic in diagnostics {
        eprintln!("{}", diagnostic.render(None, color));
    }
}

fn code(diagnostics: &[Diagnostic]) -> u8 {
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        Exit::INVALID
    } else {
        Exit::OK
    }
}
