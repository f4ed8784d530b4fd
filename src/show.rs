//! `hooks show`: one capture whole, rendered for people as `hooks listen --verbose` renders an
//! exchange (`--print` picks the parts), or as one JSON object with the bodies in base64.

use std::io::{self, Write};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use relay_server::protocol::Header;
use serde_json::{json, Value};

use crate::cli::ShowArgs;
use crate::inspect::{
    self, Answer, BodyStyle, Exchange, Flags, OutputOptions, Palette, Print, Redactor,
};
use crate::list::{display_path, millis};
use crate::store::{self, Capture, Outcome, Store};

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
pub fn capture_json(capture: &Capture) -> Value {
    let record = &capture.record;
    let response = match &record.outcome {
        Outcome::Answered(response) => json!({
            "status": response.status,
            "headers": headers_json(&response.headers),
            "body_base64": BASE64.encode(&response.body),
            "duration_ms": millis(record.duration),
        }),
        Outcome::Failed(_) => Value::Null,
    };
    let error = match &record.outcome {
        Outcome::Failed(error) => json!(error),
        Outcome::Answered(_) => Value::Null,
    };
    let signature = record
        .signature
        .as_deref()
        .and_then(|s| serde_json::from_str::<Value>(s).ok());
    json!({
        "id": capture.id,
        "received_at": store::rfc3339(record.received_at_ms),
        "channel": record.channel,
        "channel_url": record.channel_url,
        "relay_id": record.relay_id,
        "relay_epoch": record.relay_epoch,
        "redelivered": record.redelivered,
        "target": record.target,
        "request": {
            "method": record.request.method,
            "path": display_path(&record.request.path),
            "headers": headers_json(&record.request.headers),
            "body_base64": BASE64.encode(&record.request.body),
        },
        "response": response,
        "error": error,
        "duration_ms": millis(record.duration),
        "event_type": record.event_type,
        "event_id": record.event_id,
        "signature": signature,
        "verdict": store::verdict(record.signature.as_deref()),
        "replay_of": record.replay_of,
        "sent": record.sent,
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
pub fn render(capture: &Capture, options: &OutputOptions) -> String {
    let record = &capture.record;
    let mut meta = format!(
        "#{}  {}  → {}",
        capture.id,
        store::rfc3339(record.received_at_ms),
        inspect::sanitize(&record.target)
    );
    if let Some(of) = record.replay_of {
        meta.push_str(&format!("  (replay of #{of})"));
    } else if record.sent {
        meta.push_str("  (sent by hooks send)");
    }
    let mut out = options.palette.dim.paint(&meta);
    out.push('\n');
    out.push_str(&inspect::render_exchange(
        &exchange(capture),
        &Flags::default(),
        options,
    ));
    out
}

/// The capture as the inspector's [`Exchange`].
pub fn exchange(capture: &Capture) -> Exchange {
    let record = &capture.record;
    let request = &record.request;
    let (answer, status, error) = match &record.outcome {
        Outcome::Answered(response) => (
            Some(Answer {
                status: response.status,
                headers: response.headers.clone(),
                body: response.body.clone(),
            }),
            response.status,
            None,
        ),
        Outcome::Failed(error) => (None, 502, Some(error.clone())),
    };
    Exchange {
        id: capture.id.unsigned_abs(),
        relay_id: record.relay_id.unwrap_or(0),
        relay_epoch: record.relay_epoch.unwrap_or(0),
        redelivered: record.redelivered,
        received_at_ms: record.received_at_ms.max(0).unsigned_abs(),
        method: request.method.clone(),
        path: request.path.clone(),
        request_headers: request.headers.clone(),
        request_body: request.body.clone(),
        answer,
        status,
        error,
        hint: None,
        duration: record.duration,
        event: inspect::recognize(&request.headers, &request.body),
        signature: None,
        sender_timed_out: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Record, Request, Response};
    use bytes::Bytes;
    use std::time::Duration;

    fn header(name: &str, value: &[u8]) -> Header {
        Header {
            name: name.into(),
            value: Bytes::copy_from_slice(value),
        }
    }

    fn capture(request_body: &[u8], outcome: Outcome) -> Capture {
        Capture {
            id: 7,
            record: Record {
                received_at_ms: 0,
                channel: Some("ch".into()),
                channel_url: Some("http://relay/ch".into()),
                relay_id: Some(3),
                relay_epoch: None,
                redelivered: false,
                target: "http://localhost:3000".into(),
                request: Request {
                    method: "POST".into(),
                    path: "/hook?x=1".into(),
                    headers: vec![
                        header("content-type", b"application/json"),
                        header("x-bin", b"\xff\x1b"),
                    ],
                    body: Bytes::copy_from_slice(request_body),
                },
                outcome,
                duration: Duration::from_micros(3100),
                signature: None,
                event_type: None,
                event_id: None,
                replay_of: Some(2),
                sent: false,
            },
        }
    }

    fn answered(body: &[u8]) -> Outcome {
        Outcome::Answered(Response {
            status: 200,
            headers: vec![header("content-type", b"application/octet-stream")],
            body: Bytes::copy_from_slice(body),
        })
    }

    fn rendered(capture: &Capture, print: Print) -> String {
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
