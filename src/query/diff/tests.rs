//! Diff tests: the data for JSON, form, binary and header changes, `--ignore`, and snapshots
//! of the rendered text (colors off), plus one with colors on.

use bytes::Bytes;
use relay_server::protocol::Header;
use serde_json::json;

use super::*;
use crate::exchange::{Request, Response};
use crate::inspect::Palette;
use std::time::Duration;

fn headers(pairs: &[(&str, &str)]) -> Vec<Header> {
    pairs
        .iter()
        .map(|(n, v)| Header {
            name: (*n).into(),
            value: Bytes::copy_from_slice(v.as_bytes()),
        })
        .collect()
}

/// The parts of an exchange that matter to a diff.
struct Owned {
    method: &'static str,
    target: &'static str,
    headers: Vec<Header>,
    body: Vec<u8>,
    status: Option<u16>,
    response_headers: Vec<Header>,
    response_body: Vec<u8>,
}

impl Owned {
    fn new(content_type: &str, body: &[u8]) -> Owned {
        Owned {
            method: "POST",
            target: "/webhooks/stripe",
            headers: headers(&[("content-type", content_type), ("x-dup", "1")]),
            body: body.to_vec(),
            status: Some(200),
            response_headers: headers(&[("content-type", "application/json")]),
            response_body: br#"{"received":true}"#.to_vec(),
        }
    }

    fn view(&self) -> Exchange {
        let request = Request {
            method: self.method.into(),
            path: self.target.into(),
            headers: self.headers.clone(),
            body: Bytes::from(self.body.clone()),
        };
        let outcome = match self.status {
            Some(status) => Outcome::Answered(Response {
                status,
                headers: self.response_headers.clone(),
                body: Bytes::from(self.response_body.clone()),
            }),
            None => Outcome::Failed("connection refused".into()),
        };
        Exchange::new(0, String::new(), request, outcome, Duration::ZERO)
    }
}

fn compare(a: &Owned, b: &Owned, ignore: &[&str]) -> Diff {
    let options = Options {
        ignore: ignore.iter().map(|p| Pointer::parse(p).unwrap()).collect(),
        ignore_headers: Vec::new(),
    };
    diff(&a.view(), &b.view(), &options)
}

