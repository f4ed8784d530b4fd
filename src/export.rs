//! `hooks export`: one capture as a curl command, as the raw HTTP/1.1 request, or as HAR 1.2
//! (several, and fixtures, in `many`).
//!
//! The request is addressed as the app received it: `Host` is the target's authority and the path
//! sits under the target's base path (`--to` picks another target).

use std::io::{self, Write};

use anyhow::anyhow;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::cli::{ExportArgs, ExportFormat};
use crate::exchange::{millis, rfc3339, Exchange, Header, Outcome, Request};
use crate::inspect::sanitize::is_unsafe;
use crate::store::{self, Store};
use crate::target::Target;

pub use crate::raw_request::raw;

/// Body bytes per `printf` in a curl export, so no argument nears the system's limit (128 KiB on
/// Linux) even if `printf` is not a shell builtin.
const PRINTF_CHUNK: usize = 4096;

/// Runs `hooks export`.
pub fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let (Some(id), None) = (args.id, &args.dir) else {
        return many::export(args);
    };
    let store = Store::open(&store::path()?)?;
    let capture = store.load(id)?;
    let target = match &args.to {
        Some(target) => target.clone(),
        None => original_target(&capture)?,
    };
    let output = match args.format {
        ExportFormat::Curl => curl(&capture.request, &target).into_bytes(),
        ExportFormat::Raw => raw(&capture.request, &target),
        ExportFormat::Har => {
            let mut text = serde_json::to_vec_pretty(&har(&capture, &target))?;
            text.push(b'\n');
            text
        }
        // Says that fixtures need --dir (clap requires it; this keeps the message in one place).
        ExportFormat::Fixture => return many::export(args),
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    out.write_all(&output)?;
    out.flush()?;
    Ok(())
}

/// Where `capture` was forwarded.
pub fn original_target(capture: &Exchange) -> anyhow::Result<Target> {
    capture.target.parse().map_err(|e| {
        anyhow!(
            "capture #{} has an unusable target {:?} ({e}); pass --to",
            capture.number(),
            capture.target
        )
    })
}

/// The request-target (`/base/a?x=1`) for `path` under `target`.
/// A POSIX `sh` command line that makes curl send this request: same method, path and query,
/// headers in order, body bytes (through `printf` octal escapes, so any byte survives).
pub fn curl(request: &Request, target: &Target) -> String {
    let mut lines = vec![format!(
        "curl --path-as-is --globoff -X {} {}",
        quote(&request.method),
        quote(&target.uri_for(&request.path))
    )];
    let headers: Vec<&Header> = request
        .headers
        .iter()
        .filter(|h| h.name != "host")
        .collect();
    for h in &headers {
        lines.push(format!("-H {}", header_arg(h)));
    }
    // Headers curl would add on its own (Expect for bodies over 1 MiB); `Name:` tells it not to.
    let mut defaults = vec!["User-Agent", "Accept"];
    if !request.body.is_empty() {
        defaults.extend(["Content-Type", "Expect"]);
    }
    for name in defaults {
        if !headers.iter().any(|h| h.name.eq_ignore_ascii_case(name)) {
            lines.push(format!("-H '{name}:'"));
        }
    }
    if request.body.is_empty() {
        return format!("{}\n", lines.join(" \\\n  "));
    }
    lines.push("--data-binary @-".to_owned());
    let printfs: Vec<String> = request.body.chunks(PRINTF_CHUNK).map(printf).collect();
    let feed = match printfs.as_slice() {
        [one] => one.clone(),
        many => format!("{{\n  {}\n}}", many.join("\n  ")),
    };
    format!("{feed} | {}\n", lines.join(" \\\n  "))
}

/// `'text'` for `sh`, with `'` written as `'\''`.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// One `-H` argument. curl drops a header given as `Name:` and sends an empty one for `Name;`.
/// Values that are not printable text (control, bidirectional and invisible characters,
/// invalid UTF-8) go through `printf`, so none of them reaches the terminal that shows the
/// command, and no byte is lost.
fn header_arg(h: &Header) -> String {
    if h.value.is_empty() {
        return quote(&format!("{};", h.name));
    }
    match std::str::from_utf8(&h.value) {
        Ok(text) if !text.chars().any(is_unsafe) => quote(&format!("{}: {text}", h.name)),
        _ => {
            let mut line = format!("{}: ", h.name).into_bytes();
            line.extend_from_slice(&h.value);
            format!("\"$({})\"", printf(&line))
        }
    }
}

