//! The relay's settings: command-line flags and the [`Config`] that [`crate::run`] takes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::protocol::DEFAULT_MAX_BODY;

/// How long the relay waits for the app's response before answering `504`.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of one running relay.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base of the public URLs (`https://relay.example.com`); `None` derives it from the listen
    /// address.
    pub public_url: Option<String>,
    /// Where the relay keeps its state.
    pub data_dir: Option<PathBuf>,
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

    /// Directory for the relay's state
    #[arg(long, value_name = "DIR", env = "HOOKS_RELAY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

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
            data_dir: self.data_dir.clone(),
            max_body: self.max_body,
            ..Config::default()
        }
    }
}
