//! `cargo bench --bench capture`: what the capture store costs. Two real `hooks listen`
//! processes attach to one in-process relay and forward to one in-process app, one recording
//! every exchange in its capture store and one with `--no-capture`; 32 keep-alive clients send
//! 1 KiB JSON POSTs through each in turn, in alternating rounds, and the table compares
//! requests per second, and (on Linux) the CPU time each `hooks listen` spent per request, which
//! is steadier than throughput on a busy machine. It asserts nothing about timings.
//!
//! Sizes: `HOOKS_BENCH_ROUNDS` (default 5) rounds of `HOOKS_BENCH_SECONDS` (default 3) per mode.
//! `HOOKS_BENCH_VARIANT="NAME=VALUE …"` adds a third, recording `hooks listen` with those
//! environment variables, to compare a setting with the default in the same run;
//! `HOOKS_BENCH_VARIANT_BIN=PATH` starts that third one from another build of `hooks` (the
//! previous version, say). `HOOKS_BENCH_BIN=PATH` replaces the build the other two start
//! (see `support::hooks_bin`).

mod support;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::error::Error;
use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn Error + Send + Sync>;

/// Concurrent keep-alive clients.
const CLIENTS: usize = 32;

/// Size of every request body.
const BODY_LEN: usize = 1024;

/// Pause after each mode's round: longer than the store's idle delay (200 ms) before it prunes
/// and checkpoints.
const SETTLE: Duration = Duration::from_millis(500);

/// Longest wait for `hooks listen` to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

fn main() -> Result<(), BoxError> {
    let rounds = env_number("HOOKS_BENCH_ROUNDS", 5);
    let seconds = env_number("HOOKS_BENCH_SECONDS", 3);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench(rounds, Duration::from_secs(seconds as u64)))
}

