//! `cargo bench --bench tunnel`: latency and throughput of POSTs sent through the real
//! `hooks listen` binary and a relay, next to the same POSTs sent straight to the app, measured
//! side by side in alternating rounds; the CPU time per request of the tunnel's two processes
//! at c=32 (relay and CLI, or a peer's server and client; from `/proc/<pid>/stat`, so not with
//! the relay inside this process); and the memory (RSS) of the CLI and the relay. It prints a
//! markdown table and asserts nothing about timings.
//!
//! Scenarios: a 1 KiB JSON POST at c=1 on a keep-alive connection and on a new connection per
//! request, the same at c=32 for throughput, and 1 MiB and 10 MiB binary POSTs at c=1. Every
//! request carries its length and checksum in `x-bench-check`; the app recomputes both from the
//! body it received and answers `400` on a mismatch, so a mangled body counts as a failure.
//!
//! Relay: `HOOKS_BENCH_RELAY=inproc` (the default) runs `relay_server::run` inside this process
//! with `Config::default()` (in-memory queue), as `hooks listen` embeds it when no relay is
//! configured; `HOOKS_BENCH_DURABLE=1` gives that in-process relay a data directory.
//! `HOOKS_BENCH_RELAY=process` starts `hooks-relay --listen 127.0.0.1:0 --data-dir <tmp>` as its
//! own process, with its durable SQLite queue, as deployed; only in that mode can the relay's
//! RSS be read. The in-process relay stays the default because `hooks relay` always has a
//! durable queue, which costs more per request than the in-memory one, so the process mode's
//! figures are not comparable with earlier runs of this benchmark; `benches/run.sh` runs both.
//!
//! Sizes: `HOOKS_BENCH_ROUNDS` (default 5), `HOOKS_BENCH_REQUESTS` (sequential requests per path
//! per round for each 1 KiB c=1 scenario, default 2000), `HOOKS_BENCH_SECONDS` (length of each
//! c=32 run per path per round, default 3), `HOOKS_BENCH_MIB_REQUESTS` (1 MiB requests per path
//! per round, default 40) and `HOOKS_BENCH_10MIB_REQUESTS` (10 MiB requests per path per round,
//! default 8).
//!
//! With `HOOKS_BENCH_SUMMARY=<file>`, the headline figures are also appended to that file as
//! rows of the summary table `benches/run.sh` prints. `HOOKS_BENCH_BIN=PATH` runs another
//! build of `hooks` (and the `hooks-relay` beside it) than the one `cargo bench` built.
//!
//! Peers: `HOOKS_BENCH_PEER=bore` or `rathole` sends the tunnel path through that raw TCP tunnel
//! instead of hooks (its server and client as processes; `HOOKS_BENCH_PEER_BIN` names the
//! binary, else it is looked up on `PATH`), with the same scenarios and the same direct path in
//! alternating rounds, so its ratios compare with hooks' from another run on the same machine.
//! Targets are not applied to it, and its two processes' memory is shown where the relay's and
//! the CLI's would be. `benches/run.sh --peers` installs both and runs them.

#[path = "support/peers.rs"]
mod peers;
mod support;

use peers::{Peer, PeerKind};
use support::{drain_stderr, RelayProcess, READY_TIMEOUT};

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::error::Error;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Barrier};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Size of every request body of the 1 KiB scenarios, in bytes.
const BODY_LEN: usize = 1024;

/// Sizes of the large request bodies, in bytes.
const LARGE_LENS: [usize; 2] = [1024 * 1024, 10 * 1024 * 1024];

/// Concurrent keep-alive clients in the throughput scenario.
const CLIENTS: usize = 32;

/// How long to wait, after the last round, for the CLI to print every request it forwarded and
/// for the relay's queue to empty.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a c=1 client waits for one answer before counting it as a failure.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long c=32 clients wait, after their run ends, for answers still outstanding.
const STRAGGLER_GRACE: Duration = Duration::from_secs(2);

/// How long a freshly started process is left alone before its idle RSS is read.
const SETTLE: Duration = Duration::from_millis(500);

/// The header carrying a request body's length and checksum, which the app checks.
const CHECK: HeaderName = HeaderName::from_static("x-bench-check");

/// What a request, connection or task can fail with.
type BoxError = Box<dyn Error + Send + Sync>;

/// The two ways a request reaches the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Direct,
    Tunnel,
}

impl Path {
    const ALL: [Path; 2] = [Path::Direct, Path::Tunnel];

    fn index(self) -> usize {
        match self {
            Path::Direct => 0,
            Path::Tunnel => 1,
        }
    }
}

/// A request body with its content type and its `x-bench-check` value.
#[derive(Clone)]
struct Payload {
    body: Bytes,
    content_type: HeaderValue,
    check: HeaderValue,
}

impl Payload {
    fn new(body: Bytes, content_type: &'static str) -> Self {
        let check = HeaderValue::from_str(&check_value(&body))
            .expect("a length and a hex checksum are a valid header value");
        Payload {
            body,
            content_type: HeaderValue::from_static(content_type),
            check,
        }
    }
}

/// Where a client sends its requests: a socket address, the `Host` header and the path.
#[derive(Clone)]
struct Endpoint {
    addr: SocketAddr,
    host: HeaderValue,
    path: String,
}

impl Endpoint {
    /// One POST of `payload`; with `close`, it asks the server to close the connection
    /// afterwards.
    fn request(&self, payload: &Payload, close: bool) -> Request<Full<Bytes>> {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(self.path.as_str())
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, payload.content_type.clone())
            .header(USER_AGENT, "hooks-bench/1")
            .header(CHECK, payload.check.clone());
        if close {
            builder = builder.header(CONNECTION, "close");
        }
        builder
            .body(Full::new(payload.body.clone()))
            .expect("the benchmark's request parts are valid")
    }
}

/// Successes and failures (errors, timeouts, non-2xx answers) of one path.
#[derive(Clone, Debug, Default)]
struct Tally {
    ok: u64,
    /// How many failures of each kind.
    failures: BTreeMap<String, u64>,
}

impl Tally {
    fn fail(&mut self, why: String) {
        *self.failures.entry(why).or_default() += 1;
    }

    fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    fn add(&mut self, other: Tally) {
        self.ok += other.ok;
        for (why, n) in other.failures {
            *self.failures.entry(why).or_default() += n;
        }
    }
}

/// The 50th and 99th percentile of one batch of latencies.
#[derive(Clone, Copy, Debug)]
struct Percentiles {
    p50: Duration,
    p99: Duration,
}

impl Percentiles {
    /// Nearest-rank percentiles; `None` when no request succeeded.
    fn of(mut samples: Vec<Duration>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let rank = |p: usize| samples[(samples.len() * p).div_ceil(100).max(1) - 1];
        Some(Percentiles {
            p50: rank(50),
            p99: rank(99),
        })
    }
}

/// The figures of one round, indexed by [`Path::index`].
#[derive(Default)]
struct Round {
    keep_alive: [Option<Percentiles>; 2],
    new_conn: [Option<Percentiles>; 2],
    throughput: [f64; 2],
    /// CPU time of the tunnel's processes (relay and CLI, or the peer's server and client) per
    /// request of the c=32 run, in µs; `None` when the relay runs inside this process.
    cpu_us: Option<f64>,
    /// One entry per [`LARGE_LENS`] size.
    large: [[Option<Percentiles>; 2]; 2],
}

/// Where the relay runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RelayMode {
    /// `relay_server::run` inside the benchmark process.
    InProcess,
    /// `hooks relay` as its own process, with a durable queue.
    Process,
}

/// Benchmark sizes, from the environment.
struct Sizes {
    rounds: usize,
    requests: usize,
    seconds: f64,
    /// Requests per path per round for each of [`LARGE_LENS`].
    large_requests: [usize; 2],
    relay: RelayMode,
    /// The in-process relay keeps its queue on disk (as `hooks relay` does by default) instead
    /// of in memory. Always true for [`RelayMode::Process`].
    durable: bool,
    /// The tunnel path goes through this raw TCP tunnel instead of hooks.
    peer: Option<PeerKind>,
}

impl Sizes {
    fn from_env() -> Self {
        let relay = match std::env::var("HOOKS_BENCH_RELAY").as_deref() {
            Err(_) | Ok("inproc") => RelayMode::InProcess,
            Ok("process") => RelayMode::Process,
            Ok(other) => panic!("HOOKS_BENCH_RELAY must be process or inproc, not {other:?}"),
        };
        Sizes {
            rounds: env_number("HOOKS_BENCH_ROUNDS", 5),
            requests: env_number("HOOKS_BENCH_REQUESTS", 2000),
            seconds: env_number("HOOKS_BENCH_SECONDS", 3.0),
            large_requests: [
                env_number("HOOKS_BENCH_MIB_REQUESTS", 40),
                env_number("HOOKS_BENCH_10MIB_REQUESTS", 8),
            ],
            relay,
            durable: relay == RelayMode::Process
                || std::env::var_os("HOOKS_BENCH_DURABLE").is_some_and(|v| v == "1"),
            peer: PeerKind::from_env(),
        }
    }

    /// How this run's relay is set up, for the report.
    fn setup(&self) -> &'static str {
        if let Some(peer) = self.peer {
            return match peer {
                PeerKind::Bore => "bore (raw TCP tunnel, for comparison)",
                PeerKind::Rathole => "rathole (raw TCP tunnel, for comparison)",
            };
        }
        match (self.relay, self.durable) {
            (RelayMode::Process, _) => "relay process, durable queue",
            (RelayMode::InProcess, false) => "in-process relay, in-memory queue",
            (RelayMode::InProcess, true) => "in-process relay, durable queue",
        }
    }
}

fn env_number<T: std::str::FromStr + PartialOrd + Default>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(text) => match text.trim().parse::<T>() {
            Ok(value) if value > T::default() => value,
            _ => panic!("{name} must be a positive number, not {text:?}"),
        },
        Err(_) => default,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the benchmark needs a tokio runtime");
    runtime.block_on(bench(Sizes::from_env()));
}

/// Resident memory of the relay and the CLI at the points the report shows.
#[derive(Default)]
struct MemoryReport {
    relay_idle: Option<Memory>,
    relay_loaded: Option<Memory>,
    cli_idle: Option<Memory>,
    cli_loaded: Option<Memory>,
}

/// What the benchmark checks about lost requests once the rounds are over.
struct Delivery {
    /// Request lines the CLI printed, and disconnects it reported.
    printed: u64,
    disconnects: u64,
    /// `hooks_queue_depth` on the relay's metrics page once the run is over.
    queue_depth: Option<u64>,
}

