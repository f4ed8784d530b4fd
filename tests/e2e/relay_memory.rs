//! The relay's memory bounds (issue 17, failure 3): a relay-wide budget of request bytes in
//! memory (`--max-memory`), beyond which webhooks get `503` with `Retry-After`; chunked bodies
//! counted as they grow; a per-session outbox bounded in bytes, so a CLI that stops reading
//! cannot make the relay hold its webhooks; and a sender whose body was being streamed to such a
//! CLI is not held past `--read-timeout`.
//!
//! These tests speak the relay's protocol over a bare WebSocket (a CLI that acknowledges, or one
//! that never reads), and send webhooks over raw sockets with `Expect: 100-continue` where the
//! relay refuses before reading the body, so the refusal is read rather than lost to a reset.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use relay_server::protocol::{self, ClientMessage, RelayMessage, Respond, PROTOCOL_VERSION};
use relay_server::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

/// Opens a session on `channel` at the relay `addr`, with a receive buffer of `rcvbuf` bytes
/// when given (a small one makes a CLI that does not read stall the relay's writes at once).
async fn open_session(
    addr: SocketAddr,
    channel: &str,
    respond: Respond,
    stream_bodies: bool,
    rcvbuf: Option<u32>,
) -> Ws {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    if let Some(size) = rcvbuf {
        socket.set_recv_buffer_size(size).expect("set SO_RCVBUF");
    }
    let tcp = within("connecting a session", socket.connect(addr))
        .await
        .expect("connect to the relay");
    let url = format!("ws://{addr}{}", protocol::CONNECT_PATH);
    let (mut ws, _) = within(
        "the WebSocket upgrade",
        tokio_tungstenite::client_async(url, tcp),
    )
    .await
    .expect("upgrade to a WebSocket");
    let hello = ClientMessage::Hello(protocol::ClientHello {
        version: PROTOCOL_VERSION,
        channel: Some(channel.to_owned()),
        respond,
        timeout_ms: None,
        offline: None,
        token: None,
        stream_bodies,
    });
    ws.send(Message::Binary(protocol::encode(&hello, &[])))
        .await
        .expect("send the hello");
    loop {
        let message = within("the relay's hello", ws.next()).await;
        if let Some(Ok(Message::Binary(frame))) = message {
            let (reply, _): (RelayMessage, Bytes) = protocol::decode(frame).expect("a frame");
            assert!(
                matches!(reply, RelayMessage::Hello(_)),
                "expected the relay's hello, got {reply:?}"
            );
            return ws;
        }
        assert!(
            matches!(message, Some(Ok(_))),
            "the session ended before its hello: {message:?}"
        );
    }
}

/// Claims `channel` with a session that then leaves: webhooks to it are queued for later.
async fn claim(relay: &Relay, channel: &str) {
    let mut ws = open_session(relay.addr, channel, Respond::App, false, None).await;
    let _ = ws.close(None).await;
    wait_for_sessions(&relay.url, 0).await;
}

/// A CLI that acknowledges every request it is sent, until dropped.
fn acknowledge_all(ws: Ws) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (mut sink, mut stream) = ws.split();
        while let Some(Ok(message)) = stream.next().await {
            let Message::Binary(frame) = message else {
                continue;
            };
            if let Ok((RelayMessage::Request(protocol::Request { id, .. }), _)) =
                protocol::decode(frame)
            {
                let ack = ClientMessage::Ack(protocol::Ack { id });
                if sink
                    .send(Message::Binary(protocol::encode(&ack, &[])))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    })
}

/// A CLI that is stuck but alive: it pings the relay every second (so the relay does not drop
/// it as silent) and never reads. Dropping the handle does not end it; aborting it does.
fn stall(ws: Ws) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (mut sink, _unread) = ws.split();
        while sink.send(Message::Ping(Bytes::new())).await.is_ok() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

/// A relay's answer, read off a raw socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// Reads one response (head, and a body of its `content-length`) from `stream`; `buffered`
/// holds what was read past the previous response.
async fn read_answer(stream: &mut TcpStream, buffered: &mut Vec<u8>) -> Answer {
    let reading = async {
        loop {
            if let Some(end) = buffered.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffered[..end]).into_owned();
                let status = head
                    .split(' ')
                    .nth(1)
                    .and_then(|code| code.parse().ok())
                    .unwrap_or_else(|| panic!("not an HTTP answer: {head:?}"));
                let mut answer = Answer {
                    status,
                    head,
                    body: String::new(),
                };
                let len: usize = answer
                    .header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                while buffered.len() < end + 4 + len {
                    read_more(stream, buffered).await;
                }
                answer.body =
                    String::from_utf8_lossy(&buffered[end + 4..end + 4 + len]).into_owned();
                buffered.drain(..end + 4 + len);
                return answer;
            }
            read_more(stream, buffered).await;
        }
    };
    within("the relay's answer", reading).await
}

