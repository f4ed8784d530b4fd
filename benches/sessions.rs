//! `cargo bench --bench sessions`: the memory a relay process needs per idle CLI session.
//!
//! It starts `hooks-relay --listen 127.0.0.1:0 --data-dir <tmp>` (durable SQLite queue, as
//! deployed), reads its resident memory, then opens `HOOKS_BENCH_SESSIONS` (default 10,000) idle
//! sessions to it with a bare WebSocket client: each sends the protocol's hello, reads the
//! relay's hello, and then only reads, which answers the relay's pings. It holds them longer
//! than the relay's silence limit, so a session that did not answer pings would be gone, checks
//! on the relay's metrics page (`hooks_sessions`) that every one is attached, and reads the
//! relay's memory again. It prints a markdown table and asserts nothing about memory.
//!
//! Each session needs an open file in this process and one in the relay (which inherits this
//! process's limit); the bench stops with a message when `Max open files` is too low for that.
//! `benches/run.sh` raises it with `ulimit -n`.
//!
//! With `HOOKS_BENCH_SUMMARY=<file>`, the headline figures are also appended to that file as
//! rows of the summary table `benches/run.sh` prints.

mod support;

use support::{RelayProcess, READY_TIMEOUT};

use std::error::Error;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::HOST;
use http::Request;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use relay_server::protocol::session::CliSession;
use relay_server::protocol::{self, Respond, PROTOCOL_VERSION};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

/// Sessions opened unless `HOOKS_BENCH_SESSIONS` says otherwise.
const DEFAULT_SESSIONS: u64 = 10_000;

/// Sessions being opened at once (TCP connect, WebSocket upgrade, hellos).
const OPENING_AT_ONCE: usize = 64;

/// How long one session may take to open.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the sessions stay open before memory is read: longer than the relay's silence limit
/// plus a ping interval, so every session has had to answer pings to still be there.
const HOLD: Duration =
    Duration::from_secs(protocol::SILENCE_LIMIT.as_secs() + protocol::PING_INTERVAL.as_secs());

/// How long a freshly started relay is left alone before its idle RSS is read.
const SETTLE: Duration = Duration::from_millis(500);

/// Open files this process and the relay need besides one per session.
const FD_MARGIN: u64 = 256;

type BoxError = Box<dyn Error + Send + Sync>;

fn main() -> ExitCode {
    let sessions = match std::env::var("HOOKS_BENCH_SESSIONS") {
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("HOOKS_BENCH_SESSIONS must be a positive number, not {text:?}");
                return ExitCode::from(2);
            }
        },
        Err(_) => DEFAULT_SESSIONS,
    };
    if let Err(message) = check_open_files(sessions) {
        eprintln!("sessions bench: {message}");
        return ExitCode::FAILURE;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the benchmark needs a tokio runtime");
    runtime.block_on(bench(sessions))
}

/// Checks that `Max open files` in `/proc/self/limits` (Linux) leaves room for `sessions`
/// sockets here and in the relay, which inherits the limit.
fn check_open_files(sessions: u64) -> Result<(), String> {
    let needed = sessions + FD_MARGIN;
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        eprintln!("sessions bench: cannot read /proc/self/limits; hoping for {needed} open files");
        return Ok(());
    };
    let soft = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next());
    match soft {
        Some("unlimited") => Ok(()),
        Some(soft) => match soft.parse::<u64>() {
            Ok(soft) if soft >= needed => Ok(()),
            Ok(soft) => Err(format!(
                "{sessions} sessions need {needed} open files in this process and in the relay, \
                 but the limit is {soft} (Max open files in /proc/self/limits); raise it with \
                 `ulimit -n {needed}` first (benches/run.sh does), or set HOOKS_BENCH_SESSIONS \
                 below {}",
                soft.saturating_sub(FD_MARGIN)
            )),
            Err(_) => Err(format!("cannot parse Max open files {soft:?}")),
        },
        None => Err("no Max open files line in /proc/self/limits".to_owned()),
    }
}

