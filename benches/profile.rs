//! `cargo bench --bench profile`: a fixed number of 1 KiB JSON webhooks through one path, with
//! the CPU time, context switches and system calls each process and each of its threads spent
//! on them, per webhook; the driver `benches/profile.sh` runs it under callgrind, strace and
//! perf (issue 24). It asserts nothing about timings.
//!
//! Processes, all on 127.0.0.1: an echo app (this binary again, as its own process, so its CPU
//! can be read apart), and on the tunnel path either `hooks-relay --data-dir <tmp>` plus
//! `hooks listen --json` with its capture store on (`HOOKS_PROFILE_PATH=hooks`, the default),
//! or the server and client of bore or rathole (`bore`, `rathole`; see `support/peers.rs`), or
//! nothing (`direct`). The load client runs in this process.
//!
//! A run: start everything, send `HOOKS_PROFILE_WARMUP` webhooks (default 500), wait until hooks
//! has printed and acknowledged all of them, read `/proc` for every process and thread, run the
//! shell command `HOOKS_PROFILE_BEFORE` (if set), send `HOOKS_PROFILE_REQUESTS` webhooks
//! (default 2000) from `HOOKS_PROFILE_CLIENTS` keep-alive connections (default 1), wait until
//! hooks has printed and acknowledged them, plus `HOOKS_PROFILE_SETTLE_MS` (default 300: the
//! relay's acknowledgement commit and the CLI's checkpoint), run `HOOKS_PROFILE_AFTER` (if set),
//! read `/proc` again and print the differences divided by the webhooks sent. The two commands
//! see the process ids as `PROFILE_SERVER_PID` (relay, or peer server), `PROFILE_CLIENT_PID`
//! (CLI, or peer client), `PROFILE_APP_PID` and `PROFILE_DRIVER_PID` (this process, the load
//! client): that is where a profiler attaches, zeroes or
//! dumps its counters, so it measures the window only. `HOOKS_PROFILE_WRAP_RELAY` and
//! `HOOKS_PROFILE_WRAP_CLI` put a command in front of the relay or the CLI (whitespace-split,
//! e.g. `valgrind --tool=callgrind …`; it must keep the process id, as valgrind does).
//!
//! Other settings: `HOOKS_PROFILE_ECHO=0` makes the app answer a 17-byte JSON body instead of
//! echoing the request's; `HOOKS_PROFILE_HOLD_MS` holds the window open that long before the
//! webhooks (with 0 webhooks: the idle cost of a window); `HOOKS_PROFILE_DRAIN_SECS` (default
//! 120) bounds the wait for the CLI; `HOOKS_PROFILE_OUT=<file>` appends one tab-separated row
//! per process and thread (`tag path clients role thread cpu_us user_us sys_us vcs nvcs syscr
//! syscw`, all per webhook; `tag` is `HOOKS_PROFILE_TAG`, e.g. the round; `path` is
//! `HOOKS_PROFILE_LABEL` when set) for the driver to take medians of, after a `load` row with
//! webhooks/s and p50 µs. `HOOKS_BENCH_BIN` and
//! `HOOKS_BENCH_PEER_BIN` name the binaries as for the tunnel bench.
//!
//! Figures: CPU from `/proc/<pid>/task/<tid>/schedstat` (nanoseconds on a CPU), split into user
//! and system time by `utime`/`stime` of `/proc/<pid>/stat` (10 ms ticks: use thousands of
//! webhooks); voluntary and involuntary context switches from each thread's `status`; `syscr`
//! and `syscw` from each thread's `io` (reads and writes through the VFS: `read`, `write`,
//! `readv`, `writev`, `pread64`, `pwrite64`; not `recvfrom`/`sendto`, so `strace` or the
//! `hops` part of `profile.sh` give the whole count). A thread that ends inside the window is
//! missing from the thread rows (its time is still in the process's `utime`/`stime`).

#[path = "support/peers.rs"]
#[allow(dead_code)]
mod peers;
mod support;

use peers::{Peer, PeerKind};
use support::drain_stderr;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// Size of every request body, in bytes.
const BODY_LEN: usize = 1024;

