//! The relay's settings: command-line flags, the optional TOML config file, and the [`Config`]
//! that [`crate::run`] takes. A flag (or its `HOOKS_RELAY_*` variable) beats the file, which
//! beats the default.
// The doc comments of the arguments are their --help text, written for a terminal:
// <URL> is a placeholder there, not an HTML tag.
#![allow(rustdoc::invalid_html_tags, rustdoc::bare_urls)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use serde::Deserialize;

use crate::protocol::{max_frame_len, Offline, DEFAULT_MAX_BODY};

/// How long the relay waits for the app's response before answering `504`.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an undelivered request is kept: 7 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Most undelivered requests one channel may hold.
pub const DEFAULT_MAX_QUEUED: usize = 10_000;

/// Largest request head (request line and headers) in bytes; larger ones get `431`.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;

/// How long a client may take to send a request's headers, and then its body.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(15);

/// Most CLI sessions attached at once.
pub const DEFAULT_MAX_SESSIONS: usize = 20_000;

/// Most requests sent to one session and not yet acknowledged; more wait in the queue.
///
/// The CLI acknowledges a request once its capture is committed, a few milliseconds after the
/// app answered (the capture store groups commits), so this caps a session's rate at about
/// this many per commit delay: 256 held a busy session to about 25,000 webhooks a second and
/// stalled it whenever a commit was slow. In-flight requests are in the queue either way; the
/// window only bounds how far a CLI may fall behind.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;

/// Most bytes of webhook requests the relay holds in memory at once, relay-wide, unless
/// `--max-memory` says otherwise (see [`default_max_memory`]). With it, a relay under the bursts
/// of issue 17 (40 × 20 MiB POSTs, a CLI that stops reading) peaked under 256 MiB of RSS.
pub const DEFAULT_MAX_MEMORY: usize = 128 * 1024 * 1024;

/// `--max-memory` when it is not given: [`DEFAULT_MAX_MEMORY`], or room for five requests of
/// `max_body` when that is more, so that a larger `--max-body` does not leave room for only a
/// few such requests at once.
pub fn default_max_memory(max_body: usize) -> usize {
    DEFAULT_MAX_MEMORY.max(max_frame_len(max_body).saturating_mul(5))
}

/// Settings of one running relay.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base of the public URLs (`https://relay.example.com`); `None` derives it from the listen
    /// address.
    pub public_url: Option<String>,
    /// Where the relay keeps its queue and channels; `None` keeps them in memory (lost on exit).
    pub data_dir: Option<PathBuf>,
    /// Certificate chain and private key (PEM files) to serve HTTPS and WSS with.
    pub tls: Option<TlsFiles>,
    /// File of accepted CLI tokens; `None` leaves the relay open to any CLI.
    pub tokens_file: Option<PathBuf>,
    /// What happens to webhooks for a known channel while no CLI is attached, unless the CLI
    /// chose otherwise.
    pub offline: Offline,
    /// How long an undelivered request is kept, and a channel no CLI attaches to remembered.
    pub retention: Duration,
    /// Most undelivered requests one channel may hold; more get `429`.
    pub max_queued: usize,
    /// Largest request body accepted; larger ones get `413`.
    pub max_body: usize,
    /// Most bytes of requests held in memory at once, relay-wide; beyond it webhooks get `503`.
    pub max_memory: usize,
    /// Largest request head; larger ones get `431`.
    pub max_header_bytes: usize,
    /// How long a sender waits for the app's response before getting `504`.
    pub response_timeout: Duration,
    /// How long a sender may take to send its headers, and then its body (`408`).
    pub read_timeout: Duration,
    /// Most webhooks per second per channel (`None`: unlimited); more get `429`.
    pub rate: Option<u32>,
    /// Most CLI sessions attached at once.
    pub max_sessions: usize,
    /// Most requests in flight to one session.
    pub max_in_flight: usize,
    /// Serve `https://<channel>.<public host>/…` besides `https://<public host>/<channel>/…`.
    pub subdomains: bool,
    /// The NATS servers whose JetStream this relay is one node of a cluster over (`--nats`);
    /// `None` runs the relay alone on its own queue.
    pub nats: Option<NatsSettings>,
}

