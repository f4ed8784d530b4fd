//! Shared pieces of the end-to-end tests: an in-process relay, a recording target app, the real
//! `hooks` binary as a child process, and an HTTP client that plays the webhook provider.
//!
//! Every server binds `127.0.0.1:0` and every wait has a deadline, so tests run in parallel and a
//! hang fails with a message instead of blocking the suite.

#![allow(dead_code)] // Each test binary uses a different subset of these helpers.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Longest any single step may take before the test fails: generous, because debug builds on a
/// loaded CI machine are slow, but finite, so a hang is a failure.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// A header as the tests compare it: lowercase name and raw value bytes.
pub type HeaderPair = (String, Vec<u8>);

/// Builds a header list from text pairs.
pub fn headers(pairs: &[(&str, &str)]) -> Vec<HeaderPair> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect()
}

/// The values of every header named `name` (lowercase), in order.
pub fn values<'a>(list: &'a [HeaderPair], name: &str) -> Vec<&'a [u8]> {
    list.iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
        .collect()
}

/// Awaits `future`, failing the test with `what` if it takes longer than [`STEP_TIMEOUT`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(STEP_TIMEOUT, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {STEP_TIMEOUT:?} waiting for {what}"),
    }
}

/// A port that was free a moment ago and has nothing listening on it now.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe port");
    listener.local_addr().expect("probe port address").port()
}

/// Deterministic pseudo-random bytes (xorshift64*), so large bodies are reproducible without a
/// random-number crate.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Asserts two large byte strings are equal without printing megabytes on failure.
#[track_caller]
pub fn assert_same_bytes(what: &str, got: &[u8], want: &[u8]) {
    if got == want {
        return;
    }
    let first_diff = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    panic!(
        "{what}: {} bytes received, {} expected; first difference at byte {first_diff}",
        got.len(),
        want.len()
    );
}

// ---------------------------------------------------------------------------------------------
// Relay
// ---------------------------------------------------------------------------------------------

/// A relay running in this process; it shuts down when dropped.
pub struct RelayHandle {
    /// Base URL, `http://127.0.0.1:PORT`, without a trailing slash.
    pub url: String,
    /// Address the relay listens on.
    pub addr: SocketAddr,
    token: CancellationToken,
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// Starts `relay_server::run` on a fresh loopback port.
pub async fn start_relay(config: relay_server::Config) -> RelayHandle {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the relay");
    let addr = listener.local_addr().expect("relay address");
    let token = CancellationToken::new();
    let shutdown = token.clone().cancelled_owned();
    tokio::spawn(async move {
        if let Err(e) = relay_server::run(listener, config, shutdown).await {
            panic!("relay failed: {e:#}");
        }
    });
    RelayHandle {
        url: format!("http://{addr}"),
        addr,
        token,
    }
}

// ---------------------------------------------------------------------------------------------
// Recording target app
// ---------------------------------------------------------------------------------------------

/// One request as the app received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Method, e.g. `POST`.
    pub method: String,
    /// Path and query exactly as on the request line.
    pub target: String,
    /// Every header in the order hyper's `HeaderMap` yields them (repeats in order).
    pub headers: Vec<HeaderPair>,
    /// Body bytes.
    pub body: Bytes,
}

impl Recorded {
    /// The values of every header named `name` (lowercase), in order.
    pub fn header(&self, name: &str) -> Vec<&[u8]> {
        values(&self.headers, name)
    }
}

/// What the app answers.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers, appended in order (so repeats are kept).
    pub headers: Vec<HeaderPair>,
    /// Body bytes.
    pub body: Bytes,
    /// How long to wait before answering (to make concurrent requests finish out of order).
    pub delay: Duration,
    /// When set, the answer waits (after `delay`) until the test opens the latch, so a test can
    /// observe what happens while the app is still busy.
    pub hold: Option<Hold>,
}

impl Answer {
    /// `200` with `body` and no extra headers.
    pub fn ok(body: impl Into<Bytes>) -> Self {
        Answer {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
            hold: None,
        }
    }
}

/// The app's side of a latch: answers holding one wait until the test calls [`Latch::open`].
#[derive(Debug, Clone)]
pub struct Hold(watch::Receiver<bool>);

/// The test's side of a latch.
#[derive(Debug)]
pub struct Latch(watch::Sender<bool>);

/// A closed latch and the [`Hold`] that waits on it.
pub fn latch() -> (Latch, Hold) {
    let (tx, rx) = watch::channel(false);
    (Latch(tx), Hold(rx))
}

