//! Both ends of a session in this process, a real WebSocket between them over
//! `tokio::io::duplex`: the hello, refusals, version mismatches and the timeouts (paused time).

use futures_util::SinkExt as _;
use tokio::io::DuplexStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use super::*;
use crate::protocol::{Ack, Request, RequestId, Respond, Response, FRAGMENT_LEN, PING_INTERVAL};

type Ws = WebSocketStream<DuplexStream>;

/// A WebSocket over a pipe: the CLI's end (raw, to send what a CLI would not) and the relay's.
async fn raw_pair() -> (Ws, RelaySession<Ws>) {
    let (cli, relay) = tokio::io::duplex(64 * 1024);
    let cli = WebSocketStream::from_raw_socket(cli, Role::Client, None).await;
    let relay = WebSocketStream::from_raw_socket(relay, Role::Server, None).await;
    (cli, Session::new(relay))
}

async fn pair() -> (CliSession<Ws>, RelaySession<Ws>) {
    let (cli, relay) = raw_pair().await;
    (Session::new(cli), relay)
}

fn hello(version: u32) -> ClientHello {
    ClientHello {
        version,
        channel: Some("my-app".into()),
        respond: Respond::App,
        timeout_ms: Some(5_000),
        offline: None,
        token: None,
        stream_bodies: true,
    }
}

fn relay_hello(version: u32) -> RelayHello {
    RelayHello {
        version,
        channel: "my-app".into(),
        url: "http://relay.test/my-app".into(),
        respond: Respond::App,
        timeout_ms: 5_000,
        epoch: 42,
        max_body: Some(1 << 20),
    }
}

#[tokio::test]
async fn a_hello_opens_a_session_that_carries_messages_and_bodies_both_ways() {
    let (mut cli, mut relay) = pair().await;
    let relay_end = tokio::spawn(async move {
        let hello = relay.recv_hello().await.expect("the CLI's hello");
        let reply = RelayMessage::Hello(relay_hello(PROTOCOL_VERSION));
        relay.send(&reply, &[]).await.expect("hello sent");
        let request = RelayMessage::Request(Request {
            id: RequestId(7),
            received_at_ms: 1,
            method: "POST".into(),
            target: "/hook?x=1".into(),
            headers: Vec::new(),
            body_len: None,
            redelivered: false,
        });
        // Longer than a WebSocket frame: it goes in fragments and arrives whole.
        let body = vec![7u8; 3 * FRAGMENT_LEN + 1];
        relay.send(&request, &body).await.expect("request sent");
        let answer = relay.recv().await.expect("the CLI's answer");
        (hello, answer)
    });
    let attached = cli.hello(&hello(PROTOCOL_VERSION)).await.expect("hello");
    assert_eq!(attached, relay_hello(PROTOCOL_VERSION));
    let (message, body) = cli.recv().await.expect("a request");
    let RelayMessage::Request(request) = message else {
        panic!("{message:?}");
    };
    assert_eq!(
        (request.id, request.target.as_str()),
        (RequestId(7), "/hook?x=1")
    );
    assert_eq!(body.len(), 3 * FRAGMENT_LEN + 1);
    let response = ClientMessage::Response(Response {
        id: request.id,
        status: 204,
        headers: Vec::new(),
    });
    cli.send(&response, b"\x00done").await.expect("answer sent");
    let (got_hello, (answer, answer_body)) = relay_end.await.expect("the relay's end");
    assert_eq!(got_hello, hello(PROTOCOL_VERSION));
    assert_eq!(answer, response);
    assert_eq!(answer_body.as_ref(), b"\x00done");
}

#[tokio::test]
async fn a_refused_hello_gives_the_cli_the_relays_sentence() {
    let (mut cli, mut relay) = pair().await;
    let relay_end = tokio::spawn(async move {
        relay.recv_hello().await.expect("the CLI's hello");
        relay
            .refuse("channel my-app is in use by another hooks session".into())
            .await;
    });
    let refused = cli.hello(&hello(PROTOCOL_VERSION)).await.unwrap_err();
    relay_end.await.unwrap();
    assert!(matches!(&refused, HelloError::Refused(_)), "{refused:?}");
    assert_eq!(
        refused.to_string(),
        "the relay refused the session: channel my-app is in use by another hooks session"
    );
    // The refusal closed the session.
    assert!(matches!(cli.recv().await, Err(RecvError::Closed(None))));
}

#[tokio::test]
async fn a_cli_of_another_version_is_told_which_side_to_upgrade() {
    let (mut cli, mut relay) = pair().await;
    let cli_end = tokio::spawn(async move { cli.hello(&hello(PROTOCOL_VERSION + 1)).await });
    let mismatch = relay.recv_hello().await.unwrap_err();
    let HelloError::VersionMismatch {
        relay: ours,
        cli: theirs,
    } = mismatch
    else {
        panic!("{mismatch:?}");
    };
    assert_eq!((ours, theirs), (PROTOCOL_VERSION, PROTOCOL_VERSION + 1));
    let sentence = mismatch.to_string();
    assert_eq!(
        sentence,
        version_mismatch(PROTOCOL_VERSION, PROTOCOL_VERSION + 1)
    );
    assert!(
        sentence.ends_with("upgrade hooks-relay so both match"),
        "{sentence}"
    );
    relay.refuse(sentence.clone()).await;
    let refused = cli_end.await.unwrap().unwrap_err();
    assert_eq!(
        refused.to_string(),
        format!("the relay refused the session: {sentence}")
    );
}