/// The header carrying a body's length and checksum, which the app checks.
const CHECK: HeaderName = HeaderName::from_static("x-bench-check");

/// How long a process under valgrind may take to say it is ready.
const START_TIMEOUT: Duration = Duration::from_secs(180);

/// How long one request may take before it counts as failed (valgrind is slow).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The variable that makes this binary the echo app.
const ROLE: &str = "HOOKS_PROFILE_ROLE";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the webhooks go through.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Through {
    Direct,
    Hooks,
    Peer(PeerKind),
}

impl Through {
    fn name(self) -> &'static str {
        match self {
            Through::Direct => "direct",
            Through::Hooks => "hooks",
            Through::Peer(kind) => kind.name(),
        }
    }
}

/// The run's settings, from the environment.
struct Settings {
    through: Through,
    requests: usize,
    clients: usize,
    warmup: usize,
    settle: Duration,
    hold: Duration,
    drain: Duration,
    echo: bool,
}

impl Settings {
    fn from_env() -> Self {
        let through = match std::env::var("HOOKS_PROFILE_PATH").as_deref() {
            Err(_) | Ok("hooks") => Through::Hooks,
            Ok("direct") => Through::Direct,
            Ok("bore") => Through::Peer(PeerKind::Bore),
            Ok("rathole") => Through::Peer(PeerKind::Rathole),
            Ok(other) => {
                panic!("HOOKS_PROFILE_PATH must be hooks, direct, bore or rathole, not {other:?}")
            }
        };
        Settings {
            through,
            requests: number("HOOKS_PROFILE_REQUESTS", 2000),
            clients: number("HOOKS_PROFILE_CLIENTS", 1).max(1),
            warmup: number("HOOKS_PROFILE_WARMUP", 500),
            settle: Duration::from_millis(number("HOOKS_PROFILE_SETTLE_MS", 300) as u64),
            hold: Duration::from_millis(number("HOOKS_PROFILE_HOLD_MS", 0) as u64),
            drain: Duration::from_secs(number("HOOKS_PROFILE_DRAIN_SECS", 120) as u64),
            echo: std::env::var("HOOKS_PROFILE_ECHO").map_or(true, |v| v != "0"),
        }
    }
}

/// A whole number from the environment, `default` when unset; panics on anything else.
fn number(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {text:?}")),
        Err(_) => default,
    }
}