impl Latch {
    /// Lets every held answer go, now and later.
    pub fn open(&self) {
        self.0.send_replace(true);
    }
}

impl Hold {
    async fn wait(mut self) {
        // An error means the latch was dropped: nothing can open it any more, so let go.
        let _ = self.0.wait_for(|&open| open).await;
    }
}

type Handler = Arc<dyn Fn(&Recorded) -> Answer + Send + Sync>;

/// A hyper server on `127.0.0.1:0` that records every request and answers through a closure.
pub struct App {
    /// Address the app listens on.
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    count: watch::Receiver<usize>,
    token: CancellationToken,
}

impl Drop for App {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

impl App {
    /// Starts an app that answers every request with `handler(&request)`.
    pub async fn start(handler: impl Fn(&Recorded) -> Answer + Send + Sync + 'static) -> App {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the app");
        let addr = listener.local_addr().expect("app address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (count_tx, count) = watch::channel(0usize);
        let count_tx = Arc::new(count_tx);
        let token = CancellationToken::new();
        let handler: Handler = Arc::new(handler);
        let state = (Arc::clone(&requests), count_tx, handler);
        let stop = token.clone();
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    _ = stop.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                };
                let (requests, count_tx, handler) = (
                    Arc::clone(&state.0),
                    Arc::clone(&state.1),
                    Arc::clone(&state.2),
                );
                let stop = stop.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        answer(
                            req,
                            Arc::clone(&requests),
                            Arc::clone(&count_tx),
                            Arc::clone(&handler),
                        )
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.cancelled() => {}
                    }
                });
            }
        });
        App {
            addr,
            requests,
            count,
            token,
        }
    }

    /// An app that answers `200 ok` to everything.
    pub async fn ok() -> App {
        App::start(|_| Answer::ok("ok")).await
    }

    /// The app's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request recorded so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("requests lock").clone()
    }

    /// Waits until at least `n` requests were recorded and returns all of them.
    pub async fn wait_for(&self, n: usize) -> Vec<Recorded> {
        let mut count = self.count.clone();
        within(&format!("the app to receive {n} request(s)"), async {
            count
                .wait_for(|&seen| seen >= n)
                .await
                .expect("app is running");
        })
        .await;
        self.requests()
    }

    /// Waits up to `limit` until `done(every request so far)` holds. `Ok` with the requests when
    /// it does, `Err` with them when the time is up, so the caller can say what is missing.
    pub async fn wait_until(
        &self,
        limit: Duration,
        done: impl Fn(&[Recorded]) -> bool,
    ) -> Result<Vec<Recorded>, Vec<Recorded>> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut count = self.count.clone();
        loop {
            // Mark the count seen before reading, so a request recorded meanwhile wakes us.
            count.borrow_and_update();
            let all = self.requests();
            if done(&all) {
                return Ok(all);
            }
            match tokio::time::timeout_at(deadline, count.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return Err(self.requests()),
            }
        }
    }
}

async fn answer(
    req: Request<Incoming>,
    requests: Arc<Mutex<Vec<Recorded>>>,
    count: Arc<watch::Sender<usize>>,
    handler: Handler,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => panic!("app could not read a request body: {e}"),
    };
    let recorded = Recorded {
        method: parts.method.to_string(),
        target: parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect(),
        body,
    };
    let reply = handler(&recorded);
    {
        let mut all = requests.lock().expect("requests lock");
        all.push(recorded);
        count.send_replace(all.len());
    }
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    if let Some(hold) = reply.hold {
        hold.wait().await;
    }
    let mut response = Response::new(Full::new(reply.body));
    *response.status_mut() = hyper::StatusCode::from_u16(reply.status).expect("valid test status");
    for (name, value) in reply.headers {
        response.headers_mut().append(
            hyper::header::HeaderName::from_bytes(name.as_bytes()).expect("valid header name"),
            hyper::header::HeaderValue::from_bytes(&value).expect("valid header value"),
        );
    }
    Ok(response)
}

// ---------------------------------------------------------------------------------------------
// The hooks CLI
// ---------------------------------------------------------------------------------------------

/// `hooks <args>` with a clean environment: no `HOOKS_*`, `NO_COLOR`, `TERM`, `RUST_LOG` from the
/// caller, and a private data directory. Synchronous, for `assert_cmd`.
pub fn hooks_std_command(args: &[&str], data_dir: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hooks"));
    command.args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HOOKS_") {
            command.env_remove(&name);
        }
    }
    for name in ["NO_COLOR", "TERM", "RUST_LOG", "CLICOLOR", "CLICOLOR_FORCE"] {
        command.env_remove(name);
    }
    command.env("HOOKS_DATA_DIR", data_dir);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// [`hooks_std_command`] for tokio, killed when dropped so a failing test leaves no process.
