//! `cargo bench --bench memory`: the relay's memory under the two bursts of issue 17, failure 3.
//!
//! Each scenario starts a fresh `hooks-relay --listen 127.0.0.1:0 --data-dir <tmp>` with its
//! default settings (durable queue, as deployed) and reads its resident memory (VmRSS, and VmHWM
//! for the peak, from `/proc/<pid>/status`) at start, at its peak, once every sender has its
//! answer, and after a few idle seconds:
//!
//! - **flood**: a channel is claimed by a bare WebSocket session that then leaves, and
//!   `HOOKS_BENCH_FLOOD` (default 40) anonymous POSTs of `HOOKS_BENCH_FLOOD_MIB` (default 20)
//!   MiB are sent to it at once, each with its `Content-Length`;
//! - **chunked flood**: the same without a length (`Transfer-Encoding: chunked`);
//! - **flood, then drained**: the first flood, after which a CLI attaches and takes (and
//!   acknowledges) every queued request, so the queue ends empty;
//! - **stalled session**: a session that says hello (taking streamed bodies, as `hooks listen`
//!   does) and then pings the relay every second but never reads, and `HOOKS_BENCH_STALLED`
//!   (default 70) POSTs of `HOOKS_BENCH_STALLED_MIB` (default 8) MiB sent to its channel at once.
//!
//! It prints a markdown table, with the statuses the senders got, and asserts nothing.
//! `HOOKS_BENCH_BIN=PATH` measures the `hooks-relay` beside `PATH` instead of the one built with
//! the bench (see `support::relay_command`). Linux only for the memory figures.

mod support;

use support::RelayProcess;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::error::Error;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::HOST;
use http::Request;
use http_body_util::{combinators::BoxBody, BodyExt as _, Full, StreamBody};
use hyper_util::rt::TokioIo;
use relay_server::protocol::session::{CliSession, Outgoing};
use relay_server::protocol::{self, ClientMessage, RelayMessage, Respond, PROTOCOL_VERSION};
use tokio::net::TcpStream;

type BoxError = Box<dyn Error + Send + Sync>;

/// How long a fresh relay is left alone before its starting RSS is read.
const SETTLE: Duration = Duration::from_millis(500);

/// How long the relay is left idle after a burst before its idle RSS is read.
const IDLE: Duration = Duration::from_secs(5);

/// Longest a sender waits for its answer: longer than the relay's response timeout (30 s).
const ANSWER_LIMIT: Duration = Duration::from_secs(60);

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the benchmark needs a tokio runtime");
    runtime.block_on(async {
        let flood = env_number("HOOKS_BENCH_FLOOD", 40);
        let flood_mib = env_number("HOOKS_BENCH_FLOOD_MIB", 20);
        let stalled = env_number("HOOKS_BENCH_STALLED", 70);
        let stalled_mib = env_number("HOOKS_BENCH_STALLED_MIB", 8);
        let rows = vec![
            scenario(
                format!("flood: {flood} × {flood_mib} MiB, Content-Length, no CLI"),
                Burst::Flood { chunked: false },
                flood,
                flood_mib,
            )
            .await,
            scenario(
                format!("flood: {flood} × {flood_mib} MiB, chunked, no CLI"),
                Burst::Flood { chunked: true },
                flood,
                flood_mib,
            )
            .await,
            scenario(
                format!("flood: {flood} × {flood_mib} MiB, then a CLI takes them all"),
                Burst::Drained,
                flood,
                flood_mib,
            )
            .await,
            scenario(
                format!("stalled session: {stalled} × {stalled_mib} MiB"),
                Burst::Stalled,
                stalled,
                stalled_mib,
            )
            .await,
        ];
        println!("## hooks-relay memory under bursts (issue 17)");
        println!();
        println!("- relay: `hooks-relay --listen 127.0.0.1:0 --data-dir <tmp>`, default settings, a fresh one per row; RSS is VmRSS (peak: VmHWM) from /proc/<pid>/status");
        println!(
            "- idle: {} s after the last sender had its answer (or gave up after {} s)",
            IDLE.as_secs(),
            ANSWER_LIMIT.as_secs()
        );
        println!();
        println!("| burst | start | peak | answered | idle | statuses | took |");
        println!("|---|---:|---:|---:|---:|---|---:|");
        for row in rows {
            println!("{row}");
        }
    });
}

