//! Fixtures: one capture as one file a project can commit, for `hooks replay --dir` to send
//! again and check in CI. A fixture is the raw HTTP/1.1 request exactly as `hooks verify` reads
//! it (with `Content-Length`, so the file's tail is not taken for its body), then the expected
//! answer as an HTTP/1.1 response whose body runs to the end of the file:
//!
//! ```text
//! POST /webhooks/stripe HTTP/1.1
//! Host: localhost:3000
//! content-type: application/json
//! stripe-signature: t=1764182862,v1=…
//! content-length: 52
//!
//! {"id":"evt_1","type":"invoice.paid","data":{"…":1}}
//! HTTP/1.1 200 OK
//! content-type: application/json
//!
//! {"received":true}
//! ```
//!
//! Files are named `<received time>-<provider and event, or method and path>-<hash>.http`:
//! the time sorts them in the order the webhooks arrived (the order `replay --dir` sends them),
//! and the hash (of the request part) tells apart webhooks of the same instant. The name depends
//! only on the capture, never on the store's ids, so the same capture exported on any machine,
//! any number of times, gets the same name and the same bytes, and two people exporting into one
//! folder do not overwrite each other's fixtures.

use bytes::Bytes;
use relay_server::protocol::Header;
use sha2::{Digest, Sha256};

use crate::exchange::{rfc3339, Exchange, Outcome, Request, Response};
use crate::raw_request::{self, ParseError, RawRequest};
use crate::target::Target;

/// The extension `replay --dir` reads.
pub const EXTENSION: &str = "http";

/// Longest description in a file name, in characters.
const MAX_SLUG: usize = 48;

/// Response headers a fixture leaves out: the body runs to the end of the file, so its length
/// is implied.
const NOT_WRITTEN: [&str; 2] = ["content-length", "transfer-encoding"];

/// A fixture read back: the request to send, and the answer it expects (`None` for a file that
/// holds a request only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixture {
    /// The request as written.
    pub request: RawRequest,
    /// The expected answer. Its headers (names lowercase) are the only ones compared, so a file
    /// may hold none.
    pub answer: Option<Response>,
}