pub fn hooks_command(args: &[&str], data_dir: &std::path::Path) -> Command {
    let mut command = Command::from(hooks_std_command(args, data_dir));
    command.kill_on_drop(true);
    command
}

/// The finished run of a `hooks` process.
#[derive(Debug)]
pub struct Finished {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

/// Runs `hooks <args>` to completion (at most [`STEP_TIMEOUT`]).
pub async fn run_hooks(args: &[&str]) -> Finished {
    let dir = tempfile::tempdir().expect("temp data dir");
    let child = hooks_command(args, dir.path())
        .spawn()
        .expect("spawn hooks");
    let output = within(&format!("hooks {args:?} to exit"), child.wait_with_output())
        .await
        .expect("wait for hooks");
    Finished {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A running `hooks listen --json` process that printed its ready line.
pub struct Listener {
    /// The public URL of the channel, from the ready line.
    pub url: String,
    /// The channel name, from the ready line.
    pub channel: String,
    /// The whole ready line.
    pub ready: Value,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    child: Child,
    _data_dir: tempfile::TempDir,
}

/// A child process whose stdout arrives line by line and whose stderr is collected.
struct Piped {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// Finishes once stderr is closed, i.e. everything the process wrote there is collected.
    stderr_done: tokio::task::JoinHandle<()>,
}

/// Spawns `command` and drains both of its pipes continuously, so it never blocks on a full one.
fn spawn_piped(mut command: Command, what: &str) -> Piped {
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr_pipe = child.stderr.take().expect("piped stderr");
    let (tx, lines) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut reader = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&stderr);
    let stderr_done = tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr_pipe.read(&mut buf).await {
            if n == 0 {
                break;
            }
            sink.lock()
                .expect("stderr lock")
                .extend_from_slice(&buf[..n]);
        }
    });
    Piped {
        child,
        lines,
        stderr,
        stderr_done,
    }
}

/// Starts `hooks listen --json <args>` and waits for its `{"type":"ready",…}` line.
pub async fn spawn_listen(args: &[&str]) -> Listener {
    match try_spawn_listen(args).await {
        Ok(listener) => listener,
        Err(message) => panic!("{message}"),
    }
}

/// [`spawn_listen`], but a `hooks listen` that does not become ready is an `Err` carrying why,
/// its exit status and its stderr, for tests where a refusal can be expected (a channel the
/// relay has not released yet).
pub async fn try_spawn_listen(args: &[&str]) -> Result<Listener, String> {
    let data_dir = tempfile::tempdir().expect("temp data dir");
    let mut full = vec!["listen", "--json"];
    full.extend_from_slice(args);
    let Piped {
        mut child,
        mut lines,
        stderr,
        stderr_done,
    } = spawn_piped(hooks_command(&full, data_dir.path()), "hooks listen");
    let problem = match tokio::time::timeout(STEP_TIMEOUT, lines.recv()).await {
        Ok(Some(line)) => match parse_ready(&line) {
            Ok((ready, url, channel)) => {
                return Ok(Listener {
                    url,
                    channel,
                    ready,
                    lines,
                    stderr,
                    child,
                    _data_dir: data_dir,
                })
            }
            Err(problem) => problem,
        },
        Ok(None) => "hooks listen closed stdout".to_owned(),
        Err(_) => format!("no stdout line from hooks listen within {STEP_TIMEOUT:?}"),
    };
    // Stdout is closed or useless: let the process finish saying why, within reason.
    let status = match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
        Ok(Ok(status)) => format!("exited with {status}"),
        Ok(Err(e)) => format!("status unknown: {e}"),
        Err(_) => "still running".to_owned(),
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), stderr_done).await;
    let stderr = String::from_utf8_lossy(&stderr.lock().expect("stderr lock")).into_owned();
    Err(format!(
        "{problem}\n--- hooks listen ({status}) stderr ---\n{stderr}"
    ))
}

