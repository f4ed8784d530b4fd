//! Snapshots of what `hooks listen` prints for people: colors off, width 80, the local time
//! filtered out. Each case is one kind of webhook a developer meets.

use std::time::Duration;

use bytes::Bytes;
use hooks::exchange::{CaptureId, Exchange, Outcome, Request, Response};
use hooks::inspect::{print, BodyStyle, Event, History, OutputOptions, Palette, Print, Redactor};
use relay_server::protocol::Header;

/// Asserts a snapshot with the local time of day replaced, so it holds in every time zone.
macro_rules! assert_output {
    ($name:expr, $text:expr) => {
        insta::with_settings!({filters => vec![(r"\b\d\d:\d\d:\d\d\b", "[TIME]")]}, {
            insta::assert_snapshot!($name, $text);
        });
    };
}

fn headers(pairs: &[(&str, &str)]) -> Vec<Header> {
    pairs
        .iter()
        .map(|(name, value)| Header {
            name: name.to_string(),
            value: Bytes::copy_from_slice(value.as_bytes()),
        })
        .collect()
}

fn exchange(id: u64, path: &str, request: Vec<Header>, body: impl Into<Bytes>) -> Exchange {
    let body = body.into();
    let request = Request {
        method: "POST".into(),
        path: path.into(),
        headers: request,
        body,
    };
    let answer = Outcome::Answered(Response {
        status: 200,
        headers: headers(&[("content-type", "text/plain"), ("content-length", "2")]),
        body: Bytes::from_static(b"ok"),
    });
    let duration = Duration::from_micros(12_400);
    Exchange {
        id: Some(CaptureId(id as i64)),
        relay_id: Some(id),
        event: hooks::verify::recognize(&request.headers, &request.body),
        ..Exchange::new(1_764_182_862_000, String::new(), request, answer, duration)
    }
}

fn options(print_letters: &str) -> OutputOptions {
    OutputOptions {
        json: false,
        palette: Palette::new(false),
        width: 80,
        print: print_letters.parse::<Print>().expect("valid letters"),
        body: BodyStyle {
            max_lines: 40,
            palette: Palette::new(false),
            redactor: Redactor {
                show_secrets: false,
                secrets: vec!["whsec_the_real_secret".into()],
            },
        },
    }
}

/// Renders exchanges in order through one printer history, as `listen` does.
fn render(exchanges: Vec<Exchange>, options: &OutputOptions) -> String {
    let mut history = History::default();
    let mut out = Vec::new();
    let mut err = Vec::new();
    for exchange in exchanges {
        let event = Event::Request(Box::new(exchange));
        print(&event, options, &mut history, &mut out, &mut err).expect("write to memory");
    }
    String::from_utf8(out).expect("rendered output is UTF-8")
}

fn stripe_exchange(id: &str, created: i64) -> Exchange {
    let body = format!(
        r#"{{"id":"{id}","object":"event","type":"customer.subscription.updated","created":{created},"data":{{"object":{{"id":"sub_1","status":"active"}}}}}}"#
    );
    exchange(
        1,
        "/webhooks/stripe",
        headers(&[
            ("content-type", "application/json; charset=utf-8"),
            (
                "stripe-signature",
                "t=1764182862,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd",
            ),
        ]),
        body,
    )
}

#[test]
fn stripe_event() {
    let text = render(
        vec![stripe_exchange("evt_1QaZ", 1_764_182_800)],
        &options("HB"),
    );
    assert_output!("stripe_event", text);
}

#[test]
fn github_pull_request_opened() {
    let body = r#"{"action":"opened","number":42,"pull_request":{"title":"Fix the flux capacitor","user":{"login":"octocat"}}}"#;
    let request = headers(&[
        ("content-type", "application/json"),
        ("x-github-event", "pull_request"),
        ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        (
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        ),
    ]);
    let text = render(vec![exchange(2, "/github", request, body)], &options("HB"));
    assert_output!("github_pull_request_opened", text);
}

#[test]
fn twilio_form_post() {
    let body = "AccountSid=AC123&MessageSid=SM456&From=%2B15551234567&To=%2B15557654321&Body=Hello+%F0%9F%91%8B+there&MessageStatus=received";
    let request = headers(&[
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-twilio-signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
    ]);
    let text = render(vec![exchange(3, "/sms", request, body)], &options("B"));
    assert_output!("twilio_form_post", text);
}

#[test]
fn binary_body() {
    let body: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let request = headers(&[("content-type", "application/octet-stream")]);
    let text = render(vec![exchange(4, "/upload", request, body)], &options("B"));
    assert_output!("binary_body", text);
}