fn main() {
    if std::env::var_os(ROLE).is_some_and(|role| role == "app") {
        return app_main();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the profile driver needs a tokio runtime");
    runtime.block_on(run(Settings::from_env()));
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/// The processes of one run, each with the role it plays.
struct Running {
    app: Killed,
    relay: Option<Killed>,
    cli: Option<Cli>,
    peer: Option<(PeerKind, Peer)>,
    endpoint: Endpoint,
    _dir: tempfile::TempDir,
}

impl Running {
    /// (role, pid) of every process measured, this one last.
    fn roles(&self) -> Vec<(String, u32)> {
        let mut roles = vec![("app".to_owned(), self.app.0.id())];
        if let Some(relay) = &self.relay {
            roles.push(("relay".to_owned(), relay.0.id()));
        }
        if let Some(cli) = &self.cli {
            roles.push(("cli".to_owned(), cli.child.0.id()));
        }
        if let Some((kind, peer)) = &self.peer {
            roles.push((format!("{} server", kind.name()), peer.server.id()));
            roles.push((format!("{} client", kind.name()), peer.client.id()));
        }
        roles.push(("load client".to_owned(), std::process::id()));
        roles
    }

    /// The ids `HOOKS_PROFILE_BEFORE` and `HOOKS_PROFILE_AFTER` see.
    fn pids(&self) -> [(&'static str, Option<u32>); 4] {
        let server = self
            .relay
            .as_ref()
            .map(|r| r.0.id())
            .or_else(|| self.peer.as_ref().map(|(_, p)| p.server.id()));
        let client = self
            .cli
            .as_ref()
            .map(|c| c.child.0.id())
            .or_else(|| self.peer.as_ref().map(|(_, p)| p.client.id()));
        [
            ("PROFILE_SERVER_PID", server),
            ("PROFILE_CLIENT_PID", client),
            ("PROFILE_APP_PID", Some(self.app.0.id())),
            ("PROFILE_DRIVER_PID", Some(std::process::id())),
        ]
    }
}

async fn run(settings: Settings) {
    let running = start(&settings).await;
    let payload = Payload::json();
    eprintln!(
        "profile: {} at c={}: {} warm-up webhooks, then {} measured",
        settings.through.name(),
        settings.clients,
        settings.warmup,
        settings.requests
    );
    let mut conns: Vec<Option<Sender>> = (0..settings.clients).map(|_| None).collect();
    let warm = load(&running.endpoint, &payload, settings.warmup, &mut conns).await;
    assert_eq!(warm.failed, 0, "warm-up webhooks failed: {:?}", warm.errors);
    drained(&running, &settings, settings.warmup as u64).await;
    hook("HOOKS_PROFILE_BEFORE", &running);
    let before = snapshot_all(&running);
    let began = Instant::now();
    tokio::time::sleep(settings.hold).await;
    let sent = load(&running.endpoint, &payload, settings.requests, &mut conns).await;
    let loaded = began.elapsed();
    drained(&running, &settings, (settings.warmup + sent.ok) as u64).await;
    let after = snapshot_all(&running);
    let window = began.elapsed();
    hook("HOOKS_PROFILE_AFTER", &running);
    report(&settings, &sent, loaded, window, &before, &after);
    assert_eq!(sent.failed, 0, "webhooks failed: {:?}", sent.errors);
}

/// Starts the app and what the webhooks go through, and returns where to send them.
async fn start(settings: &Settings) -> Running {
    let dir = tempfile::tempdir().expect("the profile needs a scratch directory");
    let (app, app_addr) = start_app(settings.echo);
    let direct = Endpoint::new(app_addr, "/webhook".to_owned());
    let mut running = Running {
        app,
        relay: None,
        cli: None,
        peer: None,
        endpoint: direct,
        _dir: dir,
    };
    match settings.through {
        Through::Direct => {}
        Through::Hooks => {
            let data = running._dir.path();
            let (relay, relay_addr) = start_relay(&data.join("relay"));
            let cli = Cli::start(relay_addr, app_addr, &data.join("cli"));
            let path = cli
                .url
                .parse::<http::Uri>()
                .expect("the ready line's url is a URI")
                .path()
                .trim_end_matches('/')
                .to_owned();
            running.endpoint = Endpoint::new(relay_addr, format!("{path}/webhook"));
            running.relay = Some(relay);
            running.cli = Some(cli);
        }
        Through::Peer(kind) => {
            let peer = Peer::start(kind, app_addr).await;
            let endpoint = Endpoint::new(peer.addr, "/webhook".to_owned());
            let payload = Payload::json();
            // The peer's public port opens once its client has connected.
            peers::wait_until(START_TIMEOUT, || async {
                load(&endpoint, &payload, 1, &mut [None]).await.failed == 0
            })
            .await
            .unwrap_or_else(|| panic!("no request came through {} in time", kind.name()));
            running.endpoint = endpoint;
            running.peer = Some((kind, peer));
        }
    }
    running
}

/// Waits until hooks has printed `printed` request lines in all and its relay's queue is empty
/// (every webhook acknowledged), then [`Settings::settle`] more.
async fn drained(running: &Running, settings: &Settings, printed: u64) {
    if let Some(cli) = &running.cli {
        let got = cli.wait_for(printed, settings.drain);
        assert_eq!(
            got, printed,
            "hooks listen printed {got} request lines, not {printed}"
        );
    }
    if running.relay.is_some() {
        let deadline = Instant::now() + settings.drain;
        loop {
            let depth = queue_depth(running.endpoint.addr).await;
            if depth == Some(0) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the relay's queue did not empty (depth {depth:?})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    tokio::time::sleep(settings.settle).await;
}

/// Runs the shell command in the variable `name`, if set, with the process ids in its
/// environment; panics if it fails, since the window it marks would be wrong.
fn hook(name: &str, running: &Running) {
    let Ok(command) = std::env::var(name) else {
        return;
    };
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(&command);
    for (var, pid) in running.pids() {
        if let Some(pid) = pid {
            sh.env(var, pid.to_string());
        }
    }
    let status = sh.status().expect("could not run sh");
    assert!(status.success(), "{name} ({command}) failed: {status}");
}

// ---------------------------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------------------------

/// One thread's counters.
#[derive(Clone, Default)]
struct ThreadStat {
    name: String,
    run_ns: u64,
    utime: u64,
    stime: u64,
    vcs: u64,
    nvcs: u64,
    syscr: u64,
    syscw: u64,
}

/// One process's counters: its own `utime`/`stime` (all threads, living or gone) and each
/// living thread's.
#[derive(Clone, Default)]
struct ProcStat {
    utime: u64,
    stime: u64,
    threads: BTreeMap<u32, ThreadStat>,
}

/// `(role, counters)` for every process of the run.
fn snapshot_all(running: &Running) -> Vec<(String, ProcStat)> {
    running
        .roles()
        .into_iter()
        .map(|(role, pid)| (role, proc_stat(pid).unwrap_or_default()))
        .collect()
}

/// `utime` and `stime` (fields 14 and 15) of a `stat` line, after the parenthesised name.
fn times(stat: &str) -> Option<(u64, u64)> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

fn proc_stat(pid: u32) -> Option<ProcStat> {
    let root = format!("/proc/{pid}");
    let (utime, stime) = times(&std::fs::read_to_string(format!("{root}/stat")).ok()?)?;
    let mut threads = BTreeMap::new();
    for entry in std::fs::read_dir(format!("{root}/task")).ok()?.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        if let Some(stat) = thread_stat(&format!("{root}/task/{tid}")) {
            threads.insert(tid, stat);
        }
    }
    Some(ProcStat {
        utime,
        stime,
        threads,
    })
}

fn thread_stat(dir: &str) -> Option<ThreadStat> {
    let read = |file: &str| std::fs::read_to_string(format!("{dir}/{file}")).ok();
    let field = |text: &str, name: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().parse().ok())
            .unwrap_or(0)
    };
    let (utime, stime) = times(&read("stat")?)?;
    let status = read("status")?;
    let io = read("io").unwrap_or_default();
    let run_ns = read("schedstat")?.split_whitespace().next()?.parse().ok()?;
    Some(ThreadStat {
        name: read("comm")?.trim().to_owned(),
        run_ns,
        utime,
        stime,
        vcs: field(&status, "voluntary_ctxt_switches:"),
        nvcs: field(&status, "nonvoluntary_ctxt_switches:"),
        syscr: field(&io, "syscr:"),
        syscw: field(&io, "syscw:"),
    })
}

// ---------------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------------

/// One row: a process or a thread, its counters over the window, per webhook.
struct Row {
    role: String,
    thread: String,
    cpu_us: f64,
    user_us: f64,
    sys_us: f64,
    vcs: f64,
    nvcs: f64,
    syscr: f64,
    syscw: f64,
}

/// The rows of one process: itself, then each thread that ran in the window.
fn rows(role: &str, before: &ProcStat, after: &ProcStat, n: f64) -> Vec<Row> {
    let tick_us = 1e6 / clock_ticks() as f64;
    let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / n;
    let empty = ThreadStat::default();
    let mut threads = Vec::new();
    let mut total = Row {
        role: role.to_owned(),
        thread: "(all)".to_owned(),
        cpu_us: 0.0,
        user_us: per(after.utime, before.utime) * tick_us,
        sys_us: per(after.stime, before.stime) * tick_us,
        vcs: 0.0,
        nvcs: 0.0,
        syscr: 0.0,
        syscw: 0.0,
    };
    for (tid, a) in &after.threads {
        let b = before.threads.get(tid).unwrap_or(&empty);
        let row = Row {
            role: role.to_owned(),
            thread: format!("{} {tid}", a.name),
            cpu_us: per(a.run_ns, b.run_ns) / 1e3,
            user_us: per(a.utime, b.utime) * tick_us,
            sys_us: per(a.stime, b.stime) * tick_us,
            vcs: per(a.vcs, b.vcs),
            nvcs: per(a.nvcs, b.nvcs),
            syscr: per(a.syscr, b.syscr),
            syscw: per(a.syscw, b.syscw),
        };
        total.cpu_us += row.cpu_us;
        total.vcs += row.vcs;
        total.nvcs += row.nvcs;
        total.syscr += row.syscr;
        total.syscw += row.syscw;
        if row.cpu_us > 0.0 || row.vcs > 0.0 {
            threads.push(row);
        }
    }
    let mut all = vec![total];
    all.extend(threads);
    all
}

fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100)
}