/// The ready line, its `url` and its `channel`; `Err` says what is wrong with the line.
fn parse_ready(line: &str) -> Result<(Value, String, String), String> {
    let ready = match serde_json::from_str::<Value>(line) {
        Ok(value) if value.is_object() => value,
        _ => return Err(format!("stdout line is not a JSON object: {line:?}")),
    };
    if ready["type"] != "ready" {
        return Err(format!("first stdout line is not a ready line: {ready}"));
    }
    let field = |name: &str| match ready[name].as_str() {
        Some(value) => Ok(value.to_owned()),
        None => Err(format!("ready line has no string {name:?}: {ready}")),
    };
    let url = field("url")?;
    let channel = field("channel")?;
    Ok((ready, url, channel))
}

impl Listener {
    /// What the process wrote on stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr lock")).into_owned()
    }

    /// Fails the test with `message` and the process's stderr.
    #[track_caller]
    pub fn fail(&mut self, message: &str) -> ! {
        let status = match self.child.try_wait() {
            Ok(Some(status)) => format!("exited with {status}"),
            Ok(None) => "still running".to_owned(),
            Err(e) => format!("status unknown: {e}"),
        };
        panic!(
            "{message}\n--- hooks listen ({status}) stderr ---\n{}",
            self.stderr()
        );
    }

    /// The next stdout line, which must be one JSON object.
    pub async fn next_json(&mut self) -> Value {
        let line = match tokio::time::timeout(STEP_TIMEOUT, self.lines.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => self.fail("hooks listen closed stdout"),
            Err(_) => self.fail(&format!(
                "no stdout line from hooks listen within {STEP_TIMEOUT:?}"
            )),
        };
        match serde_json::from_str::<Value>(&line) {
            Ok(value) if value.is_object() => value,
            _ => self.fail(&format!("stdout line is not a JSON object: {line:?}")),
        }
    }

    /// The next `n` stdout lines, each of which must be a `request` line.
    pub async fn next_requests(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let line = self.next_json().await;
            if line["type"] != "request" {
                self.fail(&format!("expected a request line, got {line}"));
            }
            out.push(line);
        }
        out
    }

    /// The next raw stdout line, or `None` once stdout is closed.
    pub async fn next_line_or_eof(&mut self) -> Option<String> {
        match tokio::time::timeout(STEP_TIMEOUT, self.lines.recv()).await {
            Ok(line) => line,
            Err(_) => self.fail("hooks listen neither printed nor closed stdout"),
        }
    }

    /// Sends SIGTERM, as a service manager or `kill` would.
    pub fn terminate(&mut self) {
        let Some(pid) = self.child.id() else {
            self.fail("hooks listen already exited");
        };
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        if !status.as_ref().is_ok_and(|s| s.success()) {
            self.fail(&format!("could not send SIGTERM to {pid}: {status:?}"));
        }
    }

    /// Waits for the process to exit and returns its code.
    pub async fn wait_exit(&mut self) -> Option<i32> {
        match tokio::time::timeout(STEP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) => status.code(),
            Ok(Err(e)) => self.fail(&format!("could not wait for hooks listen: {e}")),
            Err(_) => self.fail("hooks listen did not exit"),
        }
    }

    /// Everything the process wrote on stderr, once stderr is closed (after it exited). Right
    /// after an exit, [`Listener::stderr`] may still miss the last lines in the pipe.
    pub async fn final_stderr(&self) -> String {
        // The task draining stderr holds the only other reference to the buffer and drops it at
        // end of file; there is no event to await, so look every few milliseconds.
        within("hooks listen to close its stderr", async {
            while Arc::strong_count(&self.stderr) > 1 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        self.stderr()
    }

    /// The data directory this `hooks listen` keeps its capture store in.
    pub fn data_dir(&self) -> &std::path::Path {
        self._data_dir.path()
    }

    /// Kills the process with SIGKILL, as a crash or the OOM killer would, and waits until it is
    /// gone (so its sockets are closed).
    pub async fn kill(&mut self) {
        if let Err(e) = self.child.start_kill() {
            self.fail(&format!("could not send SIGKILL to hooks listen: {e}"));
        }
        self.wait_exit().await;
    }
}

// ---------------------------------------------------------------------------------------------
// The relay as a separate process
// ---------------------------------------------------------------------------------------------

/// `hooks relay` running as its own process, so a test can kill it with SIGKILL and start it
/// again on the same port and data directory. Killed when dropped.
pub struct RelayProcess {
    /// Base URL, `http://127.0.0.1:PORT`, from the relay's first stdout line.
    pub url: String,
    /// Address the relay listens on; restarts reuse it.
    pub addr: SocketAddr,
    data_dir: std::path::PathBuf,
    extra: Vec<String>,
    child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// Kept open so the relay can write to stdout as long as it likes.
    _lines: mpsc::UnboundedReceiver<String>,
}

impl RelayProcess {
    /// Starts `hooks relay --listen 127.0.0.1:0 --data-dir <data_dir> <extra>` and waits for its
    /// `listening on …` line.
    pub async fn start(data_dir: &std::path::Path, extra: &[&str]) -> RelayProcess {
        let extra: Vec<String> = extra.iter().map(|a| (*a).to_owned()).collect();
        Self::spawn("127.0.0.1:0", data_dir.to_owned(), extra).await
    }

    async fn spawn(listen: &str, data_dir: std::path::PathBuf, extra: Vec<String>) -> RelayProcess {
        let data = data_dir.to_string_lossy().into_owned();
        let mut args = vec!["relay", "--listen", listen, "--data-dir", &data];
        args.extend(extra.iter().map(String::as_str));
        let Piped {
            mut child,
            mut lines,
            stderr,
            stderr_done,
        } = spawn_piped(hooks_command(&args, &data_dir), "hooks relay");
        let first = tokio::time::timeout(STEP_TIMEOUT, lines.recv()).await;
        let addr = match &first {
            Ok(Some(line)) => line
                .strip_prefix("listening on http://")
                .and_then(|addr| addr.parse::<SocketAddr>().ok()),
            _ => None,
        };
        let Some(addr) = addr else {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), stderr_done).await;
            panic!(
                "hooks relay {args:?} did not print `listening on http://ADDR` first (got {first:?})\n\
                 --- stderr ---\n{}",
                String::from_utf8_lossy(&stderr.lock().expect("stderr lock"))
            );
        };
        RelayProcess {
            url: format!("http://{addr}"),
            addr,
            data_dir,
            extra,
            child,
            stderr,
            _lines: lines,
        }
    }

    /// What this run of the relay wrote on stderr (its log) so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr lock")).into_owned()
    }

    /// Kills the relay with SIGKILL (`kill -9`: no shutdown, no flush) and waits until it is
    /// gone, so its port and sockets are closed.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        match tokio::time::timeout(STEP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("could not wait for the killed relay: {e}"),
            Err(_) => panic!("the relay did not die within {STEP_TIMEOUT:?} of SIGKILL"),
        }
    }

    /// Sends SIGHUP, as `systemctl reload` does: the relay rereads its certificate and tokens.
    pub fn hangup(&self) {
        let pid = self.child.id().expect("the relay is running");
        let status = std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status();
        assert!(
            status.as_ref().is_ok_and(|s| s.success()),
            "could not send SIGHUP to the relay: {status:?}"
        );
    }

    /// Starts the relay again on the same address and data directory, with the same flags.
    /// The previous run must be dead ([`RelayProcess::kill`]).
    pub async fn restart(&mut self) {
        let listen = self.addr.to_string();
        let next = Self::spawn(&listen, self.data_dir.clone(), self.extra.clone()).await;
        assert_eq!(
            next.addr, self.addr,
            "the relay came back on its old address"
        );
        *self = next;
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The relay's `hooks_sessions` gauge (CLI sessions attached now), or `None` when the relay does
/// not answer.
pub async fn attached_sessions(sender: &Sender, relay_url: &str) -> Option<u64> {
    gauge(sender, relay_url, "hooks_sessions").await
}

/// The relay's gauge `name` (from its metrics page), or `None` when the relay does not answer.
pub async fn gauge(sender: &Sender, relay_url: &str, name: &str) -> Option<u64> {
    let url = format!("{relay_url}/_hooks/metrics");
    let reply = sender
        .try_send("GET", &url, &[], full(Bytes::new()), Duration::from_secs(2))
        .await
        .ok()?;
    reply
        .text()
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|n| n.trim().parse().ok())
}

