//! Export tests: the formats' exact bytes; running the curl command is an end-to-end test.

use super::*;
use crate::exchange::{CaptureId, Response};
use bytes::Bytes;
use std::time::Duration;

fn header(name: &str, value: &[u8]) -> Header {
    Header {
        name: name.into(),
        value: Bytes::copy_from_slice(value),
    }
}

fn request(body: &[u8], headers: Vec<Header>) -> Request {
    Request {
        method: "POST".into(),
        path: "/hook?a=1&b=x%20y".into(),
        headers,
        body: Bytes::copy_from_slice(body),
    }
}

fn target() -> Target {
    "localhost:3000/base".parse().unwrap()
}

#[test]
fn raw_is_the_request_as_the_app_gets_it() {
    let headers = vec![
        header("host", b"relay.example.com"),
        header("x-dup", b"1"),
        header("content-length", b"3"),
        header("x-dup", b"\xff2"),
    ];
    let raw = raw(&request(b"a\x00b", headers), &target());
    assert_eq!(
        raw,
        b"POST /base/hook?a=1&b=x%20y HTTP/1.1\r\n\
          Host: localhost:3000\r\n\
          x-dup: 1\r\n\
          content-length: 3\r\n\
          x-dup: \xff2\r\n\
          \r\n\
          a\x00b"
    );
}

#[test]
fn raw_adds_a_content_length_to_a_chunked_request() {
    let raw = raw(&request(b"abcd", vec![]), &"3000".parse().unwrap());
    assert_eq!(
        raw,
        b"POST /hook?a=1&b=x%20y HTTP/1.1\r\nHost: localhost:3000\r\ncontent-length: 4\r\n\r\nabcd"
    );
}

#[test]
fn curl_quotes_for_sh_and_escapes_every_odd_byte() {
    let headers = vec![
        header("host", b"relay"),
        header("x-quote", b"it's"),
        header("x-empty", b""),
        header("x-ctl", b"a\x1bb"),
        header("user-agent", b"Stripe/1.0"),
    ];
    let command = curl(&request(b"%s\\'\x00\xff{}", headers), &target());
    assert_eq!(
        command,
        "printf '\\045s\\134\\047\\000\\377{}' | curl --path-as-is --globoff -X 'POST' \
         'http://localhost:3000/base/hook?a=1&b=x%20y' \\\n  \
         -H 'x-quote: it'\\''s' \\\n  \
         -H 'x-empty;' \\\n  \
         -H \"$(printf 'x-ctl: a\\033b')\" \\\n  \
         -H 'user-agent: Stripe/1.0' \\\n  \
         -H 'Accept:' \\\n  \
         -H 'Content-Type:' \\\n  \
         -H 'Expect:' \\\n  \
         --data-binary @-\n"
    );
}

#[test]
fn curl_splits_large_bodies_and_sends_none_when_empty() {
    let big = curl(&request(&vec![b'a'; PRINTF_CHUNK + 1], vec![]), &target());
    assert!(big.starts_with("{\n  printf 'aaaa"), "{big}");
    assert!(big.contains("'\n  printf 'a'\n} | curl "), "{big}");
    let empty = curl(&request(b"", vec![]), &target());
    assert!(!empty.contains("printf") && !empty.contains("--data-binary"));
    assert!(!empty.contains("Content-Type:"), "{empty}");
}

#[test]
fn no_printf_format_starts_with_a_dash() {
    // Issue 17: `printf '--boundary…'` is an option error; the body never reached curl.
    let multipart = curl(&request(b"--XyZ\r\n", vec![]), &target());
    assert!(
        multipart.starts_with("printf '\\055-XyZ\\015\\012' | curl "),
        "{multipart}"
    );
    let mut body = vec![b'a'; PRINTF_CHUNK];
    body.extend_from_slice(b"-n");
    let split = curl(&request(&body, vec![]), &target());
    assert!(split.contains("'\n  printf '\\055n'\n} | curl "), "{split}");
    let header = curl(&request(b"", vec![header("-x", b"\x01")]), &target());
    assert!(
        header.contains("-H \"$(printf '\\055x: \\001')\""),
        "{header}"
    );
}

fn capture(request: Request, outcome: Outcome) -> Exchange {
    let target = "http://localhost:3000".into();
    let duration = Duration::from_micros(2500);
    Exchange {
        id: Some(CaptureId(9)),
        ..Exchange::new(1_000, target, request, outcome, duration)
    }
}

#[test]
fn har_has_the_request_and_the_response() {
    let request = request(
        br#"{"a":1}"#,
        vec![
            header("host", b"relay"),
            header("content-type", b"application/json"),
        ],
    );
    let response = Outcome::Answered(Response {
        status: 302,
        headers: vec![header("location", b"/next")],
        body: Bytes::from_static(b"\xff\xfe"),
    });
    let har = har(&capture(request, response), &target());
    let entry = &har["log"]["entries"][0];
    assert_eq!(har["log"]["version"], "1.2");
    assert_eq!(entry["startedDateTime"], "1970-01-01T00:00:01.000Z");
    assert_eq!(entry["time"], 2.5);
    let request = &entry["request"];
    assert_eq!(
        request["url"],
        "http://localhost:3000/base/hook?a=1&b=x%20y"
    );
    assert_eq!(
        request["headers"],
        json!([
            {"name": "Host", "value": "localhost:3000"},
            {"name": "content-type", "value": "application/json"},
        ])
    );
    assert_eq!(
        request["queryString"],
        json!([{"name": "a", "value": "1"}, {"name": "b", "value": "x y"}])
    );
    assert_eq!(
        request["postData"],
        json!({"mimeType": "application/json", "text": "{\"a\":1}"})
    );
    let response = &entry["response"];
    assert_eq!(response["status"], 302);
    assert_eq!(response["statusText"], "Found");
    assert_eq!(response["redirectURL"], "/next");
    assert_eq!(
        response["content"],
        json!({"size": 2, "mimeType": "", "text": "//4=", "encoding": "base64"})
    );
}

#[test]
fn har_marks_binary_request_bodies_and_failures() {
    let har = har(
        &capture(
            request(b"\x00\x01", vec![]),
            Outcome::Failed("refused".into()),
        ),
        &target(),
    );
    let entry = &har["log"]["entries"][0];
    assert_eq!(
        entry["request"]["postData"],
        json!({"mimeType": "", "text": "AAE=", "_encoding": "base64"})
    );
    assert_eq!(entry["response"]["status"], 0);
    assert_eq!(entry["response"]["_error"], "refused");
}