/// `HOOKS_BENCH_VARIANT`: `NAME=VALUE` pairs separated by spaces.
fn variant_env() -> Vec<(String, String)> {
    std::env::var("HOOKS_BENCH_VARIANT")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

/// One way through the tunnel: a `hooks listen` process and its channel.
struct Mode {
    name: &'static str,
    cli: Cli,
    rates: Vec<f64>,
    errors: u64,
    /// Requests answered in the measured rounds.
    requests: u64,
    /// CPU time the CLI process spent in the measured rounds, by thread name, when the OS
    /// tells.
    cpu: Option<BTreeMap<String, Duration>>,
    /// CPU time this process (relay, app and clients) spent in the mode's rounds.
    rest: Option<Duration>,
}

async fn bench(rounds: usize, length: Duration) -> Result<(), BoxError> {
    let app = start_app().await?;
    let relay = start_relay().await?;
    let data = tempfile::tempdir()?;
    let mut modes = vec![
        Mode::start(
            "--no-capture",
            relay,
            app,
            &data.path().join("off"),
            true,
            &[],
            None,
        )?,
        Mode::start(
            "capture store",
            relay,
            app,
            &data.path().join("on"),
            false,
            &[],
            None,
        )?,
    ];
    // A third `hooks listen`, recording too, with extra environment variables or from another
    // build: an A/B test of a setting, or of the previous version, in the same run.
    let variant = variant_env();
    let variant_bin = std::env::var_os("HOOKS_BENCH_VARIANT_BIN").map(std::path::PathBuf::from);
    if !variant.is_empty() || variant_bin.is_some() {
        let dir = data.path().join("variant");
        modes.push(Mode::start(
            "capture store, variant",
            relay,
            app,
            &dir,
            false,
            &variant,
            variant_bin.as_deref(),
        )?);
    }
    let body = Bytes::from(json_body());
    // A short warm-up per mode: connections, the relay's queue, SQLite's first pages.
    for mode in &mut modes {
        run_load(relay, &mode.cli.path, &body, Duration::from_millis(500)).await?;
    }
    for round in 0..rounds {
        // Every other round in reverse order, so no mode always follows the same one.
        let order: Vec<usize> = if round % 2 == 0 {
            (0..modes.len()).collect()
        } else {
            (0..modes.len()).rev().collect()
        };
        for i in order {
            let mode = &mut modes[i];
            let before = mode.cli.cpu();
            let rest_before = process_cpu(std::process::id());
            let (done, errors) = run_load(relay, &mode.cli.path, &body, length).await?;
            let rest_after = process_cpu(std::process::id());
            // What the store leaves for a quiet moment (pruning, a checkpoint) happens now, is
            // charged to this mode's CPU, and does not slow the next mode's round.
            tokio::time::sleep(SETTLE).await;
            mode.rest = match (rest_before, rest_after, mode.rest) {
                (Some(before), Some(after), Some(sum)) => {
                    let total = |m: BTreeMap<String, Duration>| m.into_values().sum::<Duration>();
                    Some(sum + total(after).saturating_sub(total(before)))
                }
                _ => None,
            };
            mode.cpu = match (before, mode.cli.cpu(), mode.cpu.take()) {
                (Some(before), Some(after), Some(mut sum)) => {
                    for (name, used) in after {
                        let earlier = before.get(&name).copied().unwrap_or_default();
                        *sum.entry(name).or_default() += used.saturating_sub(earlier);
                    }
                    Some(sum)
                }
                _ => None,
            };
            mode.rates.push(done as f64 / length.as_secs_f64());
            if std::env::var_os("HOOKS_BENCH_VERBOSE").is_some() {
                eprintln!(
                    "round {round}: {} {:.0} req/s",
                    mode.name,
                    done as f64 / length.as_secs_f64()
                );
            }
            mode.errors += errors;
            mode.requests += done;
        }
    }
    print_table(&modes, rounds, length);
    let captured = std::fs::metadata(data.path().join("on").join("captures.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "\ncapture store after the run: {} KiB (WAL not counted)",
        captured / 1024
    );
    Ok(())
}

impl Mode {
    fn start(
        name: &'static str,
        relay: SocketAddr,
        app: SocketAddr,
        data: &std::path::Path,
        no_capture: bool,
        env: &[(String, String)],
        program: Option<&std::path::Path>,
    ) -> Result<Mode, BoxError> {
        let default = support::hooks_bin();
        let program = program.unwrap_or(&default);
        Ok(Mode {
            name,
            cli: Cli::start(program, relay, app, data, no_capture, env)?,
            rates: Vec::new(),
            errors: 0,
            requests: 0,
            cpu: Some(BTreeMap::new()),
            rest: Some(Duration::ZERO),
        })
    }
}

fn print_table(modes: &[Mode], rounds: usize, length: Duration) {
    println!(
        "capture cost: {BODY_LEN} B JSON POST, {CLIENTS} keep-alive clients, {rounds} rounds × {} s per mode, alternating\n",
        length.as_secs()
    );
    println!(
        "| mode | requests/s (median) | mean | min | max | errors | CLI CPU per request | relay + app + clients |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for mode in modes {
        let mut sorted = mode.rates.clone();
        sorted.sort_by(f64::total_cmp);
        let mean = sorted.iter().sum::<f64>() / sorted.len().max(1) as f64;
        let per_request = |d: Duration| d.as_secs_f64() * 1e6 / mode.requests.max(1) as f64;
        let cpu = match &mode.cpu {
            Some(threads) if mode.requests > 0 => {
                let total: Duration = threads.values().sum();
                let parts: Vec<String> = threads
                    .iter()
                    .map(|(name, used)| format!("{name} {:.1}", per_request(*used)))
                    .collect();
                format!("{:.1} µs ({})", per_request(total), parts.join(", "))
            }
            _ => "n/a".to_owned(),
        };
        let rest = match mode.rest {
            Some(rest) if mode.requests > 0 => format!("{:.1} µs", per_request(rest)),
            _ => "n/a".to_owned(),
        };
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {cpu} | {rest} |",
            mode.name,
            median(&sorted),
            mean,
            sorted.first().copied().unwrap_or(0.0),
            sorted.last().copied().unwrap_or(0.0),
            mode.errors
        );
    }
    for mode in &modes[1..] {
        print_cost(&modes[0], mode);
    }
}

/// What recording costs `on` against `off`, the `--no-capture` mode.
fn print_cost(off_mode: &Mode, on_mode: &Mode) {
    println!("\n{}:", on_mode.name);
    let (off, on) = (median_of(off_mode), median_of(on_mode));
    if off > 0.0 {
        println!(
            "the capture store costs {:.1} % of throughput (median against median)",
            (off - on) / off * 100.0
        );
    }
    // Each round's pair ran back to back (ABBA order), so the machine's drift over the run
    // cancels out of its ratio better than out of the two medians.
    let mut costs: Vec<f64> = off_mode
        .rates
        .iter()
        .zip(&on_mode.rates)
        .filter(|(off, _)| **off > 0.0)
        .map(|(off, on)| (1.0 - on / off) * 100.0)
        .collect();
    costs.sort_by(f64::total_cmp);
    if !costs.is_empty() {
        let quartile = |q: usize| costs[(costs.len() - 1) * q / 4];
        println!(
            "per round, paired: median cost {:.1} % (quartiles {:.1} % to {:.1} %, {} rounds)",
            median(&costs),
            quartile(1),
            quartile(3),
            costs.len()
        );
    }
    if let (Some(off), Some(on)) = (cpu_per_request(off_mode), cpu_per_request(on_mode)) {
        // On a machine the tunnel saturates, throughput is inversely proportional to this;
        // unlike requests per second, it hardly moves with what else the machine is doing.
        println!(
            "CPU per request, everything included: {off:.1} µs without the store, {on:.1} µs with it \
             (+{:.1} µs, {:.1} % fewer requests per CPU-second)",
            on - off,
            (1.0 - off / on) * 100.0
        );
    }
}

/// CPU time per request of the CLI and of this process together, in microseconds.
fn cpu_per_request(mode: &Mode) -> Option<f64> {
    let cli: Duration = mode.cpu.as_ref()?.values().sum();
    let total = cli + mode.rest?;
    (mode.requests > 0).then(|| total.as_secs_f64() * 1e6 / mode.requests as f64)
}

fn median_of(mode: &Mode) -> f64 {
    let mut sorted = mode.rates.clone();
    sorted.sort_by(f64::total_cmp);
    median(&sorted)
}

fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn json_body() -> Vec<u8> {
    let mut body = br#"{"type":"invoice.paid","data":{"object":{"note":""#.to_vec();
    let tail = br#""}}}"#;
    body.resize(BODY_LEN - tail.len(), b'x');
    body.extend_from_slice(tail);
    body
}

/// Runs [`CLIENTS`] clients against `path` on the relay for `length`; returns answers with
/// status 200, and everything else.
async fn run_load(
    relay: SocketAddr,
    path: &str,
    body: &Bytes,
    length: Duration,
) -> Result<(u64, u64), BoxError> {
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + length;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (path, body) = (path.to_owned(), body.clone());
        let (done, errors) = (Arc::clone(&done), Arc::clone(&errors));
        tasks.spawn(async move {
            let stream = TcpStream::connect(relay).await?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            while Instant::now() < deadline {
                let request = hyper::Request::post(path.as_str())
                    .header("host", relay.to_string())
                    .header("content-type", "application/json")
                    .body(Full::new(body.clone()))?;
                let response = sender.send_request(request).await?;
                let ok = response.status() == 200;
                response.into_body().collect().await?;
                let counter = if ok { &done } else { &errors };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), BoxError>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    Ok((done.load(Ordering::Relaxed), errors.load(Ordering::Relaxed)))
}

/// An app on `127.0.0.1:0` that answers `200 ok` at once.
async fn start_app() -> Result<SocketAddr, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let service = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                let _ = req.into_body().collect().await;
                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    Ok(addr)
}

/// The relay in this process, on `127.0.0.1:0`, queue in memory.
async fn start_relay() -> Result<SocketAddr, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let shutdown = std::future::pending::<()>();
        if let Err(e) = relay_server::run(listener, relay_server::Config::default(), shutdown).await
        {
            eprintln!("relay failed: {e:#}");
        }
    });
    Ok(addr)
}