/// Waits until the relay reports `n` attached sessions, e.g. until it noticed a CLI is gone.
pub async fn wait_for_sessions(relay_url: &str, n: u64) {
    wait_for_gauge(relay_url, "hooks_sessions", n).await
}

/// Waits until the relay's gauge `name` reads `n`. The relay offers no event for this, so the
/// gauge is polled (every 50 ms, up to [`STEP_TIMEOUT`]).
pub async fn wait_for_gauge(relay_url: &str, name: &str, n: u64) {
    let sender = Sender::default();
    let polling = async {
        while gauge(&sender, relay_url, name).await != Some(n) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    within(&format!("{relay_url}'s {name} to read {n}"), polling).await;
}

// ---------------------------------------------------------------------------------------------
// The provider: an HTTP client
// ---------------------------------------------------------------------------------------------

/// A request body the client can send: buffered or streamed (chunked).
pub type ClientBody = BoxBody<Bytes, Infallible>;

/// A response as the sender saw it.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers in order, repeats included.
    pub headers: Vec<HeaderPair>,
    /// Body bytes.
    pub body: Bytes,
}

impl Reply {
    /// The values of every header named `name` (lowercase), in order.
    pub fn header(&self, name: &str) -> Vec<&[u8]> {
        values(&self.headers, name)
    }