#[derive(Clone, Copy)]
enum Burst {
    Flood { chunked: bool },
    Drained,
    Stalled,
}

/// Runs one burst on a fresh relay and returns its table row.
async fn scenario(label: String, burst: Burst, count: usize, mib: usize) -> String {
    let data_dir = tempfile::tempdir().expect("the bench needs a scratch data directory");
    let mut relay = RelayProcess::start(&data_dir.path().join("relay"), &[]).await;
    let pid = relay.child.id();
    tokio::time::sleep(SETTLE).await;
    let start = Memory::of(pid);
    eprintln!("memory bench: {label}: relay at {} ({start:?})", relay.addr);
    let channel = format!("bench-{}", std::process::id());
    let stalled = match burst {
        Burst::Flood { .. } | Burst::Drained => {
            // Claimed, then left: webhooks to it are queued for a CLI that is not there.
            match open_session(relay.addr, &channel).await {
                Ok(mut session) => {
                    let _ = session.close(None).await;
                }
                Err(e) => eprintln!("memory bench: could not claim the channel: {e}"),
            }
            wait_sessions(relay.addr, 0).await;
            None
        }
        Burst::Stalled => match open_session(relay.addr, &channel).await {
            Ok(session) => Some(stall(session)),
            Err(e) => {
                eprintln!("memory bench: could not open the stalled session: {e}");
                None
            }
        },
    };
    let body = Bytes::from(vec![b'x'; mib << 20]);
    let chunked = matches!(burst, Burst::Flood { chunked: true });
    let began = Instant::now();
    let senders: Vec<_> = (0..count)
        .map(|i| {
            let body = body.clone();
            let path = format!("/{channel}/burst/{i}");
            tokio::spawn(post(relay.addr, path, body, chunked))
        })
        .collect();
    let mut statuses = BTreeMap::<String, usize>::new();
    for sender in senders {
        let outcome = match sender.await {
            Ok(Ok(status)) => status.to_string(),
            Ok(Err(e)) => short(&e.to_string()),
            Err(e) => short(&e.to_string()),
        };
        *statuses.entry(outcome).or_default() += 1;
    }
    if matches!(burst, Burst::Drained) {
        drain(relay.addr, &channel).await;
    }
    let took = began.elapsed();
    let answered = Memory::of(pid);
    if let Some(stalled) = stalled {
        stalled.abort();
    }
    tokio::time::sleep(IDLE).await;
    let idle = Memory::of(pid);
    if let Ok(Some(status)) = relay.child.try_wait() {
        eprintln!("memory bench: the relay exited early ({status})");
    }
    let statuses = statuses
        .iter()
        .map(|(s, n)| format!("{n} × {s}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "| {label} | {} | {} | {} | {} | {statuses} | {:.1} s |",
        show(start.map(|m| m.rss_kib)),
        show(idle.or(answered).map(|m| m.peak_kib)),
        show(answered.map(|m| m.rss_kib)),
        show(idle.map(|m| m.rss_kib)),
        took.as_secs_f64()
    )
}

fn short(text: &str) -> String {
    text.chars().take(60).collect()
}

/// POSTs `body` to `path` on its own connection; the answer's status.
async fn post(
    relay: SocketAddr,
    path: String,
    body: Bytes,
    chunked: bool,
) -> Result<u16, BoxError> {
    let exchange = async {
        let stream = TcpStream::connect(relay).await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let body: BoxBody<Bytes, Infallible> = if chunked {
            let pieces: Vec<Result<hyper::body::Frame<Bytes>, Infallible>> = (0..body.len())
                .step_by(64 * 1024)
                .map(|at| {
                    let end = (at + 64 * 1024).min(body.len());
                    Ok(hyper::body::Frame::data(body.slice(at..end)))
                })
                .collect();
            http_body_util::BodyExt::boxed(StreamBody::new(futures_util::stream::iter(pieces)))
        } else {
            Full::new(body).boxed()
        };
        let req = Request::post(path)
            .header(HOST, relay.to_string())
            .header("content-type", "application/octet-stream")
            .body(body)?;
        let response = sender.send_request(req).await?;
        let status = response.status().as_u16();
        let _ = response.into_body().collect().await;
        Ok::<_, BoxError>(status)
    };
    tokio::time::timeout(ANSWER_LIMIT, exchange)
        .await
        .map_err(|_| "no answer in time")?
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// Opens a session on `channel` (taking streamed bodies, as `hooks listen` does) and waits for
/// the relay's hello.
async fn open_session(relay: SocketAddr, channel: &str) -> Result<CliSession<Ws>, BoxError> {
    let url = format!("ws://{relay}{}", protocol::CONNECT_PATH);
    let (ws, _) = tokio_tungstenite::connect_async(url).await?;
    let mut session = CliSession::new(ws);
    let hello = protocol::ClientHello {
        version: PROTOCOL_VERSION,
        channel: Some(channel.to_owned()),
        respond: Respond::App,
        timeout_ms: None,
        offline: None,
        token: None,
        stream_bodies: true,
    };
    session.hello(&hello).await?;
    Ok(session)
}

/// Attaches a CLI to `channel` that acknowledges every request it is sent, and waits (up to a
/// minute) until the relay's queue is empty.
async fn drain(relay: SocketAddr, channel: &str) {
    let session = match open_session(relay, channel).await {
        Ok(session) => session,
        Err(e) => {
            eprintln!("memory bench: could not open the draining session: {e}");
            return;
        }
    };
    let (mut writer, mut reader) = session.split();
    let acking = tokio::spawn(async move {
        while let Ok((message, _)) = reader.recv().await {
            // Queued requests come whole, never streamed.
            let RelayMessage::Request(protocol::Request { id, .. }) = message else {
                continue;
            };
            let ack = ClientMessage::Ack(protocol::Ack { id });
            if writer.send(&ack, &[]).await.is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + ANSWER_LIMIT;
    while Instant::now() < deadline && gauge(relay, "hooks_queue_depth").await != Some(0) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    acking.abort();
}

/// Pings the relay every second and never reads: a CLI stuck but alive. Aborting the task
/// closes the session.
fn stall(session: CliSession<Ws>) -> tokio::task::JoinHandle<()> {
    let (mut writer, reader) = session.split();
    tokio::spawn(async move {
        let _unread = reader;
        loop {
            if writer.write_batch(Outgoing::Ping, || None).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

/// Waits (up to 10 s) until the relay reports `n` sessions attached.
async fn wait_sessions(relay: SocketAddr, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if gauge(relay, "hooks_sessions").await == Some(n) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("memory bench: the relay did not report {n} sessions in time");
}

/// The relay's gauge `name`.
async fn gauge(relay: SocketAddr, name: &str) -> Option<u64> {
    let fetch = async {
        let stream = TcpStream::connect(relay).await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = Request::get(protocol::METRICS_PATH)
            .header(HOST, relay.to_string())
            .body(Full::new(Bytes::new()))?;
        let response = sender.send_request(req).await?;
        let body = response.into_body().collect().await?.to_bytes();
        Ok::<_, BoxError>(String::from_utf8_lossy(&body).into_owned())
    };
    let text = tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .ok()?
        .ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Resident set size now and at its peak (Linux only).
#[derive(Clone, Copy, Debug)]
struct Memory {
    rss_kib: u64,
    peak_kib: u64,
}

impl Memory {
    fn of(pid: u32) -> Option<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        };
        Some(Memory {
            rss_kib: field("VmRSS:")?,
            peak_kib: field("VmHWM:")?,
        })
    }
}

fn show(kib: Option<u64>) -> String {
    match kib {
        Some(kib) => format!("{:.0} MiB", kib as f64 / 1024.0),
        None => "n/a".to_owned(),
    }
}
