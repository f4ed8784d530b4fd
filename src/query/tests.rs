//! Tests of the language: each field and operator against a subject, precedence, error
//! messages in full, and (in `props`) property tests of printing and positions.

mod props;

use std::borrow::Cow;
use std::cell::Cell;
use std::time::Duration;

use bytes::Bytes;
use relay_server::protocol::Header;

use super::*;
use crate::verify::Provider;

/// A subject with every fact settable, counting how often its body is read.
#[derive(Debug, Clone)]
pub(super) struct Fake {
    pub id: Option<i64>,
    pub received_at_ms: i64,
    pub method: String,
    pub target: String,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
    pub status: Option<u16>,
    pub duration: Option<Duration>,
    pub provider: Option<Provider>,
    pub event: Option<String>,
    pub verdict: Option<Verdict>,
    pub replay_of: Option<i64>,
    pub sent: bool,
    pub route: Option<String>,
    pub body_reads: Cell<usize>,
}

/// Now, for every test.
const NOW: i64 = 1_718_000_000_000;

impl Default for Fake {
    fn default() -> Fake {
        Fake {
            id: Some(12),
            received_at_ms: NOW - 60_000,
            method: "POST".into(),
            target: "/webhooks/stripe?live=1&name=a%20b&flag".into(),
            headers: vec![
                header("content-type", "application/json"),
                header("stripe-signature", "t=1,v1=abc"),
                header("x-dup", "one"),
                header("x-dup", "two"),
            ],
            body: br#"{"type":"invoice.paid","data":{"object":{"customer":"cus_42","amount_paid":2000,"lines":[{"id":"il_1"}],"paid":true,"note":null}}}"#.to_vec(),
            status: Some(500),
            duration: Some(Duration::from_millis(1500)),
            provider: Some(Provider::Stripe),
            event: Some("invoice.paid".into()),
            verdict: Some(Verdict::Valid),
            replay_of: None,
            sent: false,
            route: Some("billing".into()),
            body_reads: Cell::new(0),
        }
    }
}

pub(super) fn header(name: &str, value: &str) -> Header {
    Header {
        name: name.into(),
        value: Bytes::copy_from_slice(value.as_bytes()),
    }
}

impl Subject for Fake {
    fn id(&self) -> Option<i64> {
        self.id
    }
    fn received_at_ms(&self) -> i64 {
        self.received_at_ms
    }
    fn method(&self) -> &str {
        &self.method
    }
    fn target(&self) -> &str {
        &self.target
    }
    fn headers(&self) -> &[Header] {
        &self.headers
    }
    fn request_size(&self) -> u64 {
        self.body.len() as u64
    }
    fn request_body(&self) -> Option<Cow<'_, [u8]>> {
        self.body_reads.set(self.body_reads.get() + 1);
        Some(Cow::Borrowed(&self.body))
    }
    fn status(&self) -> Option<u16> {
        self.status
    }
    fn duration(&self) -> Option<Duration> {
        self.duration
    }
    fn provider(&self) -> Option<Provider> {
        self.provider
    }
    fn event_type(&self) -> Option<&str> {
        self.event.as_deref()
    }
    fn verdict(&self) -> Option<Verdict> {
        self.verdict
    }
    fn replay_of(&self) -> Option<i64> {
        self.replay_of
    }
    fn sent(&self) -> bool {
        self.sent
    }
    fn route(&self) -> Option<&str> {
        self.route.as_deref()
    }
}

fn query(text: &str) -> Query {
    Query::parse(text).unwrap_or_else(|e| panic!("{text}:\n{e}"))
}

/// Whether `text` matches the default [`Fake`] changed by `change`.
fn matches_with(text: &str, change: impl FnOnce(&mut Fake)) -> bool {
    let mut fake = Fake::default();
    change(&mut fake);
    query(text).matches_at(&fake, NOW)
}

fn matches(text: &str) -> bool {
    matches_with(text, |_| {})
}

/// Asserts which of `texts` match the default subject.
#[track_caller]
fn assert_matching(yes: &[&str], no: &[&str]) {
    for text in yes {
        assert!(matches(text), "{text} should match");
    }
    for text in no {
        assert!(!matches(text), "{text} should not match");
    }
}

#[test]
fn id_method_path_compare_and_glob() {
    assert_matching(
        &[
            "id:12",
            "id:>=12",
            "id:<13",
            "id:=12",
            "method:POST",
            "method:post",
            "method:P*",
        ],
        &["id:13", "id:>12", "method:GET", "method:\"\""],
    );
    assert_matching(
        &[
            "path:/webhooks/stripe",
            "path:/webhooks/*",
            "path:*stripe",
            "path:*",
        ],
        // The query is not part of the path.
        &["path:/webhooks", "path:*live*", "path:/Webhooks/*"],
    );
    assert!(matches_with("path:/", |f| f.target = "?a=1".into()));
    assert!(matches_with("path:/x", |f| f.target = "x".into()));
    assert!(!matches_with("id:12", |f| f.id = None));
}