    /// The body as text (lossy), for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A plain HTTP/1.1 client playing the webhook provider.
#[derive(Clone)]
pub struct Sender {
    client: Client<HttpConnector, ClientBody>,
}

impl Default for Sender {
    fn default() -> Self {
        Sender {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

/// A buffered body.
pub fn full(body: impl Into<Bytes>) -> ClientBody {
    Full::new(body.into()).boxed()
}

/// A body sent with `Transfer-Encoding: chunked` (no length known up front).
pub fn chunked(chunks: Vec<Bytes>) -> ClientBody {
    let frames = futures_util::stream::iter(
        chunks
            .into_iter()
            .map(|c| Ok::<_, Infallible>(hyper::body::Frame::data(c))),
    );
    http_body_util::StreamBody::new(frames).boxed()
}

impl Sender {
    /// Sends `method url` with `headers` (appended in order) and `body`.
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[HeaderPair],
        body: ClientBody,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(url)
            .body(body)
            .expect("valid test request");
        for (name, value) in headers {
            request.headers_mut().append(
                hyper::header::HeaderName::from_bytes(name.as_bytes()).expect("valid header name"),
                hyper::header::HeaderValue::from_bytes(value).expect("valid header value"),
            );
        }
        let what = format!("the answer to {method} {url}");
        let response = within(&what, self.client.request(request))
            .await
            .unwrap_or_else(|e| panic!("{method} {url} failed: {e:?}"));
        let (parts, body) = response.into_parts();
        let body = within(&what, body.collect())
            .await
            .unwrap_or_else(|e| panic!("reading the body of {method} {url} failed: {e}"))
            .to_bytes();
        Reply {
            status: parts.status.as_u16(),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect(),
            body,
        }
    }

    /// Like [`Sender::send`], but a failure (connection refused or reset, no answer within
    /// `limit`) is an `Err` describing it instead of a panic: for tests where the relay may be
    /// down.
    pub async fn try_send(
        &self,
        method: &str,
        url: &str,
        headers: &[HeaderPair],
        body: ClientBody,
        limit: Duration,
    ) -> Result<Reply, String> {
        let mut request = Request::builder()
            .method(method)
            .uri(url)
            .body(body)
            .map_err(|e| format!("invalid request {method} {url}: {e}"))?;
        for (name, value) in headers {
            request.headers_mut().append(
                hyper::header::HeaderName::from_bytes(name.as_bytes()).expect("valid header name"),
                hyper::header::HeaderValue::from_bytes(value).expect("valid header value"),
            );
        }
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("{method} {url} failed: {e:?}"))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| format!("reading the body of {method} {url} failed: {e}"))?
                .to_bytes();
            Ok(Reply {
                status: parts.status.as_u16(),
                headers: parts
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                    .collect(),
                body,
            })
        };
        match tokio::time::timeout(limit, exchange).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer to {method} {url} within {limit:?}")),
        }
    }

    /// `POST url` with `body` and no extra headers.
    pub async fn post(&self, url: &str, body: impl Into<Bytes>) -> Reply {
        self.send("POST", url, &[], full(body)).await
    }

    /// `GET url`.
    pub async fn get(&self, url: &str) -> Reply {
        self.send("GET", url, &[], full(Bytes::new())).await
    }
}

// ---------------------------------------------------------------------------------------------
// Relay operations: stoppable relays, the relay binary, a private CA, HTTPS and raw sockets
// ---------------------------------------------------------------------------------------------

/// A relay started by [`start_relay_on`]: [`RunningRelay::stop`] waits until it has shut down,
/// so a test can start another one on the same data directory.
pub struct RunningRelay {
    /// The relay's address and base URL (`https://` when it serves TLS).
    pub handle: RelayHandle,
    task: tokio::task::JoinHandle<()>,
}

