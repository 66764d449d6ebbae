//! `herder import compose | process-compose | procfile FILE [-o DIR]`: manifests from
//! another tool's file.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::exit::Exit;
use super::print_error;
use crate::convert::import::{
    self, Import, ImportError, Target, compose, process_compose, procfile, write,
};

/// Arguments of `herder import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The format to import.
    #[command(subcommand)]
    pub source: ImportSource,
}

/// The formats `herder import` reads.
#[derive(Debug, Subcommand)]
pub enum ImportSource {
    /// A Compose file (docker compose, the Compose Specification).
    Compose(ComposeArgs),
    /// A process-compose file.
    #[command(name = "process-compose")]
    ProcessCompose(CommonArgs),
    /// A Procfile (foreman, honcho), with the `.env` beside it.
    Procfile(ProcfileArgs),
}

/// What every import takes.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// The file to import.
    pub file: PathBuf,
    /// The directory to write the manifests into (one `<name>.yaml` per service).
    #[arg(long, short, value_name = "DIR", default_value = "herder.d")]
    pub output: PathBuf,
    /// Overwrite files that exist already.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `herder import compose`.
#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// What every import takes.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Import the services of this profile too (repeatable); services without a profile are always imported.
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
}

/// Arguments of `herder import procfile`.
#[derive(Debug, Args)]
pub struct ProcfileArgs {
    /// What every import takes.
    #[command(flatten)]
    pub common: CommonArgs,
    /// The first `PORT` (foreman's and honcho's default; `PORT` in `.env` overrides it).
    #[arg(long, value_name = "PORT", default_value_t = procfile::DEFAULT_BASE_PORT)]
    pub port: u16,
}

/// Runs `herder import`.
pub fn run(args: &ImportArgs) -> u8 {
    let (common, command) = match &args.source {
        ImportSource::Compose(a) => (&a.common, "herder import compose"),
        ImportSource::ProcessCompose(a) => (a, "herder import process-compose"),
        ImportSource::Procfile(a) => (&a.common, "herder import procfile"),
    };
    let target = Target {
        dir: import::absolute(&common.output),
    };
    let result = import::source::read(&common.file).and_then(|text| match &args.source {
        ImportSource::Compose(a) => {
            let options = compose::Options {
                profiles: a.profiles.clone(),
                environment: std::env::vars().collect(),
            };
            compose::import(&common.file, &text, &options, &target)
        }
        ImportSource::ProcessCompose(_) => process_compose::import(&common.file, &text, &target),
        ImportSource::Procfile(a) => procfile::import(&common.file, &text, a.port, &target),
    });
    let import = match result {
        Ok(import) => import,
        Err(err) => return report_error(&err),
    };
    finish(&import, common, command)
}

fn report_error(err: &ImportError) -> u8 {
    for note in &err.notes {
        eprintln!("{}", note.summary("error"));
    }
    eprintln!("herder: error: {err}: nothing written");
    Exit::INVALID
}

fn finish(import: &Import, common: &CommonArgs, command: &str) -> u8 {
    let files = write::render(import, &common.output, command);
    // Relative paths in the manifests (`..`, secret files) resolve through the directory,
    // so it must exist while they are checked; one created here goes again on failure.
    let created = !common.output.exists();
    if let Err(err) = std::fs::create_dir_all(&common.output) {
        print_error(&write::WriteError::Io {
            path: common.output.clone(),
            source: err,
        });
        return Exit::USAGE;
    }
    let warnings = match write::check(&files) {
        Ok(warnings) => warnings,
        Err(err) => {
            print_error(&err);
            if created {
                let _ = std::fs::remove_dir(&common.output);
            }
            return Exit::INVALID;
        }
    };
    if let Err(err) = write::write(&files, &common.output, common.force) {
        print_error(&err);
        if created {
            let _ = std::fs::remove_dir(&common.output);
        }
        return match err {
            write::WriteError::Io { .. } => Exit::USAGE,
            _ => Exit::INVALID,
        };
    }
    let mut notes: Vec<(&crate::convert::Note, &str)> = import
        .mapped
        .iter()
        .map(|n| (n, "mapped"))
        .chain(import.unmapped.iter().map(|n| (n, "not mapped")))
        .collect();
    notes.sort();
    for (note, label) in notes {
        eprintln!("{}", note.summary(label));
    }
    for warning in &warnings {
        eprintln!("{}", warning.summary());
    }
    let names: Vec<String> = files
        .iter()
        .filter_map(|f| f.path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    eprintln!(
        "herder: imported {} service{} into {}: {}; {} mapped, {} not mapped (see above)",
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        display(&common.output),
        names.join(", "),
        import.mapped.len(),
        import.unmapped.len(),
    );
    Exit::OK
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
