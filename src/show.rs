//! `hooks show`: one capture whole, rendered for people (`--print` picks the parts) or as one
//! JSON object with the bodies in base64.

use std::io::{self, Write};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use relay_server::protocol::Header;
use serde_json::{json, Value};

use crate::cli::{Parts, ShowArgs};
use crate::inspect::sanitize;
use crate::list::{display_path, millis};
use crate::store::{self, Capture, Outcome, Store};

/// Runs `hooks show`.
pub fn show(args: &ShowArgs) -> anyhow::Result<()> {
    let store = Store::open(&store::path()?)?;
    let capture = store.load(args.id)?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if args.json {
        serde_json::to_writer(&mut out, &capture_json(&capture))?;
        out.write_all(b"\n")?;
    } else {
        render(&capture, args.print.unwrap_or(Parts::ALL), &mut out)?;
    }
    out.flush()?;
    Ok(())
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

/// Writes the parts of `capture` that `parts` selects, separated by blank lines.
pub fn render(capture: &Capture, parts: Parts, out: &mut impl Write) -> io::Result<()> {
    let record = &capture.record;
    let request = &record.request;
    let mut blocks: Vec<String> = Vec::new();
    if parts.request_headers {
        let mut block = summary_line(capture);
        block.push_str(&format!(
            "\n{} {} HTTP/1.1",
            sanitize(&request.method),
            sanitize(&display_path(&request.path))
        ));
        push_headers(&mut block, &request.headers);
        blocks.push(block);
    }
    if parts.request_body && !request.body.is_empty() {
        blocks.push(body_text(&request.body, &request.headers));
    }
    let duration = format!("{:.1} ms", record.duration.as_secs_f64() * 1000.0);
    match &record.outcome {
        Outcome::Answered(response) => {
            if parts.response_headers {
                let reason = http::StatusCode::from_u16(response.status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                let mut block = format!("HTTP/1.1 {} {reason}  ({duration})", response.status);
                push_headers(&mut block, &response.headers);
                blocks.push(block);
            }
            if parts.response_body && !response.body.is_empty() {
                blocks.push(body_text(&response.body, &response.headers));
            }
        }
        Outcome::Failed(error) if parts.response_headers || parts.response_body => {
            blocks.push(format!("no response: {}  ({duration})", sanitize(error)));
        }
        Outcome::Failed(_) => {}
    }
    for (i, block) in blocks.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        writeln!(out, "{block}")?;
    }
    Ok(())
}

/// `#12  2026-11-26T18:47:34.123Z  → http://localhost:3000` and what else is known.
fn summary_line(capture: &Capture) -> String {
    let record = &capture.record;
    let mut line = format!(
        "#{}  {}  → {}",
        capture.id,
        store::rfc3339(record.received_at_ms),
        sanitize(&record.target)
    );
    if let Some(of) = record.replay_of {
        line.push_str(&format!("  (replay of #{of})"));
    }
    if let Some(event) = &record.event_type {
        line.push_str(&format!("  event {}", sanitize(event)));
        if let Some(id) = &record.event_id {
            line.push_str(&format!(" {}", sanitize(id)));
        }
    }
    if let Some(verdict) = store::verdict(record.signature.as_deref()) {
        line.push_str(&format!("  signature {}", sanitize(&verdict)));
    }
    line
}

fn push_headers(block: &mut String, headers: &[Header]) {
    for h in headers {
        block.push('\n');
        block.push_str(&sanitize(&h.name));
        block.push_str(": ");
        block.push_str(&sanitize(&String::from_utf8_lossy(&h.value)));
    }
}

/// The first value of header `name` (lowercase), as text.
pub fn header_text<'a>(headers: &'a [Header], name: &str) -> Option<std::borrow::Cow<'a, str>> {
    headers
        .iter()
        .find(|h| h.name == name)
        .map(|h| String::from_utf8_lossy(&h.value))
}

/// Whether `body` is better described than printed: not UTF-8, or holding NUL bytes.
pub fn is_binary(body: &[u8]) -> bool {
    body.contains(&0) || std::str::from_utf8(body).is_err()
}

/// A body for people: a one-line note when binary, pretty-printed when JSON, else the text;
/// control characters escaped, line breaks and tabs kept.
fn body_text(body: &[u8], headers: &[Header]) -> String {
    let content_type = header_text(headers, "content-type");
    let text = match std::str::from_utf8(body) {
        Ok(text) if !text.contains('\0') => text,
        _ => {
            let kind = content_type.as_deref().unwrap_or("no content-type");
            return format!("binary body, {} bytes, {}", body.len(), sanitize(kind));
        }
    };
    let looks_json = content_type.as_deref().is_some_and(|t| t.contains("json"))
        || text.trim_start().starts_with(['{', '[']);
    let pretty = looks_json
        .then(|| serde_json::from_str::<Value>(text).ok())
        .flatten()
        .and_then(|value| serde_json::to_string_pretty(&value).ok());
    let text = pretty.as_deref().unwrap_or(text);
    text.trim_end_matches(['\r', '\n'])
        .split('\n')
        .map(|line| {
            let line = line.strip_suffix('\r').unwrap_or(line);
            line.split('\t')
                .map(sanitize)
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n")
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
                replay_of: None,
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

    fn rendered(capture: &Capture, parts: Parts) -> String {
        let mut out = Vec::new();
        render(capture, parts, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn renders_the_whole_exchange_for_people() {
        let c = capture(br#"{"type":"a.b","n":[1]}"#, answered(b"\x00\x01binary"));
        assert_eq!(
            rendered(&c, Parts::ALL),
            "#7  1970-01-01T00:00:00.000Z  → http://localhost:3000\n\
             POST /hook?x=1 HTTP/1.1\n\
             content-type: application/json\n\
             x-bin: \u{fffd}\\u{1b}\n\
             \n\
             {\n  \"type\": \"a.b\",\n  \"n\": [\n    1\n  ]\n}\n\
             \n\
             HTTP/1.1 200 OK  (3.1 ms)\n\
             content-type: application/octet-stream\n\
             \n\
             binary body, 8 bytes, application/octet-stream\n"
        );
    }

    #[test]
    fn print_selects_parts_and_failures_say_why() {
        let c = capture(
            b"not json {\x07",
            Outcome::Failed("connection refused".into()),
        );
        let parts = Parts {
            request_headers: false,
            request_body: true,
            response_headers: true,
            response_body: false,
        };
        assert_eq!(
            rendered(&c, parts),
            "not json {\\u{7}\n\nno response: connection refused  (3.1 ms)\n"
        );
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
        assert_eq!(value["replay_of"], Value::Null);
    }
}