async fn bench(sizes: Sizes) {
    let began = Instant::now();
    let small = Payload::new(json_payload(), "application/json");
    let large = LARGE_LENS.map(|len| Payload::new(noise(len), "application/octet-stream"));

    let app_addr = start_app().await;
    let data_dir = tempfile::tempdir().expect("the bench needs a scratch data directory");
    let mut memory = MemoryReport::default();
    let through = match sizes.peer {
        Some(kind) => Through::Peer(Peer::start(kind, app_addr).await),
        None => {
            let relay_dir = sizes.durable.then(|| data_dir.path().join("relay"));
            let relay = Relay::start(sizes.relay, relay_dir).await;
            if let Some(pid) = relay.pid() {
                tokio::time::sleep(SETTLE).await;
                memory.relay_idle = Memory::of(pid);
            }
            let cli = CliProcess::start(relay.addr, app_addr, &data_dir.path().join("cli")).await;
            Through::Hooks { relay, cli }
        }
    };
    let tunnel_endpoint = match &through {
        Through::Hooks { relay, cli } => {
            let tunnel_path = cli
                .url
                .parse::<http::Uri>()
                .expect("the ready line's url is a URI")
                .path()
                .trim_end_matches('/')
                .to_owned();
            Endpoint {
                addr: relay.addr,
                host: host_value(relay.addr),
                path: format!("{tunnel_path}/webhook"),
            }
        }
        Through::Peer(peer) => {
            let endpoint = Endpoint {
                addr: peer.addr,
                host: host_value(peer.addr),
                path: "/webhook".to_owned(),
            };
            // The peer's public port opens once its client has connected: poll it with real
            // requests (not counted) until one comes back.
            let probe = |ep: Endpoint, small: Payload| async move {
                keep_alive(&ep, &small, 1).await.1.failed() == 0
            };
            peers::wait_until(READY_TIMEOUT, || probe(endpoint.clone(), small.clone()))
                .await
                .unwrap_or_else(|| panic!("no request came through the peer tunnel in time"));
            endpoint
        }
    };
    tokio::time::sleep(SETTLE).await;
    let (server_pid, client_pid) = through.pids();
    memory.relay_idle = memory
        .relay_idle
        .or_else(|| server_pid.and_then(Memory::of));
    memory.cli_idle = Memory::of(client_pid);

    let endpoints = [
        Endpoint {
            addr: app_addr,
            host: host_value(app_addr),
            path: "/webhook".to_owned(),
        },
        tunnel_endpoint,
    ];
    let mut tallies = [Tally::default(), Tally::default()];
    let duration = Duration::from_secs_f64(sizes.seconds);

    eprintln!(
        "tunnel bench ({}): {} rounds, {} requests per 1 KiB c=1 run, {:.1} s per c=32 run, {} × 1 MiB and {} × 10 MiB per large run",
        sizes.setup(),
        sizes.rounds,
        sizes.requests,
        sizes.seconds,
        sizes.large_requests[0],
        sizes.large_requests[1],
    );
    eprintln!("warming up…");
    for path in Path::ALL {
        let ep = &endpoints[path.index()];
        let tally = &mut tallies[path.index()];
        tally.add(keep_alive(ep, &small, sizes.requests.min(500)).await.1);
        tally.add(new_connections(ep, &small, sizes.requests.min(100)).await.1);
        tally.add(
            throughput(ep, &small, duration.min(Duration::from_millis(500)))
                .await
                .1,
        );
        for payload in &large {
            tally.add(keep_alive(ep, payload, 2).await.1);
        }
    }

    let mut rounds = Vec::with_capacity(sizes.rounds);
    for r in 0..sizes.rounds {
        // Flip the order each round so slow drift (thermal, other load) hits both paths alike.
        let order = if r % 2 == 0 {
            [Path::Direct, Path::Tunnel]
        } else {
            [Path::Tunnel, Path::Direct]
        };
        let mut round = Round::default();
        for path in order {
            let (samples, tally) =
                keep_alive(&endpoints[path.index()], &small, sizes.requests).await;
            round.keep_alive[path.index()] = Percentiles::of(samples);
            tallies[path.index()].add(tally);
        }
        for path in order {
            let (samples, tally) =
                new_connections(&endpoints[path.index()], &small, sizes.requests).await;
            round.new_conn[path.index()] = Percentiles::of(samples);
            tallies[path.index()].add(tally);
        }
        for path in order {
            let cpu = (path == Path::Tunnel).then(|| through.cpu()).flatten();
            let (rate, tally) = throughput(&endpoints[path.index()], &small, duration).await;
            if let Some(before) = cpu {
                // What the CLI still does for the last requests (its capture, its line) counts.
                tokio::time::sleep(SETTLE).await;
                round.cpu_us = through
                    .cpu()
                    .filter(|_| tally.ok > 0)
                    .map(|after| (after - before).as_secs_f64() * 1e6 / tally.ok as f64);
            }
            round.throughput[path.index()] = rate;
            tallies[path.index()].add(tally);
        }
        for (size, payload) in large.iter().enumerate() {
            for path in order {
                let (samples, tally) = keep_alive(
                    &endpoints[path.index()],
                    payload,
                    sizes.large_requests[size],
                )
                .await;
                round.large[size][path.index()] = Percentiles::of(samples);
                tallies[path.index()].add(tally);
            }
        }
        eprintln!(
            "round {}/{}: keep-alive p50 {} / {}, new-conn p50 {} / {}, c=32 {:.0} / {:.0} req/s, 1 MiB {} / {}, 10 MiB {} / {} (direct / {})",
            r + 1,
            sizes.rounds,
            show_p(round.keep_alive[0], |p| p.p50),
            show_p(round.keep_alive[1], |p| p.p50),
            show_p(round.new_conn[0], |p| p.p50),
            show_p(round.new_conn[1], |p| p.p50),
            round.throughput[0],
            round.throughput[1],
            show_p(round.large[0][0], |p| p.p50),
            show_p(round.large[0][1], |p| p.p50),
            show_p(round.large[1][0], |p| p.p50),
            show_p(round.large[1][1], |p| p.p50),
            sizes.peer.map_or("hooks", PeerKind::name),
        );
        rounds.push(round);
    }

    let delivery = match &through {
        Through::Hooks { relay, cli } => {
            let (printed, disconnects) = cli.wait_for_requests(tallies[Path::Tunnel.index()].ok);
            Some(Delivery {
                printed,
                disconnects,
                queue_depth: queue_depth_after_drain(relay.addr).await,
            })
        }
        Through::Peer(_) => None,
    };
    let (server_pid, client_pid) = through.pids();
    memory.cli_loaded = Memory::of(client_pid);
    memory.relay_loaded = server_pid.and_then(Memory::of);
    let elapsed = began.elapsed();
    print_report(
        &sizes,
        &rounds,
        &tallies,
        delivery.as_ref(),
        &memory,
        elapsed,
    );

    if let Through::Hooks { relay, cli } = through {
        drop(cli);
        relay.stop().await;
    }
}

/// What the tunnel path goes through.
enum Through {
    /// A relay and `hooks listen`.
    Hooks { relay: Relay, cli: CliProcess },
    /// A raw TCP tunnel, for comparison.
    Peer(Peer),
}

impl Through {
    /// The process ids of the relay (or the peer's server; `None` when the relay runs in this
    /// process) and of the CLI (or the peer's client).
    fn pids(&self) -> (Option<u32>, u32) {
        match self {
            Through::Hooks { relay, cli } => (relay.pid(), cli.child.id()),
            Through::Peer(peer) => (Some(peer.server.id()), peer.client.id()),
        }
    }

