//! One conformance suite for every backend, written against the [`Backend`] and [`Subscription`]
//! traits: SQLite in a temporary folder, the queue in memory, and a node of a cluster on a real
//! `nats-server -js` (started per test on a free port; see `crate::testing`). Each test runs
//! once per backend; those about restarts only for the durable ones.

use std::time::Duration;

use bytes::Bytes;

use super::{Backend, BackendError, Backends, Claim, Local, Nats, Subscription};
use crate::budget::Budget;
use crate::channel::{Reply, Settings, Taken};
use crate::protocol::{self, Offline, RelayMessage, Request, RequestId, Respond};
use crate::testing::NatsServer;
use crate::tokens::Tokens;

/// Longest any step of a test may take.
const STEP: Duration = Duration::from_secs(20);

/// Which backend a test runs on.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Sqlite,
    Memory,
    Nats,
}

/// A backend's store, which outlives the backend opened on it (a restart opens it again).
struct Store {
    kind: Kind,
    dir: tempfile::TempDir,
    nats: Option<NatsServer>,
}

impl Store {
    async fn new(kind: Kind) -> Store {
        let nats = match kind {
            Kind::Nats => Some(NatsServer::start().await),
            _ => None,
        };
        Store {
            kind,
            dir: tempfile::tempdir().unwrap(),
            nats,
        }
    }

    /// Opens the backend with at most `max_queued` requests per channel.
    async fn open(&self, max_queued: usize) -> Backends {
        let budget = Budget::new(256 << 20);
        match self.kind {
            Kind::Sqlite | Kind::Memory => {
                let dir = (self.kind == Kind::Sqlite).then(|| self.dir.path());
                // The store thread of a backend just dropped may still hold the file's lock.
                for _ in 0..100 {
                    match Local::open(dir, settings(), budget.clone(), max_queued) {
                        Ok((local, _)) => return Backends::Local(local),
                        Err(crate::queue::QueueError::Locked(_)) => {
                            tokio::time::sleep(Duration::from_millis(20)).await
                        }
                        Err(e) => panic!("open the queue: {e}"),
                    }
                }
                panic!("the queue stayed locked");
            }
            Kind::Nats => {
                let server = self.nats.as_ref().expect("a NATS store has a server");
                let nats = crate::config::NatsSettings {
                    urls: vec![server.url.clone()],
                    creds: None,
                    token_file: None,
                    replicas: 1,
                };
                let limits = super::nats::Limits {
                    max_queued,
                    retention: Duration::from_secs(3600),
                    replicas: 1,
                };
                Backends::Nats(Nats::connect(&nats, limits, budget).await.unwrap())
            }
        }
    }

    fn durable(&self) -> bool {
        self.kind != Kind::Memory
    }
}

fn settings() -> Settings {
    Settings {
        respond: Respond::App,
        timeout: Duration::from_secs(10),
        offline: Offline::Queue,
    }
}

fn claim<'a>(name: &'a str, licence: Option<&'a crate::tokens::Licence<'a>>) -> Claim<'a> {
    Claim {
        name,
        settings: settings(),
        licence,
        stream_bodies: false,
        max_in_flight: 64,
        outbox_bytes: 4 << 20,
    }
}

/// A request frame as the cluster's webhook path makes it: id 0, for the backend to give.
fn frame(target: &str, body: &[u8]) -> Bytes {
    let request = Request {
        id: RequestId(0),
        received_at_ms: 1,
        method: "POST".into(),
        target: target.into(),
        headers: vec![],
        body_len: None,
        redelivered: false,
    };
    protocol::encode(&RelayMessage::Request(request), body)
}

/// Attaches to `name` and detaches again: the channel is then known, with no session.
async fn claim_and_leave<B: Backend>(backend: &B, name: &str) {
    let subscription = backend.attach(claim(name, None)).await.unwrap();
    subscription.detach().await;
}

/// The next `n` requests delivered to `subscription`, while its delivery runs.
async fn receive<S: Subscription>(subscription: &S, n: usize) -> Vec<(Request, Bytes)> {
    let reading = async {
        let mut got = Vec::new();
        while got.len() < n {
            let mut taken = Taken::default();
            let frame = subscription.attached().outbox.recv(&mut taken).await;
            subscription.attached().outbox.written(taken);
            match protocol::decode::<RelayMessage>(frame).unwrap() {
                (RelayMessage::Request(request), body) => got.push((request, body)),
                (other, _) => panic!("not a request: {other:?}"),
            }
        }
        got
    };
    let delivering = async {
        subscription.deliver().await;
        panic!("delivery ended");
    };
    tokio::time::timeout(STEP, async {
        tokio::select! {
            got = reading => got,
            () = delivering => unreachable!(),
        }
    })
    .await
    .expect("requests delivered in time")
}

async fn send<B: Backend>(backend: &B, name: &str, target: &str) -> RequestId {
    let sent = tokio::time::timeout(STEP, backend.send(name, frame(target, b"x"), false));
    sent.await.expect("stored in time").unwrap().id
}