fn text(diff: &Diff, color: bool) -> String {
    let mut out = Vec::new();
    render(diff, ["#1", "#2"], &Palette::new(color), &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

const INVOICE_A: &[u8] = br#"{"type":"invoice.paid","created":1718000000,"data":{"object":{"customer":"cus_42","amount_paid":2000,"discount":null,"lines":[{"id":"il_1"},{"id":"il_2"}],"a/b~c":1}}}"#;
const INVOICE_B: &[u8] = br#"{"type":"invoice.paid","created":1718000999,"data":{"object":{"customer":"cus_42","amount_paid":2100,"lines":[{"id":"il_1"}],"a/b~c":1.0,"coupon":"SPRING"}}}"#;

#[test]
fn json_bodies_differ_by_pointer() {
    let (a, mut b) = (
        Owned::new("application/json", INVOICE_A),
        Owned::new("application/json", INVOICE_B),
    );
    b.status = Some(500);
    let diff = compare(&a, &b, &[]);
    assert_eq!(
        diff.request_body,
        BodyDiff::Json {
            changes: vec![
                JsonChange::Changed {
                    pointer: "/created".into(),
                    a: json!(1718000000),
                    b: json!(1718000999)
                },
                JsonChange::Changed {
                    pointer: "/data/object/amount_paid".into(),
                    a: json!(2000),
                    b: json!(2100)
                },
                JsonChange::Removed {
                    pointer: "/data/object/discount".into(),
                    value: json!(null)
                },
                JsonChange::Removed {
                    pointer: "/data/object/lines/1".into(),
                    value: json!({"id": "il_2"})
                },
                JsonChange::Added {
                    pointer: "/data/object/coupon".into(),
                    value: json!("SPRING")
                },
            ],
            more: 0,
        },
        "1 and 1.0 are the same number; a/b~c is escaped and equal"
    );
    assert!(!diff.is_same());
    insta::assert_snapshot!("json", text(&diff, false));
    insta::assert_snapshot!("json_data", serde_json::to_string_pretty(&diff).unwrap());
}

#[test]
fn ignored_pointers_and_their_subtrees_are_skipped() {
    let (a, b) = (
        Owned::new("application/json", INVOICE_A),
        Owned::new("application/json", INVOICE_B),
    );
    let diff = compare(
        &a,
        &b,
        &["/created", "/data/object/lines", "/data/object/coupon"],
    );
    let BodyDiff::Json { changes, .. } = &diff.request_body else {
        panic!("{diff:?}");
    };
    let pointers: Vec<&str> = changes
        .iter()
        .map(|c| match c {
            JsonChange::Added { pointer, .. }
            | JsonChange::Removed { pointer, .. }
            | JsonChange::Changed { pointer, .. } => pointer.as_str(),
        })
        .collect();
    assert_eq!(
        pointers,
        ["/data/object/amount_paid", "/data/object/discount"]
    );
    let all = compare(&a, &b, &["/created", "/data"]);
    assert!(all.is_same(), "{all:?}");
    assert_eq!(text(&all, false), "--- #1\n+++ #2\nno differences\n");
    let spaced = Owned::new("application/json", b"{ \"a\" : [1, 2] }");
    let tight = Owned::new("application/json", b"{\"a\":[1,2]}");
    assert!(
        compare(&spaced, &tight, &[]).is_same(),
        "whitespace is not a difference"
    );
}

#[test]
fn form_bodies_differ_by_key() {
    let form = "application/x-www-form-urlencoded";
    let a = Owned::new(
        form,
        b"From=%2B15551234567&Body=hello&To=%2B15557654321&Tag=a&Tag=b",
    );
    let b = Owned::new(form, b"Body=bye&To=%2B15557654321&Tag=a&Tag=c&NumMedia=0");
    let diff = compare(&a, &b, &["/To"]);
    assert_eq!(
        diff.request_body,
        BodyDiff::Form {
            changes: vec![
                FormChange {
                    key: "From".into(),
                    a: vec!["+15551234567".into()],
                    b: vec![]
                },
                FormChange {
                    key: "Body".into(),
                    a: vec!["hello".into()],
                    b: vec!["bye".into()]
                },
                FormChange {
                    key: "Tag".into(),
                    a: vec!["a".into(), "b".into()],
                    b: vec!["a".into(), "c".into()]
                },
                FormChange {
                    key: "NumMedia".into(),
                    a: vec![],
                    b: vec!["0".into()]
                },
            ],
            more: 0,
        }
    );
    insta::assert_snapshot!("form", text(&diff, false));
}

#[test]
fn binary_bodies_differ_at_an_offset() {
    let bytes: Vec<u8> = (0..=255u8).cycle().take(700).collect();
    let mut other = bytes.clone();
    other[300] ^= 0xff;
    other.extend_from_slice(b"\x00\x01");
    let (a, b) = (
        Owned::new("application/octet-stream", &bytes),
        Owned::new("application/octet-stream", &other),
    );
    let diff = compare(&a, &b, &[]);
    assert_eq!(
        diff.request_body,
        BodyDiff::Bytes {
            a_len: 700,
            b_len: 702,
            first_difference: 300
        }
    );
    let prefix = Owned::new("text/plain", &bytes[..10]);
    assert_eq!(
        compare(&prefix, &a, &[]).request_body,
        BodyDiff::Bytes {
            a_len: 10,
            b_len: 700,
            first_difference: 10
        },
        "text that is not JSON or a form compares by bytes too"
    );
    insta::assert_snapshot!("binary", text(&diff, false));
}

#[test]
fn headers_request_lines_and_answers_differ() {
    let mut a = Owned::new("application/json", b"{}");
    let mut b = Owned::new("application/json", b"{}");
    a.headers = headers(&[
        ("content-type", "application/json"),
        ("x-dup", "1"),
        ("x-dup", "2"),
        ("x-old", "gone"),
        ("x-ctl", "a\x1b[2Jb"),
    ]);
    b.headers = headers(&[
        ("content-type", "application/json; charset=utf-8"),
        ("x-dup", "1"),
        ("x-ctl", "a\x1b[2Jc"),
        ("x-new", "here"),
    ]);
    b.target = "/webhooks/stripe?retry=1";
    b.method = "PUT";
    b.status = None;
    let diff = compare(&a, &b, &[]);
    assert_eq!(
        diff.request_headers,
        [
            HeaderChange::Changed {
                name: "content-type".into(),
                a: "application/json".into(),
                b: "application/json; charset=utf-8".into()
            },
            HeaderChange::Removed {
                name: "x-dup".into(),
                value: "2".into()
            },
            HeaderChange::Removed {
                name: "x-old".into(),
                value: "gone".into()
            },
            HeaderChange::Changed {
                name: "x-ctl".into(),
                a: "a\x1b[2Jb".into(),
                b: "a\x1b[2Jc".into()
            },
            HeaderChange::Added {
                name: "x-new".into(),
                value: "here".into()
            },
        ]
    );
    assert_eq!(
        diff.response.headers,
        [],
        "no answer: nothing to compare but the outcome"
    );
    let rendered = text(&diff, false);
    assert!(!rendered.contains('\x1b'), "{rendered}");
    insta::assert_snapshot!("headers", rendered);
    insta::assert_snapshot!("headers_data", serde_json::to_string_pretty(&diff).unwrap());
}

#[test]
fn colors_mark_removed_added_and_changed_lines() {
    let (a, b) = (
        Owned::new("application/json", INVOICE_A),
        Owned::new("application/json", INVOICE_B),
    );
    let diff = compare(&a, &b, &[]);
    let colored = text(&diff, true);
    assert!(
        colored.contains("\x1b[31m  - /data/object/discount: null\x1b[0m"),
        "{colored}"
    );
    assert!(
        colored.contains("\x1b[32m  + /data/object/coupon: \"SPRING\"\x1b[0m"),
        "{colored}"
    );
    assert!(
        colored.contains("\x1b[33m  ~ /created: 1718000000 → 1718000999\x1b[0m"),
        "{colored}"
    );
    assert!(!text(&diff, false).contains('\x1b'));
}

#[test]
fn long_lists_of_changes_are_cut() {
    let many = |offset: usize| {
        let items: Vec<usize> = (0..MAX_CHANGES + 5).map(|i| i + offset).collect();
        Owned::new(
            "application/json",
            serde_json::to_string(&items).unwrap().as_bytes(),
        )
    };
    let diff = compare(&many(0), &many(1), &[]);
    let BodyDiff::Json { changes, more } = &diff.request_body else {
        panic!("{diff:?}");
    };
    assert_eq!((changes.len(), *more), (MAX_CHANGES, 5));
    assert!(text(&diff, false).ends_with("  … 5 more changes\n"));
}
