//! Raw HTTP/1.1 requests as bytes (request line, headers, blank line, body): [`parse`] reads one
//! from a file such as `hooks verify`'s REQUEST_FILE, [`write()`] produces one (for
//! `hooks export --format raw`). Bodies stay bytes and header values stay raw bytes, so nothing
//! is re-encoded either way.

use std::fmt;

use crate::exchange::Request;
use crate::target::Target;

/// One HTTP/1.x request.
#[derive(Clone, PartialEq, Eq)]
pub struct RawRequest {
    /// The method, e.g. `POST`.
    pub method: String,
    /// The request target as written: `/path?query` (or an absolute URL).
    pub target: String,
    /// The protocol version, `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    /// Headers in order, names as written, values as raw bytes (surrounding blanks removed).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body: de-chunked when `Transfer-Encoding: chunked`, else `Content-Length` bytes (when
    /// given) or everything after the blank line.
    pub body: Vec<u8>,
}

impl fmt::Debug for RawRequest {
    /// Header values can be credentials (`Authorization`, `X-Gitlab-Token`): names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("RawRequest")
            .field("method", &self.method)
            .field("target", &self.target)
            .field("version", &self.version)
            .field("headers", &names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl RawRequest {
    /// The value of the first header called `name`, compared without regard to ASCII case.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_slice())
    }

    /// The URL the request was sent to, as `https://` + `Host` + target; an absolute-form target
    /// as is; the bare target when there is no `Host`.
    pub fn url(&self) -> String {
        let lower = self.target.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            return self.target.clone();
        }
        match self
            .header("Host")
            .and_then(|h| std::str::from_utf8(h).ok())
        {
            Some(host) if !host.trim().is_empty() => {
                format!("https://{}{}", host.trim(), self.target)
            }
            _ => self.target.clone(),
        }
    }
}

/// Why bytes are not a request; the message names the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing but blank space.
    #[error("the request is empty")]
    Empty,
    /// The first line is not `METHOD TARGET HTTP/1.x`.
    #[error("line 1: {0}")]
    RequestLine(String),
    /// A header line is not `Name: value`.
    #[error("line {line}: {reason}")]
    Header {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The body does not agree with `Content-Length` or `Transfer-Encoding`.
    #[error("body: {0}")]
    Body(String),
}

/// Parses a request. Lines may end in CRLF or a bare LF (files edited by hand); headers end at
/// the first empty line, or at the end of the input.
pub fn parse(bytes: &[u8]) -> Result<RawRequest, ParseError> {
    parse_with_rest(bytes).map(|(request, _)| request)
}

/// Parses a request as [`parse`] does, and returns the bytes after its body too: what follows
/// `Content-Length` bytes or the last chunk (a fixture's expected answer); nothing when neither
/// delimits the body.
pub fn parse_with_rest(bytes: &[u8]) -> Result<(RawRequest, &[u8]), ParseError> {
    let mut rest = bytes;
    // Blank lines before the request line are allowed (RFC 9112 §2.2).
    while let Some((line, after)) = next_line(rest) {
        if !line.is_empty() {
            break;
        }
        rest = after;
    }
    let (first, mut rest) = next_line(rest).ok_or(ParseError::Empty)?;
    let (method, target, version) = request_line(first)?;
    let mut headers = Vec::new();
    let mut line_no = 1;
    loop {
        let Some((line, after)) = next_line(rest) else {
            rest = &[];
            break;
        };
        line_no += 1;
        rest = after;
        if line.is_empty() {
            break;
        }
        headers.push(header_line(line).map_err(|reason| ParseError::Header {
            line: line_no,
            reason,
        })?);
    }
    let mut request = RawRequest {
        method,
        target,
        version,
        headers,
        body: Vec::new(),
    };
    let (body, after) = body(&request, rest)?;
    request.body = body;
    Ok((request, after))
}

/// The line before the next LF (without its CR), and what follows; `None` at the end.
fn next_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    if bytes.is_empty() {
        return None;
    }
    let (line, rest) = match bytes.iter().position(|&b| b == b'\n') {
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (bytes, &[][..]),
    };
    Some((line.strip_suffix(b"\r").unwrap_or(line), rest))
}

fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn request_line(line: &[u8]) -> Result<(String, String, String), ParseError> {
    let bad = |why: &str| ParseError::RequestLine(why.to_owned());
    let text = std::str::from_utf8(line).map_err(|_| bad("the request line is not UTF-8 text"))?;
    let parts: Vec<&str> = text.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(bad(
            "expected a request line like \"POST /webhooks HTTP/1.1\"",
        ));
    };
    if !is_token(method) {
        return Err(bad("the method is not a valid HTTP token"));
    }
    if target.is_empty() || target.bytes().any(|b| b.is_ascii_control()) {
        return Err(bad("the request target is empty or has control characters"));
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(bad(
            "expected HTTP/1.1 or HTTP/1.0 at the end of the request line",
        ));
    }
    Ok((method.to_owned(), target.to_owned(), version.to_owned()))
}

fn header_line(line: &[u8]) -> Result<(String, Vec<u8>), String> {
    if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
        return Err("continuation lines (obsolete header folding) are not supported".into());
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or("a header line needs a colon, as in \"Name: value\"")?;
    let name = std::str::from_utf8(&line[..colon])
        .ok()
        .filter(|name| is_token(name))
        .ok_or("the header name is empty or not a valid HTTP token")?;
    let value = line[colon + 1..].trim_ascii();
    Ok((name.to_owned(), value.to_vec()))
}

/// The body, and the bytes after it.
fn body<'a>(request: &RawRequest, rest: &'a [u8]) -> Result<(Vec<u8>, &'a [u8]), ParseError> {
    let chunked = request
        .header("Transfer-Encoding")
        .is_some_and(|te| te.to_ascii_lowercase().ends_with(b"chunked"));
    if chunked {
        return dechunk(rest).map_err(ParseError::Body);
    }
    let lengths: Vec<&[u8]> = request
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
        .map(|(_, v)| v.as_slice())
        .collect();
    let Some(first) = lengths.first() else {
        return Ok((rest.to_vec(), &[]));
    };
    if lengths.iter().any(|l| l != first) {
        return Err(ParseError::Body("Content-Length headers disagree".into()));
    }
    let length = std::str::from_utf8(first)
        .ok()
        .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|l| l.parse::<usize>().ok())
        .ok_or_else(|| ParseError::Body("Content-Length is not a number".into()))?;
    // Bytes after Content-Length (an editor's final newline) are not part of the body.
    match rest.split_at_checked(length) {
        Some((body, after)) => Ok((body.to_vec(), after)),
        None => Err(ParseError::Body(format!(
            "Content-Length says {length} bytes, but only {} follow the headers",
            rest.len()
        ))),
    }
}

/// Decodes a chunked body: `<hex size>[;ext]` line, data, line end; `0` and trailers end it.
/// Returns the bytes after the `0` line too (trailers, if any, among them).
fn dechunk(mut rest: &[u8]) -> Result<(Vec<u8>, &[u8]), String> {
    let mut body = Vec::new();
    loop {
        let (line, after) = next_line(rest).ok_or("the chunked body ends without a 0 chunk")?;
        let size_text = line
            .split(|&b| b == b';')
            .next()
            .unwrap_or(line)
            .trim_ascii();
        let size = std::str::from_utf8(size_text)
            .ok()
            .filter(|s| !s.is_empty())
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .ok_or_else(|| format!("chunk size {:?} is not hex", String::from_utf8_lossy(line)))?;
        if size == 0 {
            return Ok((body, after));
        }
        let data = after
            .get(..size)
            .ok_or_else(|| format!("a chunk of {size} bytes is cut short"))?;
        body.extend_from_slice(data);
        let tail = &after[size..];
        rest = tail
            .strip_prefix(b"\r\n")
            .or_else(|| tail.strip_prefix(b"\n"))
            .ok_or("a chunk is not followed by a line end")?;
    }
}

/// The request as bytes: request line, headers as stored, CRLF line ends, blank line, body.
/// Nothing is added: a body without a `Content-Length` header is written without one.
pub fn write(request: &RawRequest) -> Vec<u8> {
    let version = if request.version.is_empty() {
        "HTTP/1.1"
    } else {
        &request.version
    };
    let mut out = Vec::with_capacity(request.body.len() + 256);
    out.extend_from_slice(
        format!("{} {} {version}\r\n", request.method, request.target).as_bytes(),
    );
    for (name, value) in &request.headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&request.body);
    out
}

