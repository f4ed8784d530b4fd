//! Selecting captures with `--where`: the columns SQLite compares, then headers and bodies
//! (in rows and in files) read only for the rows that need them.

use super::*;
use crate::exchange::{Provider, Recognized, Signature, Verdict};

#[tokio::test]
async fn filters_select_by_status_event_path_and_age() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let writer = writer_at(&path, Retention::default());
    let mut paid = record(None, "/stripe/a", Some(200));
    paid.event = Some(Recognized {
        provider: Provider::Stripe,
        event_type: Some("invoice.paid".into()),
        event_id: None,
        occurred_at: None,
        object_id: None,
    });
    let mut old = record(None, "stripe?x=1", Some(503));
    old.received_at_ms -= 7_200_000;
    let mut replay = record(None, "/github", Some(404));
    replay.replay_of = Some(CaptureId(1));
    let mut sent = record(None, "/github", None);
    sent.sent = true;
    for r in [paid, old, replay, sent] {
        save(&writer, r).await;
    }
    let store = Store::open(&path).unwrap();
    let ids = |text: &str| store.ids(Some(&Query::parse(text).unwrap())).unwrap();
    assert_eq!(ids("status:5xx"), [2]);
    assert_eq!(ids("status:200"), [1]);
    assert_eq!(ids("status:4xx"), [3]);
    assert_eq!(ids("status:error"), [4]);
    assert_eq!(ids("NOT status:error"), [1, 2, 3]);
    assert_eq!(ids("event:invoice.paid"), [1]);
    assert_eq!(
        ids("NOT event:invoice.paid"),
        [2, 3, 4],
        "no event is not invoice.paid"
    );
    assert_eq!(
        ids("path:/stripe*"),
        [1, 2],
        "a stored path without '/' matches too"
    );
    assert_eq!(ids("path:/git%*"), Vec::<i64>::new());
    assert_eq!(
        ids("path:/stripe"),
        [2],
        "the query is not part of the path"
    );
    assert_eq!(ids("since:1h replay:false"), [1, 4]);
    assert_eq!(ids("replay:true OR status:503"), [2, 3]);
    assert_eq!(ids("sent:true"), [4]);
    assert_eq!(ids("sent:false status:5xx"), [2]);
    assert_eq!(ids("route:*"), Vec::<i64>::new());
    assert_eq!(ids("NOT route:*"), [1, 2, 3, 4]);
    let newest: Vec<CaptureId> = store.list(None, 2).unwrap().iter().map(|s| s.id).collect();
    assert_eq!(newest, [4, 3]);
}

/// Headers and bodies in the rows and in files, read only for rows the columns kept.
#[tokio::test]
async fn headers_and_bodies_are_matched_in_rows_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let writer = writer_at(&path, Retention::default());
    let mut small = record(None, "/a", Some(200));
    small.request.body = Bytes::from_static(br#"{"data":{"customer":"cus_42","amount":2000}}"#);
    small.signature = Some(Signature {
        provider: Some(Provider::Stripe),
        assumed: false,
        verdict: Verdict::Valid,
        reason: None,
    });
    let mut large = record(None, "/b", Some(500));
    let mut body = br#"{"data":{"customer":"cus_7","amount":99},"pad":""#.to_vec();
    body.resize(bodies::FILE_FROM + 10, b'x');
    body.extend_from_slice(b"\"}");
    large.request.body = Bytes::from(body);
    for r in [small, large] {
        save(&writer, r).await;
    }
    assert!(
        bodies::dir_of(&path).join("2.request").exists(),
        "the large body is a file"
    );
    let store = Store::open(&path).unwrap();
    let ids = |text: &str| store.ids(Some(&Query::parse(text).unwrap())).unwrap();
    assert_eq!(ids("json./data/customer:cus_42"), [1]);
    assert_eq!(ids("json./data/amount:<1000"), [2]);
    assert_eq!(ids("json./data/amount:>0 status:5xx"), [2]);
    assert_eq!(ids("header.x-dup:2 header.x-bin:*latin"), [1, 2]);
    assert_eq!(ids("NOT header.x-dup:3"), [1, 2]);
    assert_eq!(ids(r#"body~"cus_\d{2}""#), [1]);
    assert_eq!(ids("size:>256KiB"), [2]);
    assert_eq!(ids("size:<100"), [1]);
    assert_eq!(ids("provider:Stripe verdict:valid"), [1]);
    assert_eq!(ids("NOT verdict:valid"), [2]);
    assert_eq!(ids("verdict:invalid"), Vec::<i64>::new());
    let listed = store
        .list(Some(&Query::parse("json./data:*").unwrap()), 1)
        .unwrap();
    assert_eq!(
        listed.iter().map(|s| s.id).collect::<Vec<_>>(),
        [2],
        "newest first, limited"
    );
}