    /// The CPU time both processes have used so far (see [`cpu_time`]); `None` when the relay
    /// runs inside this process or `/proc` cannot be read.
    fn cpu(&self) -> Option<Duration> {
        let (server, client) = self.pids();
        Some(cpu_time(server?)? + cpu_time(client)?)
    }
}

/// The user and system CPU time process `pid` has used, all its threads (those gone included),
/// from `/proc/<pid>/stat` (Linux only), in the kernel's 10 ms ticks (`USER_HZ` is 100 on
/// Linux): precise enough over a c=32 run, which costs seconds of CPU.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: fields are counted after it, from
    // the state (field 3); utime and stime are fields 14 and 15.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// A 1 KiB JSON document shaped like a payment provider's event.
fn json_payload() -> Bytes {
    let head = r#"{"id":"evt_1PbenchAAAAAAAAAAAAAAAAA","object":"event","type":"invoice.paid","livemode":false,"data":{"object":{"id":"in_1PbenchBBBBBBBBBBBBBBBBB","amount_paid":4200,"currency":"usd","customer":"cus_bench","description":""#;
    let tail = r#""}}}"#;
    let pad = BODY_LEN - head.len() - tail.len();
    let text = format!("{head}{}{tail}", "x".repeat(pad));
    debug_assert_eq!(text.len(), BODY_LEN);
    Bytes::from(text)
}

/// `len` pseudo-random bytes (xorshift64*), so every byte value occurs and a shifted, dropped or
/// zeroed chunk changes the checksum.
fn noise(len: usize) -> Bytes {
    let mut state = 0x2545_f491_4f6c_dd1d_u64 ^ len as u64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// `<length>-<checksum>` of a body: a 64-bit multiply-xor hash over 4 interleaved lanes of
/// little-endian words. Not cryptographic; it catches truncation, reordering and corruption,
/// and it is fast (about 1 ms per 10 MiB), so checking bodies costs both paths almost nothing.
fn check_value(body: &[u8]) -> String {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut lanes = [K, K ^ 1, K ^ 2, K ^ 3];
    let mut chunks = body.chunks_exact(32);
    for chunk in &mut chunks {
        for (lane, word) in lanes.iter_mut().zip(chunk.chunks_exact(8)) {
            let word = u64::from_le_bytes(word.try_into().expect("chunks of 8 bytes"));
            *lane = (*lane ^ word).wrapping_mul(K).rotate_left(29);
        }
    }
    let mut sum = body.len() as u64;
    for lane in lanes {
        sum = (sum ^ lane).wrapping_mul(K).rotate_left(29);
    }
    for &byte in chunks.remainder() {
        sum = (sum ^ u64::from(byte)).wrapping_mul(K).rotate_left(29);
    }
    format!("{}-{sum:016x}", body.len())
}

fn host_value(addr: SocketAddr) -> HeaderValue {
    HeaderValue::from_str(&addr.to_string()).expect("a socket address is a valid Host")
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

// ---------------------------------------------------------------------------------------------
// The app and the relay
// ---------------------------------------------------------------------------------------------

/// Starts the target app: reads each request's whole body and answers `200` with a small JSON
/// body, or `400` if the body's length and checksum do not match its `x-bench-check` header,
/// so a mangled request counts as a failure.
async fn start_app() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("the app needs a loopback port");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(app))
                    .await;
            });
        }
    });
    addr
}

