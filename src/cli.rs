//! Command-line types (clap derive only; behaviour lives in the modules these feed).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use relay_server::config::{parse_duration, parse_offline};
use relay_server::protocol::{Offline, Respond, Token};

use crate::inspect::{ColorChoice, Print};

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
    /// Run a relay (the same as the hooks-relay program; see `hooks relay --help`)
    Relay(relay_server::config::Args),
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

    /// Token for relays that require one (see the relay's --tokens-file)
    #[arg(long, value_name = "TOKEN", env = "HOOKS_TOKEN", hide_env_values = true, value_parser = parse_token)]
    pub token: Option<Token>,

    /// Extra CA certificate (PEM) to trust for an https:// relay, e.g. a private CA
    ///
    /// The platform's root certificates are always trusted.
    #[arg(long, value_name = "PEM", env = "HOOKS_CA_CERT")]
    pub ca_cert: Option<PathBuf>,

    /// Channel name to claim on the relay (letters, digits, '_' and '-'; at most 64)
    ///
    /// Without one, the relay gives this session a random unguessable channel.
    #[arg(long, value_name = "NAME", env = "HOOKS_CHANNEL")]
    pub channel: Option<String>,

    /// How the sender is answered: app (wait for your app's response) or a status like 202
    ///
    /// app: the sender gets your app's status, headers and body, or 504 after --timeout.
    /// STATUS: the relay answers STATUS at once, after queueing the request, and delivers it to
    /// your app asynchronously.
    #[arg(long, value_name = "app|STATUS", default_value = "app", value_parser = parse_respond)]
    pub respond: Respond,

    /// How long the sender waits for your app in --respond app mode, e.g. 30, 90s, 10m
    /// [default: the relay's, 30s unless it was started otherwise]
    ///
    /// Past it the sender gets 504; hooks still forwards the request and shows what your app
    /// eventually answered. A large value lets you sit on a breakpoint.
    #[arg(long, value_name = "SECS", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// What the relay does with webhooks for this channel while hooks is not connected
    ///
    /// queue: answer 202 and deliver them when hooks reconnects (the relay's default).
    /// reject: answer 503 with Retry-After, so the provider's own retries redeliver later.
    #[arg(long, value_name = "queue|reject", value_parser = parse_offline)]
    pub offline: Option<Offline>,

    /// Exit with status 1 after being disconnected from the relay this long (default: retry
    /// forever), for supervisors that restart hooks themselves
    #[arg(long, value_name = "SECS", value_parser = parse_duration)]
    pub exit_after: Option<Duration>,

    /// Details to print under each request line: H request headers, B request body,
    /// h response headers, b response body (e.g. --print HB)
    #[arg(long, short = 'p', value_name = "HBhb")]
    pub print: Option<Print>,

    /// Print every detail (same as --print HBhb)
    #[arg(long, short = 'v', conflicts_with = "print")]
    pub verbose: bool,

    /// Longest body shown, in lines; longer ones are cut with a note (0 shows all)
    #[arg(long, value_name = "N", default_value_t = 40)]
    pub max_body_lines: usize,

    /// Show Authorization, cookies, signatures and tokens whole instead of shortened
    ///
    /// Secrets given with --secret are never shown.
    #[arg(long)]
    pub show_secrets: bool,

    /// When to color the output: auto, always or never
    ///
    /// auto colors when stdout is a terminal, NO_COLOR is unset or empty, and TERM is not
    /// dumb. --json output is never colored.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub color: ColorChoice,

    /// Output width in columns (default: the terminal's, else 80)
    #[arg(long, value_name = "COLUMNS")]
    pub width: Option<usize>,

    /// Print one JSON object per line on stdout (NDJSON) instead of human text
    ///
    /// The first line is {"type":"ready",…}; then one {"type":"request",…} per webhook. Human
    /// status messages still go to stderr.
    #[arg(long)]
    pub json: bool,

    /// Keep at most N captures for list, show, replay and export; the oldest are deleted
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub keep: u64,

    /// Also delete captures older than DAYS days
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep_days: Option<u32>,

    /// Record nothing in the capture store (list, show, replay and export won't see these
    /// requests, and a redelivery after a restart is not recognised)
    #[arg(long, conflicts_with_all = ["keep", "keep_days"])]
    pub no_capture: bool,
}

fn parse_respond(text: &str) -> Result<Respond, String> {
    if text == "app" {
        return Ok(Respond::App);
    }
    match text.parse::<u16>() {
        Ok(status) if (200..=599).contains(&status) => Ok(Respond::Status(status)),
        _ => Err("expected app or an HTTP status from 200 to 599, e.g. 202".into()),
    }
}

fn parse_token(text: &str) -> Result<Token, String> {
    if text.trim().is_empty() {
        return Err("the token is empty".into());
    }
    Ok(Token(text.trim().to_owned()))
}
