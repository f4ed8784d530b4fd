//! What `hooks listen` shows: events from the session, rendered for people or as NDJSON, and
//! written by one printer task so the hot path never waits for the terminal.

mod json;
mod render;

use std::io::Write;
use std::time::Duration;

use tokio::sync::mpsc;

pub use render::sanitize;

/// Events waiting for the printer. When the terminal is this far behind, forwarding tasks wait
/// for it only after they have answered the relay, so webhooks are never delayed by it.
const EVENT_CAPACITY: usize = 1024;

/// Something to show.
#[derive(Debug, Clone)]
pub enum Event {
    /// The session is attached and webhooks sent to `url` will be forwarded.
    Ready {
        /// Public URL of the channel.
        url: String,
        /// The channel name.
        channel: String,
        /// Where requests are forwarded.
        forward_to: String,
        /// Whether the relay runs inside this process (reachable from this machine only).
        embedded: bool,
    },
    /// One webhook was forwarded (or could not be).
    Request(Exchange),
    /// The session to the relay was lost; hooks is reconnecting.
    Disconnected {
        /// Why, in a few words.
        reason: String,
    },
    /// The session is back, on the same channel and URL.
    Reconnected {
        /// Public URL of the channel.
        url: String,
    },
}

/// One forwarded webhook and its outcome.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The relay's request id.
    pub id: u64,
    /// HTTP method.
    pub method: String,
    /// Path after the channel, with the query.
    pub path: String,
    /// The status the sender got.
    pub status: u16,
    /// Why the app did not answer, when it did not.
    pub error: Option<String>,
    /// A hint for a known mistake, e.g. "is your app listening on 3000?".
    pub hint: Option<String>,
    /// Time from receiving the request to having the app's full response.
    pub duration: Duration,
}

/// How to print events.
#[derive(Debug, Clone, Copy)]
pub struct OutputOptions {
    /// NDJSON on stdout instead of human lines.
    pub json: bool,
}

/// Sends events to the printer task.
pub type Events = mpsc::Sender<Event>;

/// Starts the printer task; it ends when every [`Events`] sender is gone.
pub fn spawn_printer(options: OutputOptions) -> (Events, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Event>(EVENT_CAPACITY);
    let handle = tokio::task::spawn_blocking(move || {
        let stdout = std::io::stdout();
        let stderr = std::io::stderr();
        while let Some(event) = rx.blocking_recv() {
            let result = print(&event, options, &mut stdout.lock(), &mut stderr.lock());
            if let Err(e) = result {
                // A closed stdout (hooks listen | head) is not worth a panic or a message.
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    let _ = writeln!(stderr.lock(), "hooks: error: could not write output: {e}");
                }
            }
        }
    });
    (tx, handle)
}

/// Writes one event: data to `out`, status text to `err`.
pub fn print(
    event: &Event,
    options: OutputOptions,
    out: &mut impl Write,
    err: &mut impl Write,
) -> std::io::Result<()> {
    render::status(event, err)?;
    if options.json {
        json::write(event, out)?;
    } else {
        render::data(event, out)?;
    }
    out.flush()
}