/// A `printf` command that writes `bytes` exactly: its format, in single quotes, is printable
/// ASCII as is, except `'`, `%` and `\`, and everything else as a three-digit octal escape.
/// A leading `-` is escaped too: `printf` would read the format as an option (issue 17: every
/// multipart body starts with `--boundary`, and curl then sent nothing).
fn printf(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2 + 9);
    out.push_str("printf '");
    for (i, &b) in bytes.iter().enumerate() {
        let dash = i == 0 && b == b'-';
        if (0x20..0x7f).contains(&b) && !matches!(b, b'\'' | b'%' | b'\\') && !dash {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\{b:03o}"));
        }
    }
    out.push('\'');
    out
}

/// The capture as a HAR 1.2 log with one entry.
pub fn har(capture: &Exchange, target: &Target) -> Value {
    har_log(vec![har_entry(capture, target)])
}

/// A HAR 1.2 log holding `entries`.
pub fn har_log(entries: Vec<Value>) -> Value {
    json!({
        "log": {
            "version": "1.2",
            "creator": {"name": "hooks", "version": env!("CARGO_PKG_VERSION")},
            "entries": entries,
        }
    })
}

/// One HAR entry: the capture's request, addressed to `target`, and its response.
pub fn har_entry(capture: &Exchange, target: &Target) -> Value {
    let request = &capture.request;
    let mut headers = vec![json!({"name": "Host", "value": target.authority})];
    headers.extend(
        request
            .headers
            .iter()
            .filter(|h| h.name != "host")
            .map(har_header),
    );
    let mut har_request = json!({
        "method": request.method,
        "url": target.uri_for(&request.path),
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": headers,
        "queryString": query_pairs(&request.path),
        "headersSize": -1,
        "bodySize": request.body.len(),
    });
    if !request.body.is_empty() {
        har_request["postData"] = post_data(request);
    }
    let wait = millis(capture.duration);
    json!({
        "startedDateTime": rfc3339(capture.received_at_ms),
        "time": wait,
        "request": har_request,
        "response": har_response(&capture.outcome),
        "cache": {},
        "timings": {"send": 0, "wait": wait, "receive": 0},
        "comment": format!("hooks capture #{}", capture.number()),
    })
}

fn har_header(h: &Header) -> Value {
    json!({"name": h.name, "value": String::from_utf8_lossy(&h.value)})
}

/// `postData`: the text for text bodies. HAR has no encoding field here, so a binary body is
/// base64 in `text` with `"_encoding": "base64"` (custom fields start with `_` in HAR).
fn post_data(request: &Request) -> Value {
    let mime = header_text(&request.headers, "content-type").unwrap_or_default();
    match std::str::from_utf8(&request.body) {
        Ok(text) if !is_binary(&request.body) => json!({"mimeType": mime, "text": text}),
        _ => json!({
            "mimeType": mime,
            "text": BASE64.encode(&request.body),
            "_encoding": "base64",
        }),
    }
}

fn har_response(outcome: &Outcome) -> Value {
    let response = match outcome {
        Outcome::Answered(response) => response,
        Outcome::Failed(error) => {
            // What browsers record for a request that got no response.
            return json!({
                "status": 0, "statusText": "", "httpVersion": "", "cookies": [], "headers": [],
                "content": {"size": 0, "mimeType": "x-unknown"},
                "redirectURL": "", "headersSize": -1, "bodySize": -1, "_error": error,
            });
        }
    };
    let mime = header_text(&response.headers, "content-type").unwrap_or_default();
    let mut content = json!({"size": response.body.len(), "mimeType": mime});
    match std::str::from_utf8(&response.body) {
        Ok(text) if !is_binary(&response.body) => content["text"] = json!(text),
        _ => {
            content["text"] = json!(BASE64.encode(&response.body));
            content["encoding"] = json!("base64");
        }
    }
    json!({
        "status": response.status,
        "statusText": http::StatusCode::from_u16(response.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or(""),
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": response.headers.iter().map(har_header).collect::<Vec<_>>(),
        "content": content,
        "redirectURL": header_text(&response.headers, "location").unwrap_or_default(),
        "headersSize": -1,
        "bodySize": response.body.len(),
    })
}

/// The query of `path` as HAR name/value pairs, percent-decoded.
fn query_pairs(path: &str) -> Vec<Value> {
    let Some((_, query)) = path.split_once('?') else {
        return Vec::new();
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            json!({"name": percent_decode(name), "value": percent_decode(value)})
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first value of header `name` (lowercase), as text.
fn header_text<'a>(headers: &'a [Header], name: &str) -> Option<std::borrow::Cow<'a, str>> {
    headers
        .iter()
        .find(|h| h.name == name)
        .map(|h| String::from_utf8_lossy(&h.value))
}

/// Whether `body` is better described than printed: not UTF-8, or holding NUL bytes.
fn is_binary(body: &[u8]) -> bool {
    body.contains(&0) || std::str::from_utf8(body).is_err()
}

mod many;

#[cfg(test)]
mod tests;
