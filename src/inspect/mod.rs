//! What `hooks listen` shows: events from the session, rendered for people or as NDJSON, and
//! written by one printer task so the hot path never waits for the terminal.

mod body;
pub mod event;
pub mod history;
mod json;
pub mod palette;
mod pruned;
pub mod redact;
mod render;
pub mod sanitize;

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use relay_server::protocol::Header;
use tokio::sync::mpsc;

pub use body::BodyStyle;
pub use event::{recognize, Recognized};
pub use history::{Flags, History};
pub use palette::{ColorChoice, Palette};
pub use redact::Redactor;
pub use render::render_exchange;
pub use sanitize::{cut_line, sanitize, sanitize_lines};

/// Events waiting for the printer. When the terminal is this far behind, forwarding tasks wait
/// for it only after they have answered and acknowledged the relay, so webhooks are never
/// delayed by it.
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
    Request(Box<Exchange>),
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

/// The app's answer, as recorded.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers in order.
    pub headers: Vec<Header>,
    /// Response body.
    pub body: Bytes,
}

/// A signature verdict, as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The provider whose scheme was checked; `None` when none was named or recognised.
    pub provider: Option<String>,
    /// Whether the provider was recognised from the headers rather than given.
    pub assumed: bool,
    /// `valid`, `invalid`, `expired`, `unsigned`, or `unchecked` (signed, but no secret given).
    pub verdict: String,
    /// Why, for anything but `valid`; `None` for an unsigned webhook nobody expected signed.
    pub reason: Option<String>,
}

impl Signature {
    /// Whether it is worth a person's attention: anything but an unsigned webhook when no
    /// secret or provider said one was expected.
    pub fn noteworthy(&self) -> bool {
        self.verdict != "unsigned" || self.reason.is_some()
    }
}

/// One forwarded webhook and its outcome.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The number people use for it (`#N`): the capture id when recorded, else the relay's id.
    pub id: u64,
    /// The relay's request id.
    pub relay_id: u64,
    /// The epoch of the relay's queue, in which `relay_id` is unique (0: none known).
    pub relay_epoch: u64,
    /// The relay had sent it before, and hooks has no record of handling it: the app may have
    /// seen it already (hooks died before acknowledging it).
    pub redelivered: bool,
    /// When the relay received it, in Unix milliseconds.
    pub received_at_ms: u64,
    /// HTTP method.
    pub method: String,
    /// Path after the channel, with the query.
    pub path: String,
    /// Request headers in order.
    pub request_headers: Vec<Header>,
    /// Request body.
    pub request_body: Bytes,
    /// The app's answer, when it answered.
    pub answer: Option<Answer>,
    /// The app's status, or 502 when it could not be reached (what the sender got, unless
    /// `sender_timed_out`).
    pub status: u16,
    /// Why the app did not answer, when it did not.
    pub error: Option<String>,
    /// A hint for a known mistake, e.g. "is your app listening on 3000?".
    pub hint: Option<String>,
    /// Time from forwarding to having the app's full response.
    pub duration: Duration,
    /// The provider event recognised in it.
    pub event: Option<Recognized>,
    /// The signature verdict.
    pub signature: Option<Signature>,
    /// The relay's wait limit, when the app took longer: the sender got `504` instead.
    pub sender_timed_out: Option<Duration>,
}

/// Which parts of an exchange to print in full (httpie's `--print` letters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Print {
    /// `H`: request headers.
    pub request_headers: bool,
    /// `B`: request body.
    pub request_body: bool,
    /// `h`: response headers.
    pub response_headers: bool,
    /// `b`: response body.
    pub response_body: bool,
}

impl Print {
    /// Everything (`-v`).
    pub const ALL: Print = Print {
        request_headers: true,
        request_body: true,
        response_headers: true,
        response_body: true,
    };

    /// Whether anything beyond the summary line is printed.
    pub fn any(self) -> bool {
        self != Print::default()
    }
}

impl std::str::FromStr for Print {
    type Err = String;

    fn from_str(letters: &str) -> Result<Self, Self::Err> {
        let mut print = Print::default();
        for letter in letters.chars() {
            match letter {
                'H' => print.request_headers = true,
                'B' => print.request_body = true,
                'h' => print.response_headers = true,
                'b' => print.response_body = true,
                other => {
                    return Err(format!(
                        "unknown letter {other:?}; use H (request headers), B (request body), h (response headers), b (response body)"
                    ))
                }
            }
        }
        Ok(print)
    }
}

/// How to print, decided once at start.
#[derive(Debug, Clone)]
pub struct OutputOptions {
    /// NDJSON on stdout instead of human lines.
    pub json: bool,
    /// Colors and styles (empty when colors are off).
    pub palette: Palette,
    /// Terminal width in columns.
    pub width: usize,
    /// Details to print under each summary line.
    pub print: Print,
    /// Body display settings.
    pub body: BodyStyle,
}

impl OutputOptions {
    /// Plain text at width 80, no details: what tests and pipes get.
    pub fn plain() -> Self {
        OutputOptions {
            json: false,
            palette: Palette::default(),
            width: 80,
            print: Print::default(),
            body: BodyStyle::default(),
        }
    }
}

/// Most bytes of output gathered before they are written.
const PRINT_BATCH_BYTES: usize = 256 * 1024;

/// Reports an output error once; a closed stdout (`hooks listen | head`) is not worth one.
fn report(result: std::io::Result<()>, stderr: &std::io::Stderr) {
    if let Err(e) = result {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            let _ = writeln!(stderr.lock(), "hooks: error: could not write output: {e}");
        }
    }
}

/// Sends events to the printer task.
pub type Events = mpsc::Sender<Event>;

/// Starts the printer task; it ends when every [`Events`] sender is gone.
pub fn spawn_printer(options: OutputOptions) -> (Events, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Event>(EVENT_CAPACITY);
    let handle = tokio::task::spawn_blocking(move || {
        let stdout = std::io::stdout();
        let stderr = std::io::stderr();
        let mut history = History::default();
        let mut buffer = Vec::with_capacity(64 * 1024);
        while let Some(first) = rx.blocking_recv() {
            // Everything already waiting goes out in one write: under load that is one system
            // call for many lines instead of one per line.
            let mut next = Some(first);
            while let Some(event) = next.take() {
                let result = print(
                    &event,
                    &options,
                    &mut history,
                    &mut buffer,
                    &mut stderr.lock(),
                );
                report(result, &stderr);
                if buffer.len() < PRINT_BATCH_BYTES {
                    next = rx.try_recv().ok();
                }
            }
            let mut out = stdout.lock();
            report(out.write_all(&buffer).and_then(|()| out.flush()), &stderr);
            buffer.clear();
        }
    });
    (tx, handle)
}

/// Writes one event: data to `out`, status text to `err`.
pub fn print(
    event: &Event,
    options: &OutputOptions,
    history: &mut History,
    out: &mut impl Write,
    err: &mut impl Write,
) -> std::io::Result<()> {
    render::status(event, options, err)?;
    match event {
        Event::Request(exchange) => {
            let flags = history.check(exchange.id, exchange.event.as_ref(), exchange.duration);
            if options.json {
                json::request(exchange, &flags, out)?;
            } else {
                out.write_all(render_exchange(exchange, &flags, options).as_bytes())?;
            }
        }
        other if options.json => json::session(other, out)?,
        _ => {}
    }
    out.flush()
}
