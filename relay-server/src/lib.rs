//! hooks-relay: holds public webhook URLs (channels), queues every webhook sent to them durably,
//! and streams each one to the `hooks` CLI session attached to its channel.
//!
//! [`run`] serves on a bound listener until a shutdown future completes, so tests start it on
//! `127.0.0.1:0` and the CLI embeds it when no relay is configured.

#![forbid(unsafe_code)]

mod accept;
mod channel;
pub mod config;
pub mod protocol;
pub mod queue;
mod route;
mod session;

use std::sync::atomic::{AtomicU64, Ordering};

pub use accept::run;
pub use config::Config;
pub use session::ws_config;

use crate::protocol::RequestId;

/// State shared by every connection of one running relay.
pub(crate) struct Relay {
    config: Config,
    /// Base of the public URLs, without a trailing slash: `--public-url` or `http://<listen addr>`.
    base_url: String,
    queue: queue::Queue,
    channels: channel::Channels,
    /// The next request id; starts above every id the queue has ever held.
    next_request: AtomicU64,
}

impl Relay {
    /// The public URL of `channel`.
    fn channel_url(&self, channel: &str) -> String {
        format!("{}/{channel}", self.base_url)
    }

    /// A fresh request id, never used before by this relay's queue.
    fn next_id(&self) -> RequestId {
        RequestId(self.next_request.fetch_add(1, Ordering::Relaxed))
    }
}