async fn app(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let expected = parts.headers.get(&CHECK).cloned();
    let status = match body.collect().await.map(|body| body.to_bytes()) {
        Ok(body) if expected.is_some_and(|e| e.as_bytes() == check_value(&body).as_bytes()) => {
            StatusCode::OK
        }
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response = Response::new(Full::new(Bytes::from_static(br#"{"received":true}"#)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// The relay the tunnel path goes through.
struct Relay {
    addr: SocketAddr,
    running: RunningRelay,
}

enum RunningRelay {
    InProcess {
        stop: CancellationToken,
        task: JoinHandle<()>,
    },
    Process(RelayProcess),
}

impl Relay {
    /// Starts the relay; `data_dir` makes an in-process relay's queue durable (a relay process
    /// always gets one).
    async fn start(mode: RelayMode, data_dir: Option<std::path::PathBuf>) -> Self {
        match mode {
            RelayMode::InProcess => {
                let stop = CancellationToken::new();
                let (addr, task) = start_relay(stop.clone(), data_dir).await;
                Relay {
                    addr,
                    running: RunningRelay::InProcess { stop, task },
                }
            }
            RelayMode::Process => {
                let dir = data_dir.expect("a relay process always gets a data directory");
                let process = RelayProcess::start(&dir, &[]).await;
                Relay {
                    addr: process.addr,
                    running: RunningRelay::Process(process),
                }
            }
        }
    }

    /// The relay's own process id; `None` when it runs inside this process.
    fn pid(&self) -> Option<u32> {
        match &self.running {
            RunningRelay::InProcess { .. } => None,
            RunningRelay::Process(p) => Some(p.child.id()),
        }
    }

    async fn stop(self) {
        match self.running {
            RunningRelay::InProcess { stop, task } => {
                stop.cancel();
                if tokio::time::timeout(Duration::from_secs(10), task)
                    .await
                    .is_err()
                {
                    eprintln!("tunnel bench: the relay did not stop within 10 s");
                }
            }
            RunningRelay::Process(mut process) => {
                if let Ok(Some(status)) = process.child.try_wait() {
                    let tail = process.stderr_tail.lock().map(|t| t.clone());
                    eprintln!(
                        "tunnel bench: the relay process exited early ({status}); its stderr:\n{}",
                        String::from_utf8_lossy(&tail.unwrap_or_default())
                    );
                }
            }
        }
    }
}

/// Starts the relay in this process with its default settings; with `data_dir` its queue is
/// durable in that directory instead of in memory.
async fn start_relay(
    stop: CancellationToken,
    data_dir: Option<std::path::PathBuf>,
) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("the relay needs a loopback port");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let task = tokio::spawn(async move {
        let config = relay_server::Config {
            data_dir,
            ..relay_server::Config::default()
        };
        if let Err(e) = relay_server::run(listener, config, stop.cancelled_owned()).await {
            eprintln!("tunnel bench: the relay failed: {e:#}");
        }
    });
    (addr, task)
}

/// Polls the relay's metrics until `hooks_queue_depth` is 0 (every request acknowledged) or
/// [`DRAIN_TIMEOUT`] passes, and returns the last depth read.
async fn queue_depth_after_drain(relay: SocketAddr) -> Option<u64> {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let depth = metrics(relay)
            .await
            .ok()
            .and_then(|text| metric(&text, "hooks_queue_depth"));
        if depth == Some(0) || Instant::now() >= deadline {
            return depth;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The relay's metrics page.
async fn metrics(relay: SocketAddr) -> Result<String, BoxError> {
    let (mut sender, _task) = open(relay).await?;
    let req = Request::builder()
        .uri(relay_server::protocol::METRICS_PATH)
        .header(HOST, host_value(relay))
        .body(Full::new(Bytes::new()))?;
    let response = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let response = sender.send_request(req).await?;
        Ok::<_, BoxError>(response.into_body().collect().await?.to_bytes())
    })
    .await
    .map_err(|_| "no metrics in time")??;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

/// The value of an unlabelled metric on a Prometheus text page.
fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .find_map(|value| value.trim().parse().ok())
}

// ---------------------------------------------------------------------------------------------
// The CLI
// ---------------------------------------------------------------------------------------------

/// What the CLI has printed on stdout so far.
#[derive(Default)]
struct Printed {
    requests: u64,
    disconnects: u64,
}

/// A running `hooks listen --json`, killed on drop.
struct CliProcess {
    child: Child,
    url: String,
    printed: Arc<(Mutex<Printed>, Condvar)>,
}

impl CliProcess {
    /// Starts the CLI and waits for its ready line.
    async fn start(relay: SocketAddr, app: SocketAddr, data_dir: &std::path::Path) -> Self {
        let mut child = Command::new(support::hooks_bin())
            .args(["listen", "--json", "--relay"])
            .arg(format!("http://{relay}"))
            .arg("--forward-to")
            .arg(app.to_string())
            .env("HOOKS_DATA_DIR", data_dir)
            .env_remove("HOOKS_RELAY")
            .env_remove("HOOKS_CHANNEL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("could not start the hooks binary");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let printed = Arc::new((Mutex::new(Printed::default()), Condvar::new()));
        let (ready_tx, ready_rx) = oneshot::channel();
        drain_stdout(stdout, ready_tx, Arc::clone(&printed));
        let stderr_tail = drain_stderr(stderr);
        let url = match tokio::time::timeout(READY_TIMEOUT, ready_rx).await {
            Ok(Ok(url)) => url,
            outcome => {
                let _ = child.kill();
                let _ = child.wait();
                let why = if outcome.is_err() {
                    "did not print its ready line in time"
                } else {
                    "closed stdout without a ready line"
                };
                let tail = stderr_tail.lock().map(|t| t.clone()).unwrap_or_default();
                panic!(
                    "hooks listen {why}; its stderr:\n{}",
                    String::from_utf8_lossy(&tail)
                );
            }
        };
        CliProcess {
            child,
            url,
            printed,
        }
    }

    /// Waits (at most [`DRAIN_TIMEOUT`]) until the CLI has printed `expected` request lines, and
    /// returns what it printed.
    fn wait_for_requests(&self, expected: u64) -> (u64, u64) {
        let (lock, ready) = &*self.printed;
        let guard = lock.lock().expect("the stdout drain thread does not panic");
        let (guard, _) = ready
            .wait_timeout_while(guard, DRAIN_TIMEOUT, |p| p.requests < expected)
            .expect("the stdout drain thread does not panic");
        (guard.requests, guard.disconnects)
    }
}

impl Drop for CliProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the CLI's NDJSON until it ends: hands the ready line's URL to `ready`, then counts
/// request and disconnect events, so the pipe never fills.
fn drain_stdout(
    stdout: ChildStdout,
    ready: oneshot::Sender<String>,
    printed: Arc<(Mutex<Printed>, Condvar)>,
) {
    std::thread::spawn(move || {
        let mut ready = Some(ready);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if ready.is_some() {
                let value: serde_json::Value = match serde_json::from_str(&line) {
                    Ok(value) => value,
                    Err(_) => continue,
                };
                if value["type"] == "ready" {
                    if let (Some(tx), Some(url)) = (ready.take(), value["url"].as_str()) {
                        let _ = tx.send(url.to_owned());
                    }
                }
                continue;
            }
            // A substring test keeps this thread cheap: it shares the CPU with the clients.
            let (lock, changed) = &*printed;
            let Ok(mut p) = lock.lock() else { break };
            if line.contains(r#""type":"request""#) {
                p.requests += 1;
            } else if line.contains(r#""type":"disconnected""#) {
                p.disconnects += 1;
            }
            changed.notify_all();
        }
    });
}

// ---------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------

/// Opens an HTTP/1.1 connection; the returned task drives it until it closes.
async fn open(addr: SocketAddr) -> Result<(SendRequest<Full<Bytes>>, JoinHandle<()>), BoxError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok((sender, task))
}

/// Sends one request and reads the whole response by `deadline`; `Ok(Err(status))` for a
/// non-2xx answer.
async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
    deadline: Instant,
) -> Result<Result<(), StatusCode>, BoxError> {
    let round_trip = async {
        sender.ready().await?;
        let response = sender.send_request(req).await?;
        let status = response.status();
        response.into_body().collect().await?;
        Ok::<_, BoxError>(status)
    };
    let status = tokio::time::timeout_at(deadline.into(), round_trip)
        .await
        .map_err(|_| "no answer in time (client timeout)")??;
    Ok(if status.is_success() {
        Ok(())
    } else {
        Err(status)
    })
}

/// `n` sequential requests on one keep-alive connection (reopened after an error).
async fn keep_alive(ep: &Endpoint, payload: &Payload, n: usize) -> (Vec<Duration>, Tally) {
    let mut samples = Vec::with_capacity(n);
    let mut tally = Tally::default();
    let mut sender = None;
    for _ in 0..n {
        let s = match &mut sender {
            Some(s) => s,
            None => match open(ep.addr).await {
                Ok((s, _task)) => sender.insert(s),
                Err(e) => {
                    tally.fail(format!("connect: {e}"));
                    continue;
                }
            },
        };
        let req = ep.request(payload, false);
        let started = Instant::now();
        let outcome = exchange(s, req, started + REQUEST_TIMEOUT).await;
        let elapsed = started.elapsed();
        match outcome {
            Ok(Ok(())) => {
                samples.push(elapsed);
                tally.ok += 1;
            }
            Ok(Err(status)) => tally.fail(format!("status {status}")),
            Err(e) => {
                tally.fail(e.to_string());
                sender = None;
            }
        }
    }
    (samples, tally)
}

/// `n` sequential requests, each on a new connection that the server closes after answering.
/// A sample runs from `connect` to the last byte of the response.
async fn new_connections(ep: &Endpoint, payload: &Payload, n: usize) -> (Vec<Duration>, Tally) {
    let mut samples = Vec::with_capacity(n);
    let mut tally = Tally::default();
    for _ in 0..n {
        let req = ep.request(payload, true);
        let started = Instant::now();
        let outcome = async {
            let (mut sender, task) = open(ep.addr).await?;
            let answer = exchange(&mut sender, req, started + REQUEST_TIMEOUT).await?;
            Ok::<_, BoxError>((answer, sender, task))
        }
        .await;
        let elapsed = started.elapsed();
        match outcome {
            Ok((answer, sender, task)) => {
                match answer {
                    Ok(()) => {
                        samples.push(elapsed);
                        tally.ok += 1;
                    }
                    Err(status) => tally.fail(format!("status {status}")),
                }
                // Let the connection close before the next one opens.
                drop(sender);
                let _ = task.await;
            }
            Err(e) => tally.fail(e.to_string()),
        }
    }
    (samples, tally)
}

/// [`CLIENTS`] keep-alive clients sending back to back for `duration`; returns the requests/s
/// answered with a 2xx within `duration`. Answers still outstanding when it ends get
/// [`STRAGGLER_GRACE`] more; after that they count as failures.
async fn throughput(ep: &Endpoint, payload: &Payload, duration: Duration) -> (f64, Tally) {
    let start_line = Arc::new(Barrier::new(CLIENTS + 1));
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let ep = ep.clone();
        let payload = payload.clone();
        let start_line = Arc::clone(&start_line);
        clients.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut sender = match open(ep.addr).await {
                Ok((s, _task)) => Some(s),
                Err(e) => {
                    tally.fail(format!("connect: {e}"));
                    None
                }
            };
            start_line.wait().await;
            let deadline = Instant::now() + duration;
            let mut in_time = 0u64;
            while Instant::now() < deadline {
                let s = match &mut sender {
                    Some(s) => s,
                    None => match open(ep.addr).await {
                        Ok((s, _task)) => sender.insert(s),
                        Err(e) => {
                            tally.fail(format!("connect: {e}"));
                            continue;
                        }
                    },
                };
                match exchange(s, ep.request(&payload, false), deadline + STRAGGLER_GRACE).await {
                    Ok(Ok(())) => {
                        tally.ok += 1;
                        in_time += u64::from(Instant::now() <= deadline);
                    }
                    Ok(Err(status)) => tally.fail(format!("status {status}")),
                    Err(e) => {
                        tally.fail(e.to_string());
                        sender = None;
                    }
                }
            }
            (tally, in_time)
        }));
    }
    start_line.wait().await;
    let mut tally = Tally::default();
    let mut in_time = 0u64;
    for client in clients {
        match client.await {
            Ok((t, n)) => {
                tally.add(t);
                in_time += n;
            }
            Err(e) => tally.fail(format!("client task: {e}")),
        }
    }
    (in_time as f64 / duration.as_secs_f64(), tally)
}
// ---------------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------------

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn show_micros(us: Option<f64>) -> String {
    match us {
        Some(us) if us.abs() < 100.0 => format!("{us:.1} µs"),
        Some(us) if us.abs() < 1000.0 => format!("{us:.0} µs"),
        Some(us) if us.abs() < 100_000.0 => format!("{:.2} ms", us / 1000.0),
        Some(us) => format!("{:.1} ms", us / 1000.0),
        None => "n/a".to_owned(),
    }
}

