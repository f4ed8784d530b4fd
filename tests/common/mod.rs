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
}

impl Answer {
    /// `200` with `body` and no extra headers.
    pub fn ok(body: impl Into<Bytes>) -> Self {
        Answer {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
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

/// Starts `hooks listen --json <args>` and waits for its `{"type":"ready",…}` line.
pub async fn spawn_listen(args: &[&str]) -> Listener {
    let data_dir = tempfile::tempdir().expect("temp data dir");
    let mut full = vec!["listen", "--json"];
    full.extend_from_slice(args);
    let mut child = hooks_command(&full, data_dir.path())
        .spawn()
        .expect("spawn hooks listen");
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
    // Drain stderr continuously so the child never blocks on a full pipe.
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&stderr);
    tokio::spawn(async move {
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
    let mut listener = Listener {
        url: String::new(),
        channel: String::new(),
        ready: Value::Null,
        lines,
        stderr,
        child,
        _data_dir: data_dir,
    };
    let ready = listener.next_json().await;
    if ready["type"] != "ready" {
        listener.fail(&format!("first stdout line is not a ready line: {ready}"));
    }
    let field = |name: &str| match ready[name].as_str() {
        Some(value) => Ok(value.to_owned()),
        None => Err(format!("ready line has no string {name:?}: {ready}")),
    };
    match (field("url"), field("channel")) {
        (Ok(url), Ok(channel)) => {
            listener.url = url;
            listener.channel = channel;
        }
        (Err(e), _) | (_, Err(e)) => listener.fail(&e),
    }
    listener.ready = ready;
    listener
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

    /// `POST url` with `body` and no extra headers.
    pub async fn post(&self, url: &str, body: impl Into<Bytes>) -> Reply {
        self.send("POST", url, &[], full(body)).await
    }

    /// `GET url`.
    pub async fn get(&self, url: &str) -> Reply {
        self.send("GET", url, &[], full(Bytes::new())).await
    }
}
