//! hooks: a webhook tunnel and inspector for local development.
//!
//! `main` parses the command line and calls [`run`]; everything else is library code so tests can
//! drive it directly.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod check;
pub mod cli;
pub mod config;
pub mod diff;
pub mod exchange;
pub mod export;
pub mod fixture;
pub mod forward;
pub mod inspect;
pub mod list;
pub mod listen;
pub mod manuals;
pub mod mcp;
pub mod query;
pub mod raw_request;
pub mod relays;
pub mod replay;
pub mod routes;
pub mod send;
pub mod show;
pub mod store;
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
            let routes = routes::project::for_session(
                args.project.as_deref(),
                args.no_project,
                &args.routes,
                args.forward_to.clone(),
            )?;
            routes::project::somewhere(&routes)?;
            // The project's channel is more specific than the user's config file.
            if args.channel.is_none() {
                args.channel = routes.channel.clone();
            }
            args.apply(config::load(config::path().as_deref())?);
            listen::listen(args, routes, shutdown).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect(args) => success(inspect::ui::inspect(args, shutdown).await),
        Command::Verify(args) => verify::command::run(&args),
        // `main` runs this itself, to give bad settings exit code 2 and the relay its own logs.
        Command::Relay(args) => {
            relay_server::cli::serve(args.settings()?).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::List(args) => success(blocking(move || list::list(&args)).await),
        Command::Show(args) => success(blocking(move || show::show(&args)).await),
        Command::Replay(args) => {
            replay::check_resign(&args)?;
            if args.check || args.dir.is_some() {
                check::run(args, shutdown).await
            } else {
                success(replay::replay(args, shutdown).await)
            }
        }
        Command::Export(args) => success(blocking(move || export::export(&args)).await),
        Command::Diff(args) => tokio::task::spawn_blocking(move || diff::diff(&args))
            .await
            .map_err(|e| anyhow::anyhow!("the command's thread failed: {e}"))?,
        Command::Send(args) => send::run(args, shutdown).await,
        Command::Routes(args) => tokio::task::spawn_blocking(move || routes::run(&args))
            .await
            .map_err(|e| anyhow::anyhow!("the command's thread failed: {e}"))?,
        Command::Mcp(args) => success(mcp::serve(args, shutdown).await),
        Command::Completions(args) => success(manuals::completions(&args)),
        Command::Man(args) => success(manuals::man(&args)),
    }
}

/// Exit status 0 for a command that finished.
fn success(result: anyhow::Result<()>) -> anyhow::Result<ExitCode> {
    result.map(|()| ExitCode::SUCCESS)
}

/// Runs a command that reads the capture store on a blocking thread (SQLite blocks).
async fn blocking(
    command: impl FnOnce() -> anyhow::Result<()> + Send + 'static,
) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(command)
        .await
        .map_err(|e| anyhow::anyhow!("the command's thread failed: {e}"))?
}

/// An error in how hooks was invoked rather than in what it found (an unreadable input file, a
/// secret that cannot be a key): `main` exits with status 2 for it, as clap does for bad flags.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