#[test]
fn status_duration_and_size() {
    assert_matching(
        &[
            "status:500",
            "status:5xx",
            "status:>=400",
            "status:>499",
            "duration:>1s",
            "duration:<=1500ms",
            "duration:>=1.5s",
            "size:>100",
            "size:<1KiB",
        ],
        &[
            "status:200",
            "status:4xx",
            "status:<500",
            "status:error",
            "duration:>1500ms",
            "duration:<1s",
            "size:0",
        ],
    );
    assert!(matches_with("status:error", |f| f.status = None));
    assert!(!matches_with("status:>=100", |f| f.status = None));
    assert!(matches_with("size:0", |f| f.body.clear()));
    assert!(!matches_with("duration:>0us", |f| f.duration = None));
}

#[test]
fn provider_event_verdict_replay_sent_route() {
    assert_matching(
        &[
            "provider:stripe",
            "provider:STRIPE",
            "event:invoice.*",
            "event:*.paid",
            "verdict:valid",
            "replay:false",
            "sent:false",
            "route:billing",
            "route:bill*",
        ],
        &[
            "provider:github",
            "event:invoice",
            "event:Invoice.*",
            "verdict:invalid",
            "replay:true",
            "sent:true",
            "route:other",
        ],
    );
    assert!(matches_with("replay:true", |f| f.replay_of = Some(3)));
    assert!(matches_with("sent:true", |f| f.sent = true));
    assert!(!matches_with("sent:false", |f| f.sent = true));
    assert!(!matches_with("provider:*", |f| f.provider = None));
    assert!(!matches_with("verdict:valid", |f| f.verdict = None));
    assert!(!matches_with("route:*", |f| f.route = None));
}

#[test]
fn since_and_before_count_from_now_or_an_instant() {
    assert_matching(
        &[
            "since:2m",
            "since:60s",
            "before:30s",
            "since:2024-06-10T00:00:00Z",
            "before:2024-06-11T00:00:00+02:00",
        ],
        &["since:59s", "before:2m", "before:2024-06-10T00:00:00Z"],
    );
    // Since is inclusive, before is not.
    assert!(matches("since:1m") && !matches("before:1m"));
}

#[test]
fn headers_and_query_parameters() {
    assert_matching(
        &[
            "header.content-type:application/json",
            "header.Content-Type:application/*",
            "header.stripe-signature:*",
            "header.x-dup:two",
            "header.x-dup:one",
            "query.live:1",
            "query.name:\"a b\"",
            "query.flag:*",
            "query.flag:\"\"",
        ],
        &[
            "header.x-missing:*",
            "header.x-dup:three",
            "header.content-type:json",
            "query.live:2",
            "query.missing:*",
        ],
    );
    assert!(!matches_with("query.live:*", |f| f.target = "/x".into()));
}