/// Why a file is not a fixture; the message names the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FixtureError {
    /// The request part is not a request.
    #[error("{0}")]
    Request(#[from] ParseError),
    /// The answer part is not an answer.
    #[error("line {line}: {reason}")]
    Answer {
        /// 1-based line number in the file.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// The fixture of `capture`, addressed to `target`: its file name and bytes. `None` when the
/// app did not answer it (there is no answer to expect).
pub fn write(capture: &Exchange, target: &Target) -> Option<(String, Vec<u8>)> {
    let Outcome::Answered(response) = &capture.outcome else {
        return None;
    };
    let mut bytes = crate::raw_request::raw(&delimited(&capture.request), target);
    let name = file_name(capture, &bytes);
    bytes.extend_from_slice(b"\n");
    let reason = http::StatusCode::from_u16(response.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    bytes.extend_from_slice(format!("HTTP/1.1 {} {reason}\r\n", response.status).as_bytes());
    for h in response
        .headers
        .iter()
        .filter(|h| !NOT_WRITTEN.contains(&h.name.to_ascii_lowercase().as_str()))
    {
        bytes.extend_from_slice(h.name.as_bytes());
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(&h.value);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(&response.body);
    // Editors end files with a line end; the parser takes one off, so this one is expected.
    bytes.extend_from_slice(b"\n");
    Some((name, bytes))
}

/// `request` with a `Content-Length` even when its body is empty (export adds one only for a
/// body), so that the answer after it is never read as its body.
fn delimited(request: &Request) -> Request {
    let mut request = request.clone();
    if !request.headers.iter().any(|h| h.name == "content-length") && request.body.is_empty() {
        request.headers.push(Header {
            name: "content-length".into(),
            value: Bytes::from_static(b"0"),
        });
    }
    request
}

/// `20261126T184742.120Z-stripe-invoice.paid-3f9a1c2e.http`: when it was received (UTC), what
/// it is, and the first 8 hex digits of the SHA-256 of `request` (the request part's bytes).
pub fn file_name(capture: &Exchange, request: &[u8]) -> String {
    let time: String = rfc3339(capture.received_at_ms)
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    let event = capture.event.as_ref();
    let what = match event.and_then(|e| Some((e.provider, e.event_type.as_deref()?))) {
        Some((recognized, event_type)) => {
            // The provider whose signature was checked, else the one the event looks like.
            let signed = capture.signature.as_ref().and_then(|s| s.provider);
            format!("{}-{event_type}", signed.unwrap_or(recognized))
        }
        None => {
            let path = capture.request.path.split('?').next().unwrap_or_default();
            format!("{}-{path}", capture.request.method)
        }
    };
    let hash = hex::encode(&Sha256::digest(request)[..4]);
    format!("{time}-{}-{hash}.{EXTENSION}", slug(&what))
}

/// `text` with every run of characters other than ASCII letters, digits, `.` and `_` made one
/// `-`, lowercase, without `-` at either end, at most [`MAX_SLUG`] characters.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let cut: String = out.chars().take(MAX_SLUG).collect();
    // No leading dot: a name starting `.` would be hidden.
    let trimmed = cut.trim_matches(|c| c == '-' || c == '.');
    if trimmed.is_empty() {
        "request".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Reads a fixture. The request's body is `Content-Length` bytes; without that header it runs
/// to the answer's status line (`HTTP/1.1 200 …` at the start of a line), less the line ends
/// before it, so a fixture can be written by hand. The answer's body runs to the end of the
/// file, less one final line end.
pub fn parse(bytes: &[u8]) -> Result<Fixture, FixtureError> {
    let (mut request, rest) = raw_request::parse_with_rest(bytes)?;
    let delimited =
        request.header("content-length").is_some() || request.header("transfer-encoding").is_some();
    let rest_len = if delimited {
        rest.len()
    } else {
        // The body was read to the end of the file: it ends where the answer starts.
        let (body, answer) = split_at_answer(&request.body);
        let (body_len, answer_len) = (body.len(), answer.len());
        request.body.truncate(body_len);
        answer_len
    };
    let start = bytes.len() - rest_len;
    let answer = answer(&bytes[start..], line_of(bytes, start))?;
    Ok(Fixture { request, answer })
}

/// The 1-based line at byte `offset` of `file`.
fn line_of(file: &[u8], offset: usize) -> usize {
    1 + file[..offset].iter().filter(|&&b| b == b'\n').count()
}

/// `body` cut before the first line that is an answer's status line, and what follows from
/// there; the line ends before that line (a blank line, typically) belong to neither.
fn split_at_answer(body: &[u8]) -> (&[u8], &[u8]) {
    let mut start = 0;
    loop {
        let line = &body[start..];
        if is_status_line(line) {
            let before = &body[..start];
            let end = before
                .iter()
                .rposition(|&b| b != b'\n' && b != b'\r')
                .map_or(0, |at| at + 1);
            return (&before[..end], line);
        }
        match memchr::memchr(b'\n', line) {
            Some(at) => start += at + 1,
            None => return (body, &[]),
        }
    }
}

/// Whether `line` starts `HTTP/1.x NNN`.
fn is_status_line(line: &[u8]) -> bool {
    let version = line.starts_with(b"HTTP/1.1 ") || line.starts_with(b"HTTP/1.0 ");
    version && line.len() >= 12 && line[9..12].iter().all(u8::is_ascii_digit)
}

/// The expected answer in `rest` (blank lines first are skipped); `None` when there is none.
/// `line` is the line number `rest` starts on.
fn answer(rest: &[u8], mut line: usize) -> Result<Option<Response>, FixtureError> {
    let mut rest = rest;
    while let Some(after) = strip_line_end(rest) {
        rest = after;
        line += 1;
    }
    if rest.is_empty() {
        return Ok(None);
    }
    let bad = |line, reason: &str| FixtureError::Answer {
        line,
        reason: reason.to_owned(),
    };
    let (status_line, mut rest) = split_line(rest);
    if !is_status_line(status_line) {
        return Err(bad(
            line,
            "expected the expected answer's status line, such as HTTP/1.1 200 OK, after the \
             request's body (if you changed the body's length, correct its Content-Length or \
             remove it)",
        ));
    }
    let status = std::str::from_utf8(&status_line[9..12])
        .ok()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..=999).contains(s))
        .ok_or_else(|| bad(line, "the status is not a number from 100 to 999"))?;
    let mut headers = Vec::new();
    loop {
        if rest.is_empty() {
            break;
        }
        let (text, after) = split_line(rest);
        line += 1;
        rest = after;
        if text.is_empty() {
            break;
        }
        let (name, value) = header(text).map_err(|reason| bad(line, &reason))?;
        headers.push(Header {
            name: name.to_ascii_lowercase(),
            value: Bytes::copy_from_slice(value),
        });
    }
    let body = rest.strip_suffix(b"\n").unwrap_or(rest);
    Ok(Some(Response {
        status,
        headers,
        body: Bytes::copy_from_slice(body),
    }))
}

/// `bytes` after one line end at its start, if it starts with one.
fn strip_line_end(bytes: &[u8]) -> Option<&[u8]> {
    bytes
        .strip_prefix(b"\r\n")
        .or_else(|| bytes.strip_prefix(b"\n"))
}

/// The line before the next LF (without its CR), and what follows it.
fn split_line(bytes: &[u8]) -> (&[u8], &[u8]) {
    let (line, rest) = match memchr::memchr(b'\n', bytes) {
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (bytes, &[][..]),
    };
    (line.strip_suffix(b"\r").unwrap_or(line), rest)
}

fn header(line: &[u8]) -> Result<(&str, &[u8]), String> {
    let colon = memchr::memchr(b':', line)
        .ok_or("a header line of the answer needs a colon, as in \"Name: value\"")?;
    let name = std::str::from_utf8(&line[..colon])
        .ok()
        .filter(|n| http::HeaderName::from_bytes(n.as_bytes()).is_ok())
        .ok_or("the answer's header name is empty or not a valid HTTP token")?;
    Ok((name, line[colon + 1..].trim_ascii()))
}

#[cfg(test)]
mod tests;
