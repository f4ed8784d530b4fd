//! Command-line types (clap derive only; behaviour lives in the modules these feed).
// The doc comments of the arguments are their --help text, written for a terminal:
// <URL> is a placeholder there, not an HTML tag.
#![allow(rustdoc::invalid_html_tags, rustdoc::bare_urls)]

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use relay_server::config::{parse_duration, parse_offline};
use relay_server::protocol::{Offline, Respond, Token};

use crate::inspect::{ColorChoice, Print};
use crate::query::value::{Pointer, StatusPattern};
pub use crate::send::SendArgs;
use crate::store::CaptureRef;
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
    /// Browse, filter, replay and compare captures in an interactive terminal inspector
    Inspect(InspectArgs),
    /// Check a saved request's webhook signature: exit 0 if valid, 1 if not
    Verify(VerifyArgs),
    /// Run a relay (the same as the hooks-relay program; see `hooks relay --help`)
    Relay(relay_server::config::Args),
    /// List captured requests, newest first
    List(ListArgs),
    /// Show one captured request and your app's answer
    Show(ShowArgs),
    /// Send captured requests (or fixtures) again, to your app or another target; --check
    /// compares the answers
    Replay(ReplayArgs),
    /// Print captured requests as curl commands, raw HTTP or HAR, or write them as fixtures
    Export(ExportArgs),
    /// Compare two captures: exit 0 if they are the same, 1 if they differ
    Diff(DiffArgs),
    /// Check hooks.toml's routes, or say which route captures would take
    Routes(RoutesArgs),
    /// Send a provider's event, signed like the real one, to your app or through hooks listen
    Send(SendArgs),
    /// Serve the captures to a coding agent: an MCP server on stdin and stdout
    Mcp(McpArgs),
    /// Print a shell completion script: bash, zsh, fish, powershell or elvish
    Completions(CompletionsArgs),
    /// Write the man pages of hooks, each subcommand and hooks-relay into a folder
    Man(ManArgs),
}

/// Flags of `hooks mcp`.
#[derive(Debug, Args)]
pub struct McpArgs {
    /// Also offer the tools that send requests (replay_capture, send_event); without it they
    /// are refused
    ///
    /// The other tools only read the capture store. With this flag an agent can make hooks send
    /// HTTP requests to your app or any target it names.
    #[arg(long)]
    pub allow_send: bool,

    /// Signing secret verify_capture checks with when the agent passes none; repeat it for
    /// several (key rotation: valid if any matches)
    ///
    /// Set it in the MCP server's environment (HOOKS_SECRET) rather than in the conversation.
    /// It is masked in every answer.
    #[arg(
        long = "secret",
        value_name = "SECRET",
        env = "HOOKS_SECRET",
        hide_env_values = true
    )]
    pub secrets: Vec<Secret>,
}

/// Flags of `hooks completions`.
#[derive(Debug, Args)]
#[command(after_long_help = COMPLETIONS_HELP)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, powershell or elvish
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// How to enable the scripts, shown by `hooks completions --help`.
const COMPLETIONS_HELP: &str = "\
bash:  add  source <(hooks completions bash)  to ~/.bashrc
zsh:   hooks completions zsh > ~/.zfunc/_hooks  with  fpath=(~/.zfunc $fpath)  before compinit
fish:  hooks completions fish > ~/.config/fish/completions/hooks.fish
hooks-relay --completions SHELL prints the relay's.";

/// Flags of `hooks man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Folder to write hooks.1, hooks-listen.1, … and hooks-relay.1 into (created if missing)
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}

