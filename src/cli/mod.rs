//! The `herder` command line: one clap derive tree, one file per command.
//!
//! Adding a command is a variant of [`Command`], a file with its `Args` and a `run`, and
//! one arm in [`Command::run`]. Every command returns its exit code (see [`exit::Exit`]).

pub mod command;
pub mod completions;
pub mod down;
pub mod events;
pub mod exit;
pub mod export;
pub mod import;
pub mod listeners;
pub mod logs;
pub mod plan;
pub mod reload;
pub mod remote;
pub mod schema;
pub mod status;
pub mod table;
pub mod top;
pub mod unenforced;
pub mod up;
pub mod validate;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::error_chain::ErrorChain;
use crate::reconcile::VerbName;
use exit::Exit;

/// herder keeps a set of Linux processes in line with a directory of YAML manifests.
#[derive(Debug, Parser)]
#[command(
    name = "herder",
    version,
    about,
    after_help = "Exit codes: 0 success (valid), 1 invalid manifests or failure, 2 usage or I/O error, 3 a critical child failed (up), 4 no running instance, 130 killed by a second signal (up).\nNO_COLOR disables colours."
)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// herder's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run DIR (default ./herder.d) in the foreground and apply every saved edit; Ctrl-C = ordered shutdown.
    Up(up::UpArgs),
    /// Check manifest files and directories; exit 1 on any error.
    Validate(validate::ValidateArgs),
    /// Print the manifest JSON Schema (draft-07).
    Schema(schema::SchemaArgs),
    /// What applying DIR would do to the running instance (or to nothing).
    Plan(plan::PlanArgs),
    /// Every child: state, pid, uptime, restarts, readiness, health, limits.
    #[command(visible_alias = "ps")]
    Status(status::StatusArgs),
    /// A child's captured output; -f follows it.
    Logs(logs::LogsArgs),
    /// The event log; -f follows it, --since resumes.
    Events(events::EventsArgs),
    /// Restart a child's process now.
    Restart(command::CommandArgs),
    /// Stop a child and keep it stopped.
    Stop(command::CommandArgs),
    /// Start a stopped or failed child.
    Start(command::CommandArgs),
    /// Freeze a child's process group (SIGSTOP).
    Pause(command::CommandArgs),
    /// Thaw a paused child (SIGCONT).
    Resume(command::CommandArgs),
    /// Stop a child and hold it out of reconciliation until released.
    Quarantine(command::CommandArgs),
    /// End a quarantine.
    Release(command::CommandArgs),
    /// Send a signal to a child's process group.
    Signal(command::SignalArgs),
    /// Start a oneshot now (its schedule, if any, carries on).
    Run(command::CommandArgs),
    /// Rescan the manifest directory now.
    Reload(reload::ReloadArgs),
    /// Ordered shutdown of the running instance.
    Down(down::DownArgs),
    /// Live terminal UI: children, logs, events, errors and actions.
    Top(top::TopArgs),
    /// Print a shell completion script.
    Completions(completions::CompletionsArgs),
    /// Write the objects that run DIR elsewhere (`herder export kubernetes`).
    Export(export::ExportArgs),
    /// Write manifests from a compose, process-compose or Procfile file.
    Import(import::ImportArgs),
}

impl Command {
    /// Runs the command and returns its exit code.
    pub fn run(&self) -> u8 {
        match self {
            Self::Up(args) => up::run(args),
            Self::Validate(args) => validate::run(args),
            Self::Schema(args) => schema::run(args),
            Self::Plan(args) => plan::run(args),
            Self::Status(args) => status::run(args),
            Self::Logs(args) => logs::run(args),
            Self::Events(args) => events::run(args),
            Self::Restart(args) => command::run(VerbName::Restart, args),
            Self::Stop(args) => command::run(VerbName::Stop, args),
            Self::Start(args) => command::run(VerbName::Start, args),
            Self::Pause(args) => command::run(VerbName::Pause, args),
            Self::Resume(args) => command::run(VerbName::Resume, args),
            Self::Quarantine(args) => command::run(VerbName::Quarantine, args),
            Self::Release(args) => command::run(VerbName::Release, args),
            Self::Signal(args) => command::run_signal(args),
            Self::Run(args) => command::run(VerbName::Run, args),
            Self::Reload(args) => reload::run(args),
            Self::Down(args) => down::run(args),
            Self::Top(args) => top::run(args),
            Self::Completions(args) => completions::run(args),
            Self::Export(args) => export::run(args),
            Self::Import(args) => import::run(args),
        }
    }
}

/// Output format of commands that print reports or listings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people: colours on a terminal, code frames.
    #[default]
    Human,
    /// For programs: stable JSON on stdout.
    Json,
}

/// Parses the command line, runs the command and returns the process exit code.
///
/// herder's own diagnostics (not the children's output) go to stderr at the level set by
/// `HERDER_LOG` (`warn` by default; e.g. `HERDER_LOG=debug`).
pub fn run() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HERDER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color_enabled(&std::io::stderr()))
        .without_time()
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version go to stdout with 0; usage errors to stderr with 2.
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() {
                Exit::USAGE
            } else {
                Exit::OK
            });
        }
    };
    ExitCode::from(cli.command.run())
}

/// Whether to colour output written to `stream`: only on a terminal, and never when
/// `NO_COLOR` is set to a non-empty value.
pub fn color_enabled(stream: &impl IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Prints `herder: error: <error>` and its causes to stderr.
pub fn print_error(err: &dyn std::error::Error) {
    eprintln!("herder: error: {}", ErrorChain::lines(err));
}
