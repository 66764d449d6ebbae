//! What the operator commands (`status`, `logs`, `events`, `restart`, ..., `down`) share:
//! finding the running instance, a runtime to talk to it, and one way to report failures.
//!
//! Finding the instance: `--socket PATH` (or `HERDER_SOCKET`) names it; `--dir DIR` means
//! the instance watching DIR; otherwise the runtime directory is scanned for sockets that
//! accept connections, and exactly one must.

use std::future::Future;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::exit::Exit;
use super::print_error;
use crate::api::sse::SseMessage;
use crate::api::{Client, ClientError, DiscoverError, discover, socket::is_live};
use crate::manifest::LoadError;
use crate::paths;

/// How to reach the running instance.
#[derive(Clone, Debug, Default, Args)]
pub struct ConnectArgs {
    /// The instance's control socket [default: the instance of --dir, else the only one running].
    #[arg(long, value_name = "PATH", env = "HERDER_SOCKET")]
    pub socket: Option<PathBuf>,
    /// The manifest directory of the instance to talk to.
    #[arg(long, value_name = "DIR", conflicts_with = "socket")]
    pub dir: Option<PathBuf>,
}

/// Why an operator command failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// No single running instance.
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    /// No instance watches the directory named.
    #[error("no running herder instance for {} (start one with `herder up {}`)", dir.display(), dir.display())]
    NoInstanceFor {
        /// The directory.
        dir: PathBuf,
    },
    /// The directory named cannot be resolved.
    #[error("cannot find the manifest directory {}", dir.display())]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// The manifest directory cannot be loaded (`plan`).
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The request failed or was refused.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Writing the output failed.
    #[error("cannot write the output")]
    Output(#[from] io::Error),
}

impl RemoteError {
    /// The exit code of the command that failed this way.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Discover(_)
            | Self::NoInstanceFor { .. }
            | Self::Client(ClientError::Connect { .. }) => Exit::NO_INSTANCE,
            Self::Dir { .. } | Self::Load(_) | Self::Output(_) => Exit::USAGE,
            Self::Client(_) => Exit::FAILED,
        }
    }
}

/// The socket of the instance watching `dir` (whether or not one runs).
pub fn socket_for_dir(dir: &Path) -> Result<PathBuf, RemoteError> {
    let canonical = dir.canonicalize().map_err(|source| RemoteError::Dir {
        dir: dir.to_path_buf(),
        source,
    })?;
    Ok(paths::socket_path(&paths::instance_name(&canonical)))
}

/// A client of the instance `args` designate, checked to be running.
pub async fn connect(args: &ConnectArgs) -> Result<Client, RemoteError> {
    let socket = match (&args.socket, &args.dir) {
        // A named socket is used as is: the request says why it cannot connect.
        (Some(socket), _) => socket.clone(),
        (None, Some(dir)) => {
            let socket = socket_for_dir(dir)?;
            if !is_live(&socket).await {
                return Err(RemoteError::NoInstanceFor { dir: dir.clone() });
            }
            socket
        }
        (None, None) => discover(&paths::runtime_dir()).await?,
    };
    Ok(Client::new(socket))
}

/// Runs an operator command to completion on a single-threaded runtime and returns its
/// exit code; a failure is reported on stderr. A closed stdout (`herder events -f | head`)
/// ends the command quietly.
pub fn block_on(command: impl Future<Output = Result<u8, RemoteError>>) -> u8 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            print_error(&error);
            return Exit::FAILED;
        }
    };
    match runtime.block_on(command) {
        Ok(code) => code,
        Err(RemoteError::Output(error)) if error.kind() == io::ErrorKind::BrokenPipe => Exit::OK,
        Err(error) => {
            report(&error);
            error.exit_code()
        }
    }
}

/// Prints `error` to stderr; a refusal from the server with its hint and suggestions.
pub fn report(error: &RemoteError) {
    match error {
        RemoteError::Client(ClientError::Api { error, .. }) => {
            let mut text = format!("herder: error: {}", error.message);
            if let Some(hint) = &error.hint {
                text.push_str(&format!("\n  hint: {hint}"));
            }
            if error.suggestions.len() > 1 {
                text.push_str(&format!(
                    "\n  close names: {}",
                    error.suggestions.join(", ")
                ));
            }
            eprintln!("{text}");
        }
        other => print_error(other),
    }
}

/// Writes `text` to stdout and flushes, so followers (`-f`) show each entry at once.
pub fn emit(text: &str) -> Result<(), RemoteError> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// `value` as JSON and a newline: pretty-printed, or on one line (for streams).
pub fn to_json(value: &impl Serialize, pretty: bool) -> Result<String, RemoteError> {
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    let mut text = text.map_err(|error| RemoteError::Output(error.into()))?;
    text.push('\n');
    Ok(text)
}

/// The JSON data of a stream message.
pub fn decode<T: DeserializeOwned>(message: &SseMessage) -> Result<T, RemoteError> {
    serde_json::from_str(&message.data).map_err(|error| ClientError::Decode(error).into())
}