fn report(
    settings: &Settings,
    sent: &Sent,
    loaded: Duration,
    window: Duration,
    before: &[(String, ProcStat)],
    after: &[(String, ProcStat)],
) {
    let n = sent.ok.max(1) as f64;
    let mut table = Vec::new();
    for ((role, b), (_, a)) in before.iter().zip(after) {
        table.extend(rows(role, b, a, n));
    }
    let mut latencies = sent.latencies.clone();
    latencies.sort_unstable();
    let p50 = latencies
        .get(latencies.len() / 2)
        .copied()
        .unwrap_or_default();
    println!(
        "## profile: {} at c={}, {} webhooks of {BODY_LEN} B JSON ({} app)",
        settings.through.name(),
        settings.clients,
        sent.ok,
        if settings.echo {
            "echo"
        } else {
            "small-answer"
        },
    );
    println!();
    println!(
        "- load: {:.0} webhooks/s over {:.2} s, p50 {:.0} µs; window {:.2} s (settle included)",
        sent.ok as f64 / loaded.as_secs_f64(),
        loaded.as_secs_f64(),
        p50.as_secs_f64() * 1e6,
        window.as_secs_f64()
    );
    println!("- per webhook: CPU (schedstat), user and system time (ticks), voluntary and involuntary context switches, VFS reads and writes (syscr, syscw; not recvfrom or sendto)");
    println!();
    println!(
        "| process | thread | CPU µs | user µs | sys µs | vol. cs | invol. cs | syscr | syscw |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in &table {
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} |",
            row.role,
            row.thread,
            row.cpu_us,
            row.user_us,
            row.sys_us,
            row.vcs,
            row.nvcs,
            row.syscr,
            row.syscw
        );
    }
    println!();
    if let Ok(path) = std::env::var("HOOKS_PROFILE_OUT") {
        append_rows(&path, settings, sent, loaded, p50, &table);
    }
}

