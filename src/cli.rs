//! Command-line types (clap derive only; behaviour lives in the modules these feed).

use clap::{Args, Parser, Subcommand};

use crate::target::Target;

/// hooks: receive webhooks on a public URL and forward them to your app on localhost
///
/// Every request reaches your app byte for byte, your app's answer goes back to the sender, and
/// the terminal shows what happened.
#[derive(Debug, Parser)]
#[command(name = "hooks", version, propagate_version = true)]
pub struct Cli {
    /// What to do
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Get a webhook URL and forward every request sent to it to your app
    Listen(ListenArgs),
}

/// Flags of `hooks listen`.
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Where to forward webhooks: 3000, localhost:3000, localhost:3000/base, http://… or https://…
    ///
    /// A webhook sent to <URL>/<channel>/a/b?x=1 reaches <TARGET>/a/b?x=1: with
    /// `--forward-to localhost:3000/base` that is http://localhost:3000/base/a/b?x=1.
    #[arg(long, short = 'f', value_name = "TARGET")]
    pub forward_to: Target,

    /// Relay to connect to, e.g. https://relay.example.com
    ///
    /// Without one, hooks starts a relay inside this process on 127.0.0.1, reachable from this
    /// machine only.
    #[arg(long, value_name = "URL", env = "HOOKS_RELAY")]
    pub relay: Option<String>,

    /// Channel name to claim on the relay (letters, digits, '_' and '-'; at most 64)
    ///
    /// Without one, the relay gives this session a random unguessable channel.
    #[arg(long, value_name = "NAME", env = "HOOKS_CHANNEL")]
    pub channel: Option<String>,

    /// Print one JSON object per line on stdout (NDJSON) instead of human text
    ///
    /// The first line is {"type":"ready",…}; then one {"type":"request",…} per webhook. Human
    /// status messages still go to stderr.
    #[arg(long)]
    pub json: bool,
}