/// Flags of `hooks listen`.
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Where to forward webhooks: 3000, localhost:3000, localhost:3000/base, http://… or https://…
    ///
    /// A webhook sent to <URL>/<channel>/a/b?x=1 reaches <TARGET>/a/b?x=1: with
    /// `--forward-to localhost:3000/base` that is http://localhost:3000/base/a/b?x=1. With routes
    /// (hooks.toml, --route), it is where the webhooks no route takes go, instead of the file's
    /// default. Needed unless there are routes.
    #[arg(long, short = 'f', value_name = "TARGET")]
    pub forward_to: Option<Target>,

    /// Route webhooks with this project file instead of the nearest hooks.toml
    ///
    /// Without it, hooks uses the hooks.toml in the current folder or the nearest parent (up to
    /// the git repository's root), and says so on stderr. An edited file is picked up within
    /// two seconds; a broken edit keeps the previous routes.
    #[arg(long, value_name = "FILE", conflicts_with = "no_project")]
    pub project: Option<PathBuf>,

    /// Ignore hooks.toml: forward everything to --forward-to (and the --route flags)
    #[arg(long)]
    pub no_project: bool,

    /// Add a route for this session: 'MATCH=>TARGET', e.g. 'event:invoice.*=>4000/billing';
    /// repeatable
    ///
    /// MATCH is a --where expression over the request (not status, duration or route). These
    /// routes are tried before hooks.toml's, in order, and are named cli-1, cli-2, ….
    #[arg(long = "route", value_name = "'MATCH=>TARGET'")]
    pub routes: Vec<crate::routes::FlagRoute>,

    /// Relay to connect to, e.g. https://relay.example.com; several, comma-separated, for the
    /// nodes of a relay cluster
    ///
    /// Without one, hooks starts a relay inside this process on 127.0.0.1, reachable from this
    /// machine only. With several (URL1,URL2,…), every connection and reconnection tries them in
    /// order until one attaches, so the session survives the loss of a node without a load
    /// balancer in front.
    #[arg(long, value_name = "URL[,URL…]", env = "HOOKS_RELAY")]
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
    ///
    /// A reconnection attempt still under way at the limit (a relay that accepts the connection
    /// and never answers) is abandoned there.
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

    /// Keep N captures for list, show, replay and export; the oldest are deleted
    ///
    /// The oldest are deleted when hooks is idle; under a sustained stream, N/8 at a time, so
    /// up to 12.5 % more are kept for a moment.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub keep: u64,

    /// Also delete captures older than DAYS days
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep_days: Option<u32>,

    /// Record nothing in the capture store (list, show, replay and export won't see these
    /// requests, and a redelivery after a restart is not recognised)
    #[arg(long, conflicts_with_all = ["keep", "keep_days"])]
    pub no_capture: bool,

    /// Show the interactive inspector instead of lines: a live list, details, filter, replay,
    /// diff (press ? for the keys)
    ///
    /// Forwarding never waits for it. Without a terminal, hooks prints lines as usual and says
    /// so on stderr. hooks inspect opens the same inspector from another terminal.
    #[arg(long, conflicts_with_all = ["json", "no_capture"])]
    pub ui: bool,
}

/// Flags of `hooks inspect`.
#[derive(Debug, Args)]
#[command(after_long_help = INSPECT_HELP)]
pub struct InspectArgs {
    /// Start with this filter in force (the language of hooks list --where; / changes it)
    #[arg(long = "where", value_name = "EXPR")]
    pub r#where: Option<String>,

    /// Send replays (r, R, e) to TARGET instead of where each capture was forwarded; t changes
    /// it
    #[arg(long, value_name = "TARGET")]
    pub to: Option<Target>,

    /// Signing secret R and E re-sign with (the first), and that is masked wherever it appears
    /// (also HOOKS_SECRET); repeat it for several
    #[arg(
        long = "secret",
        value_name = "SECRET",
        env = "HOOKS_SECRET",
        hide_env_values = true
    )]
    pub secrets: Vec<Secret>,

    /// Provider whose scheme R and E sign with (default: recognised from the captured headers)
    #[arg(long, value_name = "NAME")]
    pub provider: Option<Provider>,
}

/// The keys, shown by `hooks inspect --help`.
const INSPECT_HELP: &str = "\
Keys: \u{2191}\u{2193} or j k move (G or End follows the newest again), Enter opens, Esc goes back,
/ filters, r replays, R replays re-signed, e edits and sends (E re-signs), m marks and = diffs,
c copies as curl (OSC 52), x exports to a file, t sets the replay target, ? shows them all,
q or Ctrl-C quits. It reads the capture store of hooks listen (HOOKS_DATA_DIR), live.";