fn show_p(p: Option<Percentiles>, pick: impl Fn(Percentiles) -> Duration) -> String {
    show_micros(p.map(|p| micros(pick(p))))
}

fn show_ratio(r: Option<f64>) -> String {
    match r {
        Some(r) => format!("{r:.2}×"),
        None => "n/a".to_owned(),
    }
}

fn show_mib(kib: Option<u64>) -> String {
    match kib {
        Some(kib) => format!("{:.1} MiB", kib as f64 / 1024.0),
        None => "n/a".to_owned(),
    }
}

/// A goal from issue 8 that a figure is held against.
#[derive(Clone, Copy)]
enum Target {
    AtMost(f64),
    AtLeast(f64),
}

impl Target {
    fn show(self, unit: &str) -> String {
        match self {
            Target::AtMost(v) => format!("≤ {v}{unit}"),
            Target::AtLeast(v) => format!("≥ {v}{unit}"),
        }
    }

    fn met(self, value: Option<f64>) -> &'static str {
        match (self, value) {
            (_, None) => "n/a",
            (Target::AtMost(t), Some(v)) if v <= t => "yes",
            (Target::AtLeast(t), Some(v)) if v >= t => "yes",
            _ => "**no**",
        }
    }
}

/// One figure of both paths: medians across rounds of each path, and medians of the per-round
/// difference and ratio.
struct Compared {
    direct: Option<f64>,
    tunnel: Option<f64>,
    added: Option<f64>,
    ratio: Option<f64>,
}

impl Compared {
    fn of(rounds: &[Round], value: impl Fn(&Round, Path) -> Option<f64>) -> Self {
        let of_path = |path| median(rounds.iter().filter_map(|r| value(r, path)).collect());
        let paired: Vec<(f64, f64)> = rounds
            .iter()
            .filter_map(|r| Some((value(r, Path::Direct)?, value(r, Path::Tunnel)?)))
            .filter(|&(d, _)| d > 0.0)
            .collect();
        Compared {
            direct: of_path(Path::Direct),
            tunnel: of_path(Path::Tunnel),
            added: median(paired.iter().map(|(d, t)| t - d).collect()),
            ratio: median(paired.iter().map(|(d, t)| t / d).collect()),
        }
    }