async fn read_more(stream: &mut TcpStream, buffered: &mut Vec<u8>) {
    let mut buf = [0u8; 8192];
    let n = stream.read(&mut buf).await.expect("read the answer");
    assert!(n > 0, "the relay closed the connection without an answer");
    buffered.extend_from_slice(&buf[..n]);
}

/// POSTs `body` to `path` with `Expect: 100-continue`: the body is sent only if the relay asks
/// for it, so a refusal before reading it comes back whole.
async fn post_expecting(addr: SocketAddr, path: &str, body: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("connect to the relay");
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .await
        .expect("send a head");
    let mut buffered = Vec::new();
    let answer = read_answer(&mut stream, &mut buffered).await;
    if answer.status != 100 {
        return answer;
    }
    stream.write_all(body).await.expect("send the body");
    read_answer(&mut stream, &mut buffered).await
}

fn assert_over_memory(answer: &Answer, limit: usize) {
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.header("retry-after").is_some(), "{answer:?}");
    assert_eq!(answer.body.trim_end().lines().count(), 1, "{answer:?}");
    assert!(
        answer.body.contains("--max-memory") && answer.body.contains(&limit.to_string()),
        "{answer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_a_spent_memory_budget_answers_503_with_retry_after_until_it_is_freed() {
    // The in-memory queue (as `hooks listen` embeds it) holds every queued request in memory:
    // the budget bounds it.
    let limit = 1 << 20;
    let relay = start_relay(Config {
        max_memory: limit,
        max_body: 512 * 1024,
        ..Config::default()
    })
    .await;
    let channel = format!("budget-{}", std::process::id());
    claim(&relay, &channel).await;
    let path = |i: usize| format!("/{channel}/fill/{i}");

    // Three queued requests of 300 KiB take most of the 1 MiB; the fourth does not fit.
    let body = pseudo_random_bytes(300 * 1024, 17);
    for i in 0..3 {
        let answer = post_expecting(relay.addr, &path(i), &body).await;
        assert_eq!(answer.status, 202, "{answer:?}");
    }
    let memory = gauge(&Sender::default(), &relay.url, "hooks_memory_bytes").await;
    assert!(
        memory.is_some_and(|m| m >= 900 * 1024 && m <= limit as u64),
        "{memory:?}"
    );
    let refused = post_expecting(relay.addr, &path(3), &body).await;
    assert_over_memory(&refused, limit);
    assert_eq!(
        gauge(&Sender::default(), &relay.url, "hooks_queue_depth").await,
        Some(3),
        "the refused request was not queued"
    );

    // A CLI takes and acknowledges them: the memory is given back, and webhooks are accepted.
    let cli = open_session(relay.addr, &channel, Respond::Status(202), false, None).await;
    let _acking = acknowledge_all(cli);
    wait_for_gauge(&relay.url, "hooks_queue_depth", 0).await;
    wait_for_gauge(&relay.url, "hooks_memory_bytes", 0).await;
    let answer = post_expecting(relay.addr, &path(4), &body).await;
    assert_eq!(answer.status, 202, "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_a_chunked_body_counts_against_the_memory_budget_as_it_grows() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 1 << 20;
    let relay = start_relay(Config {
        data_dir: Some(dir.path().to_owned()),
        max_memory: limit,
        ..Config::default()
    })
    .await;
    let channel = format!("chunked-{}", std::process::id());
    claim(&relay, &channel).await;

    // A chunked body (no length) held midway: what arrived of it is counted.
    let mut chunked = TcpStream::connect(relay.addr).await.unwrap();
    let head = format!(
        "POST /{channel}/chunked HTTP/1.1\r\nhost: {}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        relay.addr
    );
    chunked.write_all(head.as_bytes()).await.unwrap();
    let part = pseudo_random_bytes(1000 * 1024, 18);
    chunked
        .write_all(format!("{:x}\r\n", part.len()).as_bytes())
        .await
        .unwrap();
    chunked.write_all(&part).await.unwrap();
    chunked.write_all(b"\r\n").await.unwrap();
    let sender = Sender::default();
    let counted = async {
        loop {
            let memory = gauge(&sender, &relay.url, "hooks_memory_bytes").await;
            if memory.is_some_and(|m| m >= part.len() as u64) {
                return memory;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let memory = within("the chunked body to be counted", counted).await;
    assert!(memory.is_some_and(|m| m <= limit as u64), "{memory:?}");

    // It holds the budget: a webhook that needs 32 KiB more is refused.
    let probe = pseudo_random_bytes(32 * 1024, 19);
    let refused = post_expecting(relay.addr, &format!("/{channel}/probe"), &probe).await;
    assert_over_memory(&refused, limit);

    // Once it is in (and stored), its memory is given back.
    chunked.write_all(b"0\r\n\r\n").await.unwrap();
    let mut buffered = Vec::new();
    let answer = read_answer(&mut chunked, &mut buffered).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    wait_for_gauge(&relay.url, "hooks_memory_bytes", 0).await;
    let answer = post_expecting(relay.addr, &format!("/{channel}/probe"), &probe).await;
    assert_eq!(answer.status, 202, "{answer:?}");
}

/// Samples `name` on the relay's metrics page `n` times, 20 ms apart.
async fn samples(relay_url: &str, name: &str, n: usize) -> Vec<u64> {
    let sender = Sender::default();
    let mut values = Vec::with_capacity(n);
    for _ in 0..n {
        values.push(gauge(&sender, relay_url, name).await.expect("the gauge"));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_a_session_that_stops_reading_holds_no_more_than_its_outbox_bound() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start_relay(Config {
        data_dir: Some(dir.path().to_owned()),
        ..Config::default()
    })
    .await;
    let channel = format!("stalled-{}", std::process::id());
    // It says hello, then never reads (its socket's receive buffer is small), so the relay's
    // writes stall once the kernel's buffers are full.
    let stalled = open_session(
        relay.addr,
        &channel,
        Respond::Status(202),
        false,
        Some(4096),
    )
    .await;
    let stalled = stall(stalled);

    // 24 MiB of webhooks, far more than the socket buffers (4 MiB at most here) and the outbox.
    let frame_len = 1 << 20;
    let body = pseudo_random_bytes(frame_len, 20);
    let sender = Sender::default();
    let url = format!("{}/{channel}/stalled", relay.url);
    for _ in 0..24 {
        let reply = sender.post(&url, body.clone()).await;
        assert_eq!(reply.status, 202, "{}", reply.text());
    }
    // The relay delivered what the session's socket took and holds the next frames for it, up
    // to the bound.
    let held = async {
        while gauge(&sender, &relay.url, "hooks_outbox_bytes").await < Some(frame_len as u64) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    within("the stalled session's outbox to fill", held).await;
    let outbox = samples(&relay.url, "hooks_outbox_bytes", 25).await;
    let bound = relay_server::OUTBOX_BYTES as u64;
    assert!(outbox.iter().all(|&b| b <= bound), "{outbox:?} > {bound}");
    // Besides the outbox, at most the next frame, read back and waiting for room.
    let memory = samples(&relay.url, "hooks_memory_bytes", 5).await;
    let most = bound + frame_len as u64 + 4096;
    assert!(memory.iter().all(|&m| m <= most), "{memory:?} > {most}");
    assert_eq!(
        gauge(&sender, &relay.url, "hooks_queue_depth").await,
        Some(24)
    );
    stalled.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_a_body_streamed_to_a_stalled_session_is_not_held_past_the_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start_relay(Config {
        data_dir: Some(dir.path().to_owned()),
        read_timeout: Duration::from_secs(1),
        ..Config::default()
    })
    .await;
    let channel = format!("stream-stall-{}", std::process::id());
    // Takes streamed bodies, then never reads.
    let stalled = open_session(relay.addr, &channel, Respond::Status(202), true, Some(4096)).await;
    let stalled = stall(stalled);

    // Longer than the socket buffers and the outbox: the stream stalls midway. The relay stops
    // streaming to the session and reads the body on into its file, rather than holding the
    // sender until the session reads.
    let body = pseudo_random_bytes(16 << 20, 21);
    let reply = Sender::default()
        .post(&format!("{}/{channel}/long", relay.url), body)
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    assert_eq!(
        gauge(&Sender::default(), &relay.url, "hooks_queue_depth").await,
        Some(1),
        "stored, to be delivered whole"
    );
    stalled.abort();
}