/// How a node of a cluster reaches NATS (`--nats` and the settings beside it).
#[derive(Clone, PartialEq, Eq)]
pub struct NatsSettings {
    /// Server URLs, `nats://host:4222` (or `tls://`), tried in turn; user and password may be in
    /// them.
    pub urls: Vec<String>,
    /// A credentials file (`.creds`: a user JWT and its NKey seed) for a secured NATS.
    pub creds: Option<PathBuf>,
    /// A file holding the token of a NATS that requires one.
    pub token_file: Option<PathBuf>,
    /// Copies JetStream keeps of the relay's stream, buckets and bodies: 1, or 3 on a
    /// three-server NATS cluster.
    pub replicas: usize,
}

impl std::fmt::Debug for NatsSettings {
    /// The hosts only: a URL may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hosts: Vec<&str> = self.urls.iter().map(|url| without_userinfo(url)).collect();
        f.debug_struct("NatsSettings")
            .field("urls", &hosts)
            .field("creds", &self.creds)
            .field("token_file", &self.token_file)
            .field("replicas", &self.replicas)
            .finish()
    }
}

/// `url` from its host on: `nats://user:pass@host:4222` → `host:4222`, for messages.
pub fn without_userinfo(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.rsplit_once('@').map_or(rest, |(_, host)| host)
}

/// The PEM files of a TLS certificate chain and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            public_url: None,
            data_dir: None,
            tls: None,
            tokens_file: None,
            offline: Offline::Queue,
            retention: DEFAULT_RETENTION,
            max_queued: DEFAULT_MAX_QUEUED,
            max_body: DEFAULT_MAX_BODY,
            max_memory: DEFAULT_MAX_MEMORY,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            rate: None,
            max_sessions: DEFAULT_MAX_SESSIONS,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            subdomains: false,
            nats: None,
        }
    }
}

/// hooks-relay: public webhook URLs for `hooks listen` sessions
///
/// Accepts webhooks on /<channel>/… (any method), queues each one durably, streams it to the
/// hooks CLI attached to that channel, and returns the app's response to the sender.
/// Every flag can also be set in the --config file, under the same name.
#[derive(Debug, Parser)]
#[command(name = "hooks-relay", version)]
pub struct Args {
    /// TOML file with any of these settings (flags win over it), e.g. relay.toml
    #[arg(long, value_name = "FILE", env = "HOOKS_RELAY_CONFIG")]
    pub config: Option<PathBuf>,

    /// Address to listen on for webhooks and CLI sessions [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR", env = "HOOKS_RELAY_LISTEN")]
    pub listen: Option<SocketAddr>,

    /// Public base URL of this relay, when it sits behind a proxy or a DNS name
    ///
    /// Channel URLs are printed as <URL>/<channel>. Defaults to http(s)://<listen address>.
    #[arg(long, value_name = "URL", env = "HOOKS_RELAY_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Directory for the durable queue and channel list (created if missing)
    /// [default: ./hooks-relay-data]
    ///
    /// Every accepted webhook is written here before it is answered or forwarded, and stays
    /// until a CLI acknowledges it or it expires.
    #[arg(long, value_name = "DIR", env = "HOOKS_RELAY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Certificate chain (PEM) to serve HTTPS and WSS with; needs --tls-key. Reloaded on SIGHUP
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert. Reloaded on SIGHUP
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// File of CLI tokens, one per line, '#' after a space starts a comment. Reread on SIGHUP
    ///
    /// With it, every CLI must present one of these tokens, and the first token to claim a
    /// channel name owns it. A line `TOKEN channels=NAME,NAME` gives those channels to that
    /// token, whoever claimed them; a channel claimed while the relay had no tokens file
    /// belongs to no token until a line gives it to one. A '#' starts a comment at the start
    /// of a line or after whitespace; inside a token it is part of the token. On SIGHUP, the
    /// sessions of a token no longer in the file end. Without it, the relay is open to any CLI.
    #[arg(long, value_name = "FILE", env = "HOOKS_RELAY_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,