/// Filters shared by `hooks list` and `hooks replay`; every one given must match.
#[derive(Debug, Clone, Default, Args)]
pub struct FilterArgs {
    /// Only captures matching EXPR, e.g. 'status:5xx event:invoice.* json./data/object/customer:cus_42'
    ///
    /// Terms field:value, joined by AND (or a space), OR and NOT, with parentheses. Fields: id,
    /// method, path (glob: * matches any run of characters), status (500, 5xx, >=400, error),
    /// duration (>1s, <=200ms), size (>1MiB), provider, event (glob), verdict (valid, invalid,
    /// expired, unsigned, unchecked), replay (true, false), since and before (30m, 7d or an RFC
    /// 3339 time), header.NAME (value glob; header.NAME:* when present), query.KEY,
    /// json.POINTER (json./data/amount:>1000), body~"regex", route (the hooks.toml route that
    /// took it, a glob). The flags below are shorthands for terms of the same language.
    #[arg(long = "where", value_name = "EXPR")]
    pub r#where: Option<String>,

    /// Only this status or class: 404, 2xx, 4xx, 5xx, … or error (your app did not answer)
    #[arg(long, value_name = "STATUS")]
    pub status: Option<StatusPattern>,

    /// Only event types matching TYPE, e.g. invoice.paid or invoice.*
    #[arg(long, value_name = "TYPE")]
    pub event: Option<String>,

    /// Only paths starting with PREFIX (the query not counted), e.g. /webhooks/stripe
    #[arg(long, value_name = "PREFIX")]
    pub path: Option<String>,

    /// Only requests received within DURATION: 90s, 30m, 12h, 7d
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub since: Option<Duration>,
}

/// Flags of `hooks list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Show at most N captures
    #[arg(long, short = 'n', value_name = "N", default_value_t = 50)]
    pub limit: usize,

    /// Print one JSON object per line (NDJSON) instead of a table
    #[arg(long)]
    pub json: bool,

    /// Which captures (the --where language and its shorthand flags).
    #[command(flatten)]
    pub filters: FilterArgs,
}

/// Flags of `hooks show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Which capture: its id (12 or #12), or last
    #[arg(value_name = "ID|last")]
    pub id: CaptureRef,

    /// Print the whole exchange as one JSON object, bodies in base64
    #[arg(long, conflicts_with_all = ["print", "color", "show_secrets"])]
    pub json: bool,

    /// What to print under the summary line: H request headers, B request body, h response
    /// headers, b response body [default: HBhb]
    #[arg(long, short = 'p', value_name = "HBhb")]
    pub print: Option<Print>,

    /// Show Authorization, cookies, signatures and tokens whole instead of shortened
    ///
    /// Secrets given with --secret are never shown.
    #[arg(long)]
    pub show_secrets: bool,

    /// Signing secret to mask wherever it appears, as hooks listen does (also HOOKS_SECRET);
    /// repeat it for several
    ///
    /// It is never printed: each occurrence reads (secret). --json prints the capture as it was
    /// stored.
    #[arg(
        long = "secret",
        value_name = "SECRET",
        env = "HOOKS_SECRET",
        hide_env_values = true
    )]
    pub secrets: Vec<Secret>,

    /// When to color the output: auto, always or never
    ///
    /// auto colors when stdout is a terminal, NO_COLOR is unset or empty, and TERM is not
    /// dumb.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub color: ColorChoice,
}