/// The request target of `path` at `target`: its path and query, with `target`'s base path.
fn request_target(target: &Target, path: &str) -> String {
    let uri = target.uri_for(path);
    let origin = target.scheme.len() + "://".len() + target.authority.len();
    uri[origin..].to_owned()
}

/// The request as HTTP/1.1 bytes: request line, `Host`, the other headers in order, blank line,
/// body. `Content-Length` always matches the body (added when the request was chunked).
pub fn raw(request: &Request, target: &Target) -> Vec<u8> {
    let mut out = Vec::with_capacity(request.body.len() + 1024);
    let line = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\n",
        request.method,
        request_target(target, &request.path),
        target.authority
    );
    out.extend_from_slice(line.as_bytes());
    let length = request.body.len().to_string();
    let mut has_length = false;
    for h in request.headers.iter().filter(|h| h.name != "host") {
        let value: &[u8] = if h.name == "content-length" {
            if has_length {
                continue;
            }
            has_length = true;
            length.as_bytes()
        } else {
            &h.value
        };
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if !has_length && !request.body.is_empty() {
        out.extend_from_slice(format!("content-length: {length}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&request.body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_request_with_crlf_or_lf() {
        for text in [
            "POST /hooks?x=1 HTTP/1.1\r\nHost: example.com\r\nX-A:  b c \r\n\r\n{\"a\":1}\n",
            "POST /hooks?x=1 HTTP/1.1\nHost: example.com\nX-A:  b c \n\n{\"a\":1}\n",
        ] {
            let request = parse(text.as_bytes()).unwrap();
            assert_eq!(request.method, "POST");
            assert_eq!(request.target, "/hooks?x=1");
            assert_eq!(request.header("x-a"), Some(&b"b c"[..]));
            assert_eq!(request.body, b"{\"a\":1}\n");
            assert_eq!(request.url(), "https://example.com/hooks?x=1");
        }
    }

    #[test]
    fn content_length_bounds_the_body() {
        let request = parse(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc\n").unwrap();
        assert_eq!(request.body, b"abc");
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc").unwrap_err(),
            ParseError::Body("Content-Length says 9 bytes, but only 3 follow the headers".into())
        );
        assert!(parse(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\nabc").is_err());
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        let text = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse(text).unwrap().body, b"abcde");
        assert!(parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab").is_err());
        assert!(parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err());
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            parse(b"\r\n  ").unwrap_err().to_string(),
            "line 1: the method is not a valid HTTP token"
        );
        assert_eq!(parse(b"").unwrap_err(), ParseError::Empty);
        assert_eq!(
            parse(b"POST /\r\n").unwrap_err().to_string(),
            "line 1: expected a request line like \"POST /webhooks HTTP/1.1\""
        );
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nHost: a\r\nno colon\r\n\r\n")
                .unwrap_err()
                .to_string(),
            "line 3: a header line needs a colon, as in \"Name: value\""
        );
        assert!(parse(b"POST / HTTP/1.1\r\nA: b\r\n c\r\n\r\n").is_err());
        assert!(parse(b"POST / HTTP/2\r\n\r\n").is_err());
    }

    #[test]
    fn absolute_targets_and_missing_host() {
        let request = parse(b"GET http://a.com/x HTTP/1.1\r\nHost: b.com\r\n\r\n").unwrap();
        assert_eq!(request.url(), "http://a.com/x");
        let request = parse(b"GET /x HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(request.url(), "/x");
    }

    #[test]
    fn write_then_parse_is_the_identity() {
        let request = RawRequest {
            method: "POST".into(),
            target: "/a?b=c".into(),
            version: "HTTP/1.1".into(),
            headers: vec![
                ("Host".into(), b"example.com".to_vec()),
                ("X-Bin".into(), vec![0xff, b'a', 0x80]),
                ("Content-Length".into(), b"4".to_vec()),
            ],
            body: b"\x00\r\n\xff".to_vec(),
        };
        assert_eq!(parse(&write(&request)).unwrap(), request);
    }

    #[test]
    fn debug_hides_header_values() {
        let request = parse(b"POST / HTTP/1.1\r\nX-Gitlab-Token: hunter2\r\n\r\n").unwrap();
        assert!(!format!("{request:?}").contains("hunter2"));
    }
}