/// Appends the run's rows to the TSV at `path`: first a `load` row (webhooks/s and p50 µs in
/// the first two figures), then one per process and thread (see the module's doc).
fn append_rows(
    path: &str,
    settings: &Settings,
    sent: &Sent,
    loaded: Duration,
    p50: Duration,
    table: &[Row],
) {
    let tag = std::env::var("HOOKS_PROFILE_TAG").unwrap_or_else(|_| "-".to_owned());
    // `HOOKS_PROFILE_LABEL` names the path in the rows instead (an earlier build of hooks,
    // measured in the same run: `benches/profile.sh` with `PROFILE_BASE_BIN`).
    let label = std::env::var("HOOKS_PROFILE_LABEL");
    let name = label.as_deref().unwrap_or(settings.through.name());
    let head = format!("{tag}\t{name}\t{}", settings.clients);
    let mut out = format!(
        "{head}\tload\t-\t{:.1}\t{:.1}\t0\t0\t0\t0\t0\n",
        sent.ok as f64 / loaded.as_secs_f64(),
        p50.as_secs_f64() * 1e6
    );
    for row in table {
        // Thread ids differ from run to run; names do not.
        let thread = row
            .thread
            .rsplit_once(' ')
            .map_or(&*row.thread, |(name, _)| name);
        out.push_str(&format!(
            "{head}\t{}\t{thread}\t{:.3}\t{:.3}\t{:.3}\t{:.4}\t{:.4}\t{:.4}\t{:.4}\n",
            row.role, row.cpu_us, row.user_us, row.sys_us, row.vcs, row.nvcs, row.syscr, row.syscw
        ));
    }
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(out.as_bytes()));
    if let Err(e) = written {
        eprintln!("profile: could not append to {path}: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        // SIGTERM first: a process under valgrind or a profiler then writes its output.
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `command` with the words of the variable `wrap` in front of it.
fn wrapped(wrap: &str, command: Command) -> Command {
    let words: Vec<String> = std::env::var(wrap)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let Some((first, rest)) = words.split_first() else {
        return command;
    };
    let mut outer = Command::new(first);
    outer
        .args(rest)
        .arg(command.get_program())
        .args(command.get_args());
    outer
}

/// Reads `child`'s stdout lines on a thread until one yields `Some` from `ready`, then hands
/// every later line to `each`; returns what `ready` found, or panics after [`START_TIMEOUT`].
fn first_line<T: Send + 'static>(
    child: &mut Child,
    what: &str,
    ready: impl Fn(&str) -> Option<T> + Send + 'static,
    each: impl Fn(&str) + Send + 'static,
) -> T {
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = drain_stderr(child.stderr.take().expect("stderr is piped"));
    let (found, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        if let Some(value) = lines.by_ref().find_map(|line| ready(&line)) {
            let _ = found.send(value);
        }
        lines.for_each(|line| each(&line));
    });
    wait.recv_timeout(START_TIMEOUT).unwrap_or_else(|_| {
        let tail = stderr.lock().map(|t| t.clone()).unwrap_or_default();
        panic!(
            "{what} did not say it was ready; its stderr:\n{}",
            String::from_utf8_lossy(&tail)
        )
    })
}