#[test]
fn json_pointers_compare_numbers_as_numbers() {
    assert_matching(
        &[
            "json./data/object/customer:cus_42",
            "json./data/object/customer:cus_*",
            "json./data/object/amount_paid:2000",
            "json./data/object/amount_paid:2000.0",
            "json./data/object/amount_paid:2e3",
            "json./data/object/amount_paid:>1000",
            "json./data/object/amount_paid:<=2000",
            "json./data/object/lines/0/id:il_1",
            "json./data/object/paid:true",
            "json./data/object/note:null",
            "json./data/object:*",
            "json./type:invoice.paid",
            // A value that is not a number is a glob over the number's text.
            "json./data/object/amount_paid:20*",
        ],
        &[
            "json./data/object/customer:cus_43",
            "json./data/object/amount_paid:>2000",
            "json./data/object/customer:>1",
            "json./data/object/missing:*",
            "json./data/object:x",
            "json./data/object/lines/1/id:*",
        ],
    );
    // A body that is not JSON has no values: a NOT of a JSON term holds.
    assert!(matches_with("NOT json./a:*", |f| f.body = b"a=1".to_vec()));
    assert!(matches_with(r#"json./a:">x""#, |f| f.body = br#"{"a":">x"}"#.to_vec()));
    assert!(matches_with("json./a:2000", |f| f.body = br#"{"a":"2000"}"#.to_vec()));
}

#[test]
fn body_patterns_search_the_raw_bytes() {
    assert_matching(
        &[
            r#"body~"cus_\d+""#,
            r#"body~"\"paid\":true""#,
            "body~invoice",
            r#"body~"(?i)INVOICE""#,
        ],
        &[r#"body~"cus_\d{3}""#, "body~^invoice"],
    );
    assert!(matches_with(r#"body~"\xff""#, |f| f.body = b"\x00\xff".to_vec()));
}

#[test]
fn the_body_is_read_once_and_only_when_needed() {
    let fake = Fake::default();
    let q = query("json./type:invoice.paid json./data/object/paid:true body~paid");
    assert!(q.matches_at(&fake, NOW));
    assert_eq!(fake.body_reads.get(), 1, "one read for three body terms");

    let fake = Fake::default();
    // Written first, evaluated last: the status term decides alone.
    let q = query("json./type:invoice.paid status:200");
    assert!(!q.matches_at(&fake, NOW));
    assert_eq!(fake.body_reads.get(), 0);
    let q = query("json./type:x OR method:POST");
    assert!(q.matches_at(&fake, NOW));
    assert_eq!(fake.body_reads.get(), 0);
    assert_eq!(q.cost(), Cost::Json);
    assert_eq!(query("method:POST header.a:*").cost(), Cost::Headers);
}

#[test]
fn precedence_not_then_and_then_or() {
    let same = |a: &str, b: &str| assert_eq!(query(a).expr(), query(b).expr(), "{a} / {b}");
    same(
        "method:a OR method:b method:c",
        "method:a OR (method:b AND method:c)",
    );
    same("NOT method:a method:b", "(NOT method:a) AND method:b");
    same(
        "method:a method:b OR method:c",
        "(method:a AND method:b) OR method:c",
    );
    same("NOT NOT method:a", "NOT (NOT method:a)");
    same(
        "method:a and method:b or not method:c",
        "method:a AND method:b OR NOT method:c",
    );
    same("((method:a))", "method:a");
    assert!(
        matches!(query("method:a OR method:b method:c").expr(), Expr::Or(all) if all.len() == 2)
    );
    assert!(matches("NOT status:200 method:POST"));
    assert!(!matches("NOT (status:500 method:POST)"));
    assert!(matches("status:200 method:GET OR event:invoice.*"));
}

#[test]
fn expressions_print_in_canonical_form() {
    let canonical = |text: &str, printed: &str| assert_eq!(query(text).to_string(), printed);
    canonical(
        "status:5xx  event:invoice.*",
        "status:5xx AND event:invoice.*",
    );
    canonical(
        "a:b"
            .replace("a:b", "method:post or (path:/a path:/b)")
            .as_str(),
        "method:post OR path:/a AND path:/b",
    );
    canonical(
        "NOT (status:500 OR status:502)",
        "NOT (status:500 OR status:502)",
    );
    canonical(
        "(status:500 status:502) status:503",
        "(status:500 AND status:502) AND status:503",
    );
    canonical(
        "duration:>=1.5s size:>1048576",
        "duration:>=1500ms AND size:>1MiB",
    );
    canonical("Status:=500", "status:500");
    canonical("header.X-Test:*", "header.x-test:*");
    canonical(r#"json."/a:b":"x y""#, r#"json."/a:b":"x y""#);
    canonical(r#"body~"\"a\"\t""#, r#"body~"\"a\"\t""#);
    canonical(
        "since:2024-05-01T12:00:00+02:00",
        "since:2024-05-01T10:00:00Z",
    );
}

/// The error `text` gives, as printed.
fn error(text: &str) -> String {
    Query::parse(text).expect_err(text).to_string()
}

#[test]
fn errors_point_at_the_problem_and_say_what_was_expected() {
    assert_eq!(
        error("status:5xx AND (event:invoice.* OR"),
        "  status:5xx AND (event:invoice.* OR\n                                    ^ expected a term such as status:500, NOT or (, found the end of the expression"
    );
    assert_eq!(
        error("stauts:500"),
        format!(
            "  stauts:500\n  ^ expected a field: {}, found \"stauts\"",
            known_fields()
        )
    );
    assert_eq!(
        error("status:6xx"),
        "  status:6xx\n         ^ expected a status such as 500, 5xx, >=400 or error, found \"6xx\""
    );
    assert_eq!(
        error("(status:500"),
        "  (status:500\n             ^ expected AND, OR, or a ) to close the ( at column 1, found the end of the expression"
    );
    assert_eq!(
        error("status:500)"),
        "  status:500)\n            ^ expected AND, OR or the end of the expression, found a ) without its ("
    );
    assert_eq!(
        error("duration:1s"),
        "  duration:1s\n           ^ expected a comparison with a duration such as >1s or <=200ms, found \"1s\""
    );
    assert_eq!(
        error("invoice"),
        "  invoice\n  ^ expected a term such as status:500 (field:value), NOT or (, found \"invoice\""
    );
    assert_eq!(
        error("status 500"),
        "  status 500\n        ^ expected : after status, found a space"
    );
    assert_eq!(
        error("header:x"),
        "  header:x\n        ^ expected a key after header, as in header.NAME, found \":\""
    );
    assert_eq!(
        error("json.a/b:1"),
        "  json.a/b:1\n       ^ expected a JSON pointer such as /data/object/id, found \"a/b\""
    );
    assert_eq!(
        error("body:x"),
        "  body:x\n      ^ expected ~ after body, found \":\""
    );
    assert_eq!(
        error(r#"path:"/a"#),
        "  path:\"/a\n          ^ expected a \" to close the string opened at column 6, found the end of the expression"
    );
    assert_eq!(
        error(""),
        "  \n  ^ expected a term such as status:500, NOT or (, found the end of the expression"
    );
    assert_eq!(
        error("method:"),
        "  method:\n         ^ expected a value after method: (quote an empty one: \"\"), found the end of the expression"
    );
}

#[test]
fn errors_in_values_of_keyed_fields_and_regexes() {
    assert_eq!(
        error("header.a b:x"),
        "  header.a b:x\n          ^ expected a : after the key, found a space"
    );
    assert_eq!(
        error("json./a:>x"),
        "  json./a:>x\n          ^ expected a number after the comparison, such as >1000, found \">x\""
    );
    let regex = error("body~\"(\"");
    assert!(
        regex.starts_with("  body~\"(\"\n       ^ expected a regular expression ("),
        "{regex}"
    );
}

#[test]
fn control_characters_in_errors_are_spaces_and_the_caret_follows_characters() {
    assert_eq!(
        error("path:\"é\t\x1b\" status:x"),
        "  path:\"é  \" status:x\n                    ^ expected a status such as 500, 5xx, >=400 or error, found \"x\""
    );
    assert_eq!(
        error("\x1b:x"),
        format!(
            "  \u{20}:x\n  ^ expected a field: {}, found \"\\u{{1b}}\"",
            known_fields()
        )
    );
}

#[test]
fn backslashes_in_quotes_escape_only_quotes_backslashes_and_control_characters() {
    let body = |text: &str| match query(text).expr() {
        Expr::Term(Term::Body(pattern), _) => pattern.as_str().to_owned(),
        other => panic!("{other:?}"),
    };
    assert_eq!(body(r#"body~"cus_\d+""#), r"cus_\d+");
    assert_eq!(body(r#"body~"a\"b\\.""#), r#"a"b\."#);
    let path = |text: &str| match query(text).expr() {
        Expr::Term(Term::Path(glob), _) => glob.pattern().to_owned(),
        other => panic!("{other:?}"),
    };
    assert_eq!(path(r#"path:"\t\u{41}\u{zz}\q""#), "\tA\\u{zz}\\q");
    assert_eq!(body(r"body~cus_\d+"), r"cus_\d+");
}

#[test]
fn nesting_and_length_are_bounded() {
    let deep = "(".repeat(MAX_DEPTH + 1) + "method:a" + &")".repeat(MAX_DEPTH + 1);
    let e = Query::parse(&deep).unwrap_err();
    assert_eq!(e.position, MAX_DEPTH);
    assert_eq!(e.expected, "at most 64 levels of parentheses and NOTs");
    let nots = "NOT ".repeat(MAX_DEPTH) + "method:a";
    assert!(Query::parse(&nots).is_ok());
    let long = "method:a ".repeat(MAX_LEN / 9 + 1);
    let e = Query::parse(&long).unwrap_err();
    assert_eq!(e.expected, "an expression of at most 16384 bytes");
}

#[test]
fn routing_cannot_use_what_the_app_has_not_answered() {
    let ok = query("method:POST header.x:* json./a:1");
    assert_eq!(ok.check(Stage::Routing), Ok(()));
    let e = query("method:POST (status:500 OR path:/x)")
        .check(Stage::Routing)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "  method:POST (status:500 OR path:/x)\n               ^ expected a field known before the app answers (not status, duration or route), found status:500"
    );
    assert!(query("duration:>1s").check(Stage::Exchange).is_ok());
    let built = Query::term(Term::Duration(value::Compare {
        op: value::Op::Gt,
        value: Duration::from_secs(1),
    }));
    assert_eq!(built.check(Stage::Routing).unwrap_err().position, 0);
}

#[test]
fn the_readme_examples_read() {
    for text in [
        "status:5xx event:invoice.*",
        "json./data/object/customer:cus_42 since:1d",
        "header.stripe-signature:* NOT verdict:valid",
        "json./data/object/amount_paid:>10000 OR size:>1MiB",
        "path:/webhooks/* (method:PUT OR query.retry:*)",
        r#"body~"cus_\d+" before:2026-11-01T00:00:00Z"#,
        "status:error since:1h",
        r#"header.user-agent:"Stripe/1.0 (+https://stripe.com)""#,
        r#"json."/a:b":1"#,
    ] {
        query(text);
    }
}
