//! hooks-relay: holds public webhook URLs (channels), queues every webhook sent to them durably,
//! and streams each one to the `hooks` CLI session attached to its channel.
//!
//! [`run`] serves on a bound listener until a shutdown future completes, so tests start it on
//! `127.0.0.1:0` and the CLI embeds it when no relay is configured.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod accept;
mod answer;
mod budget;
mod channel;
pub mod cli;
pub mod config;
pub mod headers;
mod metrics;
pub mod protocol;
pub mod queue;
mod quote;
mod refusals;
mod route;
mod session;
mod tls;
mod tokens;
mod webhook;

use std::sync::Arc;

pub use accept::{run, run_with_reload};
pub use config::Config;
pub use protocol::session::ws_config;
pub use session::OUTBOX_BYTES;
pub use tokens::is_token_refusal;

use crate::protocol::RequestId;

/// State shared by every connection of one running relay.
pub(crate) struct Relay {
    config: Config,
    /// Base of the public URLs, without a trailing slash: `--public-url` or `http://<listen addr>`.
    base_url: String,
    /// Host of the public URL, for `<channel>.<host>` URLs with `--subdomains`.
    subdomain_host: Option<String>,
    tokens: tokens::Tokens,
    tls: Option<tls::Tls>,
    metrics: metrics::Metrics,
    /// One permit per session the relay may still accept (`--max-sessions`).
    sessions: Arc<tokio::sync::Semaphore>,
    /// Refused sessions, logged at a bounded rate per peer.
    refusals: refusals::RefusalLog,
    /// One permit per session that may still be reading its hello ([`session::MAX_OPENING`]).
    opening: tokio::sync::Semaphore,
    queue: queue::Queue,
    channels: channel::Channels,
    /// Bytes of requests held in memory, relay-wide (`--max-memory`).
    budget: Arc<budget::Budget>,
}

impl Relay {
    /// The public URL of `channel`.
    /// With `--subdomains`, `<channel>.<host>` when the name can be a DNS label (lowercase,
    /// since hosts are case-insensitive); the path form otherwise, which always works.
    fn channel_url(&self, channel: &str) -> String {
        match (&self.subdomain_host, self.base_url.split_once("://")) {
            (Some(host), Some((scheme, _))) if is_dns_label(channel) => {
                format!("{scheme}://{channel}.{host}")
            }
            _ => format!("{}/{channel}", self.base_url),
        }
    }

    /// A fresh request id, never handed out before by this relay's queue (see `queue/ids.rs`).
    async fn next_id(&self) -> Result<RequestId, queue::QueueError> {
        self.queue.next_id().await
    }
}

/// Whether `name` is a lowercase DNS label: letters, digits and inner hyphens.
fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