/// A `hooks listen` child process, killed when dropped.
struct Cli {
    child: Child,
    /// The channel's path on the relay, `/<channel>`.
    path: String,
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Cli {
    /// CPU time used so far by the process's threads, by thread name.
    fn cpu(&self) -> Option<BTreeMap<String, Duration>> {
        process_cpu(self.child.id())
    }

    fn start(
        program: &std::path::Path,
        relay: SocketAddr,
        app: SocketAddr,
        data: &std::path::Path,
        no_capture: bool,
        env: &[(String, String)],
    ) -> Result<Cli, BoxError> {
        let (relay, app) = (format!("http://{relay}"), app.to_string());
        let mut args = vec!["listen", "--json", "--relay", &relay, "--forward-to", &app];
        if no_capture {
            args.push("--no-capture");
        }
        let mut child = Command::new(program)
            .args(&args)
            .env("HOOKS_DATA_DIR", data)
            .env("HOOKS_CONFIG", data.join("none.toml"))
            .env_remove("RUST_LOG")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut stderr = child.stderr.take().ok_or("no stderr")?;
        // Drain stderr, and stdout after the ready line, so the CLI never blocks on a pipe.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = ready_tx.send(line);
            let _ = reader.read_to_end(&mut Vec::new());
        });
        let line = ready_rx.recv_timeout(READY_TIMEOUT)?;
        let ready: serde_json::Value = serde_json::from_str(&line)?;
        let channel = ready["channel"]
            .as_str()
            .ok_or("no channel in the ready line")?;
        Ok(Cli {
            child,
            path: format!("/{channel}"),
        })
    }
}

/// CPU time used so far by the threads of process `pid`, summed by thread name (Linux:
/// `/proc/<pid>/task/*/schedstat`, whose first field is nanoseconds on a CPU); `None` elsewhere.
fn process_cpu(pid: u32) -> Option<BTreeMap<String, Duration>> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut by_name = BTreeMap::new();
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let ns = stat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .unwrap_or(0);
        *by_name.entry(name.trim().to_owned()).or_default() += Duration::from_nanos(ns);
    }
    Some(by_name)
}