/// What happened to the sessions, counted by their tasks.
#[derive(Default)]
struct Counts {
    /// Sessions whose stream ended before the bench closed it.
    dropped: AtomicU64,
}

async fn bench(sessions: u64) -> ExitCode {
    let data_dir = tempfile::tempdir().expect("the bench needs a scratch data directory");
    // The relay's default --max-sessions (20,000) is enough unless asked for more.
    let default_max = relay_server::config::DEFAULT_MAX_SESSIONS as u64;
    let extra = if sessions > default_max {
        vec!["--max-sessions".to_owned(), sessions.to_string()]
    } else {
        Vec::new()
    };
    let mut relay = RelayProcess::start(&data_dir.path().join("relay"), &extra).await;
    let pid = relay.child.id();
    tokio::time::sleep(SETTLE).await;
    let idle = Memory::of(pid);
    let attached_idle = attached(relay.addr).await;
    eprintln!(
        "sessions bench: relay at {} uses {} idle; opening {sessions} sessions…",
        relay.addr,
        show_kib(idle.map(|m| m.rss_kib))
    );

    let url = format!("ws://{}{}", relay.addr, protocol::CONNECT_PATH);
    let stop = CancellationToken::new();
    let counts = Arc::new(Counts::default());
    let opening = Arc::new(Semaphore::new(OPENING_AT_ONCE));
    let (opened_tx, mut opened_rx) = mpsc::unbounded_channel();
    let began = Instant::now();
    for _ in 0..sessions {
        tokio::spawn(session(
            url.clone(),
            Arc::clone(&opening),
            opened_tx.clone(),
            stop.clone(),
            Arc::clone(&counts),
        ));
    }
    drop(opened_tx);
    let mut opened = 0u64;
    let mut failures = std::collections::BTreeMap::<String, u64>::new();
    while let Some(outcome) = opened_rx.recv().await {
        match outcome {
            Ok(()) => opened += 1,
            Err(why) => *failures.entry(why).or_default() += 1,
        }
    }
    let open_time = began.elapsed();
    let attached_open = attached(relay.addr).await;
    let open = Memory::of(pid);
    eprintln!(
        "sessions bench: {opened} of {sessions} sessions open in {:.1} s (relay says {}); holding them {} s…",
        open_time.as_secs_f64(),
        show_count(attached_open),
        HOLD.as_secs()
    );
    tokio::time::sleep(HOLD).await;
    let attached_held = attached(relay.addr).await;
    let held = Memory::of(pid);
    let dropped = counts.dropped.load(Ordering::Relaxed);

    stop.cancel();
    let closed_at = Instant::now();
    let mut attached_closed = attached(relay.addr).await;
    while attached_closed != Some(0) && closed_at.elapsed() < READY_TIMEOUT {
        tokio::time::sleep(Duration::from_millis(200)).await;
        attached_closed = attached(relay.addr).await;
    }
    let closed = Memory::of(pid);
    if let Ok(Some(status)) = relay.child.try_wait() {
        eprintln!("sessions bench: the relay exited early ({status})");
    }

    let per_session = match (idle, held) {
        (Some(idle), Some(held)) if opened > 0 => {
            Some(held.rss_kib.saturating_sub(idle.rss_kib) as f64 / opened as f64)
        }
        _ => None,
    };
    let report = SessionsReport {
        sessions,
        opened,
        failures,
        dropped,
        open_time,
        idle,
        open,
        held,
        closed,
        attached: [attached_idle, attached_open, attached_held, attached_closed],
        per_session,
    };
    report.print();
    if opened == sessions && attached_held == Some(sessions) && dropped == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One idle session: opens (at most [`OPENING_AT_ONCE`] at a time), reports on `opened`, then
/// reads until `stop`, which answers the relay's pings.
async fn session(
    url: String,
    opening: Arc<Semaphore>,
    opened: mpsc::UnboundedSender<Result<(), String>>,
    stop: CancellationToken,
    counts: Arc<Counts>,
) {
    let permit = opening.acquire_owned().await;
    let ws = tokio::time::timeout(OPEN_TIMEOUT, open_session(&url)).await;
    drop(permit);
    let mut session = match ws {
        Ok(Ok(session)) => session,
        Ok(Err(e)) => {
            let _ = opened.send(Err(e.to_string()));
            return;
        }
        Err(_) => {
            let _ = opened.send(Err("no hello in time".to_owned()));
            return;
        }
    };
    let _ = opened.send(Ok(()));
    drop(opened);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            // Pings are answered while it waits; the relay sends nothing else to an idle session.
            received = session.recv() => if received.is_err() {
                counts.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            },
        }
    }
    let _ = session.close(None).await;
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// Connects, says hello for a fresh random channel, and waits for the relay's hello.
async fn open_session(url: &str) -> Result<CliSession<Ws>, BoxError> {
    // Small buffers: this client's memory is not what is measured, but 10,000 default buffers
    // (128 KiB each) would crowd the machine.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
    let mut session = CliSession::new(ws);
    let hello = protocol::ClientHello {
        version: PROTOCOL_VERSION,
        channel: None,
        respond: Respond::App,
        timeout_ms: None,
        offline: None,
        token: None,
        stream_bodies: false,
    };
    session.hello(&hello).await?;
    Ok(session)
}

