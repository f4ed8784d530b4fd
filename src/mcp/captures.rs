//! The read-only tools over the capture store: `list_captures`, `show_capture` and
//! `verify_capture`. They read what `hooks list` and `hooks show` read, through the same
//! [`Store`], and run on a blocking thread (SQLite blocks).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};

use super::arguments::ToolError;
use crate::exchange::{display_path, millis, rfc3339, Exchange, Header, Outcome, Signature};
use crate::inspect::redact::is_sensitive;
use crate::inspect::Redactor;
use crate::list::summary_json;
use crate::query::Query;
use crate::store::{CaptureRef, Store, StoreError, Summary};
use crate::verify::{self, Provider, Secret, VerifyInput};

/// Captures `list_captures` returns unless asked for another number.
pub const DEFAULT_LIMIT: u64 = 50;
/// Most captures one `list_captures` call returns.
pub const MAX_LIMIT: u64 = 500;
/// Bytes of each body `show_capture` returns unless asked for another number: enough for any
/// usual webhook payload, small enough not to flood an agent's context.
pub const DEFAULT_BODY_BYTES: u64 = 64 * 1024;
/// Most bytes of each body one `show_capture` call returns.
pub const MAX_BODY_BYTES: u64 = 1024 * 1024;

/// A `list_captures` call.
pub struct ListCall {
    /// The `--where` expression, if any.
    pub filter: Option<String>,
    /// Most captures to return.
    pub limit: usize,
}

/// Runs `list_captures`: summaries as `hooks list --json` prints them, newest first.
pub fn list(store: &Path, call: &ListCall) -> Result<Value, ToolError> {
    let rows = match Store::open(store) {
        Ok(store) => matching(&store, call.filter.as_deref(), call.limit)?,
        Err(StoreError::NoCaptures) => {
            return Ok(
                json!({"captures": [], "count": 0, "note": StoreError::NoCaptures.to_string()}),
            )
        }
        Err(e) => return Err(e.into()),
    };
    let mut result = json!({
        "captures": rows.iter().map(summary_json).collect::<Vec<_>>(),
        "count": rows.len(),
    });
    if rows.len() == call.limit {
        result["note"] = json!(format!(
            "there may be more: raise limit (at most {MAX_LIMIT}) or narrow the selection with where"
        ));
    }
    Ok(result)
}

/// What `list_captures`' schema says of `where`.
pub const WHERE_DESCRIPTION: &str = "Only captures matching this expression in the --where \
language of hooks list: terms field:value joined by AND (or spaces), OR, NOT and parentheses; \
fields id, method, path, status (500, 5xx, >=400, error), duration (>1s), size (>1MiB), \
provider, event (invoice.*), verdict (valid, invalid, expired, unsigned, unchecked), replay, \
since and before (30m, 7d or RFC 3339), header.NAME, query.KEY, json./json/pointer, \
body~\"regex\". Example: status:5xx event:invoice.* since:1d";

/// The captures `where` selects (all without it), newest first, at most `limit`. A bad
/// expression is the tool's error, with the caret message `hooks list` prints.
fn matching(store: &Store, filter: Option<&str>, limit: usize) -> Result<Vec<Summary>, ToolError> {
    let query = match filter.map(str::trim).filter(|f| !f.is_empty()) {
        None => None,
        Some(text) => Some(
            Query::parse(text)
                .map_err(|e| ToolError::new(format!("invalid where expression\n{e}")))?,
        ),
    };
    Ok(store.list(query.as_ref(), limit)?)
}

/// A `show_capture` call.
pub struct ShowCall {
    /// Which capture.
    pub capture: CaptureRef,
    /// Most bytes of each body to return.
    pub body_bytes: usize,
}

/// Runs `show_capture`: the whole exchange, with sensitive header values shortened as
/// `hooks show` shortens them and bodies as text (UTF-8) or base64, cut at `body_bytes`.
pub fn show(store: &Path, call: &ShowCall, redactor: &Redactor) -> Result<Value, ToolError> {
    let capture = Store::open(store)?.load(call.capture)?;
    Ok(capture_json(&capture, call.body_bytes, redactor))
}

/// The capture as the tools return it: what `hooks show --json` has, less the relay's own
/// coordinates (the channel's URL lets anyone send to the app, so it stays out of the agent's
/// context), with headers redacted and bodies readable.
pub fn capture_json(capture: &Exchange, body_bytes: usize, redactor: &Redactor) -> Value {
    let request = &capture.request;
    let response = match &capture.outcome {
        Outcome::Answered(response) => json!({
            "status": response.status,
            "headers": headers_json(&response.headers, redactor),
            "body": body_json(&response.body, body_bytes),
        }),
        Outcome::Failed(_) => Value::Null,
    };
    let event = capture.event.as_ref();
    let signature = capture.signature.as_ref();
    json!({
        "id": capture.id,
        "received_at": rfc3339(capture.received_at_ms),
        "target": capture.target,
        "request": {
            "method": request.method,
            "path": display_path(&request.path),
            "headers": headers_json(&request.headers, redactor),
            "body": body_json(&request.body, body_bytes),
        },
        "response": response,
        "error": capture.outcome.error(),
        "duration_ms": millis(capture.duration),
        "event_type": event.and_then(|e| e.event_type.as_deref()),
        "event_id": event.and_then(|e| e.event_id.as_deref()),
        "verdict": signature.map(|s| s.verdict.as_str()),
        "signature": signature.map(Signature::to_json),
        "replay_of": capture.replay_of,
    })
}

