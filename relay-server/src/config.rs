//! The relay's settings: command-line flags and the [`Config`] that [`crate::run`] takes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::protocol::{Offline, DEFAULT_MAX_BODY};

/// How long the relay waits for the app's response before answering `504`.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an undelivered request is kept: 7 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Most undelivered requests one channel may hold.
pub const DEFAULT_MAX_QUEUED: usize = 10_000;

/// Settings of one running relay.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base of the public URLs (`https://relay.example.com`); `None` derives it from the listen
    /// address.
    pub public_url: Option<String>,
    /// Where the relay keeps its queue and channels; `None` keeps them in memory (lost on exit).
    pub data_dir: Option<PathBuf>,
    /// What happens to webhooks for a known channel while no CLI is attached, unless the CLI
    /// chose otherwise.
    pub offline: Offline,
    /// How long an undelivered request is kept.
    pub retention: Duration,
    /// Most undelivered requests one channel may hold; more get `429`.
    pub max_queued: usize,
    /// Largest request body accepted; larger ones get `413`.
    pub max_body: usize,
    /// How long a sender waits for the app's response before getting `504`.
    pub response_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            public_url: None,
            data_dir: None,
            offline: Offline::Queue,
            retention: DEFAULT_RETENTION,
            max_queued: DEFAULT_MAX_QUEUED,
            max_body: DEFAULT_MAX_BODY,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
        }
    }
}

/// hooks-relay: public webhook URLs for `hooks listen` sessions
///
/// Accepts webhooks on /<channel>/… and streams each one to the hooks CLI attached to that
/// channel, then returns the app's response to the sender.
#[derive(Debug, Parser)]
#[command(name = "hooks-relay", version)]
pub struct Args {
    /// Address to listen on for webhooks and CLI sessions
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8080",
        env = "HOOKS_RELAY_LISTEN"
    )]
    pub listen: SocketAddr,

    /// Public base URL of this relay, when it sits behind a proxy or a DNS name
    ///
    /// Channel URLs are printed as <URL>/<channel>. Defaults to http://<listen address>.
    #[arg(long, value_name = "URL", env = "HOOKS_RELAY_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Directory for the relay's durable queue and channel list (created if missing)
    ///
    /// Every accepted webhook is written here before it is answered or forwarded, and stays
    /// until a CLI acknowledges it or it expires.
    #[arg(
        long,
        value_name = "DIR",
        env = "HOOKS_RELAY_DATA_DIR",
        default_value = "hooks-relay-data"
    )]
    pub data_dir: PathBuf,

    /// What to do with webhooks for a known channel while no CLI is attached
    ///
    /// queue: answer 202 and deliver when a CLI attaches. reject: answer 503 with Retry-After so
    /// the provider's own retries redeliver later. A CLI may choose for its channel.
    #[arg(long, value_name = "POLICY", default_value = "queue", value_parser = parse_offline)]
    pub offline: Offline,

    /// How long undelivered webhooks are kept, e.g. 7d, 12h, 30m, 90s
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_duration)]
    pub retention: Duration,

    /// Most undelivered webhooks one channel may hold; more get 429
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_QUEUED)]
    pub max_queued: usize,

    /// How long a sender waits for the app's response before getting 504, unless the CLI chose
    /// otherwise (hooks listen --timeout)
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Largest request body accepted, in bytes; larger requests get 413
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BODY)]
    pub max_body: usize,

    /// Log format on stderr
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

impl Args {
    /// The [`Config`] these flags describe.
    pub fn config(&self) -> Config {
        Config {
            public_url: self
                .public_url
                .as_ref()
                .map(|url| url.trim_end_matches('/').to_owned()),
            data_dir: Some(self.data_dir.clone()),
            offline: self.offline,
            retention: self.retention,
            max_queued: self.max_queued,
            max_body: self.max_body,
            response_timeout: self.timeout,
        }
    }
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
}
