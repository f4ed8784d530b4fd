//! The flags of `hooks send` (clap derive only; `cli.rs` names the subcommand).

use std::time::Duration;

use clap::Args;

use crate::verify::Secret;

/// Flags of `hooks send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Provider whose event to send: stripe, github, shopify, slack, twilio, standard-webhooks,
    /// clerk, … (hooks send --list shows them all)
    #[arg(value_name = "PROVIDER", required_unless_present = "list")]
    pub provider: Option<String>,

    /// The event, e.g. invoice.paid, pull_request.opened, orders/create, url_verification
    #[arg(value_name = "EVENT", required_unless_present = "list")]
    pub event: Option<String>,

    /// List the events there are templates for (PROVIDER's only, when given) and exit
    #[arg(long, conflicts_with_all = ["event", "to", "print"])]
    pub list: bool,

    /// Where to send it: 3000, localhost:3000/webhooks, http://…, https://…, or a channel URL
    /// that hooks listen printed, to go through the relay and hooks listen end to end
    #[arg(long, value_name = "TARGET", required_unless_present_any = ["list", "print"])]
    pub to: Option<String>,

    /// The signing secret your app verifies with (also HOOKS_SECRET), as the provider shows it
    ///
    /// Stripe's whsec_… is used as is, Standard Webhooks' whsec_… is base64-decoded (as hooks
    /// verify does). Discord and SendGrid sign with a private key: see --private-key.
    #[arg(
        long,
        value_name = "SECRET",
        env = "HOOKS_SECRET",
        hide_env_values = true
    )]
    pub secret: Option<Secret>,

    /// Send it without a signature (no --secret needed)
    #[arg(long, conflicts_with_all = ["secret", "private_key"])]
    pub unsigned: bool,

    /// Private key for the providers that sign with one: Discord (64 hex characters, the
    /// Ed25519 seed), SendGrid (base64 PKCS#8 DER P-256), Standard Webhooks v1a (whsk_…)
    ///
    /// Without a value (--private-key alone), and by default for Discord and SendGrid, hooks
    /// signs with a key pair it generates once and keeps in its data directory, and prints the
    /// public key to configure in your app. Give a value as --private-key=KEY.
    #[arg(
        long,
        value_name = "KEY",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "",
        hide_default_value = true,
        value_parser = parse_private_key,
        conflicts_with = "secret"
    )]
    pub private_key: Option<PrivateKey>,

    /// Print the signed request as raw HTTP (what hooks verify reads) instead of sending it
    ///
    /// Without --to it is addressed to https://localhost/, the URL signed for Twilio, Square and
    /// HubSpot unless --signed-url says otherwise (give hooks verify the same URL with --url).
    #[arg(long, conflicts_with = "json")]
    pub print: bool,

    /// The URL to sign for providers that sign it (Twilio, Square, HubSpot): the public URL your
    /// app checks [default: the URL sent to]
    #[arg(long, value_name = "URL")]
    pub signed_url: Option<String>,

    /// Change the event before it is signed: a JSON Pointer into the body (or a form field, as
    /// /Name) and a value, parsed as JSON or else taken as a string (repeatable)
    ///
    /// --set /data/object/amount=5000 sets a number, --set /data/object/currency=eur a string,
    /// --set '/data/object/metadata={"order":"42"}' an object.
    #[arg(long = "set", value_name = "POINTER=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, String)>,

    /// The whole body instead of the template's: @FILE, @- for stdin, or the text itself
    ///
    /// Sent as given (placeholders are not replaced); --set still applies.
    #[arg(long, value_name = "@FILE|TEXT")]
    pub data: Option<String>,

    /// Edit the rendered event in $VISUAL or $EDITOR before it is signed
    #[arg(long, conflicts_with_all = ["count", "out_of_order"])]
    pub edit: bool,

    /// Add a header, or replace the template's: 'X-Name: value' (repeatable); one the signature
    /// sets replaces the signature, to test how your app refuses a bad one
    #[arg(long, short = 'H', value_name = "'NAME: VALUE'", value_parser = crate::cli::parse_header)]
    pub header: Vec<(String, String)>,

    /// Send N distinct events (new ids and times each)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub count: u32,

    /// Send each event twice, as the provider's retry would: the same event and delivery ids,
    /// signed again
    #[arg(long)]
    pub duplicate: bool,

    /// Send two events about the same object, the newer first (the older one happened 10 s
    /// before)
    #[arg(long, conflicts_with_all = ["count", "duplicate", "data"])]
    pub out_of_order: bool,

    /// Wait this long between two sends: 500ms, 2s, 1m
    #[arg(long, value_name = "DURATION", value_parser = parse_delay)]
    pub delay: Option<Duration>,

    /// How long to wait for your app's answer before giving up (exit 1), e.g. 500ms, 90s, 10m
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_delay)]
    pub timeout: Duration,

    /// Print one JSON object per line: each sent capture as hooks show --json prints it, or
    /// with --list each template's provider, event and description
    #[arg(long)]
    pub json: bool,
}

/// `--private-key`'s value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivateKey {
    /// `--private-key` alone: the key pair kept in the data directory.
    Kept,
    /// `--private-key=KEY`.
    Given(Secret),
}

fn parse_private_key(text: &str) -> Result<PrivateKey, String> {
    if text.is_empty() {
        return Ok(PrivateKey::Kept);
    }
    Ok(PrivateKey::Given(Secret::new(text.trim())))
}

fn parse_set(text: &str) -> Result<(String, String), String> {
    let (pointer, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not POINTER=VALUE, e.g. /data/object/amount=5000"))?;
    if !(pointer.is_empty() || pointer.starts_with('/')) {
        return Err(format!(
            "{pointer:?} is not a JSON Pointer: it starts with /, e.g. /data/object/amount"
        ));
    }
    Ok((pointer.to_owned(), value.to_owned()))
}

fn parse_delay(text: &str) -> Result<Duration, String> {
    match text.trim().strip_suffix("ms") {
        Some(ms) => ms
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| format!("{text:?} is not a duration like 500ms, 2s or 1m")),
        None => relay_server::config::parse_duration(text),
    }
}
