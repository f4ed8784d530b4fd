//! `cargo bench --bench tunnel`: latency and throughput of a 1 KiB JSON POST sent through the
//! real `hooks listen` binary and an in-process relay, next to the same POST sent straight to the
//! app, measured side by side in alternating rounds. It prints a markdown table and asserts
//! nothing about timings.
//!
//! Sizes: `HOOKS_BENCH_ROUNDS` (default 5), `HOOKS_BENCH_REQUESTS` (sequential requests per path
//! per round for each c=1 scenario, default 2000) and `HOOKS_BENCH_SECONDS` (length of each c=32
//! run per path per round, default 3). `HOOKS_BENCH_DURABLE=1` gives the relay a data directory,
//! so its queue is on disk as with a deployed `hooks-relay`; by default it is in memory, as in the
//! relay `hooks listen` embeds.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::error::Error;
use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Barrier};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Size of every request body, in bytes.
const BODY_LEN: usize = 1024;

/// Concurrent keep-alive clients in the throughput scenario.
const CLIENTS: usize = 32;

/// How long to wait for `hooks listen` to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long to wait, after the last round, for the CLI to print every request it forwarded.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a c=1 client waits for one answer before counting it as a failure.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long c=32 clients wait, after their run ends, for answers still outstanding.
const STRAGGLER_GRACE: Duration = Duration::from_secs(2);

/// How much of the CLI's stderr to keep for error messages.
const STDERR_KEEP: usize = 8 * 1024;

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

/// Where a client sends its requests: a socket address, the `Host` header and the path.
#[derive(Clone)]
struct Endpoint {
    addr: SocketAddr,
    host: HeaderValue,
    path: String,
}

impl Endpoint {
    /// One POST of `body`; with `close`, it asks the server to close the connection afterwards.
    fn request(&self, body: &Bytes, close: bool) -> Request<Full<Bytes>> {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(self.path.as_str())
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, "hooks-bench/1");
        if close {
            builder = builder.header(CONNECTION, "close");
        }
        builder
            .body(Full::new(body.clone()))
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
}

/// Benchmark sizes, from the environment.
struct Sizes {
    rounds: usize,
    requests: usize,
    seconds: f64,
    /// The relay keeps its queue on disk (as `hooks-relay` does by default) instead of in memory.
    durable: bool,
}