async fn ids_are_unique_and_increasing_and_the_epoch_stays(kind: Kind) {
    let store = Store::new(kind).await;
    let backend = store.open(100).await;
    claim_and_leave(&backend, "ch").await;
    let epoch = backend.epoch();
    assert_ne!(epoch, 0);
    let mut last = RequestId(0);
    for i in 0..5 {
        let id = send(&backend, "ch", &format!("/{i}")).await;
        assert!(id > last, "{id} after {last}");
        last = id;
    }
    drop(backend);
    if store.durable() {
        let backend = store.open(100).await;
        assert_eq!(backend.epoch(), epoch, "the epoch is the store's");
        let id = send(&backend, "ch", "/after").await;
        assert!(id > last, "{id} after a restart, after {last}");
    }
}

async fn requests_wait_in_order_and_come_again_until_acknowledged(kind: Kind) {
    let store = Store::new(kind).await;
    let backend = store.open(100).await;
    claim_and_leave(&backend, "ch").await;
    let view = backend.channel("ch").await.unwrap().expect("claimed");
    assert!(!view.attached);
    let ids = [
        send(&backend, "ch", "/1").await,
        send(&backend, "ch", "/2").await,
        send(&backend, "ch", "/3").await,
    ];
    let subscription = backend.attach(claim("ch", None)).await.unwrap();
    assert_eq!(subscription.queued(), 3);
    assert!(backend.channel("ch").await.unwrap().unwrap().attached);
    let got = receive(&subscription, 3).await;
    let targets: Vec<&str> = got.iter().map(|(r, _)| r.target.as_str()).collect();
    assert_eq!(targets, ["/1", "/2", "/3"]);
    assert_eq!(got.iter().map(|(r, _)| r.id).collect::<Vec<_>>(), ids);
    assert_eq!(got[0].1, "x");
    subscription.ack(ids[0]);
    subscription.detach().await;
    let subscription = backend.attach(claim("ch", None)).await.unwrap();
    let again = receive(&subscription, 2).await;
    let again: Vec<(RequestId, bool)> = again.iter().map(|(r, _)| (r.id, r.redelivered)).collect();
    assert_eq!(again, [(ids[1], true), (ids[2], true)]);
    subscription.ack(ids[1]);
    subscription.ack(ids[2]);
    subscription.detach().await;
}

async fn the_apps_reply_reaches_the_waiting_sender(kind: Kind) {
    let store = Store::new(kind).await;
    let backend = store.open(100).await;
    let subscription = backend.attach(claim("ch", None)).await.unwrap();
    let sent = backend
        .send("ch", frame("/hook", b"ping"), true)
        .await
        .unwrap();
    let (request, body) = receive(&subscription, 1).await.remove(0);
    assert_eq!((request.id, body.as_ref()), (sent.id, b"ping".as_slice()));
    let reply = Reply::Response {
        status: 201,
        headers: vec![],
        body: Bytes::from_static(b"pong"),
    };
    subscription.reply(request.id, reply);
    let reply = tokio::time::timeout(STEP, sent.reply.expect("waits").recv()).await;
    match reply.expect("replied in time") {
        Some(Reply::Response { status, body, .. }) => {
            assert_eq!((status, &body[..]), (201, &b"pong"[..]))
        }
        other => panic!("{other:?}"),
    }
    subscription.ack(request.id);
    subscription.detach().await;
}

async fn unknown_channels_are_none_and_full_ones_refuse(kind: Kind) {
    let store = Store::new(kind).await;
    let backend = store.open(2).await;
    assert!(backend.channel("nobody").await.unwrap().is_none());
    claim_and_leave(&backend, "ch").await;
    send(&backend, "ch", "/1").await;
    send(&backend, "ch", "/2").await;
    match backend.send("ch", frame("/3", b"x"), false).await {
        Err(BackendError::Full { limit: 2 }) => {}
        Err(e) => panic!("{e}"),
        Ok(sent) => panic!("a third request was stored: {}", sent.id),
    }
}

async fn a_reserved_channel_is_refused_to_another_token_also_after_a_restart(kind: Kind) {
    let store = Store::new(kind).await;
    let file = store.dir.path().join("tokens");
    std::fs::write(&file, "token-a\ntoken-b\n").unwrap();
    let tokens = Tokens::load(Some(file)).unwrap();
    let a = tokens.check(Some("token-a"), "mine").unwrap();
    let b = tokens.check(Some("token-b"), "mine").unwrap();
    let backend = store.open(100).await;
    let subscription = backend.attach(claim("mine", a.as_ref())).await.unwrap();
    subscription.detach().await;
    let refused = backend.attach(claim("mine", b.as_ref())).await.err();
    assert!(
        refused
            .as_deref()
            .unwrap_or("")
            .contains("reserved by another token"),
        "{refused:?}"
    );
    drop(backend);
    if store.durable() {
        let backend = store.open(100).await;
        let refused = backend.attach(claim("mine", b.as_ref())).await.err();
        assert!(
            refused
                .as_deref()
                .unwrap_or("")
                .contains("reserved by another token"),
            "after a restart: {refused:?}"
        );
        let subscription = backend.attach(claim("mine", a.as_ref())).await.unwrap();
        subscription.detach().await;
    }
}