impl RunningRelay {
    /// Base URL, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.handle.url
    }

    /// Cancels the relay and waits for `relay_server::run` to return.
    pub async fn stop(self) {
        let RunningRelay { handle, task } = self;
        drop(handle);
        within("the relay to shut down", task)
            .await
            .expect("the relay task ends without panicking");
    }
}

/// Starts `relay_server::run` on `listener`, which the caller bound (so it can put the port in
/// `config`, e.g. a `public_url`). The URL scheme follows `config.tls`.
pub async fn start_relay_on(listener: TcpListener, config: relay_server::Config) -> RunningRelay {
    let addr = listener.local_addr().expect("relay address");
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let token = CancellationToken::new();
    let shutdown = token.clone().cancelled_owned();
    let task = tokio::spawn(async move {
        if let Err(e) = relay_server::run(listener, config, shutdown).await {
            panic!("relay failed: {e:#}");
        }
    });
    RunningRelay {
        handle: RelayHandle {
            url: format!("{scheme}://{addr}"),
            addr,
            token,
        },
        task,
    }
}

/// A fresh `127.0.0.1:0` listener for [`start_relay_on`].
pub async fn bind_loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port")
}

/// [`run_hooks`] with extra environment variables (set after the clean-up, so `HOOKS_*` work).
pub async fn run_hooks_env(args: &[&str], env: &[(&str, &str)]) -> Finished {
    let dir = tempfile::tempdir().expect("temp data dir");
    let mut command = hooks_command(args, dir.path());
    command.envs(env.iter().copied());
    let child = command.spawn().expect("spawn hooks");
    let output = within(&format!("hooks {args:?} to exit"), child.wait_with_output())
        .await
        .expect("wait for hooks");
    Finished {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// [`spawn_listen`] with extra environment variables, e.g. `HOOKS_TOKEN`.
pub async fn spawn_listen_env(args: &[&str], env: &[(&str, &str)]) -> Listener {
    let data_dir = tempfile::tempdir().expect("temp data dir");
    let mut full = vec!["listen", "--json"];
    full.extend_from_slice(args);
    let mut command = hooks_command(&full, data_dir.path());
    command.envs(env.iter().copied());
    let Piped {
        child,
        mut lines,
        stderr,
        stderr_done: _,
    } = spawn_piped(command, "hooks listen");
    let first = tokio::time::timeout(STEP_TIMEOUT, lines.recv()).await;
    let mut listener = Listener {
        url: String::new(),
        channel: String::new(),
        ready: Value::Null,
        lines,
        stderr,
        child,
        _data_dir: data_dir,
    };
    let line = match first {
        Ok(Some(line)) => line,
        Ok(None) => listener.fail("hooks listen closed stdout"),
        Err(_) => listener.fail(&format!("no ready line within {STEP_TIMEOUT:?}")),
    };
    match parse_ready(&line) {
        Ok((ready, url, channel)) => {
            listener.ready = ready;
            listener.url = url;
            listener.channel = channel;
            listener
        }
        Err(problem) => listener.fail(&problem),
    }
}

/// The real relay program started with only the flags given (`hooks relay --config FILE`), as
/// opposed to [`RelayProcess`], which sets `--listen` and `--data-dir` itself. Killed when
/// dropped.
pub struct RelayChild {
    /// Base URL from the relay's first stdout line (`listening on URL`).
    pub url: String,
    /// That first stdout line, whole.
    pub first_line: String,
    stderr: Arc<Mutex<Vec<u8>>>,
    _lines: mpsc::UnboundedReceiver<String>,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl RelayChild {
    /// What the relay logged on stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr lock")).into_owned()
    }
}

/// Starts `hooks relay <args>` and waits for its first stdout line.
pub async fn spawn_relay_command(args: &[&str]) -> RelayChild {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut full = vec!["relay"];
    full.extend_from_slice(args);
    let Piped {
        mut child,
        mut lines,
        stderr,
        stderr_done,
    } = spawn_piped(hooks_command(&full, dir.path()), "hooks relay");
    let first = tokio::time::timeout(STEP_TIMEOUT, lines.recv()).await;
    let first_line = match first {
        Ok(Some(line)) if line.starts_with("listening on ") => line,
        other => {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), stderr_done).await;
            panic!(
                "hooks relay {args:?} did not print `listening on URL` first (got {other:?})\n\
                 --- stderr ---\n{}",
                String::from_utf8_lossy(&stderr.lock().expect("stderr lock"))
            );
        }
    };
    let url = first_line["listening on ".len()..].to_owned();
    RelayChild {
        url,
        first_line,
        stderr,
        _lines: lines,
        _child: child,
        _dir: dir,
    }
}

