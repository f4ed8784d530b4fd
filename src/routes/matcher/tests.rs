//! The decision and the path rewrite.

use bytes::Bytes;

use super::*;
use crate::routes::parse;

fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Request {
    Request {
        method: method.into(),
        path: path.into(),
        headers: headers
            .iter()
            .map(|(n, v)| Header {
                name: (*n).into(),
                value: Bytes::copy_from_slice(v.as_bytes()),
            })
            .collect(),
        body: Bytes::copy_from_slice(body.as_bytes()),
    }
}

const ROUTES: &str = r#"
[[route]]
name = "billing"
match = "path:/stripe* AND event:invoice.*"
to = "4000/billing"

[[route]]
name = "stripe"
match = "path:/stripe*"
to = "3000"
strip_prefix = "/stripe"

[[route]]
name = "mirror"
match = "header.x-github-event:push"
to = "5000"
mode = "copy"

[[route]]
name = "everything"
match = "path:*"
to = "6000"
mode = "copy"
"#;

fn decision(request: &Request) -> (Option<&'static str>, Vec<&'static str>) {
    let routes = Box::leak(Box::new(parse(ROUTES).routes));
    let subject = Incoming::new(request, request.body.len() as u64, 0, |_| None);
    let decision = decide(routes, &subject);
    (
        decision.primary.map(|i| routes[i].name.as_str()),
        decision
            .copies
            .iter()
            .map(|&i| routes[i].name.as_str())
            .collect(),
    )
}

#[test]
fn the_first_primary_and_every_copy_take_it() {
    let invoice = request(
        "POST",
        "/stripe/hook",
        &[("stripe-signature", "t=1,v1=00")],
        r#"{"id":"evt_1","object":"event","type":"invoice.paid","data":{"object":{}}}"#,
    );
    assert_eq!(decision(&invoice), (Some("billing"), vec!["everything"]));
    let customer = request(
        "POST",
        "/stripe/hook",
        &[("stripe-signature", "t=1,v1=00")],
        r#"{"id":"evt_2","object":"event","type":"customer.created","data":{"object":{}}}"#,
    );
    assert_eq!(decision(&customer), (Some("stripe"), vec!["everything"]));
    let push = request("POST", "/github", &[("x-github-event", "push")], "{}");
    assert_eq!(decision(&push), (None, vec!["mirror", "everything"]));
}

#[test]
fn only_matches_that_read_the_body_wait_for_it() {
    let routes = parse(ROUTES).routes;
    assert!(needs_body(&routes), "event: is in the body");
    assert!(!needs_body(&routes[1..]), "paths and headers are not");
}

#[test]
fn the_prefix_comes_off_at_a_segment_boundary() {
    let stripped = |target: &str| strip(target, Some("/stripe")).into_owned();
    assert_eq!(stripped("/stripe/x?a=1"), "/x?a=1");
    assert_eq!(stripped("/stripe?a=1"), "?a=1");
    assert_eq!(stripped("/stripe"), "");
    assert_eq!(stripped("stripe/x"), "/x");
    assert_eq!(stripped("/stripes/x"), "/stripes/x");
    assert_eq!(stripped("/other"), "/other");
    assert_eq!(strip("/stripe/x", None), "/stripe/x");
}

#[test]
fn an_unrouted_request_is_told_which_routes_were_tried() {
    let routes = parse(ROUTES).routes;
    assert_eq!(
        unrouted_reason(&routes, "POST", "/github?x=1"),
        "no route matches POST /github (tried billing, stripe) and there is no default target"
    );
    assert_eq!(
        unrouted_reason(&routes[2..], "GET", "\u{1b}[2J"),
        "no route matches GET /[2J (there are no primary routes) and there is no default target"
    );
}