    fn latency(
        rounds: &[Round],
        scenario: impl Fn(&Round) -> [Option<Percentiles>; 2],
        pick: fn(Percentiles) -> Duration,
    ) -> Self {
        Compared::of(rounds, |r, path| {
            scenario(r)[path.index()].map(|p| micros(pick(p)))
        })
    }

    fn show_added(&self) -> String {
        match self.added {
            Some(us) if us < 0.0 => format!("−{}", show_micros(Some(-us))),
            us => format!("+{}", show_micros(us)),
        }
    }
}

/// The markdown the run prints, and the summary rows it hands to `benches/run.sh`.
#[derive(Default)]
struct Report {
    out: String,
    summary: String,
}

impl Report {
    fn line(&mut self, text: impl AsRef<str>) {
        self.out.push_str(text.as_ref());
        self.out.push('\n');
    }

    /// A row of the summary table: setup, measure, direct, through hooks, ratio, target, met.
    fn summary(&mut self, cells: [&str; 7]) {
        self.summary
            .push_str(&format!("| {} |\n", cells.join(" | ")));
    }

    /// A latency row of the main table, and its summary row.
    fn latency(
        &mut self,
        setup: &str,
        scenario: &str,
        metric: &str,
        c: &Compared,
        target: Option<Target>,
    ) {
        let shown_target = target.map_or(String::new(), |t| t.show("×"));
        self.line(format!(
            "| {scenario} | {metric} | {} | {} | {} | {} | {shown_target} |",
            show_micros(c.direct),
            show_micros(c.tunnel),
            c.show_added(),
            show_ratio(c.ratio),
        ));
        let met = target.map_or("", |t| t.met(c.ratio));
        let measure = format!(
            "{} {metric}",
            scenario.split(',').next().unwrap_or(scenario)
        );
        self.summary([
            setup,
            &measure,
            &show_micros(c.direct),
            &show_micros(c.tunnel),
            &show_ratio(c.ratio),
            &shown_target,
            met,
        ]);
    }
}

