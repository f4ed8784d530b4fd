//! NDJSON output: one object per event on stdout, never colored.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::{json, Value};

use super::history::Flags;
use super::sanitize::write_json;
use super::Event;
use crate::exchange::{display_path, millis, rfc3339, Exchange};

/// Writes a session event (ready, disconnected, reconnected, skipped) as one JSON line.
pub(super) fn session(event: &Event, out: &mut impl Write) -> io::Result<()> {
    let value = match event {
        Event::Ready {
            url,
            channel,
            forward_to,
            embedded,
        } => json!({
            "type": "ready",
            "url": url,
            "channel": channel,
            "forward_to": forward_to,
            "embedded_relay": embedded,
        }),
        Event::Disconnected { reason } => json!({"type": "disconnected", "reason": reason}),
        Event::Reconnected { url } => json!({"type": "reconnected", "url": url}),
        Event::Skipped { count, .. } => json!({"type": "skipped", "count": count}),
        Event::Request(_) => return Ok(()),
    };
    line(&value, out)
}

/// A request line's fields, in their order. Serialized straight from the exchange: building a
/// `Value` first allocated a key and a map entry per field, and the printer thread spent most of
/// its time in `malloc` (`perf`, 32 clients).
#[derive(Serialize)]
struct RequestLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: u64,
    relay_id: u64,
    received_at: String,
    method: &'a str,
    path: String,
    status: u16,
    duration_ms: f64,
    provider: Option<&'static str>,
    event_type: Option<&'a str>,
    event_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<SignatureField<'a>>,
    /// Only when true: the relay had sent it before and hooks has no record of it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    redelivered: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicate_of: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    out_of_order_after: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    slower_than_provider_timeout_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sender_status: Option<u16>,
    /// The route that took it (routing, `hooks.toml`).
    #[serde(skip_serializing_if = "Option::is_none")]
    route: Option<&'a str>,
    /// Only when true: a copy route's copy; the sender got another answer.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    copy: bool,
    /// A hint for a known mistake, or why hooks answered itself (no route matched).
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'a str>,
}

#[derive(Serialize)]
struct SignatureField<'a> {
    provider: Option<&'static str>,
    assumed: bool,
    verdict: &'static str,
    reason: Option<&'a str>,
}

/// Writes a request line.
pub(super) fn request(e: &Exchange, flags: &Flags, out: &mut impl Write) -> io::Result<()> {
    let event = e.event.as_ref();
    let line = RequestLine {
        kind: "request",
        id: e.number(),
        relay_id: e.relay_id.unwrap_or(0),
        received_at: rfc3339(e.received_at_ms),
        method: &e.request.method,
        path: display_path(&e.request.path),
        status: e.status(),
        duration_ms: millis(e.duration),
        provider: event.map(|ev| ev.provider.name()),
        event_type: event.and_then(|ev| ev.event_type.as_deref()),
        event_id: event.and_then(|ev| ev.event_id.as_deref()),
        signature: e.signature.as_ref().map(|s| SignatureField {
            provider: s.provider.map(|p| p.name()),
            assumed: s.assumed,
            verdict: s.verdict.as_str(),
            reason: s.reason.as_deref(),
        }),
        redelivered: e.redelivered,
        duplicate_of: flags.duplicate_of,
        out_of_order_after: flags.out_of_order_after,
        slower_than_provider_timeout_s: flags.slower_than.map(|limit| limit.as_secs()),
        error: e.outcome.error(),
        sender_status: e.sender_timed_out.map(|_| 504),
        route: e.route.as_deref(),
        copy: e.copy,
        hint: e.hint.as_deref(),
    };
    write_json(&mut *out, &line)?;
    out.write_all(b"\n")
}

fn line(value: &Value, out: &mut impl Write) -> io::Result<()> {
    write_json(&mut *out, value)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::exchange::{
        CaptureId, Outcome, Provider, Recognized, Request, Response, Signature, Verdict,
    };

    fn exchange() -> Exchange {
        let request = Request {
            method: "POST".into(),
            path: "/hooks/stripe?live=1".into(),
            headers: Vec::new(),
            body: Bytes::new(),
        };
        let answer = Outcome::Answered(Response {
            status: 200,
            headers: Vec::new(),
            body: Bytes::new(),
        });
        let duration = Duration::from_micros(12_345);
        let mut e = Exchange::new(1_764_182_862_345, String::new(), request, answer, duration);
        e.id = Some(CaptureId(7));
        e.relay_id = Some(41);
        e
    }

    fn line(e: &Exchange, flags: &Flags) -> String {
        let mut out = Vec::new();
        request(e, flags, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The request line's fields and their order are a public interface (DESIGN.md): pinned
    /// here byte for byte, with every optional field absent, then present.
    #[test]
    fn request_lines_keep_their_fields_and_order() {
        assert_eq!(
            line(&exchange(), &Flags::default()),
            concat!(
                r#"{"type":"request","id":7,"relay_id":41,"received_at":"2025-11-26T18:47:42.345Z","#,
                r#""method":"POST","path":"/hooks/stripe?live=1","status":200,"duration_ms":12.345,"#,
                r#""provider":null,"event_type":null,"event_id":null}"#,
                "\n"
            )
        );
        let mut e = exchange();
        e.outcome = Outcome::Failed("connection refused".into());
        e.event = Some(Recognized {
            provider: Provider::Stripe,
            event_type: Some("invoice.paid".into()),
            event_id: Some("evt_\"1\"".into()),
            occurred_at: None,
            object_id: None,
        });
        e.signature = Some(Signature {
            provider: Some(Provider::Stripe),
            assumed: true,
            verdict: Verdict::Invalid,
            reason: None,
        });
        e.sender_timed_out = Some(Duration::from_secs(30));
        e.redelivered = true;
        e.route = Some("billing".into());
        e.copy = true;
        e.hint = Some("is your app listening on 4000?".into());
        let flags = Flags {
            duplicate_of: Some(3),
            out_of_order_after: Some(5),
            slower_than: Some(Duration::from_secs(20)),
        };
        assert_eq!(
            line(&e, &flags),
            concat!(
                r#"{"type":"request","id":7,"relay_id":41,"received_at":"2025-11-26T18:47:42.345Z","#,
                r#""method":"POST","path":"/hooks/stripe?live=1","status":502,"duration_ms":12.345,"#,
                r#""provider":"stripe","event_type":"invoice.paid","event_id":"evt_\"1\"","#,
                r#""signature":{"provider":"stripe","assumed":true,"verdict":"invalid","reason":null},"#,
                r#""redelivered":true,"duplicate_of":3,"out_of_order_after":5,"slower_than_provider_timeout_s":20,"#,
                r#""error":"connection refused","sender_status":504,"route":"billing","copy":true,"#,
                r#""hint":"is your app listening on 4000?"}"#,
                "\n"
            )
        );
    }

    /// The line that says how many requests the terminal fell too far behind to show.
    #[test]
    fn skipped_lines_say_how_many() {
        let mut out = Vec::new();
        let skipped = Event::Skipped {
            count: 37,
            stored: true,
        };
        session(&skipped, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"type\":\"skipped\",\"count\":37}\n"
        );
    }
}
