//! The state every connection of one running relay shares: its settings, its backend (queue
//! and channels), its tokens, TLS, metrics and limits. [`crate::accept`] makes it; routes, webhooks
//! and sessions read it.

use std::sync::Arc;

use crate::backend::Backends;
use crate::config::Config;
use crate::{budget, metrics, refusals, tls, tokens};

/// State shared by every connection of one running relay.
pub(crate) struct Relay {
    pub(crate) config: Config,
    /// Base of the public URLs, without a trailing slash: `--public-url` or `http://<listen addr>`.
    pub(crate) base_url: String,
    /// Host of the public URL, for `<channel>.<host>` URLs with `--subdomains`.
    pub(crate) subdomain_host: Option<String>,
    pub(crate) tokens: tokens::Tokens,
    pub(crate) tls: Option<tls::Tls>,
    pub(crate) metrics: metrics::Metrics,
    /// One permit per session the relay may still accept (`--max-sessions`).
    pub(crate) sessions: Arc<tokio::sync::Semaphore>,
    /// Refused sessions, logged at a bounded rate per peer.
    pub(crate) refusals: refusals::RefusalLog,
    /// One permit per session that may still be reading its hello
    /// ([`crate::session::MAX_OPENING`]).
    pub(crate) opening: tokio::sync::Semaphore,
    /// Where webhooks wait for their session, and what knows the channels.
    pub(crate) backend: Backends,
    /// The settings of a channel whose CLI chose none.
    pub(crate) defaults: crate::channel::Settings,
    /// Bytes of requests held in memory, relay-wide (`--max-memory`).
    pub(crate) budget: Arc<budget::Budget>,
}

impl Relay {
    /// The public URL of `channel`.
    /// With `--subdomains`, `<channel>.<host>` when the name can be a DNS label (lowercase,
    /// since hosts are case-insensitive); the path form otherwise, which always works.
    pub(crate) fn channel_url(&self, channel: &str) -> String {
        match (&self.subdomain_host, self.base_url.split_once("://")) {
            (Some(host), Some((scheme, _))) if is_dns_label(channel) => {
                format!("{scheme}://{channel}.{host}")
            }
            _ => format!("{}/{channel}", self.base_url),
        }
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
