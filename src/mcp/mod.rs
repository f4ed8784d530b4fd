//! `hooks mcp`: a Model Context Protocol server on stdin and stdout, so a coding agent can read
//! the capture store (list, show, verify, diff) and, with `--allow-send`, replay captures and
//! send test events.
//!
//! Written here rather than with the official Rust SDK (`rmcp`): rmcp needs a newer Rust than
//! this workspace's, and its server brings schemars, macros and more for what is a few hundred
//! lines here. Layout: `jsonrpc` (messages and errors), `session` (the lifecycle of both
//! protocol eras and method dispatch), `stdio` (the transport loop), `tools` (the catalogue and
//! `tools/call`), `arguments` (checking a call's arguments), `captures` and `diff` (the
//! read-only tools), `replay` and `send` (the tools that send).

mod arguments;
mod captures;
mod diff;
mod jsonrpc;
mod replay;
mod send;
mod session;
mod stdio;
mod tools;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::cli::McpArgs;
use crate::store;

pub use session::{LEGACY, MODERN};
pub use stdio::{MAX_CALLS, MAX_MESSAGE};

/// Runs `hooks mcp` until its input ends or `shutdown` is cancelled.
pub async fn serve(args: McpArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let store = store::path()?;
    let sending = if args.allow_send {
        "replay_capture and send_event allowed"
    } else {
        "sending tools off (--allow-send turns them on)"
    };
    // The one line for a person who started it by hand; stdout belongs to the protocol.
    eprintln!(
        "hooks mcp: serving the captures in {} over MCP on stdin/stdout; {sending}",
        store.display()
    );
    let tools = tools::Tools::new(args.allow_send, args.secrets, store);
    let session = Arc::new(session::Session::new(tools));
    stdio::run(session, tokio::io::stdin(), tokio::io::stdout(), shutdown).await
}