/// `hooks_sessions` on the relay's metrics page.
async fn attached(relay: SocketAddr) -> Option<u64> {
    let text = metrics(relay).await.ok()?;
    text.lines()
        .filter_map(|line| line.strip_prefix("hooks_sessions "))
        .find_map(|value| value.trim().parse().ok())
}

/// The relay's metrics page.
async fn metrics(relay: SocketAddr) -> Result<String, BoxError> {
    let stream = TcpStream::connect(relay).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = Request::builder()
        .uri(protocol::METRICS_PATH)
        .header(HOST, relay.to_string())
        .body(Full::new(Bytes::new()))?;
    let body = tokio::time::timeout(Duration::from_secs(10), async {
        let response = sender.send_request(req).await?;
        Ok::<_, BoxError>(response.into_body().collect().await?.to_bytes())
    })
    .await
    .map_err(|_| "no metrics in time")??;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Resident set size now and at its peak, from `/proc/<pid>/status` (Linux only).
#[derive(Clone, Copy, Debug)]
struct Memory {
    rss_kib: u64,
    peak_kib: u64,
}

impl Memory {
    /// `None` where `/proc` is missing (not Linux) or the process is gone.
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

fn show_kib(kib: Option<u64>) -> String {
    match kib {
        Some(kib) => format!("{:.1} MiB", kib as f64 / 1024.0),
        None => "n/a".to_owned(),
    }
}

fn show_count(n: Option<u64>) -> String {
    n.map_or("n/a".to_owned(), |n| n.to_string())
}

/// Everything the run measured.
struct SessionsReport {
    sessions: u64,
    opened: u64,
    failures: std::collections::BTreeMap<String, u64>,
    dropped: u64,
    open_time: Duration,
    idle: Option<Memory>,
    open: Option<Memory>,
    held: Option<Memory>,
    closed: Option<Memory>,
    /// `hooks_sessions` when idle, just opened, held, and closed.
    attached: [Option<u64>; 4],
    per_session: Option<f64>,
}

impl SessionsReport {
    fn print(&self) {
        let n = self.sessions;
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!("## hooks-relay with {n} idle sessions"));
        line(String::new());
        line(
            "- relay: `hooks-relay --listen 127.0.0.1:0 --data-dir <tmp>` (`hooks relay` when hooks-relay is not built; own process, durable SQLite queue); RSS is VmRSS from /proc/<pid>/status".to_owned(),
        );
        line(format!(
            "- sessions: WebSocket to {}, protocol hello (random channel, respond app), relay hello, then only reading (which answers the relay's pings); {OPENING_AT_ONCE} opening at a time",
            protocol::CONNECT_PATH
        ));
        line(format!(
            "- held {} s (the relay drops a session silent for {} s) before the RSS with {n} sessions is read",
            HOLD.as_secs(),
            protocol::SILENCE_LIMIT.as_secs()
        ));
        line(String::new());
        line(
            "| point | relay RSS | peak RSS (VmHWM) | sessions attached (relay metrics) |"
                .to_owned(),
        );
        line("|---|---:|---:|---:|".to_owned());
        let points = [
            ("idle (after start, no session)", self.idle),
            ("all sessions just opened", self.open),
            (
                "after holding them (the figure per session uses this)",
                self.held,
            ),
            ("after closing them", self.closed),
        ];
        for ((label, memory), attached) in points.into_iter().zip(self.attached) {
            line(format!(
                "| {label} | {} | {} | {} |",
                show_kib(memory.map(|m| m.rss_kib)),
                show_kib(memory.map(|m| m.peak_kib)),
                show_count(attached)
            ));
        }
        line(String::new());
        let per_session = self
            .per_session
            .map_or("n/a".to_owned(), |kib| format!("{kib:.1} KiB"));
        line(format!(
            "Per idle session: {per_session} ((held − idle) / {} sessions; target ≤ 8 KiB at 10,000 sessions).",
            self.opened
        ));
        line(format!(
            "Opened {} of {n} sessions in {:.1} s; {} dropped by the relay while held.",
            self.opened,
            self.open_time.as_secs_f64(),
            self.dropped
        ));
        for (why, count) in &self.failures {
            line(format!("Failed to open: {count} × {why}"));
        }
        print!("{out}");

        let setup = "relay process, durable queue";
        let idle_mib = self.idle.map(|m| m.rss_kib as f64 / 1024.0);
        let rows = [
            [
                setup.to_owned(),
                "relay RSS idle (sessions bench)".to_owned(),
                String::new(),
                show_kib(self.idle.map(|m| m.rss_kib)),
                String::new(),
                "≤ 8 MiB".to_owned(),
                met(idle_mib.map(|v| v <= 8.0)),
            ],
            [
                setup.to_owned(),
                format!("relay RSS with {n} idle sessions"),
                String::new(),
                show_kib(self.held.map(|m| m.rss_kib)),
                String::new(),
                String::new(),
                String::new(),
            ],
            [
                setup.to_owned(),
                "relay RSS per idle session".to_owned(),
                String::new(),
                per_session,
                String::new(),
                "≤ 8 KiB".to_owned(),
                met(self.per_session.map(|v| v <= 8.0)),
            ],
            [
                setup.to_owned(),
                "idle sessions attached after the hold".to_owned(),
                String::new(),
                format!("{} of {n}", show_count(self.attached[2])),
                String::new(),
                format!("{n}"),
                met(Some(self.attached[2] == Some(n) && self.dropped == 0)),
            ],
        ];
        let summary: String = rows
            .iter()
            .map(|cells| format!("| {} |\n", cells.join(" | ")))
            .collect();
        append_summary(&summary);
    }
}

fn met(ok: Option<bool>) -> String {
    match ok {
        Some(true) => "yes".to_owned(),
        Some(false) => "**no**".to_owned(),
        None => "n/a".to_owned(),
    }
}

/// Appends summary rows to the file named by `HOOKS_BENCH_SUMMARY`, if set.
fn append_summary(rows: &str) {
    let Some(path) = std::env::var_os("HOOKS_BENCH_SUMMARY") else {
        return;
    };
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(rows.as_bytes()));
    if let Err(e) = written {
        eprintln!(
            "sessions bench: could not append to {}: {e}",
            std::path::Path::new(&path).display()
        );
    }
}