#[tokio::test]
async fn a_relay_of_another_version_is_a_typed_mismatch_at_the_cli() {
    let (mut cli, mut relay) = pair().await;
    let relay_end = tokio::spawn(async move {
        relay.recv_hello().await.expect("the CLI's hello");
        let newer = RelayMessage::Hello(relay_hello(PROTOCOL_VERSION + 1));
        relay.send(&newer, &[]).await.expect("hello sent");
    });
    let mismatch = cli.hello(&hello(PROTOCOL_VERSION)).await.unwrap_err();
    relay_end.await.unwrap();
    assert!(
        matches!(
            mismatch,
            HelloError::VersionMismatch { relay, cli } if relay == PROTOCOL_VERSION + 1 && cli == PROTOCOL_VERSION
        ),
        "{mismatch:?}"
    );
    assert!(
        mismatch
            .to_string()
            .ends_with("upgrade hooks so both match"),
        "{mismatch}"
    );
}

#[tokio::test]
async fn the_first_message_must_be_a_well_formed_hello() {
    // Another message first.
    let (mut cli, mut relay) = pair().await;
    let ack = ClientMessage::Ack(Ack { id: RequestId(1) });
    cli.send(&ack, &[]).await.unwrap();
    let error = relay.recv_hello().await.unwrap_err();
    assert!(matches!(error, HelloError::OutOfOrder), "{error:?}");
    assert_eq!(error.to_string(), "expected a hello message first");
    // A frame that is no message.
    let (mut raw, mut relay) = raw_pair().await;
    let garbage = Bytes::from_static(b"\x00\x00\x00\x02{]");
    raw.send(WsMessage::Binary(garbage)).await.unwrap();
    let error = relay.recv_hello().await.unwrap_err();
    assert!(matches!(error, HelloError::Malformed(_)), "{error:?}");
    assert!(
        error.to_string().starts_with("could not read hello: "),
        "{error}"
    );
    // Not even a ping comes before the hello.
    let (mut raw, mut relay) = raw_pair().await;
    raw.send(WsMessage::Ping(Bytes::new())).await.unwrap();
    let error = relay.recv_hello().await.unwrap_err();
    assert!(matches!(error, HelloError::Closed), "{error:?}");
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_gets_no_session_after_the_hello_timeout() {
    let (_cli, mut relay) = pair().await;
    let started = tokio::time::Instant::now();
    let error = relay.recv_hello().await.unwrap_err();
    assert!(matches!(error, HelloError::TimedOut), "{error:?}");
    assert!(started.elapsed() >= HELLO_TIMEOUT);
    // The CLI's side: a relay that never answers.
    let (mut cli, _relay) = pair().await;
    let started = tokio::time::Instant::now();
    let error = cli.hello(&hello(PROTOCOL_VERSION)).await.unwrap_err();
    assert!(matches!(error, HelloError::TimedOut), "{error:?}");
    assert!(started.elapsed() >= HELLO_TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn pings_keep_a_session_alive_and_silence_ends_it() {
    let (cli, relay) = pair().await;
    let (mut cli_writer, _cli_reader) = cli.split();
    let (_relay_writer, mut relay_reader) = relay.split();
    let started = tokio::time::Instant::now();
    let pings = 5;
    let cli_end = tokio::spawn(async move {
        for _ in 0..pings {
            tokio::time::sleep(PING_INTERVAL).await;
            cli_writer
                .write_batch(Outgoing::Ping, || None)
                .await
                .unwrap();
        }
        let ack = ClientMessage::Ack(Ack { id: RequestId(3) });
        cli_writer.send(&ack, &[]).await.unwrap();
        cli_writer
    });
    // Longer than the silence limit in all, but never silent that long.
    assert!(PING_INTERVAL * pings > SILENCE_LIMIT);
    let (message, _) = relay_reader.recv().await.expect("alive while it pings");
    assert_eq!(message, ClientMessage::Ack(Ack { id: RequestId(3) }));
    assert!(started.elapsed() >= PING_INTERVAL * pings);
    let _cli_writer = cli_end.await.unwrap();
    let error = relay_reader.recv().await.unwrap_err();
    assert!(
        matches!(error, RecvError::Silent(limit) if limit == SILENCE_LIMIT),
        "{error:?}"
    );
    assert!(started.elapsed() >= PING_INTERVAL * pings + SILENCE_LIMIT);
}

#[tokio::test]
async fn a_close_frame_ends_the_readers_session_with_its_reason() {
    let (cli, relay) = pair().await;
    let (_cli_writer, mut cli_reader) = cli.split();
    let (mut relay_writer, _relay_reader) = relay.split();
    let bye = |message: &str| {
        encode(
            &RelayMessage::Error(Error {
                message: message.into(),
            }),
            &[],
        )
    };
    let mut queued = vec![bye("two"), bye("three")].into_iter();
    let first = Outgoing::Frame(bye("one"));
    relay_writer
        .write_batch(first, || queued.next())
        .await
        .unwrap();
    let close = CloseFrame {
        code: CloseCode::Away,
        reason: "relay is shutting down".into(),
    };
    relay_writer.close(Some(close)).await.unwrap();
    for expected in ["one", "two", "three"] {
        let (message, _) = cli_reader.recv().await.unwrap();
        assert_eq!(
            message,
            RelayMessage::Error(Error {
                message: expected.into()
            })
        );
    }
    let end = cli_reader.recv().await.unwrap_err();
    assert!(
        matches!(&end, RecvError::Closed(Some(reason)) if reason == "relay is shutting down"),
        "{end:?}"
    );
}
