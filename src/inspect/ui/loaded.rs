//! A capture read whole, made ready for the detail view (off the UI thread): the overview's
//! lines, the request and status lines and headers in wire order (repeats kept), sanitized and
//! masked once, and both bodies indexed.

use crate::exchange::{display_path, header, rfc3339, Exchange, Header, Outcome, Verdict};
use crate::inspect::history::Flags;
use crate::inspect::sanitize::{group, sanitize, truncate};
use crate::inspect::Redactor;

use super::document::Body;
use super::state::{HeadKind, HeadLine, Loaded};

/// Longest head line kept, in characters (a header value can be 64 KiB).
const MAX_HEAD_CHARS: usize = 2048;

/// Width of the overview's labels.
pub const LABEL_WIDTH: usize = 11;

fn line(kind: HeadKind, text: impl Into<String>) -> HeadLine {
    HeadLine {
        kind,
        text: truncate(&text.into(), MAX_HEAD_CHARS),
    }
}

fn field(label: &str, value: impl AsRef<str>) -> HeadLine {
    line(
        HeadKind::Field,
        format!("{label:LABEL_WIDTH$}  {}", value.as_ref()),
    )
}

/// `exchange`, ready to show; `redactor` masks secrets and shortens credentials.
pub fn load(exchange: Exchange, redactor: &Redactor) -> Loaded {
    let request = &exchange.request;
    let request_body = Body::new(
        request.body.clone(),
        header(&request.headers, "content-type"),
    );
    let mut request_head = vec![line(
        HeadKind::Start,
        format!(
            "{} {} HTTP/1.1",
            sanitize(&request.method),
            sanitize(&display_path(&request.path))
        ),
    )];
    headers(&mut request_head, &request.headers, redactor);
    body_note(&mut request_head, &request_body);
    let (response_head, response_body) = match &exchange.outcome {
        Outcome::Answered(response) => {
            let body = Body::new(
                response.body.clone(),
                header(&response.headers, "content-type"),
            );
            let mut head = vec![line(
                HeadKind::Start,
                format!("HTTP/1.1 {} {}", response.status, reason(response.status)),
            )];
            headers(&mut head, &response.headers, redactor);
            body_note(&mut head, &body);
            (head, body)
        }
        Outcome::Failed(error) => {
            let text = format!("no answer: {}", sanitize(error));
            (vec![line(HeadKind::Warning, text)], Body::default())
        }
    };
    Loaded {
        overview: overview(&exchange),
        request_head,
        request: request_body,
        response_head,
        response: response_body,
        exchange,
    }
}

fn headers(out: &mut Vec<HeadLine>, list: &[Header], redactor: &Redactor) {
    for h in list {
        let value = String::from_utf8_lossy(&h.value);
        let value = redactor.header(&h.name, &value);
        let text = format!("{}: {}", sanitize(&h.name), sanitize(&value));
        out.push(line(HeadKind::Header, text));
    }
}

fn body_note(out: &mut Vec<HeadLine>, body: &Body) {
    if body.bytes.is_empty() {
        out.push(line(HeadKind::Text, ""));
        out.push(line(HeadKind::Text, "(no body)"));
        return;
    }
    let kind = if body.content_type.is_empty() {
        "no content type".to_owned()
    } else {
        sanitize(&body.content_type)
    };
    out.push(line(HeadKind::Text, ""));
    out.push(line(
        HeadKind::Text,
        format!("body: {} bytes, {kind}", group(body.bytes.len())),
    ));
}

fn overview(e: &Exchange) -> Vec<HeadLine> {
    let mut lines = Vec::new();
    let mut id = format!("#{}", e.number());
    if let Some(of) = e.replay_of {
        id.push_str(&format!(" (replay of #{of})"));
    }
    if e.sent {
        id.push_str(" (made by hooks send)");
    }
    lines.push(field("capture", id));
    lines.push(field("received", rfc3339(e.received_at_ms)));
    let request = format!(
        "{} {}",
        sanitize(&e.request.method),
        sanitize(&display_path(&e.request.path))
    );
    lines.push(field("request", request));
    lines.push(field("forwarded", sanitize(&e.target)));
    if let Some(route) = &e.route {
        let copy = if e.copy {
            " (a copy: its answer was recorded, not returned)"
        } else {
            ""
        };
        lines.push(field("route", format!("{}{copy}", sanitize(route))));
    }
    match &e.outcome {
        Outcome::Answered(response) => {
            let status = format!("{} {}", response.status, reason(response.status));
            lines.push(field("status", status.trim_end()));
        }
        Outcome::Failed(error) => {
            lines.push(line(
                HeadKind::Warning,
                format!("{:LABEL_WIDTH$}  {}", "no answer", sanitize(error)),
            ));
        }
    }
    lines.push(field("duration", duration(e.duration)));
    lines.push(field("size", sizes(e)));
    if let Some(event) = &e.event {
        let mut text = event.provider.name().to_owned();
        for part in [&event.event_type, &event.event_id].into_iter().flatten() {
            text.push(' ');
            text.push_str(&sanitize(part));
        }
        lines.push(field("event", text));
    }
    if let Some(signature) = &e.signature {
        let provider = signature.provider.map_or("", |p| p.name());
        let verdict = format!("{} {provider}", signature.verdict.as_str());
        let kind = match signature.verdict {
            Verdict::Invalid | Verdict::Expired => HeadKind::Warning,
            _ => HeadKind::Field,
        };
        let text = format!("{:LABEL_WIDTH$}  {}", "signature", verdict.trim_end());
        lines.push(line(kind, text));
        if let Some(reason) = &signature.reason {
            lines.push(field("", sanitize(reason)));
        }
    }
    if let Some(channel) = &e.channel {
        lines.push(field("channel", sanitize(channel)));
    }
    if e.redelivered {
        lines.push(line(HeadKind::Warning, crate::inspect::render::REDELIVERED));
    }
    lines
}

/// The notes that need a person's attention, from the list's flags.
pub fn notes(flags: &Flags) -> Vec<HeadLine> {
    let mut notes = Vec::new();
    if let Some(first) = flags.duplicate_of {
        let text = format!(
            "duplicate of #{first}: the same event was delivered before; your handler must be idempotent"
        );
        notes.push(line(HeadKind::Warning, text));
    }
    if let Some(later) = flags.out_of_order_after {
        let text = format!(
            "out of order: #{later} carried a newer event for the same object; don't let this one overwrite it"
        );
        notes.push(line(HeadKind::Warning, text));
    }
    if let Some(limit) = flags.slower_than {
        let text = format!(
            "slow: the provider gives up after {} s and retries",
            limit.as_secs()
        );
        notes.push(line(HeadKind::Warning, text));
    }
    notes
}

fn sizes(e: &Exchange) -> String {
    let request = format!("request {} bytes", group(e.request.body.len()));
    match e.outcome.response() {
        Some(response) => format!("{request}, response {} bytes", group(response.body.len())),
        None => request,
    }
}

/// A duration as the list shows it: `2.5 ms`, `250 ms`, `12.3 s` (as the printed lines do).
pub fn duration(d: std::time::Duration) -> String {
    crate::inspect::render::format_duration(d)
}

/// The reason phrase of `status` (empty when it has none).
pub fn reason(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}
