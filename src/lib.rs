//! hooks: a webhook tunnel and inspector for local development.
//!
//! `main` parses the command line and calls [`run`]; everything else is library code so tests can
//! drive it directly.

#![forbid(unsafe_code)]

pub mod capture;
pub mod cli;
pub mod config;
pub mod export;
pub mod forward;
pub mod inspect;
pub mod list;
pub mod listen;
pub mod replay;
pub mod show;
pub mod store;
pub mod target;

use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command};

/// Runs one command until it finishes or `shutdown` is cancelled (Ctrl-C, SIGTERM).
pub async fn run(cli: Cli, shutdown: CancellationToken) -> anyhow::Result<()> {
    match cli.command {
        Command::Listen(mut args) => {
            args.apply(config::load(config::path().as_deref())?);
            listen::listen(args, shutdown).await
        }
        // `main` runs this itself, to give bad settings exit code 2 and the relay its own logs.
        Command::Relay(args) => relay_server::cli::serve(args.settings()?).await,
        Command::List(args) => blocking(move || list::list(&args)).await,
        Command::Show(args) => blocking(move || show::show(&args)).await,
        Command::Replay(args) => replay::replay(args, shutdown).await,
        Command::Export(args) => blocking(move || export::export(&args)).await,
    }
}

/// Runs a command that reads the capture store on a blocking thread (SQLite blocks).
async fn blocking(
    command: impl FnOnce() -> anyhow::Result<()> + Send + 'static,
) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(command)
        .await
        .map_err(|e| anyhow::anyhow!("the command's thread failed: {e}"))?
}
