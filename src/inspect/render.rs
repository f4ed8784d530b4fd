//! Human output: one line per webhook on stdout, status messages on stderr.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::{Event, Exchange};

/// Writes the data part of `event` (request lines) for people.
pub(super) fn data(event: &Event, out: &mut impl Write) -> io::Result<()> {
    match event {
        Event::Request(exchange) => writeln!(out, "{}", request_line(exchange)),
        _ => Ok(()),
    }
}

/// Writes the status part of `event` (connected, disconnected, hints) to stderr.
pub(super) fn status(event: &Event, err: &mut impl Write) -> io::Result<()> {
    match event {
        Event::Ready {
            url,
            forward_to,
            embedded,
            ..
        } => {
            writeln!(err, "Ready: forwarding {url} → {forward_to}")?;
            if *embedded {
                writeln!(
                    err,
                    "(no relay configured: using one inside this process, reachable from this machine only; set --relay for a public URL)"
                )?;
            }
            Ok(())
        }
        Event::Disconnected { reason } => {
            writeln!(err, "Disconnected from the relay ({reason}); reconnecting…")
        }
        Event::Reconnected { url } => writeln!(err, "Reconnected: forwarding {url} again"),
        Event::Request(Exchange {
            error: Some(error),
            hint,
            ..
        }) => match hint {
            Some(hint) => writeln!(err, "hooks: error: {error} ({hint})"),
            None => writeln!(err, "hooks: error: {error}"),
        },
        Event::Request(_) => Ok(()),
    }
}

fn request_line(e: &Exchange) -> String {
    let mut line = format!(
        "{} {} → {} {} ms",
        sanitize(&e.method),
        sanitize(&display_path(&e.path)),
        e.status,
        format_ms(e.duration),
    );
    if let Some(error) = &e.error {
        let _ = write!(line, " ({})", sanitize(error));
    }
    line
}

/// The path as a person reads it: `/` for the channel's root.
pub(super) fn display_path(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

fn format_ms(d: std::time::Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

/// Replaces control characters (C0, DEL, C1) with visible escapes, so an untrusted payload can
/// never move the cursor, clear the screen or ring the bell.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(sanitize("a\x1b[2Jb\x07\u{9b}"), "a\\u{1b}[2Jb\\u{7}\\u{9b}");
    }

    #[test]
    fn request_line_names_method_path_status_and_time() {
        let line = request_line(&Exchange {
            id: 1,
            method: "POST".into(),
            path: "?x=1".into(),
            status: 418,
            error: None,
            hint: None,
            duration: Duration::from_micros(2500),
        });
        assert_eq!(line, "POST /?x=1 → 418 2.5 ms");
    }
}