/// Starts this binary again as the echo app; returns it and its address.
fn start_app(echo: bool) -> (Killed, SocketAddr) {
    let mut child = Command::new(std::env::current_exe().expect("the driver knows its path"))
        .env(ROLE, "app")
        .env("HOOKS_PROFILE_ECHO", if echo { "1" } else { "0" })
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("could not start the app");
    let addr = first_line(
        &mut child,
        "the app",
        |line| line.strip_prefix("app listening on ")?.trim().parse().ok(),
        |_| {},
    );
    (Killed(child), addr)
}

/// Starts `hooks-relay --listen 127.0.0.1:0 --data-dir DIR` (wrapped by
/// `HOOKS_PROFILE_WRAP_RELAY`); returns it and its address.
fn start_relay(data_dir: &std::path::Path) -> (Killed, SocketAddr) {
    let (mut command, name) = support::relay_command();
    command
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir);
    let mut child = wrapped("HOOKS_PROFILE_WRAP_RELAY", command)
        .env_remove("HOOKS_RELAY_CONFIG")
        .env_remove("HOOKS_RELAY_LISTEN")
        .env_remove("HOOKS_RELAY_DATA_DIR")
        .env_remove("HOOKS_RELAY_TOKENS_FILE")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("could not start the relay");
    let addr = first_line(
        &mut child,
        name,
        |line| {
            line.strip_prefix("listening on http://")?
                .trim()
                .parse()
                .ok()
        },
        |_| {},
    );
    (Killed(child), addr)
}

/// A running `hooks listen --json` and the request lines it has printed.
struct Cli {
    child: Killed,
    url: String,
    printed: Arc<(Mutex<u64>, Condvar)>,
}

