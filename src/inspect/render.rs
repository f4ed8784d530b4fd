//! Human output: a summary line per webhook (and the details `--print` asks for) on stdout,
//! session messages on stderr.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::body;
use super::history::Flags;
use super::sanitize::{cut_line, sanitize, truncate};
use super::{Event, OutputOptions};
use crate::exchange::{display_path, header, Exchange, Header, Verdict};

/// Writes the session part of `event` (connected, disconnected) to stderr; in `--json` mode also
/// the errors that human mode shows under the request line.
pub(super) fn status(
    event: &Event,
    options: &OutputOptions,
    err: &mut impl Write,
) -> io::Result<()> {
    match event {
        Event::Ready {
            url,
            forward_to,
            embedded,
            ..
        } => {
            // The URL is the relay's word, and a hostile relay's can hold escape sequences.
            let line = format!(
                "Ready: forwarding {} → {}",
                sanitize(url),
                sanitize(forward_to)
            );
            writeln!(err, "{}", cut_line(&line))?;
            if *embedded {
                writeln!(
                    err,
                    "(no relay configured: using one inside this process, reachable from this machine only; set --relay for a public URL)"
                )?;
            }
            Ok(())
        }
        Event::Disconnected { reason } => {
            let line = format!(
                "Disconnected from the relay ({}); reconnecting…",
                sanitize(reason)
            );
            writeln!(err, "{}", cut_line(&line))
        }
        Event::Reconnected { url } => {
            let line = format!("Reconnected: forwarding {} again", sanitize(url));
            writeln!(err, "{}", cut_line(&line))
        }
        Event::Request(exchange) if options.json => {
            let line = match (exchange.outcome.error(), &exchange.hint) {
                (Some(error), Some(hint)) => format!("hooks: error: {error} ({hint})"),
                (Some(error), None) => format!("hooks: error: {error}"),
                _ => return Ok(()),
            };
            writeln!(err, "{}", cut_line(&sanitize(&line)))
        }
        Event::Request(_) | Event::Skipped { .. } => Ok(()),
    }
}

/// The note on requests the terminal fell too far behind to be shown.
pub(super) fn skipped(count: u64, stored: bool, out: &mut impl Write) -> io::Result<()> {
    let requests = if count == 1 { "request" } else { "requests" };
    let listed = if stored { "; hooks list has them" } else { "" };
    writeln!(
        out,
        "… {count} {requests} not shown (the terminal fell behind){listed}"
    )
}