/// A private CA and a leaf certificate for `localhost` and `127.0.0.1` signed by it, as PEM files
/// in a temporary directory: `ca.pem`, `cert.pem` (the leaf) and `key.pem` (the leaf's key).
pub struct TestCa {
    /// The CA certificate, for `hooks listen --ca-cert`.
    pub ca_pem: std::path::PathBuf,
    /// The leaf certificate the relay serves.
    pub cert_pem: std::path::PathBuf,
    /// The leaf's private key.
    pub key_pem: std::path::PathBuf,
    ca_der: rustls_pki_types::CertificateDer<'static>,
    _dir: tempfile::TempDir,
}

impl TestCa {
    /// Generates the CA and the leaf and writes the PEM files.
    pub fn new() -> TestCa {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "hooks test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign the CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let mut leaf_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("leaf params");
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf_params.use_authority_key_identifier_extension = true;
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate().expect("leaf key");
        let leaf = leaf_params
            .signed_by(&leaf_key, &issuer)
            .expect("sign the leaf");

        let dir = tempfile::tempdir().expect("temp dir for PEM files");
        let ca_pem = dir.path().join("ca.pem");
        let cert_pem = dir.path().join("cert.pem");
        let key_pem = dir.path().join("key.pem");
        std::fs::write(&ca_pem, ca_cert.pem()).expect("write ca.pem");
        std::fs::write(&cert_pem, leaf.pem()).expect("write cert.pem");
        std::fs::write(&key_pem, leaf_key.serialize_pem()).expect("write key.pem");
        TestCa {
            ca_pem,
            cert_pem,
            key_pem,
            ca_der: ca_cert.der().clone(),
            _dir: dir,
        }
    }

    /// The relay's `tls` setting: the leaf and its key.
    pub fn tls_files(&self) -> relay_server::config::TlsFiles {
        relay_server::config::TlsFiles {
            cert: self.cert_pem.clone(),
            key: self.key_pem.clone(),
        }
    }

    /// A rustls client configuration trusting this CA only.
    pub fn client_config(&self) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).expect("add the test CA");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}

/// An HTTPS/1.1 client playing the webhook provider, trusting a [`TestCa`].
#[derive(Clone)]
pub struct TlsSender {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, ClientBody>,
}

impl TlsSender {
    /// A client that trusts `ca` (and nothing else).
    pub fn new(ca: &TestCa) -> TlsSender {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(ca.client_config())
            .https_only()
            .enable_http1()
            .build();
        TlsSender {
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// Sends `method url` with `body`.
    pub async fn send(&self, method: &str, url: &str, body: ClientBody) -> Reply {
        let request = Request::builder()
            .method(method)
            .uri(url)
            .body(body)
            .expect("valid test request");
        let what = format!("the answer to {method} {url}");
        let response = within(&what, self.client.request(request))
            .await
            .unwrap_or_else(|e| panic!("{method} {url} failed: {e:?}"));
        let (parts, body) = response.into_parts();
        let body = within(&what, body.collect())
            .await
            .unwrap_or_else(|e| panic!("reading the body of {method} {url} failed: {e}"))
            .to_bytes();
        Reply {
            status: parts.status.as_u16(),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect(),
            body,
        }
    }

    /// `POST url` with `body`.
    pub async fn post(&self, url: &str, body: impl Into<Bytes>) -> Reply {
        self.send("POST", url, full(body)).await
    }

    /// `GET url`.
    pub async fn get(&self, url: &str) -> Reply {
        self.send("GET", url, full(Bytes::new())).await
    }
}

/// Writes `bytes` on a fresh connection to `addr` (ignoring write errors: the peer may close
/// early), then reads until the peer closes or resets it, for at most `limit`. Returns what was
/// read and whether the connection ended (`false`: still open at the deadline).
pub async fn raw_exchange(addr: SocketAddr, bytes: &[u8], limit: Duration) -> (Vec<u8>, bool) {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the relay");
    let _ = stream.write_all(bytes).await;
    read_until_closed(&mut stream, limit).await
}

/// Reads from `stream` until EOF or a reset (`true`), or until `limit` passes (`false`).
pub async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    limit: Duration,
) -> (Vec<u8>, bool) {
    let mut read = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (read, true),
            Ok(Ok(n)) => read.extend_from_slice(&buf[..n]),
            Err(_) => return (read, false),
        }
    }
}
