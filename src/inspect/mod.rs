//! What `hooks listen` shows: events from the session, rendered for people or as NDJSON, and
//! written by one printer task ([`Printer`]) so the hot path never waits for the terminal.

pub(crate) mod body;
pub mod history;
mod json;
pub mod palette;
mod printer;
pub mod redact;
mod render;
pub mod sanitize;
pub mod ui;

use std::io::Write;

use crate::exchange::Exchange;

pub use body::BodyStyle;
pub use history::{Flags, History};
pub use palette::{ColorChoice, Palette};
pub use printer::{feed, spawn_printer, Feed, Printer};
pub use redact::Redactor;
pub use render::render_exchange;
pub use sanitize::{cut_line, sanitize, sanitize_lines, truncate};

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
    /// The terminal fell behind and this many requests were not shown (forwarding went on).
    Skipped {
        /// How many.
        count: u64,
        /// Whether the capture store has them.
        stored: bool,
    },
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
            let flags = history.check(
                exchange.number(),
                exchange.event.as_ref(),
                exchange.duration,
            );
            if options.json {
                json::request(exchange, &flags, out)?;
            } else {
                out.write_all(render_exchange(exchange, &flags, options).as_bytes())?;
            }
        }
        other if options.json => json::session(other, out)?,
        Event::Skipped { count, stored } => render::skipped(*count, *stored, out)?,
        _ => {}
    }
    out.flush()
}
