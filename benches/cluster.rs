//! `cargo bench --bench cluster`: the relay on one node against the relay as a cluster over NATS
//! JetStream (issue 23), on this machine. It prints a markdown table and asserts nothing.
//!
//! Setups, each a real `hooks-relay` (or `hooks relay`) process per node, the real
//! `hooks listen --no-capture` and an app on 127.0.0.1 answering `200 ok`:
//!
//! - `sqlite`: one node with its SQLite queue (`--data-dir`), as deployed alone;
//! - `nats x1`: one node over a `nats-server -js`, the CLI attached to it;
//! - `nats x3`: three nodes over one `nats-server -js`, the CLI attached to node 3, webhooks
//!   sent to node 1: through a node that does not hold the session.
//!
//! For each: p50 and p90 latency of sequential 1 KiB POSTs on a keep-alive connection
//! (`HOOKS_BENCH_REQUESTS`, default 1000), requests per second of 32 keep-alive clients for
//! `HOOKS_BENCH_SECONDS` (default 5), and the CPU time per webhook of the relay side (every
//! node, plus nats-server) and of the CLI during that throughput run, from `/proc` (Linux).

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use relay_server::testing::NatsServer;
use support::{drain_stderr, RelayProcess, READY_TIMEOUT};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Barrier;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Bytes of every request body.
const BODY_LEN: usize = 1024;

/// Keep-alive clients of the throughput run.
const CLIENTS: usize = 32;

/// Requests sent before measuring, so connections, consumers and caches are warm.
const WARMUP: usize = 200;

/// Longest one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Setup {
    Sqlite,
    Nats1,
    Nats3,
}

impl Setup {
    fn name(self) -> &'static str {
        match self {
            Setup::Sqlite => "sqlite (1 node)",
            Setup::Nats1 => "nats x1 (session on it)",
            Setup::Nats3 => "nats x3 (via a node without the session)",
        }
    }
}

fn main() {
    let requests = env_number("HOOKS_BENCH_REQUESTS", 1000);
    let seconds = env_number("HOOKS_BENCH_SECONDS", 5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(bench(requests, Duration::from_secs(seconds as u64)));
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

/// One setup's figures.
struct Row {
    setup: Setup,
    p50: Duration,
    p90: Duration,
    rps: f64,
    failures: usize,
    relay_cpu_us: f64,
    /// Of which nats-server's.
    nats_cpu_us: f64,
    cli_cpu_us: f64,
}

async fn bench(requests: usize, seconds: Duration) {
    let app = start_app().await;
    let mut rows = Vec::new();
    for setup in [Setup::Sqlite, Setup::Nats1, Setup::Nats3] {
        eprintln!("cluster bench: {}", setup.name());
        let run = Run::start(setup, app).await;
        let body = Bytes::from(vec![b'x'; BODY_LEN]);
        let _ = sequential(run.target, &run.path, &body, WARMUP).await;
        let (mut samples, failures) = sequential(run.target, &run.path, &body, requests).await;
        samples.sort();
        let pick = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
        let (relay_before, cli_before) = (run.relay_cpu(), cpu(run.cli.id()));
        let nats_before = run.nats_pid.map_or(Duration::ZERO, cpu);
        let (answered, more_failures) = throughput(run.target, &run.path, &body, seconds).await;
        let (relay_after, cli_after) = (run.relay_cpu(), cpu(run.cli.id()));
        let nats_after = run.nats_pid.map_or(Duration::ZERO, cpu);
        let per = |after: Duration, before: Duration| {
            after.saturating_sub(before).as_secs_f64() * 1e6 / answered.max(1) as f64
        };
        rows.push(Row {
            setup,
            p50: pick(0.5),
            p90: pick(0.9),
            rps: answered as f64 / seconds.as_secs_f64(),
            failures: failures + more_failures,
            relay_cpu_us: per(relay_after, relay_before),
            nats_cpu_us: per(nats_after, nats_before),
            cli_cpu_us: per(cli_after, cli_before),
        });
    }
    print_table(&rows, requests, seconds);
}

fn print_table(rows: &[Row], requests: usize, seconds: Duration) {
    println!(
        "\n1 KiB POSTs; latency over {requests} sequential requests, throughput of {CLIENTS} \
         clients for {seconds:?}; CPU per webhook during the throughput run\n"
    );
    println!(
        "| setup | p50 | p90 | requests/s | failures | relay CPU per webhook (nodes + nats-server) | of which nats-server | CLI CPU per webhook |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let sqlite = rows.iter().find(|r| r.setup == Setup::Sqlite);
    for row in rows {
        let ratio = sqlite
            .filter(|s| s.relay_cpu_us > 0.0 && row.setup != Setup::Sqlite)
            .map(|s| format!(" ({:.1}×)", row.relay_cpu_us / s.relay_cpu_us))
            .unwrap_or_default();
        println!(
            "| {} | {:.0} µs | {:.0} µs | {:.0} | {} | {:.0} µs{ratio} | {:.0} µs | {:.0} µs |",
            row.setup.name(),
            row.p50.as_secs_f64() * 1e6,
            row.p90.as_secs_f64() * 1e6,
            row.rps,
            row.failures,
            row.relay_cpu_us,
            row.nats_cpu_us,
            row.cli_cpu_us,
        );
    }
}

/// The processes of one setup, killed when dropped.
struct Run {
    _nats: Option<NatsServer>,
    nodes: Vec<RelayProcess>,
    nats_pid: Option<u32>,
    cli: std::process::Child,
    _dirs: tempfile::TempDir,
    /// Where webhooks go, and the channel's path there.
    target: SocketAddr,
    path: String,
}

impl Run {
    async fn start(setup: Setup, app: SocketAddr) -> Run {
        let dirs = tempfile::tempdir().expect("folders");
        let nats = match setup {
            Setup::Sqlite => None,
            _ => Some(NatsServer::start().await),
        };
        let count = if setup == Setup::Nats3 { 3 } else { 1 };
        let mut nodes = Vec::new();
        for i in 0..count {
            let extra: Vec<String> = match &nats {
                Some(nats) => vec!["--nats".into(), nats.url.clone()],
                None => vec![],
            };
            let dir = dirs.path().join(format!("node-{i}"));
            nodes.push(RelayProcess::start(&dir, &extra).await);
        }
        let holder = nodes.last().expect("a node").addr;
        let cli = start_cli(holder, app, &dirs.path().join("cli")).await;
        Run {
            nats_pid: nats.as_ref().map(|n| n.pid),
            _nats: nats,
            target: nodes[0].addr,
            nodes,
            cli,
            _dirs: dirs,
            path: "/bench/hook".into(),
        }
    }

    /// CPU time of every node and of nats-server.
    fn relay_cpu(&self) -> Duration {
        let nodes: Duration = self.nodes.iter().map(|n| cpu(n.child.id())).sum();
        nodes + self.nats_pid.map_or(Duration::ZERO, cpu)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.cli.kill();
        let _ = self.cli.wait();
    }
}

/// CPU time process `pid` has used (all its threads), from `/proc/<pid>/task/*/schedstat`;
/// zero where `/proc` is missing.
fn cpu(pid: u32) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .sum()
}

/// `hooks listen --no-capture --channel bench` on the relay at `relay`, forwarding to `app`,
/// once it printed its ready line.
async fn start_cli(
    relay: SocketAddr,
    app: SocketAddr,
    data: &std::path::Path,
) -> std::process::Child {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(support::hooks_bin())
        .args([
            "listen",
            "--json",
            "--no-capture",
            "--channel",
            "bench",
            "--relay",
        ])
        .arg(format!("http://{relay}"))
        .arg("--forward-to")
        .arg(app.to_string())
        .env("HOOKS_DATA_DIR", data)
        .env_remove("HOOKS_RELAY")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start hooks listen");
    let stdout = child.stdout.take().expect("piped");
    let stderr = drain_stderr(child.stderr.take().expect("piped"));
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = ready_tx.send(line);
        }
        lines.for_each(drop);
    });
    match tokio::time::timeout(READY_TIMEOUT, ready_rx).await {
        Ok(Ok(line)) if line.contains(r#""type":"ready""#) => child,
        _ => {
            let tail = stderr.lock().map(|t| t.clone()).unwrap_or_default();
            panic!(
                "hooks listen did not attach:\n{}",
                String::from_utf8_lossy(&tail)
            );
        }
    }
}