impl Sizes {
    fn from_env() -> Self {
        Sizes {
            rounds: env_number("HOOKS_BENCH_ROUNDS", 5),
            requests: env_number("HOOKS_BENCH_REQUESTS", 2000),
            seconds: env_number("HOOKS_BENCH_SECONDS", 3.0),
            durable: std::env::var_os("HOOKS_BENCH_DURABLE").is_some_and(|v| v == "1"),
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

async fn bench(sizes: Sizes) {
    let began = Instant::now();
    let body = payload();

    let app_addr = start_app().await;
    let relay_stop = CancellationToken::new();
    let data_dir = tempfile::tempdir().expect("the bench needs a scratch data directory");
    let relay_dir = sizes.durable.then(|| data_dir.path().join("relay"));
    let (relay_addr, relay_task) = start_relay(relay_stop.clone(), relay_dir).await;
    let cli = CliProcess::start(relay_addr, app_addr, &data_dir.path().join("cli")).await;
    let tunnel_path = cli
        .url
        .parse::<http::Uri>()
        .expect("the ready line's url is a URI")
        .path()
        .trim_end_matches('/')
        .to_owned();

    let endpoints = [
        Endpoint {
            addr: app_addr,
            host: host_value(app_addr),
            path: "/webhook".to_owned(),
        },
        Endpoint {
            addr: relay_addr,
            host: host_value(relay_addr),
            path: format!("{tunnel_path}/webhook"),
        },
    ];
    let mut tallies = [Tally::default(), Tally::default()];
    let duration = Duration::from_secs_f64(sizes.seconds);

    eprintln!(
        "tunnel bench: {} rounds, {} requests per c=1 run, {:.1} s per c=32 run",
        sizes.rounds, sizes.requests, sizes.seconds
    );
    eprintln!("warming up…");
    for path in Path::ALL {
        let ep = &endpoints[path.index()];
        let tally = &mut tallies[path.index()];
        tally.add(keep_alive(ep, &body, sizes.requests.min(500)).await.1);
        tally.add(new_connections(ep, &body, sizes.requests.min(100)).await.1);
        tally.add(
            throughput(ep, &body, duration.min(Duration::from_millis(500)))
                .await
                .1,
        );
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
                keep_alive(&endpoints[path.index()], &body, sizes.requests).await;
            round.keep_alive[path.index()] = Percentiles::of(samples);
            tallies[path.index()].add(tally);
        }
        for path in order {
            let (samples, tally) =
                new_connections(&endpoints[path.index()], &body, sizes.requests).await;
            round.new_conn[path.index()] = Percentiles::of(samples);
            tallies[path.index()].add(tally);
        }
        for path in order {
            let (rate, tally) = throughput(&endpoints[path.index()], &body, duration).await;
            round.throughput[path.index()] = rate;
            tallies[path.index()].add(tally);
        }
        eprintln!(
            "round {}/{}: keep-alive p50 {} / {}, new-conn p50 {} / {}, c=32 {:.0} / {:.0} req/s (direct / hooks)",
            r + 1,
            sizes.rounds,
            show_p(round.keep_alive[0], |p| p.p50),
            show_p(round.keep_alive[1], |p| p.p50),
            show_p(round.new_conn[0], |p| p.p50),
            show_p(round.new_conn[1], |p| p.p50),
            round.throughput[0],
            round.throughput[1],
        );
        rounds.push(round);
    }

    let printed = cli.wait_for_requests(tallies[Path::Tunnel.index()].ok);
    let elapsed = began.elapsed();
    print_report(&sizes, &rounds, &tallies, printed, elapsed);

    drop(cli);
    relay_stop.cancel();
    if tokio::time::timeout(Duration::from_secs(10), relay_task)
        .await
        .is_err()
    {
        eprintln!("tunnel bench: the relay did not stop within 10 s");
    }
}

/// A 1 KiB JSON document shaped like a payment provider's event.
fn payload() -> Bytes {
    let head = r#"{"id":"evt_1PbenchAAAAAAAAAAAAAAAAA","object":"event","type":"invoice.paid","livemode":false,"data":{"object":{"id":"in_1PbenchBBBBBBBBBBBBBBBBB","amount_paid":4200,"currency":"usd","customer":"cus_bench","description":""#;
    let tail = r#""}}}"#;
    let pad = BODY_LEN - head.len() - tail.len();
    let text = format!("{head}{}{tail}", "x".repeat(pad));
    debug_assert_eq!(text.len(), BODY_LEN);
    Bytes::from(text)
}

fn host_value(addr: SocketAddr) -> HeaderValue {
    HeaderValue::from_str(&addr.to_string()).expect("a socket address is a valid Host")
}

// ---------------------------------------------------------------------------------------------
// The app and the relay
// ---------------------------------------------------------------------------------------------

/// Starts the target app: reads each request's whole body and answers `200` with a small JSON
/// body (`400` if the body is not the benchmark's size, so a mangled request counts as a failure).
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
    let status = match req.into_body().collect().await.map(|body| body.to_bytes()) {
        Ok(body) if body.len() == BODY_LEN => StatusCode::OK,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response = Response::new(Full::new(Bytes::from_static(br#"{"received":true}"#)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
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
        let mut child = Command::new(env!("CARGO_BIN_EXE_hooks"))
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

/// Reads the CLI's stderr until it ends, keeping the last [`STDERR_KEEP`] bytes.
fn drain_stderr(mut stderr: ChildStderr) -> Arc<Mutex<Vec<u8>>> {
    let tail = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&tail);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stderr.read(&mut buf) {
            let Ok(mut tail) = keep.lock() else { break };
            tail.extend_from_slice(&buf[..n]);
            let excess = tail.len().saturating_sub(STDERR_KEEP);
            tail.drain(..excess);
        }
    });
    tail
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
async fn keep_alive(ep: &Endpoint, body: &Bytes, n: usize) -> (Vec<Duration>, Tally) {
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
        let req = ep.request(body, false);
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
async fn new_connections(ep: &Endpoint, body: &Bytes, n: usize) -> (Vec<Duration>, Tally) {
    let mut samples = Vec::with_capacity(n);
    let mut tally = Tally::default();
    for _ in 0..n {
        let req = ep.request(body, true);
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
async fn throughput(ep: &Endpoint, body: &Bytes, duration: Duration) -> (f64, Tally) {
    let start_line = Arc::new(Barrier::new(CLIENTS + 1));
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let ep = ep.clone();
        let body = body.clone();
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
                match exchange(s, ep.request(&body, false), deadline + STRAGGLER_GRACE).await {
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
        Some(us) if us < 100.0 => format!("{us:.1} µs"),
        Some(us) => format!("{us:.0} µs"),
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

/// One latency row: medians across rounds of each path, of the per-round added latency and of
/// the per-round ratio.
fn latency_row(
    label: &str,
    metric: &str,
    rounds: &[Round],
    scenario: fn(&Round) -> &[Option<Percentiles>; 2],
    pick: fn(Percentiles) -> Duration,
) -> String {
    let value = |r: &Round, path: Path| scenario(r)[path.index()].map(|p| micros(pick(p)));
    let direct = median(
        rounds
            .iter()
            .filter_map(|r| value(r, Path::Direct))
            .collect(),
    );
    let tunnel = median(
        rounds
            .iter()
            .filter_map(|r| value(r, Path::Tunnel))
            .collect(),
    );
    let paired: Vec<(f64, f64)> = rounds
        .iter()
        .filter_map(|r| Some((value(r, Path::Direct)?, value(r, Path::Tunnel)?)))
        .collect();
    let added = median(paired.iter().map(|(d, t)| t - d).collect());
    let ratio = median(paired.iter().map(|(d, t)| t / d).collect());
    let added = match added {
        Some(us) if us < 0.0 => format!("−{}", show_micros(Some(-us))),
        us => format!("+{}", show_micros(us)),
    };
    format!(
        "| {label} | {metric} | {} | {} | {added} | {} |",
        show_micros(direct),
        show_micros(tunnel),
        show_ratio(ratio)
    )
}

fn print_report(
    sizes: &Sizes,
    rounds: &[Round],
    tallies: &[Tally; 2],
    (printed, disconnects): (u64, u64),
    elapsed: Duration,
) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let n = sizes.requests;
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line("## hooks tunnel benchmark".into());
    line(String::new());
    line(format!(
        "- machine: {cores} cores ({} {}); everything on 127.0.0.1",
        std::env::consts::OS,
        std::env::consts::ARCH
    ));
    line(format!(
        "- request: POST of a {BODY_LEN}-byte JSON body; app answers 200 with a 17-byte JSON body"
    ));
    line(format!(
        "- direct: client → app; hooks: client → relay (in-process `relay_server::run`, {} queue) → WebSocket → `hooks listen --json` (release binary) → app",
        if sizes.durable { "on-disk" } else { "in-memory" }
    ));
    line(format!(
        "- rounds: {}; in each, both paths run back to back (order flips every round); figures are medians over rounds, ratio and added latency are medians of per-round pairs",
        sizes.rounds
    ));
    line(String::new());
    line("| scenario | metric | direct | through hooks | added | ratio (hooks/direct) |".into());
    line("|---|---|---:|---:|---:|---:|".into());
    let ka: fn(&Round) -> &[Option<Percentiles>; 2] = |r| &r.keep_alive;
    let nc: fn(&Round) -> &[Option<Percentiles>; 2] = |r| &r.new_conn;
    line(latency_row(
        &format!("c=1 keep-alive, {n} req/round"),
        "p50",
        rounds,
        ka,
        |p| p.p50,
    ));
    line(latency_row("", "p99", rounds, ka, |p| p.p99));
    line(latency_row(
        &format!("c=1 new connection per request, {n} req/round"),
        "p50",
        rounds,
        nc,
        |p| p.p50,
    ));
    line(latency_row("", "p99", rounds, nc, |p| p.p99));
    let rate = |path: Path| median(rounds.iter().map(|r| r.throughput[path.index()]).collect());
    let rate_ratio = median(
        rounds
            .iter()
            .filter(|r| r.throughput[0] > 0.0)
            .map(|r| r.throughput[1] / r.throughput[0])
            .collect(),
    );
    let show_rate = |r: Option<f64>| r.map_or("n/a".to_owned(), |r| format!("{r:.0}"));
    line(format!(
        "| c={CLIENTS} keep-alive, {:.1} s/round | requests/s | {} | {} | | {} |",
        sizes.seconds,
        show_rate(rate(Path::Direct)),
        show_rate(rate(Path::Tunnel)),
        show_ratio(rate_ratio)
    ));
    let [direct, tunnel] = tallies;
    line(format!(
        "| all scenarios incl. warm-up | errors + non-2xx | {} of {} | {} of {} | | |",
        direct.failed(),
        direct.ok + direct.failed(),
        tunnel.failed(),
        tunnel.ok + tunnel.failed()
    ));
    line(String::new());
    line(format!(
        "CLI: printed {printed} request lines for {} successful tunnel requests; {disconnects} disconnects.",
        tunnel.ok
    ));
    for (path, tally) in Path::ALL.iter().zip(tallies) {
        for (why, n) in &tally.failures {
            line(format!("{path:?} failures: {n} × {why}"));
        }
    }
    line(format!("Total time: {:.1} s.", elapsed.as_secs_f64()));
    print!("{out}");
}
