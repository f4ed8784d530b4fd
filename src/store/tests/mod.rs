//! Store tests: a temp file or `:memory:`, with the real writer thread, by concern. The
//! helpers here make the captures they store.

mod commits;
mod retention;
mod round_trip;
mod select;
mod upgrade;

pub(super) use upgrade::downgrade;

use super::*;
use crate::exchange::{Exchange, Header, Outcome, Request, Response};
use crate::query::Query;
use bytes::Bytes;

fn header(name: &str, value: &[u8]) -> Header {
    Header {
        name: name.into(),
        value: Bytes::copy_from_slice(value),
    }
}

/// The relay epoch of [`record`]'s deliveries.
pub(super) const EPOCH: u64 = 5;

pub(super) fn record(relay_id: Option<u64>, path: &str, status: Option<u16>) -> Exchange {
    let request = Request {
        method: "POST".into(),
        path: path.into(),
        headers: vec![
            header("x-dup", b"1"),
            header("x-bin", b"\xff\x00\x7f latin"),
            header("x-dup", b"2"),
        ],
        body: Bytes::from_static(b"\x00\x01\xfe\xffbody"),
    };
    let outcome = match status {
        Some(status) => Outcome::Answered(Response {
            status,
            headers: vec![header("set-cookie", b"a=1"), header("set-cookie", b"b=2")],
            body: Bytes::from_static(b"\xffanswer"),
        }),
        None => Outcome::Failed("connection refused".into()),
    };
    let target = "http://localhost:3000".into();
    let duration = Duration::from_micros(1234);
    Exchange {
        channel: Some("ch".into()),
        channel_url: relay_id.map(|_| "http://relay/ch".to_owned()),
        relay_id,
        relay_epoch: relay_id.map(|_| EPOCH),
        ..Exchange::new(now_ms(), target, request, outcome, duration)
    }
}

pub(super) async fn save(writer: &Writer, record: Exchange) -> CaptureId {
    writer.record(record).unwrap().await.unwrap().unwrap()
}

/// Capture `id` as it was recorded: without the id the store gave it.
fn stored(store: &Store, id: CaptureId) -> Exchange {
    Exchange {
        id: None,
        ..store.get(id).unwrap()
    }
}

pub(super) fn writer_at(path: &Path, retention: Retention) -> Writer {
    let (conn, moved) = open_or_replace(path).unwrap();
    assert!(moved.is_none());
    Writer::spawn(conn, path.to_owned(), retention).unwrap()
}