/// The app: `200 ok` to everything.
async fn start_app() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the app");
    let addr = listener.local_addr().expect("app address");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = service_fn(|req: Request<Incoming>| async move {
                    let _ = req.into_body().collect().await;
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn open(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, BoxError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One POST; `true` when answered 2xx in time.
async fn post(
    sender: &mut SendRequest<Full<Bytes>>,
    target: SocketAddr,
    path: &str,
    body: &Bytes,
) -> bool {
    let request = Request::post(path)
        .header(http::header::HOST, target.to_string())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body.clone()))
        .expect("a valid request");
    let exchange = async {
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let ok = response.status().is_success();
        response.into_body().collect().await?;
        Ok::<_, BoxError>(ok)
    };
    matches!(
        tokio::time::timeout(REQUEST_TIMEOUT, exchange).await,
        Ok(Ok(true))
    )
}

/// `n` sequential requests on one keep-alive connection: each one's latency, and the failures.
async fn sequential(
    target: SocketAddr,
    path: &str,
    body: &Bytes,
    n: usize,
) -> (Vec<Duration>, usize) {
    let mut sender = open(target).await.expect("connect to the relay");
    let mut samples = Vec::with_capacity(n);
    let mut failures = 0;
    for _ in 0..n {
        let started = Instant::now();
        if post(&mut sender, target, path, body).await {
            samples.push(started.elapsed());
        } else {
            failures += 1;
            sender = open(target).await.expect("reconnect to the relay");
        }
    }
    (samples, failures)
}

/// [`CLIENTS`] keep-alive clients back to back for `duration`: requests answered 2xx within it,
/// and failures.
async fn throughput(
    target: SocketAddr,
    path: &str,
    body: &Bytes,
    duration: Duration,
) -> (usize, usize) {
    let start = Arc::new(Barrier::new(CLIENTS + 1));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (start, path, body) = (Arc::clone(&start), path.to_owned(), body.clone());
        clients.push(tokio::spawn(async move {
            let mut sender = open(target).await.expect("connect to the relay");
            start.wait().await;
            let deadline = Instant::now() + duration;
            let (mut ok, mut failed) = (0, 0);
            while Instant::now() < deadline {
                if post(&mut sender, target, &path, &body).await {
                    ok += 1;
                } else {
                    failed += 1;
                    sender = open(target).await.expect("reconnect to the relay");
                }
            }
            (ok, failed)
        }));
    }
    start.wait().await;
    let mut totals = (0, 0);
    for client in clients {
        let (ok, failed) = client.await.expect("client task");
        totals = (totals.0 + ok, totals.1 + failed);
    }
    totals
}
