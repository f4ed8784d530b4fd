//! hooks-relay: holds public webhook URLs (channels), queues every webhook sent to them durably,
//! and streams each one to the `hooks` CLI session attached to its channel.
//!
//! [`run`] serves on a bound listener until a shutdown future completes, so tests start it on
//! `127.0.0.1:0` and the CLI embeds it when no relay is configured.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod accept;
mod answer;
mod backend;
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
mod relay;
mod route;
mod session;
#[doc(hidden)]
pub mod testing;
mod tls;
mod tokens;
mod webhook;

pub use accept::{run, run_with_reload};
pub use config::Config;
pub use protocol::session::ws_config;
pub use session::OUTBOX_BYTES;
pub use tokens::is_token_refusal;
