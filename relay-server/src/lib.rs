//! hooks-relay: holds public webhook URLs (channels), accepts webhooks on them and streams each one
//! to the `hooks` CLI session attached to its channel.
//!
//! [`run`] serves on a bound listener until a shutdown future completes, so tests start it on
//! `127.0.0.1:0` and the CLI embeds it when no relay is configured.

#![forbid(unsafe_code)]

mod accept;
pub mod config;
pub mod protocol;
mod route;
mod session;

use std::sync::atomic::AtomicU64;

pub use accept::run;
pub use config::Config;
pub use session::ws_config;

/// State shared by every connection of one running relay.
pub(crate) struct Relay {
    config: Config,
    /// Base of the public URLs, without a trailing slash: `--public-url` or `http://<listen addr>`.
    base_url: String,
    channels: session::Channels,
    next_request: AtomicU64,
}

impl Relay {
    fn new(config: Config, base_url: String) -> Self {
        Relay {
            config,
            base_url,
            channels: session::Channels::default(),
            next_request: AtomicU64::new(1),
        }
    }

    /// The public URL of `channel`.
    fn channel_url(&self, channel: &str) -> String {
        format!("{}/{channel}", self.base_url)
    }
}