/// Flags of `hooks replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Which capture: its id (12 or #12), or last; or use the filters to replay several
    #[arg(
        value_name = "ID|last",
        required_unless_present_any = ["where", "status", "event", "path", "since", "dir"],
        conflicts_with_all = ["where", "status", "event", "path", "since", "dir"]
    )]
    pub id: Option<CaptureRef>,

    /// Replay the fixtures (*.http) in DIR, in name order, as hooks export --format fixture
    /// writes them; needs --to, and reads and writes no capture store
    ///
    /// For a project's committed webhooks in CI: hooks replay --dir fixtures --to 3000 --check
    /// exits 1 when an answer changed.
    #[arg(
        long,
        value_name = "DIR",
        requires = "to",
        conflicts_with_all = ["where", "status", "event", "path", "since"]
    )]
    pub dir: Option<PathBuf>,

    /// Compare each new answer with the captured one (or the fixture's): one line per capture,
    /// a summary, exit 1 if any changed
    ///
    /// The status, the headers (less those that change on every answer, such as Date) and the
    /// body, structurally when both are JSON. A replay that gets no answer is changed.
    #[arg(long)]
    pub check: bool,

    /// With --check: skip this JSON pointer (and everything under it) in both bodies, or the
    /// header header.NAME; repeatable, e.g. --ignore /data/created --ignore header.x-request-id
    #[arg(long, value_name = "POINTER", requires = "check", value_parser = crate::query::diff::parse_ignore)]
    pub ignore: Vec<crate::query::diff::Ignore>,

    /// Send to TARGET instead of where the capture was forwarded: 3000, localhost:3000/base, …
    ///
    /// Without it, a capture a route took goes to that route's target in hooks.toml now (its
    /// strip_prefix taken off the path), else where it was forwarded.
    #[arg(long, value_name = "TARGET")]
    pub to: Option<Target>,

    /// The project file whose routes replays follow (default: the nearest hooks.toml)
    #[arg(long, value_name = "FILE")]
    pub project: Option<PathBuf>,

    /// Add a header, or replace every header of that name: 'X-Name: value' (repeatable)
    #[arg(long, short = 'H', value_name = "'NAME: VALUE'", value_parser = parse_header)]
    pub header: Vec<(String, String)>,

    /// Recompute the provider's signature over the same body with a fresh timestamp, so your
    /// app's verification (and its replay window) passes; needs --secret, or a capture whose
    /// route in hooks.toml has a secret_env
    #[arg(long)]
    pub resign: bool,

    /// Signing secret for --resign, the one your app verifies with (also HOOKS_SECRET)
    #[arg(
        long = "secret",
        value_name = "SECRET",
        env = "HOOKS_SECRET",
        hide_env_values = true
    )]
    pub secrets: Vec<Secret>,

    /// Provider whose scheme to sign with (default: recognised from the captured headers)
    #[arg(long, value_name = "NAME")]
    pub provider: Option<Provider>,

    /// Print each new capture as one JSON object per line, as hooks show --json does; with
    /// --check, one object per capture: id (or fixture), replay, same, changes
    #[arg(long)]
    pub json: bool,

    /// Replay every capture matching these, oldest first (replays themselves are left out)
    #[command(flatten)]
    pub filters: FilterArgs,
}

/// `hooks routes`.
#[derive(Debug, Args)]
pub struct RoutesArgs {
    /// What to do
    #[command(subcommand)]
    pub command: RoutesCommand,
}

/// The subcommands of `hooks routes`.
#[derive(Debug, Subcommand)]
pub enum RoutesCommand {
    /// Check hooks.toml: unknown keys, bad expressions, routes that can never match, secret
    /// variables not set; exit 1 if anything is wrong
    ///
    /// A route can never match when an earlier primary route matches everything it matches, as
    /// far as can be seen term by term: the same term, a prefix glob taking a longer one
    /// (path:/stripe* takes path:/stripe/billing*), path:*. Ranges, regexes and JSON values are
    /// not compared, so some such routes go unreported; a reported one is certain.
    Check(RoutesCheckArgs),
    /// Say which route each capture would take now, and why the others do not take it
    Explain(RoutesExplainArgs),
}

/// Flags of `hooks routes check`.
#[derive(Debug, Args)]
pub struct RoutesCheckArgs {
    /// The project file to check (default: the nearest hooks.toml)
    #[arg(long, value_name = "FILE")]
    pub project: Option<PathBuf>,
}

