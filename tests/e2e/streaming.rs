//! Long request bodies are streamed: the relay passes a body on to `hooks listen` as it arrives,
//! and `hooks listen` forwards each piece to the app at once (`protocol::STREAM_FROM`). These
//! tests play a sender over a raw socket, so that they can hold back the rest of a body, or
//! break off in the middle of it, and an app that reports every piece as it comes.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use relay_server::protocol::{CHUNK_LEN, STREAM_FROM};
use relay_server::Config;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::support::*;

/// Length of the bodies sent: long enough to be streamed.
const LEN: usize = 4 << 20;

/// How much of a body the sender sends before it holds back, or breaks off.
const FIRST_PART: usize = 1 << 20;

/// An app that counts the body bytes of the request it is reading as they arrive, and keeps
/// the bodies it read to the end.
struct ProgressApp {
    port: u16,
    /// Body bytes received so far by the request being read.
    progress: watch::Receiver<usize>,
    /// Bodies read whole, in order.
    whole: watch::Receiver<Vec<Bytes>>,
    /// Requests whose body broke off.
    cut: watch::Receiver<usize>,
}

impl ProgressApp {
    async fn start() -> ProgressApp {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the app");
        let port = listener.local_addr().expect("app address").port();
        let (progress_tx, progress) = watch::channel(0usize);
        let (whole_tx, whole) = watch::channel(Vec::new());
        let (cut_tx, cut) = watch::channel(0usize);
        let state = Arc::new((progress_tx, whole_tx, cut_tx));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = Arc::clone(&state);
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let state = Arc::clone(&state);
                        async move {
                            let (progress, whole, cut) = &*state;
                            let mut body = req.into_body();
                            let mut got = Vec::new();
                            progress.send_replace(0);
                            while let Some(frame) = body.frame().await {
                                match frame {
                                    Ok(frame) => {
                                        if let Ok(data) = frame.into_data() {
                                            got.extend_from_slice(&data);
                                            progress.send_replace(got.len());
                                        }
                                    }
                                    Err(_) => {
                                        cut.send_modify(|n| *n += 1);
                                        return Err("the body broke off");
                                    }
                                }
                            }
                            let len = got.len();
                            whole.send_modify(|bodies| bodies.push(Bytes::from(got)));
                            Ok(Response::new(Full::new(Bytes::from(format!("got {len}")))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        ProgressApp {
            port,
            progress,
            whole,
            cut,
        }
    }

    fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Waits until the request being read has at least `n` body bytes in.
    async fn wait_progress(&self, n: usize) {
        let mut progress = self.progress.clone();
        within(
            &format!("the app to receive {n} body bytes while the sender holds the rest"),
            progress.wait_for(|&got| got >= n),
        )
        .await
        .expect("the app is running");
    }

    /// Waits until `n` bodies were read whole and returns them.
    async fn wait_whole(&self, n: usize) -> Vec<Bytes> {
        let mut whole = self.whole.clone();
        let bodies = within(
            &format!("the app to read {n} whole bodies"),
            whole.wait_for(|bodies| bodies.len() >= n),
        )
        .await
        .expect("the app is running")
        .clone();
        bodies
    }
}

/// A sender on a raw connection to the relay, which writes a request's head and body in parts.
struct RawSender {
    stream: TcpStream,
}

impl RawSender {
    /// Connects to the relay behind `url` (`http://host:port/channel`) and sends the head of a
    /// `POST <url><path>` declaring a body of `len` bytes.
    async fn start(url: &str, path: &str, len: usize) -> RawSender {
        let rest = url.strip_prefix("http://").expect("an http:// channel URL");
        let (authority, channel) = rest.split_once('/').expect("a channel in the URL");
        let mut stream = TcpStream::connect(authority)
            .await
            .expect("connect to the relay");
        let head = format!(
            "POST /{channel}{path} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/octet-stream\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n"
        );
        stream
            .write_all(head.as_bytes())
            .await
            .expect("send the head");
        RawSender { stream }
    }

    async fn send(&mut self, part: &[u8]) {
        self.stream
            .write_all(part)
            .await
            .expect("send a part of the body");
    }

    /// Reads the relay's answer to the end (the request said `connection: close`) and returns
    /// its status and body.
    async fn answer(mut self) -> (u16, String) {
        let mut answer = Vec::new();
        within("the relay's answer", self.stream.read_to_end(&mut answer))
            .await
            .expect("read the answer");
        let text = String::from_utf8_lossy(&answer).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
        let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        (status, body.to_owned())
    }
}

/// `hooks show <id> --json` against `listener`'s store.
fn show(listener: &Listener, id: &Value) -> Value {
    let output = hooks_std_command(&["show", &id.to_string(), "--json"], listener.data_dir())
        .output()
        .expect("run hooks show");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("hooks show --json prints JSON")
}

// The bodies sent are streamed, and the first part spans several pieces.
const _: () = assert!(LEN >= STREAM_FROM && FIRST_PART > 2 * CHUNK_LEN);

/// The relay's data directory and its config, for a relay with a durable queue (`durable`),
/// or the in-memory queue `hooks listen` embeds.
fn relay_config(durable: bool) -> (Option<tempfile::TempDir>, Config) {
    let dir = durable.then(|| tempfile::tempdir().expect("relay data dir"));
    let config = Config {
        data_dir: dir.as_ref().map(|d| d.path().to_owned()),
        ..Config::default()
    };
    (dir, config)
}

/// The sizes of the partly written frame files (`<id>.part`) in the relay's data directory.
fn partial_frames(dir: &std::path::Path) -> Vec<u64> {
    std::fs::read_dir(dir.join("frames"))
        .map(|entries| {
            entries
                .map(|e| e.expect("a directory entry"))
                .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
                .map(|e| e.metadata().map_or(0, |m| m.len()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_body_reaches_the_app_while_the_sender_is_still_sending_it() {
    streams_while_sending(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_relay_stores_a_long_body_as_it_arrives_while_streaming_it() {
    streams_while_sending(true).await;
}

async fn streams_while_sending(durable: bool) {
    let app = ProgressApp::start().await;
    let (relay_dir, config) = relay_config(durable);
    let relay = start_relay(config).await;
    let mut listener = spawn_listen(&["--relay", &relay.url, "--forward-to", &app.target()]).await;
    let body = pseudo_random_bytes(LEN, 0x57_0001);

    let mut sender = RawSender::start(&listener.url, "/big?part=1", LEN).await;
    sender.send(&body[..FIRST_PART]).await;
    // All but the last piece of what arrived is passed on before the rest is sent.
    app.wait_progress(FIRST_PART - CHUNK_LEN).await;
    if let Some(dir) = &relay_dir {
        // And a durable relay has written it to the frame's file already, rather than holding
        // it until the body is all in.
        let partial = partial_frames(dir.path());
        assert!(
            partial.len() == 1 && partial[0] >= (FIRST_PART / 2) as u64,
            "{partial:?}"
        );
    }
    sender.send(&body[FIRST_PART..]).await;
    let (status, answer) = sender.answer().await;

    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, format!("got {LEN}"));
    let bodies = app.wait_whole(1).await;
    assert_same_bytes("the body at the app", &bodies[0], &body);
    // The capture holds the whole body too.
    let line = listener.next_requests(1).await.remove(0);
    assert_eq!(line["status"], 200, "{line}");
    assert_eq!(line["path"], "/big?part=1", "{line}");
    let capture = show(&listener, &line["id"]);
    let captured = capture["request"]["body_base64"]
        .as_str()
        .expect("a captured body");
    use base64::Engine as _;
    let captured = base64::engine::general_purpose::STANDARD
        .decode(captured)
        .expect("base64");
    assert_same_bytes("the captured body", &captured, &body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_that_breaks_off_mid_body_leaves_nothing_queued_and_the_session_free() {
    broken_off(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_relay_removes_the_file_of_a_body_broken_off_midway() {
    broken_off(true).await;
}

async fn broken_off(durable: bool) {
    let app = ProgressApp::start().await;
    // One request in flight at a time: if the broken-off request kept its place in the
    // session's window, the next one could never be delivered.
    let (relay_dir, config) = relay_config(durable);
    let config = Config {
        max_in_flight: 1,
        ..config
    };
    let relay = start_relay(config).await;
    let mut listener = spawn_listen(&["--relay", &relay.url, "--forward-to", &app.target()]).await;
    let body = pseudo_random_bytes(LEN, 0x57_0002);

    let mut sender = RawSender::start(&listener.url, "/broken", LEN).await;
    sender.send(&body[..FIRST_PART]).await;
    app.wait_progress(FIRST_PART - CHUNK_LEN).await;
    drop(sender);

    // The app's request breaks off as the sender's did.
    let mut cut = app.cut.clone();
    within("the app's request to break off", cut.wait_for(|&n| n > 0))
        .await
        .expect("the app is running");
    if let Some(dir) = &relay_dir {
        // Gone before the CLI heard of the break-off.
        assert!(partial_frames(dir.path()).is_empty());
    }
    // The next webhook goes through, and is the next line hooks prints: the broken one was
    // neither recorded nor shown.
    let mut sender = RawSender::start(&listener.url, "/after", LEN).await;
    let next = pseudo_random_bytes(LEN, 0x57_0003);
    sender.send(&next).await;
    let (status, answer) = sender.answer().await;
    assert_eq!(status, 200, "{answer}");
    let bodies = app.wait_whole(1).await;
    assert_same_bytes("the next body at the app", &bodies[0], &next);
    let line = listener.next_requests(1).await.remove(0);
    assert_eq!(line["path"], "/after", "{line}");
    // Nothing of the broken-off request waits in the relay's queue, once the next one's
    // acknowledgement is in.
    wait_for_gauge(&relay.url, "hooks_queue_depth", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_whose_session_is_lost_midway_is_delivered_whole_to_the_next_session() {
    redelivered_whole_after_a_lost_session(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_relay_redelivers_a_body_whose_session_was_lost_midway_from_its_file() {
    redelivered_whole_after_a_lost_session(true).await;
}

async fn redelivered_whole_after_a_lost_session(durable: bool) {
    let app = ProgressApp::start().await;
    let (_relay_dir, config) = relay_config(durable);
    let relay = start_relay(config).await;
    let channel = format!("stream-{}", std::process::id());
    let target = app.target();
    let args = [
        "--relay",
        relay.url.as_str(),
        "--forward-to",
        &target,
        "--channel",
        &channel,
    ];
    let mut first = spawn_listen(&args).await;
    let body = pseudo_random_bytes(LEN, 0x57_0004);

    let mut sender = RawSender::start(&first.url, "/lost", LEN).await;
    sender.send(&body[..FIRST_PART]).await;
    app.wait_progress(FIRST_PART - CHUNK_LEN).await;
    first.kill().await;
    wait_for_sessions(&relay.url, 0).await;
    // The rest arrives while no session is attached: the relay stores the request whole.
    sender.send(&body[FIRST_PART..]).await;
    let answer = tokio::spawn(sender.answer());

    let mut second = spawn_listen(&args).await;
    let bodies = app.wait_whole(1).await;
    assert_same_bytes("the redelivered body at the app", &bodies[0], &body);
    // The sender, still waiting, gets the app's answer through the second session.
    let (status, text) = answer.await.expect("the sender's task");
    assert_eq!(status, 200, "{text}");
    assert_eq!(text, format!("got {LEN}"));
    let line = second.next_requests(1).await.remove(0);
    assert_eq!(line["path"], "/lost", "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_long_request_whose_frame_file_was_lost_is_dropped_not_delivered_cut() {
    // As a power loss could leave it: the row committed, its frame file cut short.
    let relay_dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProcess::start(relay_dir.path(), &[]).await;
    let app = ProgressApp::start().await;
    let channel = format!("lost-{}", std::process::id());
    let target = app.target();
    let relay_url = relay.url.clone();
    let args = [
        "--relay",
        relay_url.as_str(),
        "--forward-to",
        &target,
        "--channel",
        &channel,
    ];
    let mut first = spawn_listen(&args).await;
    let url = first.url.clone();
    first.kill().await;
    wait_for_sessions(&relay.url, 0).await;
    // Queued while no CLI is attached: stored whole, as a file.
    let mut sender = RawSender::start(&url, "/queued", LEN).await;
    sender.send(&pseudo_random_bytes(LEN, 0x57_0005)).await;
    let (status, answer) = sender.answer().await;
    assert_eq!(status, 202, "{answer}");
    relay.kill().await;
    let frames = relay_dir.path().join("frames");
    let files: Vec<_> = std::fs::read_dir(&frames)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    std::fs::write(&files[0], b"cut short").unwrap();
    relay.restart().await;

    let mut second = spawn_listen(&args).await;
    // Not delivered, and no longer queued.
    wait_for_gauge(&relay.url, "hooks_queue_depth", 0).await;
    assert!(
        relay.stderr().contains("missing or cut short"),
        "{}",
        relay.stderr()
    );
    // The channel works on.
    let reply = Sender::default()
        .post(&format!("{}/next", second.url), b"small".to_vec())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let line = second.next_requests(1).await.remove(0);
    assert_eq!(line["path"], "/next", "{line}");
    assert!(app.whole.borrow().len() == 1, "only /next reached the app");
}
