//! hooks: a webhook tunnel and inspector for local development.
//!
//! `main` parses the command line and calls [`run`]; everything else is library code so tests can
//! drive it directly.

#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod forward;
pub mod inspect;
pub mod listen;
pub mod raw_request;
pub mod target;
pub mod verify;

use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command};

/// Runs one command until it finishes or `shutdown` is cancelled (Ctrl-C, SIGTERM), and says
/// how the process should exit.
pub async fn run(cli: Cli, shutdown: CancellationToken) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Listen(mut args) => {
            args.apply(config::load(config::path().as_deref())?);
            listen::listen(args, shutdown).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify(args) => verify::command::run(&args),
        // `main` runs this itself, to give bad settings exit code 2 and the relay its own logs.
        Command::Relay(args) => {
            relay_server::cli::serve(args.settings()?).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// An error in how hooks was invoked rather than in what it found (an unreadable input file, a
/// secret that cannot be a key): `main` exits with status 2 for it, as clap does for bad flags.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
