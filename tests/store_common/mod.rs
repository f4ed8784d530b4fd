//! Helpers for the capture-store tests: an in-process relay, a recording app, the real `hooks`
//! binary with a private data directory, and a client that plays the webhook provider.
//!
//! Servers bind `127.0.0.1:0`, readiness is a line or a bound socket (never a sleep), and every
//! wait has a deadline, so the tests run in parallel and a hang fails with a message.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Longest any step may take: generous for slow debug builds, finite so a hang fails.
pub const STEP: Duration = Duration::from_secs(20);

/// A header as compared here: lowercase name, raw value.
pub type Pair = (String, Vec<u8>);

/// Awaits `future`, failing with `what` after [`STEP`].
pub async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {STEP:?} waiting for {what}"))
}

/// A relay running in this process until dropped.
pub struct Relay {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    stop: CancellationToken,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts `relay_server::run` on a fresh loopback port with its queue in memory.
pub async fn start_relay() -> Relay {
    start_relay_with(relay_server::Config::default()).await
}

/// [`start_relay`] with `config`.
pub async fn start_relay_with(config: relay_server::Config) -> Relay {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
    let url = format!("http://{}", listener.local_addr().expect("relay address"));
    let stop = CancellationToken::new();
    let shutdown = stop.clone().cancelled_owned();
    tokio::spawn(async move {
        if let Err(e) = relay_server::run(listener, config, shutdown).await {
            panic!("relay failed: {e:#}");
        }
    });
    Relay { url, stop }
}

/// One request as the app saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Method.
    pub method: String,
    /// Path and query from the request line.
    pub target: String,
    /// Headers in the order hyper yields them.
    pub headers: Vec<Pair>,
    /// Body.
    pub body: Bytes,
}

impl Seen {
    /// The headers without `host`, which every hop rewrites.
    pub fn headers_but_host(&self) -> Vec<Pair> {
        self.headers
            .iter()
            .filter(|(name, _)| name != "host")
            .cloned()
            .collect()
    }
}

/// A recording app on `127.0.0.1:0` answering `201` with a JSON body and two cookies.
pub struct App {
    /// Its address.
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    count: watch::Receiver<usize>,
    stop: CancellationToken,
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl App {
    /// Starts the app.
    pub async fn start() -> App {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind app");
        let addr = listener.local_addr().expect("app address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (count_tx, count) = watch::channel(0);
        let count_tx = Arc::new(count_tx);
        let stop = CancellationToken::new();
        let (record, token) = (Arc::clone(&seen), stop.clone());
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    _ = token.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                };
                let (record, count_tx) = (Arc::clone(&record), Arc::clone(&count_tx));
                let service =
                    service_fn(move |req| answer(req, Arc::clone(&record), Arc::clone(&count_tx)));
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        App {
            addr,
            seen,
            count,
            stop,
        }
    }

    /// `127.0.0.1:PORT`, as a `--forward-to` or `--to` target.
    pub fn target(&self) -> String {
        self.addr.to_string()
    }

    /// Waits until `n` requests arrived and returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Seen> {
        let mut count = self.count.clone();
        within(&format!("the app to see {n} request(s)"), async {
            count.wait_for(|&c| c >= n).await.expect("app running");
        })
        .await;
        self.seen.lock().expect("seen lock").clone()
    }

    /// What arrived so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen lock").clone()
    }
}

async fn answer(
    req: hyper::Request<hyper::body::Incoming>,
    record: Arc<Mutex<Vec<Seen>>>,
    count: Arc<watch::Sender<usize>>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let seen = Seen {
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
    {
        let mut all = record.lock().expect("seen lock");
        all.push(seen);
        count.send_replace(all.len());
    }
    let response = hyper::Response::builder()
        .status(201)
        .header("content-type", "application/json")
        .header("set-cookie", "a=1")
        .header("set-cookie", "b=2")
        .body(Full::new(Bytes::from_static(br#"{"received":true}"#)))
        .expect("valid response");
    Ok(response)
}

/// A fresh, private data directory.
pub fn data_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp data dir")
}

/// `hooks <args>` with a clean environment and `HOOKS_DATA_DIR=data`.
pub fn hooks(args: &[&str], data: &Path) -> Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hooks"));
    command.args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HOOKS_") {
            command.env_remove(&name);
        }
    }
    for name in [
        "NO_COLOR",
        "TERM",
        "RUST_LOG",
        "XDG_DATA_HOME",
        "XDG_CONFIG_HOME",
    ] {
        command.env_remove(name);
    }
    command
        .env("HOOKS_DATA_DIR", data)
        // A config file that does not exist, so the developer's own is not read.
        .env("HOOKS_CONFIG", "/nonexistent/hooks-test/config.toml")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut command = Command::from(command);
    command.kill_on_drop(true);
    command
}