/// The summary line of an exchange, its flags, and the details `options.print` asks for.
pub fn render_exchange(e: &Exchange, flags: &Flags, options: &OutputOptions) -> String {
    let mut out = summary(e, options);
    out.push('\n');
    for note in notes(e, flags) {
        let note = options.palette.warning.paint(&format!("↳ {note}"));
        let _ = writeln!(out, "  {}", cut_line(&note));
    }
    if options.print.any() {
        let mut lines = String::new();
        details(&mut lines, e, options);
        // One long line (a body without line breaks) is cut, not the terminal flooded.
        for line in lines.lines() {
            out.push_str(&cut_line(line));
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

fn summary(e: &Exchange, options: &OutputOptions) -> String {
    let p = &options.palette;
    let time = local_time(e.received_at_ms);
    let method = sanitize(&e.request.method);
    let mut event = String::new();
    if let Some(recognized) = &e.event {
        event.push_str(recognized.provider.name());
        if let Some(kind) = &recognized.event_type {
            let _ = write!(event, " {}", sanitize(kind));
        }
        if let Some(id) = &recognized.event_id {
            let _ = write!(event, " {}", sanitize(id));
        }
    }
    let signature = e
        .signature
        .as_ref()
        .filter(|s| s.noteworthy())
        .map(|s| match s.verdict {
            Verdict::Valid => "✓ signed".to_owned(),
            Verdict::Unsigned => "unsigned".to_owned(),
            Verdict::Unchecked => "signature not checked".to_owned(),
            other => format!("✗ signature {other}"),
        });
    let status = format!("{} {}", e.status(), reason_phrase(e.status()));
    let route = route_label(e);
    let tail = format!(
        "→ {} {}  #{}{route}",
        status.trim_end(),
        format_duration(e.duration),
        e.number()
    );
    // Everything but the path is short; the path gets what is left of the width.
    let fixed = time.len()
        + method.len()
        + tail.chars().count()
        + signature.as_ref().map_or(0, |s| s.chars().count() + 2)
        + 4;
    let room = options.width.saturating_sub(fixed);
    let path = sanitize(&display_path(&e.request.path));
    let (path_room, event_room) = share(room, path.chars().count(), event.chars().count());
    let path = truncate(&path, path_room);
    let event = truncate(&event, event_room);
    let mut line = format!(
        "{} {} {}",
        p.dim.paint(&time),
        p.method.paint(&method),
        p.path.paint(&path)
    );
    if !event.is_empty() {
        let _ = write!(line, "  {}", p.event.paint(&event));
    }
    if let Some(signature) = signature {
        let style = if signature.starts_with('✓') {
            p.ok
        } else if signature.starts_with('✗') {
            p.server_error
        } else {
            p.dim
        };
        let _ = write!(line, "  {}", style.paint(&signature));
    }
    let tail = format!(
        "→ {} {}  {}",
        p.status(e.status()).paint(status.trim_end()),
        format_duration(e.duration),
        p.dim.paint(&format!("#{}{route}", e.number()))
    );
    let _ = write!(line, "  {tail}");
    line
}

/// The route after the capture number: ` billing`, ` ci-mirror (copy)`; empty without one.
fn route_label(e: &Exchange) -> String {
    match (&e.route, e.copy) {
        (Some(route), false) => format!(" {}", sanitize(route)),
        (Some(route), true) => format!(" {} (copy)", sanitize(route)),
        (None, _) => String::new(),
    }
}

/// The note on a request the relay sent before that hooks has no record of handling (it died
/// before recording it): delivery is at least once, and this is the "more than once" case.
pub const REDELIVERED: &str = "redelivered after a restart: your app may have seen it";

/// The lines under the summary that need a person's attention.
fn notes(e: &Exchange, flags: &Flags) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(error) = e.outcome.error() {
        notes.push(match &e.hint {
            Some(hint) => format!("{} ({hint})", sanitize(error)),
            None => sanitize(error),
        });
    } else if let Some(hint) = &e.hint {
        // hooks answered itself: no route matched.
        notes.push(sanitize(hint));
    }
    if let Some(limit) = e.sender_timed_out {
        notes.push(format!(
            "the sender got 504 after {} s (--timeout); your app answered later",
            limit.as_secs_f64()
        ));
    }
    if let Some(signature) = &e.signature {
        if let Some(reason) = &signature.reason {
            let assumed = if signature.assumed {
                " (assumed from headers)"
            } else {
                ""
            };
            let provider = signature.provider.map_or("signature", |p| p.name());
            notes.push(format!("{provider}{assumed}: {}", sanitize(reason)));
        }
    }
    if e.redelivered {
        notes.push(REDELIVERED.to_owned());
    }
    if let Some(first) = flags.duplicate_of {
        notes.push(format!(
            "duplicate of #{first}: the same event was delivered before; your handler must be idempotent"
        ));
    }
    if let Some(later) = flags.out_of_order_after {
        notes.push(format!(
            "out of order: #{later} carried a newer event for the same object; don't let this one overwrite it"
        ));
    }
    if let (Some(limit), Some(event)) = (flags.slower_than, &e.event) {
        notes.push(format!(
            "slow: your app took {}; {} gives up after {} s and retries",
            format_duration(e.duration),
            event.provider.name(),
            limit.as_secs()
        ));
    }
    notes
}

fn details(out: &mut String, e: &Exchange, options: &OutputOptions) {
    let print = options.print;
    let style = &options.body;
    if print.request_headers {
        let _ = writeln!(
            out,
            "  > {} {} HTTP/1.1",
            sanitize(&e.request.method),
            sanitize(&display_path(&e.request.path))
        );
        headers(out, "  > ", &e.request.headers, options);
    }
    if print.request_body {
        let request = &e.request;
        for line in body::lines(
            &request.body,
            header(&request.headers, "content-type"),
            style,
        ) {
            let _ = writeln!(out, "  {line}");
        }
    }
    let Some(answer) = e.outcome.response() else {
        return;
    };
    if print.response_headers {
        let status = format!("{} {}", answer.status, reason_phrase(answer.status));
        let _ = writeln!(
            out,
            "  < {}",
            options
                .palette
                .status(answer.status)
                .paint(status.trim_end())
        );
        headers(out, "  < ", &answer.headers, options);
    }
    if print.response_body {
        for line in body::lines(&answer.body, header(&answer.headers, "content-type"), style) {
            let _ = writeln!(out, "  {line}");
        }
    }
}

fn headers(out: &mut String, prefix: &str, list: &[Header], options: &OutputOptions) {
    for h in list {
        let value = String::from_utf8_lossy(&h.value);
        let value = options.body.redactor.header(&h.name, &value);
        let _ = writeln!(
            out,
            "{prefix}{}: {}",
            options.palette.header_name.paint(&sanitize(&h.name)),
            sanitize(&value)
        );
    }
}

/// Splits `room` columns between the path and the event: the path keeps at least 24 (it is
/// worth more than a tidy width), the event takes what is left, and is dropped below 8.
fn share(room: usize, path: usize, event: usize) -> (usize, usize) {
    let separator = if event > 0 { 2 } else { 0 };
    if path + separator + event <= room {
        return (path, event);
    }
    let path_room = path.min(room.saturating_sub(event + separator).max(24));
    let event_room = room.saturating_sub(path_room + separator);
    (path_room, if event_room >= 8 { event_room } else { 0 })
}

/// A duration as lines show it: `2.5 ms`, `250 ms`, `12.3 s`.
pub(crate) fn format_duration(d: std::time::Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 10_000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

fn reason_phrase(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// `HH:MM:SS` in the local time zone.
fn local_time(unix_ms: i64) -> String {
    let Ok(at) = jiff::Timestamp::from_millisecond(unix_ms) else {
        return "--:--:--".to_owned();
    };
    at.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%H:%M:%S")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_keeps_its_room_and_the_event_gives_way() {
        assert_eq!(share(60, 10, 20), (10, 20));
        assert_eq!(share(40, 10, 40), (10, 28));
        assert_eq!(share(30, 40, 20), (24, 0));
        assert_eq!(share(40, 40, 20), (24, 14));
    }

    #[test]
    fn long_paths_are_truncated() {
        assert_eq!(truncate("/abcdef", 4), "/ab…");
        assert_eq!(truncate("/ab", 4), "/ab");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(
            format_duration(std::time::Duration::from_micros(2500)),
            "2.5 ms"
        );
        assert_eq!(
            format_duration(std::time::Duration::from_millis(250)),
            "250 ms"
        );
        assert_eq!(
            format_duration(std::time::Duration::from_millis(12_300)),
            "12.3 s"
        );
    }
}