    /// What to do with webhooks for a known channel while no CLI is attached [default: queue]
    ///
    /// queue: answer 202 and deliver when a CLI attaches. reject: answer 503 with Retry-After so
    /// the provider's own retries redeliver later. A CLI may choose for its channel.
    #[arg(long, value_name = "queue|reject", value_parser = parse_offline)]
    pub offline: Option<Offline>,

    /// How long undelivered webhooks are kept, and channels no CLI attaches to are
    /// remembered, e.g. 7d, 12h, 30m, 90s [default: 7d]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub retention: Option<Duration>,

    /// Most undelivered webhooks one channel may hold; more get 429 [default: 10000]
    #[arg(long, value_name = "N")]
    pub max_queued: Option<usize>,

    /// How long a sender waits for the app before getting 504, unless the CLI chose otherwise
    /// (hooks listen --timeout) [default: 30s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Largest request body accepted, in bytes; larger requests get 413 [default: 26214400]
    #[arg(long, value_name = "BYTES")]
    pub max_body: Option<usize>,

    /// Most bytes of webhook requests held in memory at once, relay-wide; beyond it webhooks get
    /// 503 with Retry-After [default: 134217728, or 5 × --max-body when that is more]
    ///
    /// Counts request bodies being read into memory (short ones, chunked ones, every one without
    /// --data-dir), requests queued in memory, and those on their way to CLI sessions. Bodies of
    /// 256 KiB or more with a Content-Length go to their file in --data-dir as they arrive and
    /// count only for the piece in hand. At least the size of one --max-body request.
    #[arg(long, value_name = "BYTES")]
    pub max_memory: Option<usize>,

    /// Largest request line plus headers, in bytes (at least 8192); larger get 431
    /// [default: 65536]
    #[arg(long, value_name = "BYTES")]
    pub max_header_bytes: Option<usize>,

    /// How long a sender may take to send its headers, and then its body, before the relay
    /// gives up on it (slow senders cannot hold the relay) [default: 15s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub read_timeout: Option<Duration>,

    /// Most webhooks per second per channel; more get 429 with Retry-After [default: unlimited]
    #[arg(long, value_name = "N")]
    pub rate: Option<u32>,

    /// Most CLI sessions attached at once [default: 20000]
    #[arg(long, value_name = "N")]
    pub max_sessions: Option<usize>,

    /// Most requests sent to one CLI session and not yet acknowledged; more wait in the queue
    /// [default: 1024]
    #[arg(long, value_name = "N")]
    pub max_in_flight: Option<usize>,

    /// Also accept webhooks at <channel>.<public host> (needs a wildcard DNS name and
    /// certificate), and print channel URLs that way
    #[arg(long)]
    pub subdomains: bool,

    /// Log format on stderr [default: text]
    #[arg(long, value_name = "text|json", value_parser = ["text", "json"])]
    pub log_format: Option<String>,

    /// Run as one node of a cluster over these NATS servers' JetStream, e.g.
    /// nats://n1:4222,nats://n2:4222 (user:password@ in a URL for a NATS that wants them)
    ///
    /// Every node of the cluster is given the same servers (and the same --public-url, tokens
    /// file and limits); any node then takes any webhook and any hooks session. Requests wait in
    /// a JetStream stream instead of --data-dir, which is then unused. NATS 2.10 or newer.
    #[arg(
        long,
        value_name = "URL[,URL…]",
        env = "HOOKS_RELAY_NATS",
        value_delimiter = ','
    )]
    pub nats: Option<Vec<String>>,

    /// Credentials file (.creds) for a secured NATS
    #[arg(long, value_name = "FILE", env = "HOOKS_RELAY_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,

    /// File holding the token of a NATS that requires one
    #[arg(long, value_name = "FILE", env = "HOOKS_RELAY_NATS_TOKEN_FILE")]
    pub nats_token_file: Option<PathBuf>,

    /// Copies JetStream keeps of the relay's stream and buckets: 3 on a three-server NATS
    /// cluster [default: 1]
    #[arg(long, value_name = "N")]
    pub nats_replicas: Option<usize>,
}