impl Cli {
    /// Starts the CLI (wrapped by `HOOKS_PROFILE_WRAP_CLI`) and waits for its ready line.
    fn start(relay: SocketAddr, app: SocketAddr, data_dir: &std::path::Path) -> Self {
        let mut command = Command::new(support::hooks_bin());
        command
            .args(["listen", "--json", "--relay"])
            .arg(format!("http://{relay}"))
            .arg("--forward-to")
            .arg(app.to_string());
        let mut child = wrapped("HOOKS_PROFILE_WRAP_CLI", command)
            .env("HOOKS_DATA_DIR", data_dir)
            .env_remove("HOOKS_RELAY")
            .env_remove("HOOKS_CHANNEL")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("could not start hooks listen");
        let printed = Arc::new((Mutex::new(0u64), Condvar::new()));
        let counted = Arc::clone(&printed);
        let url = first_line(
            &mut child,
            "hooks listen",
            |line| {
                let value: serde_json::Value = serde_json::from_str(line).ok()?;
                (value["type"] == "ready").then(|| value["url"].as_str().map(str::to_owned))?
            },
            move |line| {
                if line.contains(r#""type":"request""#) {
                    let (count, changed) = &*counted;
                    if let Ok(mut count) = count.lock() {
                        *count += 1;
                        changed.notify_all();
                    }
                }
            },
        );
        Cli {
            child: Killed(child),
            url,
            printed,
        }
    }

    /// Waits at most `limit` until `expected` request lines are printed; returns the count.
    fn wait_for(&self, expected: u64, limit: Duration) -> u64 {
        let (count, changed) = &*self.printed;
        let guard = count.lock().expect("the stdout thread does not panic");
        let (guard, _) = changed
            .wait_timeout_while(guard, limit, |count| *count < expected)
            .expect("the stdout thread does not panic");
        *guard
    }
}

/// `hooks_queue_depth` from the relay's metrics page.
async fn queue_depth(relay: SocketAddr) -> Option<u64> {
    let endpoint = Endpoint::new(relay, relay_server::protocol::METRICS_PATH.to_owned());
    let (mut sender, _conn) = open(relay).await.ok()?;
    let req = Request::builder()
        .uri(&endpoint.path)
        .header(HOST, endpoint.host.clone())
        .body(Full::new(Bytes::new()))
        .ok()?;
    let response = sender.send_request(req).await.ok()?;
    let body = response.into_body().collect().await.ok()?.to_bytes();
    String::from_utf8_lossy(&body).lines().find_map(|line| {
        line.strip_prefix("hooks_queue_depth ")
            .and_then(|v| v.trim().parse().ok())
    })
}

// ---------------------------------------------------------------------------------------------
// The app
// ---------------------------------------------------------------------------------------------

/// The echo app's process: answers each POST with its own body (or, with
/// `HOOKS_PROFILE_ECHO=0`, a 17-byte JSON body), `400` when the body does not match its
/// `x-bench-check`. One thread, like a small development server.
fn app_main() {
    let echo = std::env::var("HOOKS_PROFILE_ECHO").map_or(true, |v| v != "0");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the app needs a tokio runtime");
    runtime.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the app needs a loopback port");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        println!("app listening on {addr}");
        let _ = std::io::stdout().flush();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(move |req| answer(req, echo));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

async fn answer(req: Request<Incoming>, echo: bool) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let expected = parts.headers.get(&CHECK).cloned();
    let body = body.collect().await.map(|b| b.to_bytes()).ok();
    let status = match &body {
        Some(body) if expected.is_some_and(|e| e.as_bytes() == check_value(body).as_bytes()) => {
            StatusCode::OK
        }
        _ => StatusCode::BAD_REQUEST,
    };
    let answer = match body {
        Some(body) if echo && status == StatusCode::OK => body,
        _ => Bytes::from_static(br#"{"received":true}"#),
    };
    let mut response = Response::new(Full::new(answer));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// `<length>-<checksum>` of a body (the tunnel bench's check, see `benches/tunnel.rs`).
fn check_value(body: &[u8]) -> String {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut sum = body.len() as u64;
    for chunk in body.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        sum = (sum ^ u64::from_le_bytes(word))
            .wrapping_mul(K)
            .rotate_left(29);
    }
    format!("{}-{sum:016x}", body.len())
}

// ---------------------------------------------------------------------------------------------
// The load client
// ---------------------------------------------------------------------------------------------

/// A request body with its `x-bench-check` value.
#[derive(Clone)]
struct Payload {
    body: Bytes,
    check: HeaderValue,
}

impl Payload {
    /// A 1 KiB JSON document shaped like a payment provider's event (as the tunnel bench's).
    fn json() -> Self {
        let head = r#"{"id":"evt_1PbenchAAAAAAAAAAAAAAAAA","object":"event","type":"invoice.paid","livemode":false,"data":{"object":{"id":"in_1PbenchBBBBBBBBBBBBBBBBB","amount_paid":4200,"currency":"usd","customer":"cus_bench","description":""#;
        let tail = r#""}}}"#;
        let pad = BODY_LEN - head.len() - tail.len();
        let body = Bytes::from(format!("{head}{}{tail}", "x".repeat(pad)));
        let check = HeaderValue::from_str(&check_value(&body))
            .expect("a length and a hex checksum are a valid header value");
        Payload { body, check }
    }
}

/// Where the load client sends its requests.
#[derive(Clone)]
struct Endpoint {
    addr: SocketAddr,
    host: HeaderValue,
    path: String,
}

impl Endpoint {
    fn new(addr: SocketAddr, path: String) -> Self {
        let host = HeaderValue::from_str(&addr.to_string()).expect("an address is a valid Host");
        Endpoint { addr, host, path }
    }

    fn request(&self, payload: &Payload) -> Request<Full<Bytes>> {
        Request::builder()
            .method(Method::POST)
            .uri(self.path.as_str())
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, "hooks-profile/1")
            .header(CHECK, payload.check.clone())
            .body(Full::new(payload.body.clone()))
            .expect("the profile's request parts are valid")
    }
}