fn print_report(
    sizes: &Sizes,
    rounds: &[Round],
    tallies: &[Tally; 2],
    delivery: Option<&Delivery>,
    memory: &MemoryReport,
    elapsed: Duration,
) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let n = sizes.requests;
    let setup = sizes.setup();
    // Targets are hooks' own; a peer tunnel's figures are there to compare with.
    let target = |t: Target| sizes.peer.is_none().then_some(t);
    let through = sizes.peer.map_or("hooks", PeerKind::name);
    let mut report = Report::default();
    report.line(format!("## hooks tunnel benchmark: {setup}"));
    report.line("");
    report.line(format!(
        "- machine: {cores} cores ({} {}); everything on 127.0.0.1",
        std::env::consts::OS,
        std::env::consts::ARCH
    ));
    report.line(format!(
        "- requests: POST of a {BODY_LEN}-byte JSON body, or of 1 MiB / 10 MiB of random bytes; the app checks each body's length and checksum and answers 200 with a 17-byte JSON body (400 on a mismatch)"
    ));
    let relay = match sizes.relay {
        RelayMode::Process => {
            "`hooks-relay --data-dir <tmp>` (own process, durable SQLite queue, as deployed; `hooks relay` when hooks-relay is not built)"
        }
        RelayMode::InProcess if sizes.durable => {
            "in-process `relay_server::run` with a data directory (durable SQLite queue)"
        }
        RelayMode::InProcess => {
            "in-process `relay_server::run`, `Config::default()` (in-memory queue, like the relay `hooks listen` embeds)"
        }
    };
    match sizes.peer {
        None => report.line(format!(
            "- direct: client → app; hooks: client → relay: {relay} → WebSocket → `hooks listen --json` (release binary) → app"
        )),
        Some(peer) => report.line(format!(
            "- direct: client → app; {through}: client → `{}` server → `{through}` client → app (raw TCP: no HTTP parsing, nothing kept)",
            peer.version()
        )),
    }
    report.line(format!(
        "- rounds: {}; in each, both paths run back to back (order flips every round); figures are medians over rounds, ratio and added latency are medians of per-round pairs",
        sizes.rounds
    ));
    report.line("");
    report.line(format!(
        "| scenario | metric | direct | through {through} | added | ratio ({through}/direct) | target |",
    ));
    report.line("|---|---|---:|---:|---:|---:|---|");
    let ka = |r: &Round| r.keep_alive;
    let nc = |r: &Round| r.new_conn;
    let p50: fn(Percentiles) -> Duration = |p| p.p50;
    let p99: fn(Percentiles) -> Duration = |p| p.p99;
    let label = format!("c=1 keep-alive, {n} req/round");
    report.latency(
        setup,
        &label,
        "p50",
        &Compared::latency(rounds, ka, p50),
        target(Target::AtMost(2.5)),
    );
    report.latency(
        setup,
        &label,
        "p99",
        &Compared::latency(rounds, ka, p99),
        None,
    );
    let label = format!("c=1 new connection per request, {n} req/round");
    report.latency(
        setup,
        &label,
        "p50",
        &Compared::latency(rounds, nc, p50),
        target(Target::AtMost(3.0)),
    );
    report.latency(
        setup,
        &label,
        "p99",
        &Compared::latency(rounds, nc, p99),
        None,
    );

    let rate = Compared::of(rounds, |r, path| {
        Some(r.throughput[path.index()]).filter(|&v| v > 0.0)
    });
    let show_rate = |r: Option<f64>| r.map_or("n/a".to_owned(), |r| format!("{r:.0} req/s"));
    let rate_target = target(Target::AtLeast(0.45));
    let shown_rate_target = rate_target.map_or(String::new(), |t| t.show("×"));
    report.line(format!(
        "| c={CLIENTS} keep-alive, {:.1} s/round | requests/s | {} | {} | | {} | {shown_rate_target} |",
        sizes.seconds,
        show_rate(rate.direct),
        show_rate(rate.tunnel),
        show_ratio(rate.ratio),
    ));
    report.summary([
        setup,
        &format!("c={CLIENTS} keep-alive throughput"),
        &show_rate(rate.direct),
        &show_rate(rate.tunnel),
        &show_ratio(rate.ratio),
        &shown_rate_target,
        rate_target.map_or("", |t| t.met(rate.ratio)),
    ]);
    let cpu = median(rounds.iter().filter_map(|r| r.cpu_us).collect());
    let processes = match sizes.peer {
        None => "relay + CLI",
        Some(_) => "server + client",
    };
    let show_cpu = cpu.map_or("n/a (relay in process)".to_owned(), |us| {
        format!("{us:.1} µs")
    });
    report.line(format!(
        "| c={CLIENTS} keep-alive | CPU per request ({processes}) | | {show_cpu} | | | |"
    ));
    report.summary([
        setup,
        &format!("c={CLIENTS} CPU per webhook ({processes})"),
        "",
        &show_cpu,
        "",
        "",
        "",
    ]);

    for (size, len) in LARGE_LENS.iter().enumerate() {
        let mib = len / (1024 * 1024);
        let target = (mib == 10).then_some(Target::AtMost(1.8)).and_then(target);
        report.latency(
            setup,
            &format!(
                "POST {mib} MiB, c=1 keep-alive, {} req/round",
                sizes.large_requests[size]
            ),
            "p50 time/request",
            &Compared::latency(rounds, |r| r.large[size], p50),
            target,
        );
    }

    let [direct, tunnel] = tallies;
    let lost = delivery.map_or(0, |d| tunnel.ok.saturating_sub(d.printed));
    let clean = direct.failed() == 0
        && tunnel.failed() == 0
        && lost == 0
        && delivery.is_none_or(|d| d.queue_depth == Some(0));
    report.line(format!(
        "| all scenarios incl. warm-up | errors + non-2xx | {} of {} | {} of {} | | | 0 |",
        direct.failed(),
        direct.ok + direct.failed(),
        tunnel.failed(),
        tunnel.ok + tunnel.failed()
    ));
    report.summary([
        setup,
        "failed / unprinted / still queued requests",
        &format!(
            "{} failed of {}",
            direct.failed(),
            direct.ok + direct.failed()
        ),
        &match delivery {
            Some(delivery) => format!(
                "{} / {lost} / {} of {}",
                tunnel.failed(),
                delivery
                    .queue_depth
                    .map_or("n/a".to_owned(), |d| d.to_string()),
                tunnel.ok + tunnel.failed()
            ),
            None => format!(
                "{} failed of {}",
                tunnel.failed(),
                tunnel.ok + tunnel.failed()
            ),
        },
        "",
        "0",
        if clean { "yes" } else { "**no**" },
    ]);

    report.line("");
    report.line("| process | RSS idle | RSS after load | peak RSS (VmHWM) | target (idle) |");
    report.line("|---|---:|---:|---:|---|");
    let mib = |m: Option<Memory>| m.map(|m| m.rss_kib as f64 / 1024.0);
    // (table label, summary name, idle, after load, idle target)
    let mut rows = Vec::new();
    match sizes.peer {
        None if sizes.relay == RelayMode::Process => rows.push((
            "relay (`hooks-relay`, idle = after start, no session)".to_owned(),
            "relay RSS",
            memory.relay_idle,
            memory.relay_loaded,
            target(Target::AtMost(8.0)),
        )),
        None => report.line(
            "| relay | n/a: it runs inside the benchmark process (`HOOKS_BENCH_RELAY=process` measures it) | | | |",
        ),
        Some(_) => rows.push((
            format!("{through} server (idle = its client connected, before load)"),
            "server RSS",
            memory.relay_idle,
            memory.relay_loaded,
            None,
        )),
    }
    rows.push(match sizes.peer {
        None => (
            "CLI (`hooks listen --json`, idle = attached, before load)".to_owned(),
            "CLI RSS",
            memory.cli_idle,
            memory.cli_loaded,
            target(Target::AtMost(10.0)),
        ),
        Some(_) => (
            format!("{through} client (idle = connected, before load)"),
            "client RSS",
            memory.cli_idle,
            memory.cli_loaded,
            None,
        ),
    });
    for (label, name, idle, loaded, idle_target) in rows {
        let shown_target = idle_target.map_or(String::new(), |t| t.show(" MiB"));
        report.line(format!(
            "| {label} | {} | {} | {} | {shown_target} |",
            show_mib(idle.map(|m| m.rss_kib)),
            show_mib(loaded.map(|m| m.rss_kib)),
            show_mib(loaded.map(|m| m.peak_kib)),
        ));
        report.summary([
            setup,
            &format!("{name} idle"),
            "",
            &show_mib(idle.map(|m| m.rss_kib)),
            "",
            &shown_target,
            idle_target.map_or("", |t| t.met(mib(idle))),
        ]);
        report.summary([
            setup,
            &format!("{name} after load (peak)"),
            "",
            &format!(
                "{} ({})",
                show_mib(loaded.map(|m| m.rss_kib)),
                show_mib(loaded.map(|m| m.peak_kib))
            ),
            "",
            "",
            "",
        ]);
    }

    report.line("");
    if let Some(delivery) = delivery {
        report.line(format!(
            "CLI: printed {} request lines for {} successful tunnel requests; {} disconnects. Relay queue depth after the run: {}.",
            delivery.printed,
            tunnel.ok,
            delivery.disconnects,
            delivery
                .queue_depth
                .map_or("unknown (metrics unreadable)".to_owned(), |d| d.to_string()),
        ));
    }
    for (path, tally) in Path::ALL.iter().zip(tallies) {
        for (why, n) in &tally.failures {
            report.line(format!("{path:?} failures: {n} × {why}"));
        }
    }
    report.line(format!("Total time: {:.1} s.", elapsed.as_secs_f64()));
    print!("{}", report.out);
    append_summary(&report.summary);
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
            "tunnel bench: could not append to {}: {e}",
            std::path::Path::new(&path).display()
        );
    }
}