/// Flags of `hooks routes explain`.
#[derive(Debug, Args)]
pub struct RoutesExplainArgs {
    /// Which capture: its id (12 or #12), or last; or --where for several
    #[arg(
        value_name = "ID|last",
        required_unless_present = "where",
        conflicts_with = "where"
    )]
    pub id: Option<CaptureRef>,

    /// Explain every capture matching EXPR (the language of hooks list --where), newest first
    #[arg(long = "where", value_name = "EXPR")]
    pub r#where: Option<String>,

    /// With --where: at most N captures
    #[arg(long, short = 'n', value_name = "N", default_value_t = 50)]
    pub limit: usize,

    /// The project file whose routes to use (default: the nearest hooks.toml)
    #[arg(long, value_name = "FILE")]
    pub project: Option<PathBuf>,

    /// Also a route for this session, as hooks listen --route takes it (tried first)
    #[arg(long = "route", value_name = "'MATCH=>TARGET'")]
    pub routes: Vec<crate::routes::FlagRoute>,

    /// The default target, as hooks listen --forward-to (instead of the file's default)
    #[arg(long, short = 'f', value_name = "TARGET")]
    pub forward_to: Option<Target>,

    /// Print one JSON object per capture (NDJSON)
    #[arg(long)]
    pub json: bool,
}

/// Flags of `hooks export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Which capture: its id (12 or #12), or last; or --where for several
    #[arg(
        value_name = "ID|last",
        required_unless_present = "where",
        conflicts_with = "where"
    )]
    pub id: Option<CaptureRef>,

    /// Export every capture matching EXPR (the language of hooks list --where), oldest first;
    /// replays are left out, as hooks replay --where leaves them out, unless EXPR has a replay:
    /// term
    ///
    /// curl prints one script with a command per capture, har one log with an entry per
    /// capture, fixture a file per capture; raw holds one request, so it refuses several.
    #[arg(long = "where", value_name = "EXPR")]
    pub r#where: Option<String>,

    /// curl: a shell command; raw: the HTTP/1.1 request bytes; har: HAR 1.2 JSON; fixture: a
    /// file per capture in --dir, with the expected answer, for hooks replay --dir
    #[arg(long, value_name = "FORMAT")]
    pub format: ExportFormat,

    /// Folder to write the fixtures into (created if missing), for --format fixture
    #[arg(long, value_name = "DIR", required_if_eq("format", "fixture"))]
    pub dir: Option<PathBuf>,

    /// Address the request to TARGET instead of where the capture was forwarded
    #[arg(long, value_name = "TARGET")]
    pub to: Option<Target>,
}

/// Flags of `hooks diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The first capture: its id (12 or #12), or last
    #[arg(value_name = "A")]
    pub a: CaptureRef,

    /// The second capture: its id, or last
    #[arg(value_name = "B")]
    pub b: CaptureRef,

    /// Skip this JSON pointer, and everything under it, in both bodies (for forms, /KEY skips
    /// the key); repeatable, e.g. --ignore /created --ignore /data/object/id
    #[arg(long, value_name = "POINTER", value_parser = parse_pointer)]
    pub ignore: Vec<Pointer>,

    /// Print the differences as one JSON object
    #[arg(long, conflicts_with = "color")]
    pub json: bool,

    /// When to color the output: auto, always or never
    ///
    /// auto colors when stdout is a terminal, NO_COLOR is unset or empty, and TERM is not
    /// dumb.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub color: ColorChoice,
}

fn parse_pointer(text: &str) -> Result<Pointer, String> {
    Pointer::parse(text).ok_or_else(|| {
        format!("{text:?} is not a JSON pointer: use one such as /data/object/id (or \"\" for the whole body)")
    })
}

/// Formats of `hooks export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// A POSIX shell command running curl that sends the same bytes.
    Curl,
    /// The HTTP/1.1 request exactly: request line, headers, blank line, body.
    Raw,
    /// HAR 1.2 (JSON) with the request and the response.
    Har,
    /// Files for `hooks replay --dir`: the raw request, then the expected answer.
    Fixture,
}

/// A `-H 'Name: value'` flag: the name lowercased, the value as given.
pub(crate) fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not a header: use 'Name: value'"))?;
    let name = name.trim();
    http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("{name:?} is not a valid header name"))?;
    let value = value.trim_start_matches([' ', '\t']);
    http::HeaderValue::from_str(value).map_err(|_| format!("invalid value for header {name:?}"))?;
    Ok((name.to_ascii_lowercase(), value.to_owned()))
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