/// What a load sent.
#[derive(Default)]
struct Sent {
    ok: usize,
    failed: usize,
    /// A few distinct failures, for the message.
    errors: Vec<String>,
    latencies: Vec<Duration>,
}

async fn open(
    addr: SocketAddr,
) -> Result<
    (
        hyper::client::conn::http1::SendRequest<Full<Bytes>>,
        tokio::task::JoinHandle<()>,
    ),
    BoxError,
> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    Ok((
        sender,
        tokio::spawn(async move {
            let _ = conn.await;
        }),
    ))
}

/// One keep-alive connection to the app or the tunnel.
type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Sends `n` webhooks over the keep-alive connections in `conns` (one task each; `None` opens
/// one), each taking the next webhook as soon as it has its previous answer. The connections
/// are kept for the next load, so the measured webhooks open none.
async fn load(
    endpoint: &Endpoint,
    payload: &Payload,
    n: usize,
    conns: &mut [Option<Sender>],
) -> Sent {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for conn in conns.iter_mut() {
        let (endpoint, payload, next) = (endpoint.clone(), payload.clone(), Arc::clone(&next));
        let mut sender = conn.take();
        tasks.push(tokio::spawn(async move {
            let mut sent = Sent::default();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let started = Instant::now();
                let outcome = async {
                    let s = match &mut sender {
                        Some(s) => s,
                        None => sender.insert(open(endpoint.addr).await?.0),
                    };
                    s.ready().await?;
                    let response = s.send_request(endpoint.request(&payload)).await?;
                    let status = response.status();
                    response.into_body().collect().await?;
                    if status.is_success() {
                        Ok(())
                    } else {
                        Err(BoxError::from(format!("status {status}")))
                    }
                };
                match tokio::time::timeout(REQUEST_TIMEOUT, outcome).await {
                    Ok(Ok(())) => {
                        sent.ok += 1;
                        sent.latencies.push(started.elapsed());
                    }
                    Ok(Err(e)) => {
                        sent.failed += 1;
                        sent.errors.push(e.to_string());
                        sender = None;
                    }
                    Err(_) => {
                        sent.failed += 1;
                        sent.errors.push("timed out".to_owned());
                        sender = None;
                    }
                }
            }
            (sent, sender)
        }));
    }
    let mut all = Sent::default();
    for (task, conn) in tasks.into_iter().zip(conns.iter_mut()) {
        let (sent, sender) = task.await.expect("a load task does not panic");
        *conn = sender;
        all.ok += sent.ok;
        all.failed += sent.failed;
        all.latencies.extend(sent.latencies);
        for e in sent.errors {
            if all.errors.len() < 5 && !all.errors.contains(&e) {
                all.errors.push(e);
            }
        }
    }
    all
}