/// The config file: every flag under its own name, e.g. `max-body = 1000000`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    listen: Option<SocketAddr>,
    public_url: Option<String>,
    data_dir: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tokens_file: Option<PathBuf>,
    offline: Option<String>,
    retention: Option<String>,
    max_queued: Option<usize>,
    timeout: Option<String>,
    max_body: Option<usize>,
    max_memory: Option<usize>,
    max_header_bytes: Option<usize>,
    read_timeout: Option<String>,
    rate: Option<u32>,
    max_sessions: Option<usize>,
    max_in_flight: Option<usize>,
    subdomains: Option<bool>,
    log_format: Option<String>,
    nats: Option<NatsUrls>,
    nats_creds: Option<PathBuf>,
    nats_token_file: Option<PathBuf>,
    nats_replicas: Option<usize>,
}

/// `nats` in the config file: `"nats://a:4222,nats://b:4222"` or a list of URLs.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum NatsUrls {
    Joined(String),
    List(Vec<String>),
}

impl NatsUrls {
    fn into_list(self) -> Vec<String> {
        match self {
            NatsUrls::Joined(text) => text.split(',').map(str::to_owned).collect(),
            NatsUrls::List(list) => list,
        }
    }
}

/// Everything `main` needs: where to listen, how to log, and the relay's [`Config`].
#[derive(Debug)]
pub struct Settings {
    /// Address to bind.
    pub listen: SocketAddr,
    /// `text` or `json`.
    pub log_format: String,
    /// The relay's configuration.
    pub config: Config,
}

impl Args {
    /// Merges flags, the config file and defaults. Paths in the file are relative to the file.
    pub fn settings(self) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let base = self
            .config
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let in_file = |p: Option<PathBuf>| p.map(|p| base.join(p));
        let duration = |name: &str, text: Option<String>| -> anyhow::Result<Option<Duration>> {
            text.map(|t| parse_duration(&t).map_err(|e| anyhow::anyhow!("{name}: {e}")))
                .transpose()
        };
        let offline = match file.offline {
            Some(text) => Some(parse_offline(&text).map_err(|e| anyhow::anyhow!("offline: {e}"))?),
            None => None,
        };
        let cert = self.tls_cert.or(in_file(file.tls_cert));
        let key = self.tls_key.or(in_file(file.tls_key));
        let tls = match (cert, key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => anyhow::bail!("tls-cert and tls-key go together; give both or neither"),
        };
        let defaults = Config::default();
        let max_header_bytes = self
            .max_header_bytes
            .or(file.max_header_bytes)
            .unwrap_or(defaults.max_header_bytes);
        if max_header_bytes < 8192 {
            anyhow::bail!("max-header-bytes must be at least 8192");
        }
        let max_body = self.max_body.or(file.max_body).unwrap_or(defaults.max_body);
        let max_memory = self
            .max_memory
            .or(file.max_memory)
            .unwrap_or_else(|| default_max_memory(max_body));
        if max_memory < max_frame_len(max_body) {
            anyhow::bail!(
                "max-memory ({max_memory} bytes) must hold at least one request of max-body ({} bytes with its headers)",
                max_frame_len(max_body)
            );
        }
        let config = Config {
            public_url: self
                .public_url
                .or(file.public_url)
                .map(|url| url.trim_end_matches('/').to_owned()),
            data_dir: Some(
                self.data_dir
                    .or(in_file(file.data_dir))
                    .unwrap_or_else(|| PathBuf::from("hooks-relay-data")),
            ),
            tls,
            tokens_file: self.tokens_file.or(in_file(file.tokens_file)),
            offline: self.offline.or(offline).unwrap_or(defaults.offline),
            retention: self
                .retention
                .or(duration("retention", file.retention)?)
                .unwrap_or(defaults.retention),
            max_queued: self
                .max_queued
                .or(file.max_queued)
                .unwrap_or(defaults.max_queued),
            max_body,
            max_memory,
            max_header_bytes,
            response_timeout: self
                .timeout
                .or(duration("timeout", file.timeout)?)
                .unwrap_or(defaults.response_timeout),
            read_timeout: self
                .read_timeout
                .or(duration("read-timeout", file.read_timeout)?)
                .unwrap_or(defaults.read_timeout),
            rate: self.rate.or(file.rate),
            max_sessions: self
                .max_sessions
                .or(file.max_sessions)
                .unwrap_or(defaults.max_sessions),
            max_in_flight: self
                .max_in_flight
                .or(file.max_in_flight)
                .unwrap_or(defaults.max_in_flight)
                .max(1),
            subdomains: self.subdomains || file.subdomains.unwrap_or(false),
            nats: None,
        };
        let nats_urls = self.nats.or(file.nats.map(NatsUrls::into_list));
        let config = Config {
            nats: nats_settings(
                nats_urls,
                self.nats_creds.or(in_file(file.nats_creds)),
                self.nats_token_file.or(in_file(file.nats_token_file)),
                self.nats_replicas.or(file.nats_replicas),
            )?,
            ..config
        };
        Ok(Settings {
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            log_format: self
                .log_format
                .or(file.log_format)
                .unwrap_or_else(|| "text".to_owned()),
            config,
        })
    }
}

