//! NDJSON output: one object per event on stdout, never colored.

use std::io::{self, Write};

use serde_json::json;

use super::render::display_path;
use super::Event;

/// Writes `event` as one JSON line.
pub(super) fn write(event: &Event, out: &mut impl Write) -> io::Result<()> {
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
        Event::Request(e) => {
            let mut value = json!({
                "type": "request",
                "id": e.id,
                "method": e.method,
                "path": display_path(&e.path),
                "status": e.status,
                "duration_ms": (e.duration.as_secs_f64() * 1e6).round() / 1e3,
            });
            if let Some(error) = &e.error {
                value["error"] = json!(error);
            }
            value
        }
        Event::Disconnected { reason } => json!({"type": "disconnected", "reason": reason}),
        Event::Reconnected { url } => json!({"type": "reconnected", "url": url}),
    };
    serde_json::to_writer(&mut *out, &value)?;
    out.write_all(b"\n")
}
