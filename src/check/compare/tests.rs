//! Comparison tests: what counts as a change, and how a verdict reads on a line and in JSON.

use bytes::Bytes;
use relay_server::protocol::Header;
use serde_json::json;

use super::*;
use crate::query::diff::parse_ignore;
use crate::query::value::Pointer;

fn header(name: &str, value: &str) -> Header {
    Header {
        name: name.into(),
        value: Bytes::copy_from_slice(value.as_bytes()),
    }
}

fn answer(status: u16, headers: &[Header], body: &str) -> Outcome {
    Outcome::Answered(crate::exchange::Response {
        status,
        headers: headers.to_vec(),
        body: Bytes::copy_from_slice(body.as_bytes()),
    })
}

fn failed(why: &str) -> Outcome {
    Outcome::Failed(why.to_owned())
}

fn pointer(text: &str) -> Ignore {
    parse_ignore(text).unwrap()
}

#[test]
fn volatile_headers_are_never_changes() {
    let before = [
        header("content-type", "application/json"),
        header("date", "Sun, 27 Dec 2026 00:00:54 GMT"),
        header("x-request-id", "a1"),
        header("content-length", "11"),
    ];
    let after = [
        header("content-type", "application/json"),
        header("date", "Sun, 27 Dec 2026 00:01:00 GMT"),
        header("x-request-id", "b2"),
        header("transfer-encoding", "chunked"),
    ];
    let verdict = compare(
        &answer(200, &before, r#"{"a": 1}"#),
        &answer(200, &after, r#"{"a":1.0}"#),
        &[],
        None,
    );
    assert!(verdict.is_same(), "{verdict:?}");
    assert_eq!(describe(&verdict), "same");
}

#[test]
fn a_changed_field_is_named_by_its_pointer_and_ignore_skips_it() {
    let headers = [header("content-type", "application/json")];
    let before = r#"{"data":{"amount":2000,"currency":"usd"}}"#;
    let after = r#"{"data":{"amount":2100,"currency":"usd"}}"#;
    let verdict = compare(
        &answer(200, &headers, before),
        &answer(200, &headers, after),
        &[],
        None,
    );
    assert_eq!(describe(&verdict), "changed: /data/amount 2000 → 2100");
    assert_eq!(
        serde_json::to_value(&verdict.changes).unwrap(),
        json!([{"part": "body", "path": "/data/amount", "before": 2000, "after": 2100}])
    );
    let ignored = compare(
        &answer(200, &headers, before),
        &answer(200, &headers, after),
        &[pointer("/data/amount")],
        None,
    );
    assert!(ignored.is_same());
}

#[test]
fn status_first_then_headers_then_body_and_a_count_past_three() {
    let before = [header("x-version", "1")];
    let after = [header("x-version", "2"), header("x-new", "yes")];
    let verdict = compare(
        &answer(200, &before, r#"{"a":1,"b":2}"#),
        &answer(500, &after, r#"{"a":2,"c":3}"#),
        &[],
        None,
    );
    assert_eq!(
        describe(&verdict),
        "changed: status 200 → 500, header x-version 1 → 2, header x-new (none) → yes (and 3 more)"
    );
    let json = serde_json::to_value(&verdict.changes).unwrap();
    assert_eq!(
        json[0],
        json!({"part": "status", "before": 200, "after": 500})
    );
    assert_eq!(
        json[2],
        json!({"part": "header", "name": "x-new", "after": "yes"})
    );
    assert_eq!(json[4], json!({"part": "body", "path": "/b", "before": 2}));
    let quiet = compare(
        &answer(200, &before, "{}"),
        &answer(200, &after, "{}"),
        &[pointer("header.x-version"), pointer("header.X-New")],
        None,
    );
    assert!(quiet.is_same(), "{quiet:?}");
}

#[test]
fn no_answer_is_a_change_said_first() {
    let verdict = compare(
        &answer(200, &[], "ok"),
        &failed("could not connect to localhost:3000: connection refused"),
        &[],
        None,
    );
    assert_eq!(
        describe(&verdict),
        "changed: no answer (could not connect to localhost:3000: connection refused)"
    );
    let both = compare(&failed("x"), &failed("x"), &[], None);
    assert!(both.is_same());
}

#[test]
fn a_fixture_compares_only_the_headers_it_lists() {
    let expected = [header("content-type", "text/plain")];
    let got = [
        header("content-type", "text/plain"),
        header("server", "app/2"),
    ];
    let only = vec!["content-type".to_owned()];
    let same = compare(
        &answer(200, &expected, "ok"),
        &answer(200, &got, "ok"),
        &[],
        Some(&only),
    );
    assert!(same.is_same(), "{same:?}");
    let everything = compare(
        &answer(200, &expected, "ok"),
        &answer(200, &got, "ok"),
        &[],
        None,
    );
    assert_eq!(
        describe(&everything),
        "changed: header server (none) → app/2"
    );
    let none: Vec<String> = Vec::new();
    let other_type = [header("content-type", "text/html")];
    let unlisted = compare(
        &answer(200, &[], "ok"),
        &answer(200, &other_type, "ok"),
        &[],
        Some(&none),
    );
    assert!(unlisted.is_same(), "a fixture without headers checks none");
}

#[test]
fn bodies_that_are_not_json_compare_as_bytes_and_forms_by_key() {
    let verdict = compare(
        &answer(200, &[], "hello"),
        &answer(200, &[], "help"),
        &[],
        None,
    );
    assert_eq!(
        describe(&verdict),
        "changed: body 5 bytes → 4 bytes (first difference at byte 3)"
    );
    let form = [header("content-type", "application/x-www-form-urlencoded")];
    let verdict = compare(
        &answer(200, &form, "a=1&b=x&b=y"),
        &answer(200, &form, "a=2&b=x&b=y"),
        &[],
        None,
    );
    assert_eq!(describe(&verdict), r#"changed: /a "1" → "2""#);
    let long = format!("{{\"a\":\"{}\"}}", "x".repeat(200));
    let verdict = compare(
        &answer(200, &[], "{\"a\":1}"),
        &answer(200, &[], &long),
        &[],
        None,
    );
    let line = describe(&verdict);
    assert!(line.ends_with("…"), "{line}");
    assert!(line.chars().count() < 100, "{line}");
}

#[test]
fn ignore_takes_pointers_and_header_names_only() {
    assert_eq!(
        pointer("/a/b"),
        Ignore::Pointer(Pointer::parse("/a/b").unwrap())
    );
    assert_eq!(
        pointer("header.X-Request-Id"),
        Ignore::Header("x-request-id".into())
    );
    assert_eq!(
        parse_ignore("data").unwrap_err(),
        "\"data\" is neither a JSON pointer (/data/object/id, or \"\" for the whole body) nor header.NAME"
    );
    assert!(parse_ignore("header.bad name").is_err());
}