/// The NATS settings, when `urls` are given; the others without them are an error, as are
/// URLs that are not `nats://` or `tls://` ones.
fn nats_settings(
    urls: Option<Vec<String>>,
    creds: Option<PathBuf>,
    token_file: Option<PathBuf>,
    replicas: Option<usize>,
) -> anyhow::Result<Option<NatsSettings>> {
    let urls: Vec<String> = urls
        .unwrap_or_default()
        .iter()
        .map(|url| url.trim().to_owned())
        .filter(|url| !url.is_empty())
        .collect();
    if urls.is_empty() {
        if creds.is_some() || token_file.is_some() || replicas.is_some() {
            anyhow::bail!("nats-creds, nats-token-file and nats-replicas need nats (the servers)");
        }
        return Ok(None);
    }
    for url in &urls {
        let scheme = url.split_once("://").map(|(scheme, _)| scheme);
        if !matches!(scheme, Some("nats" | "tls")) {
            anyhow::bail!(
                "nats: {:?} is not a NATS URL like nats://host:4222 or tls://host:4222",
                without_userinfo(url)
            );
        }
    }
    if creds.is_some() && token_file.is_some() {
        anyhow::bail!("nats-creds and nats-token-file go alone; give one or the other");
    }
    let replicas = replicas.unwrap_or(1);
    if !(1..=5).contains(&replicas) {
        anyhow::bail!("nats-replicas must be between 1 and 5 (JetStream's limit)");
    }
    Ok(Some(NatsSettings {
        urls,
        creds,
        token_file,
        replicas,
    }))
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read the config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {} is not valid", path.display()))
}

/// Parses `queue` or `reject`.
pub fn parse_offline(text: &str) -> Result<Offline, String> {
    match text {
        "queue" => Ok(Offline::Queue),
        "reject" => Ok(Offline::Reject),
        _ => Err("expected queue or reject".into()),
    }
}

