//! `herder completions SHELL`: print a completion script for bash, zsh, fish, elvish or
//! PowerShell, generated from the command tree.

use std::io::Write;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::exit::Exit;
use super::{Cli, print_error};

/// Arguments of `herder completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: Shell,
}

/// Prints the script; exit 0, or 2 if stdout cannot be written.
pub fn run(args: &CompletionsArgs) -> u8 {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "herder", &mut script);
    match std::io::stdout().lock().write_all(&script) {
        Ok(()) => Exit::OK,
        Err(error) => {
            print_error(&error);
            Exit::USAGE
        }
    }
}