#[test]
fn one_megabyte_json_body_is_cut() {
    let items: Vec<String> = (0..20_000)
        .map(|i| format!(r#"{{"sku":"item-{i:05}","qty":{}}}"#, i % 7))
        .collect();
    let body = format!(
        r#"{{"id":"evt_big","object":"event","type":"order.created","data":{{"object":{{"id":"ord_1","lines":[{}]}}}}}}"#,
        items.join(",")
    );
    assert!(
        body.len() > 500_000,
        "the body should be large: {}",
        body.len()
    );
    let request = headers(&[("content-type", "application/json")]);
    let text = render(vec![exchange(5, "/big", request, body)], &options("B"));
    assert_output!("one_megabyte_json_body_is_cut", text);
}

#[test]
fn duplicate_event() {
    let first = stripe_exchange("evt_dup", 1_764_182_800);
    let mut again = stripe_exchange("evt_dup", 1_764_182_800);
    again.id = Some(CaptureId(2));
    let mut older = stripe_exchange("evt_older", 1_764_182_700);
    older.id = Some(CaptureId(3));
    let text = render(vec![first, again, older], &options(""));
    assert_output!("duplicate_event", text);
}

/// Issue 17: a request the relay sent before, that hooks has no record of handling, is flagged
/// where the duplicate notes go.
#[test]
fn redelivered_after_a_restart() {
    let mut e = stripe_exchange("evt_again", 1_764_182_800);
    e.redelivered = true;
    let text = render(vec![e], &options(""));
    assert_output!("redelivered_after_a_restart", text);
}

#[test]
fn app_answers_500() {
    let mut e = exchange(
        6,
        "/webhooks",
        headers(&[("content-type", "application/json")]),
        r#"{"ok":false}"#,
    );
    e.outcome = Outcome::Answered(Response {
        status: 500,
        headers: headers(&[("content-type", "application/json")]),
        body: Bytes::from_static(br#"{"error":"database is locked"}"#),
    });
    let text = render(vec![e], &options("b"));
    assert_output!("app_answers_500", text);
}

#[test]
fn app_down() {
    let mut e = exchange(7, "/webhooks", headers(&[]), "{}");
    e.outcome = Outcome::Failed("could not connect to localhost:3000: connection refused".into());
    e.hint = Some("is your app listening on 3000?".into());
    let text = render(vec![e], &options(""));
    assert_output!("app_down", text);
}

/// Issue 22: the route after the capture number, a copy marked, and the reason hooks answered
/// `404` itself when no route matched.
#[test]
fn routed_copied_and_unrouted() {
    let mut routed = stripe_exchange("evt_routed", 1_764_182_800);
    routed.route = Some("billing".into());
    let mut copy = exchange(2, "/github", headers(&[("x-github-event", "push")]), "{}");
    copy.route = Some("ci-mirror".into());
    copy.copy = true;
    let mut unrouted = exchange(3, "/nope", headers(&[]), "{}");
    unrouted.outcome = Outcome::Answered(Response {
        status: 404,
        headers: headers(&[("content-type", "text/plain; charset=utf-8")]),
        body: Bytes::from_static(b"hooks: no route matches POST /nope\n"),
    });
    unrouted.hint = Some(
        "no route matches POST /nope (tried billing, stripe) and there is no default target".into(),
    );
    let text = render(vec![routed, copy, unrouted], &options(""));
    assert_output!("routed_copied_and_unrouted", text);
}

#[test]
fn escape_sequences_are_neutralised() {
    let body = "clear:\x1b[2J bell:\x07 title:\x1b]0;pwned\x07 csi:\u{9b}31m cursor:\x1b[10;10H";
    let request = headers(&[
        ("content-type", "text/plain"),
        ("x-evil", "\x1b[31mred\x1b[0m"),
        ("authorization", "Bearer whsec_the_real_secret"),
    ]);
    let text = render(
        vec![exchange(8, "/evil\x1b[2J", request, body)],
        &options("HB"),
    );
    assert!(
        !text.contains('\x1b'),
        "no raw escape reaches the terminal: {text:?}"
    );
    assert!(
        !text.contains('\x07'),
        "no bell reaches the terminal: {text:?}"
    );
    assert!(
        !text.contains('\u{9b}'),
        "no C1 control reaches the terminal: {text:?}"
    );
    assert!(
        !text.contains("whsec_the_real_secret"),
        "the --secret never shows: {text}"
    );
    assert_output!("escape_sequences_are_neutralised", text);
}

#[test]
fn colors_on_emit_ansi_and_off_emit_none() {
    let mut colored = options("HB");
    colored.palette = Palette::new(true);
    colored.body.palette = Palette::new(true);
    let with = render(vec![stripe_exchange("evt_c", 1)], &colored);
    assert!(
        with.contains("\x1b[32m200 OK\x1b[0m"),
        "status colored by class: {with:?}"
    );
    assert!(
        with.contains("\x1b[34m\"id\"\x1b[0m"),
        "JSON keys colored: {with:?}"
    );
    let without = render(vec![stripe_exchange("evt_c", 1)], &options("HB"));
    assert!(!without.contains('\x1b'), "{without:?}");
}