/// Parses `90`, `90s`, `30m`, `12h` or `7d` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 90s, 30m, 12h or 7d"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?}; use s, m, h or d"
            ))
        }
    };
    Ok(Duration::from_secs(number.saturating_mul(seconds)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert!(parse_duration("7w").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:9000\"\nmax-body = 1000\nrate = 5\noffline = \"reject\"\ndata-dir = \"data\"\nretention = \"1d\"\n",
        )
        .unwrap();
        let args = Args::parse_from([
            "hooks-relay",
            "--config",
            path.to_str().unwrap(),
            "--max-body",
            "2000",
        ]);
        let settings = args.settings().unwrap();
        assert_eq!(settings.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(settings.config.max_body, 2000);
        assert_eq!(settings.config.rate, Some(5));
        assert_eq!(settings.config.offline, Offline::Reject);
        assert_eq!(settings.config.retention, Duration::from_secs(86_400));
        assert_eq!(settings.config.data_dir, Some(dir.path().join("data")));
        assert_eq!(settings.config.max_queued, DEFAULT_MAX_QUEUED);
    }

    #[test]
    fn max_memory_defaults_to_128_mib_or_five_max_bodies_and_holds_at_least_one() {
        let settings = |args: &[&str]| {
            let mut all = vec!["hooks-relay"];
            all.extend_from_slice(args);
            Args::parse_from(all).settings()
        };
        let default = settings(&[]).unwrap().config;
        assert_eq!(default.max_memory, DEFAULT_MAX_MEMORY);
        let large = settings(&["--max-body", "104857600"]).unwrap().config;
        assert_eq!(large.max_memory, 5 * max_frame_len(104_857_600));
        let given = settings(&["--max-memory", "30000000"]).unwrap().config;
        assert_eq!(given.max_memory, 30_000_000);
        let err = settings(&["--max-memory", "1000000"]).unwrap_err();
        assert!(format!("{err:#}").contains("max-memory"), "{err:#}");
    }

    #[test]
    fn nats_comes_from_a_flag_list_or_the_file_and_bad_ones_are_refused() {
        let settings = |args: &[&str]| {
            let mut all = vec!["hooks-relay"];
            all.extend_from_slice(args);
            Args::parse_from(all).settings()
        };
        assert_eq!(settings(&[]).unwrap().config.nats, None);
        let nats = settings(&[
            "--nats",
            "nats://a:4222,tls://b:4222",
            "--nats-replicas",
            "3",
        ])
        .unwrap()
        .config
        .nats
        .unwrap();
        assert_eq!(nats.urls, ["nats://a:4222", "tls://b:4222"]);
        assert_eq!(nats.replicas, 3);
        let err = |args: &[&str]| format!("{:#}", settings(args).unwrap_err());
        assert!(err(&["--nats", "http://a"]).contains("not a NATS URL"));
        assert!(err(&["--nats-replicas", "3"]).contains("need nats"));
        assert!(err(&["--nats", "nats://a", "--nats-replicas", "7"]).contains("between 1 and 5"));
        let debug = format!(
            "{:?}",
            settings(&["--nats", "nats://u:secret@a:4222"]).unwrap()
        );
        assert!(!debug.contains("secret"), "{debug}");
    }

    #[test]
    fn the_deployment_examples_are_valid_configs() {
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
        for file in ["relay.toml", "cluster/relay.toml"] {
            let path = deploy.join(file);
            let args = Args::parse_from(["hooks-relay", "--config", path.to_str().unwrap()]);
            let settings = args.settings().unwrap_or_else(|e| panic!("{file}: {e:#}"));
            if file.starts_with("cluster") {
                let nats = settings.config.nats.expect("the cluster example has nats");
                assert_eq!((nats.urls.len(), nats.replicas), (3, 3));
                assert!(nats.token_file.is_some());
            }
        }
    }

    #[test]
    fn unknown_keys_in_the_file_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, "max-bodyy = 1\n").unwrap();
        let args = Args::parse_from(["hooks-relay", "--config", path.to_str().unwrap()]);
        let err = args.settings().unwrap_err();
        assert!(format!("{err:#}").contains("max-bodyy"), "{err:#}");
    }
}
