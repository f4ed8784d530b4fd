//! Command-line types (clap derive only; behaviour lives in the modules these feed).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use relay_server::config::{parse_duration, parse_offline};
use relay_server::protocol::{Offline, Respond, Token};

use crate::inspect::{ColorChoice, Print};

use crate::target::Target;
use crate::verify::{Provider, Secret};

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
    /// Check a saved request's webhook signature: exit 0 if valid, 1 if not
    Verify(VerifyArgs),
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

    /// Signing secret to check each webhook's signature with; repeat it for several (key
    /// rotation: valid if any matches)
    ///
    /// Paste it exactly as the provider shows it (see hooks verify --help). It is never printed.
    #[arg(
        long = "secret",
        value_name = "SECRET",
        env = "HOOKS_SECRET",
        hide_env_values = true
    )]
    pub secrets: Vec<Secret>,

    /// Provider whose signature scheme to check (default: recognised from each webhook's
    /// headers)
    #[arg(long, value_name = "NAME")]
    pub provider: Option<Provider>,

    /// Replay window replacing the provider's default, e.g. 300, 10m (0 turns the check off)
    #[arg(long, value_name = "SECS", value_parser = parse_duration)]
    pub tolerance: Option<Duration>,

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
}

/// Flags of `hooks verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Signing secret (or token, or public key); repeat it to accept any of several
    ///
    /// Paste it exactly as the provider shows it: Stripe's whsec_… is used as is, Standard
    /// Webhooks' whsec_… is base64-decoded, Discord takes the application's hex public key,
    /// SendGrid its base64 verification key. With several, the request is valid if any matches
    /// (key rotation).
    #[arg(
        long = "secret",
        value_name = "SECRET",
        env = "HOOKS_SECRET",
        hide_env_values = true,
        required = true
    )]
    pub secrets: Vec<Secret>,

    /// Provider whose scheme to check (default: recognised from the headers)
    ///
    /// One of: stripe, github, standard-webhooks (or svix, clerk, resend), slack, shopify,
    /// twilio, discord, paddle, linear, zoom, square, mailgun, intercom, gitlab, sendgrid, twitch,
    /// typeform, calendly, hubspot.
    #[arg(long, value_name = "NAME")]
    pub provider: Option<Provider>,

    /// Hold the signed timestamp against this Unix time (seconds) instead of now
    #[arg(long, value_name = "UNIX_SECS")]
    pub at: Option<u64>,

    /// The full public URL the provider called (Twilio, Square and HubSpot sign it)
    ///
    /// Default: https:// + the request's Host header + its request target.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// Replay window replacing the provider's default, e.g. 300, 10m; 0 turns the check off
    ///
    /// Defaults follow each provider's official SDK: 300 s for Stripe (old timestamps only),
    /// Standard Webhooks and Slack (either way), 5 s for Paddle, 60 s for Linear, 10 min for
    /// Twitch, 180 s for Calendly, under 300 s for HubSpot v3; none for the others. For providers
    /// without a default, a window given here applies either way.
    #[arg(long, value_name = "SECS", value_parser = parse_duration)]
    pub tolerance: Option<Duration>,

    /// Print one JSON object (provider, verdict, reason, …) instead of a line of text
    #[arg(long)]
    pub json: bool,

    /// The request, raw HTTP/1.1: request line, headers, blank line, body; - reads stdin
    #[arg(value_name = "REQUEST_FILE")]
    pub request: String,
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