async fn a_channel_holds_one_session_at_a_time(kind: Kind) {
    let store = Store::new(kind).await;
    let backend = store.open(100).await;
    let first = backend.attach(claim("ch", None)).await.unwrap();
    let refused = backend.attach(claim("ch", None)).await.err();
    assert!(
        refused
            .as_deref()
            .unwrap_or("")
            .contains("in use by another hooks session"),
        "{refused:?}"
    );
    first.detach().await;
    let second = backend.attach(claim("ch", None)).await.unwrap();
    second.detach().await;
}

async fn large_bodies_arrive_byte_for_byte(kind: Kind) {
    let store = Store::new(kind).await;
    let backend = store.open(100).await;
    claim_and_leave(&backend, "ch").await;
    // Past one NATS message (1 MiB): the cluster keeps it in the object store.
    let body: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let id = backend
        .send("ch", frame("/big", &body), false)
        .await
        .unwrap()
        .id;
    let subscription = backend.attach(claim("ch", None)).await.unwrap();
    let (request, got) = receive(&subscription, 1).await.remove(0);
    assert_eq!(request.id, id);
    assert!(
        got == body,
        "the body changed on the way ({} bytes)",
        got.len()
    );
    subscription.ack(id);
    subscription.detach().await;
}

async fn channels_and_requests_survive_a_restart(kind: Kind) {
    let store = Store::new(kind).await;
    if !store.durable() {
        return;
    }
    let backend = store.open(100).await;
    claim_and_leave(&backend, "ch").await;
    let ids = [
        send(&backend, "ch", "/1").await,
        send(&backend, "ch", "/2").await,
    ];
    drop(backend);
    let backend = store.open(100).await;
    let view = backend.channel("ch").await.unwrap().expect("remembered");
    assert_eq!(view.settings, settings());
    let subscription = backend.attach(claim("ch", None)).await.unwrap();
    let got = receive(&subscription, 2).await;
    assert_eq!(got.iter().map(|(r, _)| r.id).collect::<Vec<_>>(), ids);
    subscription.detach().await;
}

async fn idle_channels_are_forgotten_with_their_requests(kind: Kind) {
    let store = Store::new(kind).await;
    let backend = store.open(100).await;
    claim_and_leave(&backend, "idle").await;
    send(&backend, "idle", "/1").await;
    // Left before now, by the clock's millisecond.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let upkept = backend.upkeep(Duration::ZERO).await;
    let names: Vec<&str> = upkept.forgotten.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["idle"]);
    // The request went with it, or before it as one past the retention.
    let gone = upkept.expired + upkept.forgotten[0].1;
    assert_eq!(gone, 1, "{upkept:?}");
    assert!(backend.channel("idle").await.unwrap().is_none());
    let subscription = backend.attach(claim("idle", None)).await.unwrap();
    assert_eq!(
        subscription.queued(),
        0,
        "claimed afresh, with nothing waiting"
    );
    subscription.detach().await;
}

/// Runs each test once per backend.
macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $test() { super::$test(super::Kind::Sqlite).await })*
        }
        mod memory {
            $(#[tokio::test] async fn $test() { super::$test(super::Kind::Memory).await })*
        }
        mod nats {
            $(#[tokio::test] async fn $test() { super::$test(super::Kind::Nats).await })*
        }
    };
}

conformance!(
    ids_are_unique_and_increasing_and_the_epoch_stays,
    requests_wait_in_order_and_come_again_until_acknowledged,
    the_apps_reply_reaches_the_waiting_sender,
    unknown_channels_are_none_and_full_ones_refuse,
    a_reserved_channel_is_refused_to_another_token_also_after_a_restart,
    a_channel_holds_one_session_at_a_time,
    large_bodies_arrive_byte_for_byte,
    channels_and_requests_survive_a_restart,
    idle_channels_are_forgotten_with_their_requests,
);

/// A single-node session's delivery and detach futures stay small: an idle session holds them
/// for its whole life, so whatever the cluster's futures need must not be inlined into them
/// (they were 3,888 and 7,648 bytes in a debug build, and the relay's RSS per idle session went
/// from 7.8 to 14.2 KiB).
#[tokio::test]
async fn a_single_node_sessions_futures_do_not_carry_the_clusters() {
    let store = Store::new(Kind::Memory).await;
    let backend = store.open(100).await;
    let subscription = backend.attach(claim("sizes", None)).await.unwrap();
    let deliver = subscription.deliver();
    let deliver_size = std::mem::size_of_val(&deliver);
    drop(deliver);
    let detach = subscription.detach();
    let detach_size = std::mem::size_of_val(&detach);
    drop(detach);
    assert!(
        deliver_size <= 1024,
        "the delivery future is {deliver_size} bytes"
    );
    assert!(
        detach_size <= 2048,
        "the detach future is {detach_size} bytes"
    );
}
