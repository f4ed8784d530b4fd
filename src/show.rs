//! `hooks show`: one capture whole, rendered for people as `hooks listen --verbose` renders an
//! exchange (`--print` picks the parts), or as one JSON object with the bodies in base64.

use std::io::{self, Write};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use relay_server::protocol::Header;
use serde_json::{json, Value};

use crate::cli::ShowArgs;
use crate::exchange::{display_path, millis, rfc3339, Exchange, Outcome, Signature};
use crate::inspect::{self, BodyStyle, Flags, OutputOptions, Palette, Print, Redactor};
use crate::store::{self, Store};

/// Runs `hooks show`.
pub fn show(args: &ShowArgs) -> anyhow::Result<()> {
    let store = Store::open(&store::path()?)?;
    let capture = store.load(args.id)?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if args.json {
        inspect::sanitize::write_json(&mut out, &capture_json(&capture))?;
        out.write_all(b"\n")?;
    } else {
        out.write_all(render(&capture, &output_options(args)).as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

/// Terminal facts and display choices, decided once: every part unless `--print`, bodies whole.
fn output_options(args: &ShowArgs) -> OutputOptions {
    let palette = Palette::new(args.color.enabled());
    OutputOptions {
        json: false,
        palette,
        width: inspect::palette::terminal_width(),
        print: args.print.unwrap_or(Print::ALL),
        body: BodyStyle {
            max_lines: 0,
            palette,
            redactor: Redactor {
                show_secrets: args.show_secrets,
                secrets: args.secrets.iter().map(|s| s.expose().to_owned()).collect(),
            },
        },
    }
}

/// The whole capture as JSON (`hooks show --json`, `hooks replay --json`).
pub fn capture_json(capture: &Exchange) -> Value {
    let response = match &capture.outcome {
        Outcome::Answered(response) => json!({
            "status": response.status,
            "headers": headers_json(&response.headers),
            "body_base64": BASE64.encode(&response.body),
            "duration_ms": millis(capture.duration),
        }),
        Outcome::Failed(_) => Value::Null,
    };
    let event = capture.event.as_ref();
    let signature = capture.signature.as_ref();
    json!({
        "id": capture.id,
        "received_at": rfc3339(capture.received_at_ms),
        "channel": capture.channel,
        "channel_url": capture.channel_url,
        "relay_id": capture.relay_id,
        "relay_epoch": capture.relay_epoch,
        "redelivered": capture.redelivered,
        "target": capture.target,
        "request": {
            "method": capture.request.method,
            "path": display_path(&capture.request.path),
            "headers": headers_json(&capture.request.headers),
            "body_base64": BASE64.encode(&capture.request.body),
        },
        "response": response,
        "error": capture.outcome.error(),
        "duration_ms": millis(capture.duration),
        "event_type": event.and_then(|e| e.event_type.as_deref()),
        "event_id": event.and_then(|e| e.event_id.as_deref()),
        "signature": signature.map(Signature::to_json),
        "verdict": signature.map(|s| s.verdict.as_str()),
        "replay_of": capture.replay_of,
        "sent": capture.sent,
        "route": capture.route,
        "copy": capture.copy,
    })
}

/// `[[name, value], …]`: a value is a string when it is UTF-8, else `{"base64": "…"}`.
fn headers_json(headers: &[Header]) -> Value {
    headers
        .iter()
        .map(|h| match std::str::from_utf8(&h.value) {
            Ok(text) => json!([h.name, text]),
            Err(_) => json!([h.name, {"base64": BASE64.encode(&h.value)}]),
        })
        .collect()
}

/// The capture for people: when, where to and what it replays, then the inspector's summary
/// line and the parts `options.print` selects.
pub fn render(capture: &Exchange, options: &OutputOptions) -> String {
    // An empty target: no route took it and there was no default (hooks answered 404).
    let target = match capture.target.as_str() {
        "" => "nowhere (no route matched)".to_owned(),
        target => inspect::sanitize(target),
    };
    let mut meta = format!(
        "#{}  {}  → {target}",
        capture.number(),
        rfc3339(capture.received_at_ms),
    );
    match (&capture.route, capture.copy) {
        (Some(route), false) => meta.push_str(&format!("  route {}", inspect::sanitize(route))),
        (Some(route), true) => meta.push_str(&format!(
            "  copy for route {} (the sender got another answer)",
            inspect::sanitize(route)
        )),
        (None, _) => {}
    }
    if let Some(of) = capture.replay_of {
        meta.push_str(&format!("  (replay of #{of})"));
    } else if capture.sent {
        meta.push_str("  (sent by hooks send)");
    }
    let mut out = options.palette.dim.paint(&meta);
    out.push('\n');
    // The verdict is in `--json`; the human form has shown none so far.
    let unsigned = Exchange {
        signature: None,
        ..capture.clone()
    };
    out.push_str(&inspect::render_exchange(
        &unsigned,
        &Flags::default(),
        options,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{CaptureId, Request, Response};
    use bytes::Bytes;
    use std::time::Duration;

    fn header(name: &str, value: &[u8]) -> Header {
        Header {
            name: name.into(),
            value: Bytes::copy_from_slice(value),
        }
    }

    fn capture(request_body: &[u8], outcome: Outcome) -> Exchange {
        let request = Request {
            method: "POST".into(),
            path: "/hook?x=1".into(),
            headers: vec![
                header("content-type", b"application/json"),
                header("x-bin", b"\xff\x1b"),
            ],
            body: Bytes::copy_from_slice(request_body),
        };
        let target = "http://localhost:3000".into();
        let duration = Duration::from_micros(3100);
        Exchange {
            id: Some(CaptureId(7)),
            channel: Some("ch".into()),
            channel_url: Some("http://relay/ch".into()),
            relay_id: Some(3),
            replay_of: Some(CaptureId(2)),
            ..Exchange::new(0, target, request, outcome, duration)
        }
    }

    fn answered(body: &[u8]) -> Outcome {
        Outcome::Answered(Response {
            status: 200,
            headers: vec![header("content-type", b"application/octet-stream")],
            body: Bytes::copy_from_slice(body),
        })
    }

    fn rendered(capture: &Exchange, print: Print) -> String {
        let options = OutputOptions {
            print,
            body: BodyStyle::default(),
            ..OutputOptions::plain()
        };
        render(capture, &options)
    }

    #[test]
    fn renders_the_whole_exchange_for_people() {
        let c = capture(br#"{"type":"a.b","n":[1]}"#, answered(b"\x00\x01binary"));
        let text = rendered(&c, Print::ALL);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "#7  1970-01-01T00:00:00.000Z  → http://localhost:3000  (replay of #2)"
        );
        assert!(
            lines[1].contains("POST /hook?x=1") && lines[1].ends_with("#7"),
            "{text}"
        );
        assert_eq!(lines[2], "  > POST /hook?x=1 HTTP/1.1");
        assert!(text.contains("\n  > x-bin: \u{fffd}\\u{1b}\n"), "{text}");
        assert!(text.contains("\"type\": \"a.b\""), "{text}");
        assert!(text.contains("\n  < 200 OK\n"), "{text}");
        assert!(
            text.contains("binary body, 8 bytes, application/octet-stream"),
            "{text}"
        );
    }

    /// Issue 22: the route, or the copy route, is on the first line.
    #[test]
    fn the_route_is_shown() {
        let mut c = capture(b"{}", answered(b"ok"));
        c.replay_of = None;
        c.route = Some("billing".into());
        let first = |c: &Exchange| {
            rendered(c, Print::default())
                .lines()
                .next()
                .unwrap()
                .to_owned()
        };
        assert_eq!(
            first(&c),
            "#7  1970-01-01T00:00:00.000Z  → http://localhost:3000  route billing"
        );
        c.copy = true;
        assert_eq!(
            first(&c),
            "#7  1970-01-01T00:00:00.000Z  → http://localhost:3000  copy for route billing (the sender got another answer)"
        );
        c.route = None;
        c.copy = false;
        c.target = String::new();
        assert_eq!(
            first(&c),
            "#7  1970-01-01T00:00:00.000Z  → nowhere (no route matched)"
        );
        let value = capture_json(&c);
        assert_eq!(
            (&value["route"], &value["copy"]),
            (&Value::Null, &json!(false))
        );
    }

    #[test]
    fn print_selects_parts_and_failures_say_why() {
        let c = capture(b"plain text", Outcome::Failed("connection refused".into()));
        let print = Print {
            request_body: true,
            ..Print::default()
        };
        let text = rendered(&c, print);
        assert!(text.contains("\n  plain text\n"), "{text}");
        assert!(!text.contains("  > "), "no request headers: {text}");
        assert!(text.contains("↳ connection refused"), "{text}");
    }

    #[test]
    fn json_keeps_every_byte() {
        let c = capture(b"\xff\x00", answered(b"ok"));
        let value = capture_json(&c);
        assert_eq!(value["id"], 7);
        assert_eq!(
            value["request"]["headers"][0],
            json!(["content-type", "application/json"])
        );
        assert_eq!(
            value["request"]["headers"][1],
            json!(["x-bin", {"base64": BASE64.encode(b"\xff\x1b")}])
        );
        assert_eq!(value["request"]["body_base64"], BASE64.encode(b"\xff\x00"));
        assert_eq!(value["response"]["status"], 200);
        assert_eq!(value["response"]["body_base64"], "b2s=");
        assert_eq!(value["response"]["duration_ms"], 3.1);
        assert_eq!(value["error"], Value::Null);
        assert_eq!(value["replay_of"], 2);
    }
}