/// `[[name, value], …]`, values as `hooks show` prints them; a value that is not UTF-8 is
/// `{"base64": …}`, or withheld when the header is sensitive.
fn headers_json(headers: &[Header], redactor: &Redactor) -> Value {
    headers
        .iter()
        .map(|h| match std::str::from_utf8(&h.value) {
            Ok(text) => json!([h.name, redactor.header(&h.name, text)]),
            Err(_) if is_sensitive(&h.name) => json!([h.name, "…(redacted)"]),
            Err(_) => json!([h.name, {"base64": BASE64.encode(&h.value)}]),
        })
        .collect()
}

/// `{"bytes": N, "text": …}` for UTF-8, `{"bytes": N, "base64": …}` otherwise, at most `limit`
/// bytes of it, with a note saying how to get more when it is cut.
fn body_json(body: &[u8], limit: usize) -> Value {
    let total = body.len();
    let (mut value, shown) = match std::str::from_utf8(body) {
        Ok(text) => {
            let mut cut = limit.min(total);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            (json!({"bytes": total, "text": &text[..cut]}), cut)
        }
        Err(_) => {
            let cut = limit.min(total);
            (
                json!({"bytes": total, "base64": BASE64.encode(&body[..cut])}),
                cut,
            )
        }
    };
    if shown < total {
        value["truncated"] = json!(true);
        value["note"] = json!(format!(
            "only the first {shown} of {total} bytes; call show_capture with a larger \
             max_body_bytes (at most {MAX_BODY_BYTES}) for more"
        ));
    }
    value
}

/// When a signature's timestamp is held against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// When hooks received the capture: was it valid then?
    Received,
    /// Now: would the app accept it if it came again now?
    Now,
}

/// A `verify_capture` call.
pub struct VerifyCall {
    /// Which capture.
    pub capture: CaptureRef,
    /// The secrets to check with (valid if any matches).
    pub secrets: Vec<Secret>,
    /// Where the secret came from, said in the result.
    pub secret_from: &'static str,
    /// The provider, when not recognised from the headers.
    pub provider: Option<Provider>,
    /// The time the timestamp is held against.
    pub at: At,
}

/// Runs `verify_capture`: the same check `hooks verify` makes, on a stored capture. An invalid
/// signature is a result, not an error.
pub fn verify(store: &Path, call: &VerifyCall) -> Result<Value, ToolError> {
    let capture = Store::open(store)?.load(call.capture)?;
    let request = &capture.request;
    let headers: Vec<(&str, &[u8])> = request
        .headers
        .iter()
        .map(|h| (h.name.as_str(), &h.value[..]))
        .collect();
    let url = public_url(&capture);
    let input = VerifyInput {
        method: &request.method,
        url: &url,
        headers: &headers,
        body: &request.body,
    };
    let now = match call.at {
        At::Received => {
            let ms = capture.received_at_ms.max(0).unsigned_abs();
            UNIX_EPOCH + Duration::from_millis(ms)
        }
        At::Now => SystemTime::now(),
    };
    let report = verify::check(&input, &call.secrets, call.provider, None, now)?;
    let mut result = report.to_json();
    result["capture_id"] = json!(capture.id);
    result["checked_at"] = json!(match call.at {
        At::Received => "received",
        At::Now => "now",
    });
    result["secret_from"] = json!(call.secret_from);
    Ok(result)
}

/// The URL the provider called (Twilio, Square and HubSpot sign it): the channel's public URL
/// and the path, as `hooks listen` checked it; for a replay, the `Host` header's.
fn public_url(capture: &Exchange) -> String {
    let request = &capture.request;
    match &capture.channel_url {
        Some(base) => format!("{base}{}", request.path),
        None => {
            let host = request
                .headers
                .iter()
                .find(|h| h.name == "host")
                .map(|h| String::from_utf8_lossy(&h.value).into_owned())
                .unwrap_or_default();
            format!("https://{host}{}", display_path(&request.path))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_text_or_base64_and_cut_with_a_note() {
        assert_eq!(body_json(b"", 10), json!({"bytes": 0, "text": ""}));
        assert_eq!(
            body_json(b"{\"a\":1}", 10),
            json!({"bytes": 7, "text": "{\"a\":1}"})
        );
        let cut = body_json("héllo".as_bytes(), 2);
        assert_eq!(cut["text"], "h", "never half a character");
        assert_eq!(cut["bytes"], 6);
        assert_eq!(cut["truncated"], true);
        assert!(
            cut["note"].as_str().unwrap().contains("max_body_bytes"),
            "{cut}"
        );
        let binary = body_json(b"\xff\x00\x01", 2);
        assert_eq!(binary["base64"], BASE64.encode(b"\xff\x00"));
        assert_eq!(binary["truncated"], true);
    }

    #[test]
    fn sensitive_headers_are_shortened() {
        let header = |name: &str, value: &[u8]| Header {
            name: name.into(),
            value: bytes::Bytes::copy_from_slice(value),
        };
        let headers = [
            header("stripe-signature", b"t=1700000000,v1=deadbeef"),
            header("x-api-key", b"\xffsecret"),
            header("x-bin", b"\xff"),
            header("content-type", b"text/plain"),
        ];
        assert_eq!(
            headers_json(&headers, &Redactor::default()),
            json!([
                ["stripe-signature", "t=170000…(redacted, 24 chars)"],
                ["x-api-key", "…(redacted)"],
                ["x-bin", {"base64": "/w=="}],
                ["content-type", "text/plain"],
            ])
        );
    }
}
