//! NDJSON output: one object per event on stdout, never colored.

use std::io::{self, Write};

use serde_json::{json, Value};

use super::history::Flags;
use super::render::display_path;
use super::{Event, Exchange};

/// Writes a session event (ready, disconnected, reconnected) as one JSON line.
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
        Event::Request(_) => return Ok(()),
    };
    line(&value, out)
}

/// Writes a request line.
pub(super) fn request(e: &Exchange, flags: &Flags, out: &mut impl Write) -> io::Result<()> {
    let mut value = json!({
        "type": "request",
        "id": e.id,
        "relay_id": e.relay_id,
        "received_at": crate::store::rfc3339(i64::try_from(e.received_at_ms).unwrap_or(i64::MAX)),
        "method": e.method,
        "path": display_path(&e.path),
        "status": e.status,
        "duration_ms": (e.duration.as_secs_f64() * 1e6).round() / 1e3,
        "provider": e.event.as_ref().map(|ev| ev.provider),
        "event_type": e.event.as_ref().and_then(|ev| ev.event_type.clone()),
        "event_id": e.event.as_ref().and_then(|ev| ev.event_id.clone()),
    });
    if let Some(signature) = &e.signature {
        value["signature"] = json!({
            "provider": signature.provider,
            "assumed": signature.assumed,
            "verdict": signature.verdict,
            "reason": signature.reason,
        });
    }
    if let Some(first) = flags.duplicate_of {
        value["duplicate_of"] = json!(first);
    }
    if let Some(later) = flags.out_of_order_after {
        value["out_of_order_after"] = json!(later);
    }
    if let Some(limit) = flags.slower_than {
        value["slower_than_provider_timeout_s"] = json!(limit.as_secs());
    }
    if let Some(error) = &e.error {
        value["error"] = json!(error);
    }
    if e.sender_timed_out.is_some() {
        value["sender_status"] = json!(504);
    }
    line(&value, out)
}

fn line(value: &Value, out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}