/// A finished `hooks` run.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: Option<i32>,
    /// Raw stdout.
    pub stdout: Vec<u8>,
    /// Stderr as text.
    pub stderr: String,
}

impl Run {
    /// Stdout as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stdout as NDJSON.
    pub fn json_lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
            .collect()
    }

    /// Fails unless the run exited 0.
    #[track_caller]
    pub fn success(self) -> Run {
        assert_eq!(self.code, Some(0), "stderr: {}", self.stderr);
        self
    }
}

/// Runs `hooks <args>` to completion.
pub async fn run(args: &[&str], data: &Path) -> Run {
    let child = hooks(args, data).spawn().expect("spawn hooks");
    let output = within(&format!("hooks {args:?}"), child.wait_with_output())
        .await
        .expect("hooks output");
    Run {
        code: output.status.code(),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A running `hooks listen --json` attached to a relay.
pub struct Listen {
    /// The channel's public URL.
    pub url: String,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    child: Child,
}

/// Starts `hooks listen --json --relay <relay> --forward-to <target> <extra>` with data in
/// `data`, and waits for its ready line.
pub async fn listen(relay: &Relay, target: &str, data: &Path, extra: &[&str]) -> Listen {
    let mut args = vec![
        "listen",
        "--json",
        "--relay",
        &relay.url,
        "--forward-to",
        target,
    ];
    args.extend_from_slice(extra);
    let mut child = hooks(&args, data).spawn().expect("spawn hooks listen");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut err_pipe = child.stderr.take().expect("piped stderr");
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
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err_pipe.read(&mut buf).await {
            if n == 0 {
                break;
            }
            sink.lock()
                .expect("stderr lock")
                .extend_from_slice(&buf[..n]);
        }
    });
    let mut listen = Listen {
        url: String::new(),
        lines,
        stderr,
        child,
    };
    let ready = listen.next_json().await;
    assert_eq!(ready["type"], "ready", "{ready}\n{}", listen.stderr());
    listen.url = ready["url"].as_str().expect("ready url").to_owned();
    listen
}

impl Listen {
    /// Stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr lock")).into_owned()
    }

    /// The next stdout line as JSON.
    pub async fn next_json(&mut self) -> Value {
        let line = tokio::time::timeout(STEP, self.lines.recv()).await;
        let line = match line {
            Ok(Some(line)) => line,
            other => panic!(
                "no line from hooks listen ({other:?}); stderr:\n{}",
                self.stderr()
            ),
        };
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }

    /// The next request line; by then its capture is committed (the capture comes first).
    pub async fn next_request(&mut self) -> Value {
        let line = self.next_json().await;
        assert_eq!(line["type"], "request", "{line}");
        line
    }

    /// Stops the process (SIGKILL) and waits for it.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Sends one request to `url` with `headers` (appended in order) and `body`; returns the status.
pub async fn send(method: &str, url: &str, headers: &[(&str, &[u8])], body: &[u8]) -> u16 {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("valid request");
    for (name, value) in headers {
        request.headers_mut().append(
            hyper::header::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            hyper::header::HeaderValue::from_bytes(value).expect("header value"),
        );
    }
    let response = within("the webhook's answer", client.request(request))
        .await
        .expect("webhook sent");
    let status = response.status().as_u16();
    let _ = within("the webhook's body", response.into_body().collect()).await;
    status
}

/// Every byte value, `repeat` times: a body no text encoding survives.
pub fn all_bytes(repeat: usize) -> Vec<u8> {
    (0..=255u8).cycle().take(256 * repeat).collect()
}

/// The files in `dir` whose names start with `prefix`.
pub fn files_starting(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("read data dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect()
}
