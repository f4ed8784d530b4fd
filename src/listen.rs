//! `hooks listen`: attach to a relay (or start one in-process), forward every webhook to the app,
//! send the app's answer back, and reconnect with backoff when the session drops.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use relay_server::protocol::{
    self, ClientMessage, RelayMessage, RequestId, Respond, PROTOCOL_VERSION,
};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use crate::capture::{self, Recorder};
use crate::cli::ListenArgs;
use crate::delivery::{Delivery, Handled, Seen};
use crate::forward::{self, Cut, Forwarder, Pieces};
use crate::inspect::{self, Event, Events, Exchange, OutputOptions};
use crate::relays;
use crate::store;
use crate::verify;

/// How long to wait for a TCP + WebSocket connection to the relay.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The session's read buffer: bodies up to 25 MiB arrive here, so bigger reads pay off.
const CLI_READ_BUFFER: usize = 128 * 1024;

/// Frames waiting to be written to the relay.
const OUTBOX_CAPACITY: usize = 256;

/// How long Ctrl-C waits for requests already at the app to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Longest the acknowledgement of a request waits for its capture to be committed: a stalled disk
/// must not hold the relay's window of unacknowledged requests.
const ACK_WAIT: Duration = Duration::from_secs(1);

/// First and largest pause between reconnection attempts.
const BACKOFF_START: Duration = Duration::from_millis(250);
const BACKOFF_CAP: Duration = Duration::from_secs(30);

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// What the relay's hello said.
#[derive(Clone)]
struct Attachment {
    channel: String,
    url: String,
    /// How long senders wait for the app; `None` when the relay answers them at once.
    timeout: Option<Duration>,
    /// The epoch of the relay's queue (see `delivery`).
    epoch: u64,
    /// The relay's `--max-body`, which bounds the app's answers too (`None`: an older relay).
    max_body: Option<usize>,
}

/// Why a connection attempt failed.
enum ConnectError {
    /// The relay answered and refused the session; its sentence says why.
    Refused(String),
    /// The relay could not be reached or spoke nonsense.
    Unreachable(anyhow::Error),
}

/// Why a session ended.
enum SessionEnd {
    /// The user asked hooks to stop.
    Shutdown,
    /// The session was lost; hooks reconnects.
    Lost(String),
}

/// What every request handler shares, across reconnections.
struct Context {
    forwarder: Forwarder,
    events: Events,
    /// The attached session's outbox, with its relay's epoch. Handlers look it up when they
    /// answer, so a request that outlives its session is answered and acknowledged on the next
    /// one, if that one is of the same epoch.
    outbox: std::sync::Mutex<Option<(u64, mpsc::Sender<Message>)>>,
    handled: std::sync::Mutex<Handled>,
    /// What the relay's hello said about the current session.
    session: std::sync::Mutex<Option<Attachment>>,
    /// How to check signatures.
    signatures: Signatures,
    /// The capture store, unless `--no-capture`.
    recorder: Option<Recorder>,
    /// Exchanges whose captures are queued and not yet committed; see [`Waiters`].
    waiting: std::sync::Mutex<Waiters>,
    /// Signalled when `waiting` gains an entry that `settle` must time (no other unacknowledged
    /// entry was waiting).
    waiting_added: Notify,
    /// Signalled each time `settle` has finished with a commit's exchanges.
    settled: Notify,
}

/// Exchanges whose captures are queued and not yet committed, in queueing order: their
/// printed line (which shows the capture id) and their acknowledgement wait for the commit.
#[derive(Default)]
struct Waiters {
    queue: VecDeque<Waiting>,
    /// Entries of `queue` not acknowledged yet.
    unacked: usize,
    /// Taken from `queue` by `settle` and not yet acknowledged.
    settling: usize,
    /// `settle` has ended: handlers acknowledge and print their own exchanges.
    closed: bool,
}

/// An exchange waiting for its capture's commit.
struct Waiting {
    delivery: Delivery,
    queued_at: Instant,
    /// Acknowledged already, because the commit took longer than [`ACK_WAIT`].
    acked: bool,
    exchange: Box<Exchange>,
}

/// `--secret`, `--provider`, `--tolerance`.
struct Signatures {
    secrets: Vec<verify::Secret>,
    provider: Option<verify::Provider>,
    tolerance: Option<Duration>,
}

impl Context {
    /// The public URL a webhook was sent to, and how long its sender waits for the app.
    fn public_url(&self, target: &str) -> (String, Option<Duration>) {
        match &*self.session.lock().expect("session lock is never poisoned") {
            Some(session) => (format!("{}{target}", session.url), session.timeout),
            None => (target.to_owned(), None),
        }
    }

    /// The current session's outbox, if its relay's epoch is `epoch`: a request of another
    /// epoch (a relay that came back with an empty queue) is unknown to it, and the same id may
    /// name another request there, so its answer and acknowledgement must not go to it.
    fn outbox(&self, epoch: u64) -> Option<mpsc::Sender<Message>> {
        match &*self.outbox.lock().expect("outbox lock is never poisoned") {
            Some((current, outbox)) if *current == epoch => Some(outbox.clone()),
            _ => None,
        }
    }

    /// `response`, unless its body is over the relay's `--max-body`: the relay would answer
    /// `502` to it, and might end the session rather than read so large a frame.
    fn within_relay_limit(
        &self,
        response: forward::AppResponse,
    ) -> Result<forward::AppResponse, forward::ForwardError> {
        let session = self.session.lock().expect("session lock is never poisoned");
        match session.as_ref().and_then(|s| s.max_body) {
            Some(max) if response.body.len() > max => {
                Err(forward::ForwardError::OverRelayLimit(max))
            }
            _ => Ok(response),
        }
    }

    fn set_outbox(&self, outbox: Option<(u64, mpsc::Sender<Message>)>) {
        *self.outbox.lock().expect("outbox lock is never poisoned") = outbox;
    }

    /// Sends `message` about request `delivery` on the current session, if it is of its epoch.
    async fn send(&self, delivery: Delivery, message: &ClientMessage, payload: &[u8]) {
        if let Some(outbox) = self.outbox(delivery.epoch) {
            let _ = outbox
                .send(Message::Binary(protocol::encode(message, payload)))
                .await;
        }
    }

    /// Acknowledges each of `deliveries` on the current session (those of its epoch).
    async fn ack_all(&self, deliveries: &[Delivery]) {
        for &delivery in deliveries {
            let ack = ClientMessage::Ack(protocol::Ack { id: delivery.id });
            self.send(delivery, &ack, &[]).await;
        }
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiters> {
        self.waiting.lock().expect("waiting lock is never poisoned")
    }

    /// Waits until every queued capture is committed and acknowledged.
    async fn wait_settled(&self) {
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            {
                let waiting = self.waiting();
                if waiting.closed || (waiting.queue.is_empty() && waiting.settling == 0) {
                    return;
                }
            }
            settled.await;
        }
    }
}

/// Runs `hooks listen` until Ctrl-C/SIGTERM (`Ok`) or a failure that reconnecting cannot fix.
pub async fn listen(args: ListenArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let max_body = protocol::DEFAULT_MAX_BODY;
    let forwarder = Forwarder::new(args.forward_to.clone(), max_body)?;
    let mut recorder = capture::open(&args).await?;
    let commits = recorder.as_mut().and_then(Recorder::take_commits);
    let (events, printer) = inspect::spawn_printer(output_options(&args));
    let context = Arc::new(Context {
        forwarder,
        events,
        outbox: std::sync::Mutex::new(None),
        handled: std::sync::Mutex::new(Handled::default()),
        session: std::sync::Mutex::new(None),
        signatures: Signatures {
            secrets: args.secrets.clone(),
            provider: args.provider,
            tolerance: args.tolerance,
        },
        recorder,
        waiting: std::sync::Mutex::new(Waiters::default()),
        waiting_added: Notify::new(),
        settled: Notify::new(),
    });
    let settle_stop = CancellationToken::new();
    let settler = commits.map(|commits| {
        // Lines go to the printer through a task of their own, so a terminal that does not
        // read (a paused pipe) never holds up acknowledgements.
        let (lines, mut lines_rx) = mpsc::unbounded_channel::<Box<Exchange>>();
        let events = context.events.clone();
        let printing = tokio::spawn(async move {
            while let Some(exchange) = lines_rx.recv().await {
                let _ = events.send(Event::Request(exchange)).await;
            }
        });
        let settling = tokio::spawn(settle(
            Arc::clone(&context),
            commits,
            settle_stop.clone(),
            lines,
        ));
        (settling, printing)
    });
    let relay_stop = CancellationToken::new();
    let (relay_url, embedded) = match &args.relay {
        Some(url) => (url.trim_end_matches('/').to_owned(), None),
        None => {
            let (url, task) = start_embedded_relay(relay_stop.clone()).await?;
            (url, Some(task))
        }
    };
    let result = attach_loop(&args, &relay_url, embedded.is_some(), &context, &shutdown).await;
    // Print what is still waiting for its commit, then let the printer finish.
    settle_stop.cancel();
    if let Some((settling, printing)) = settler {
        for (task, what) in [
            (settling, "uncommitted captures"),
            (printing, "unprinted lines"),
        ] {
            let abort = task.abort_handle();
            if tokio::time::timeout(SHUTDOWN_GRACE, task).await.is_err() {
                debug!("{what} left at exit");
                abort.abort();
            }
        }
    }
    drop(context);
    let _ = printer.await;
    relay_stop.cancel();
    if let Some(task) = embedded {
        let _ = task.await;
    }
    result
}

/// Terminal facts and display choices, decided once.
fn output_options(args: &ListenArgs) -> OutputOptions {
    let color = !args.json && args.color.enabled();
    let print = if args.verbose {
        inspect::Print::ALL
    } else {
        args.print.unwrap_or_default()
    };
    let palette = inspect::Palette::new(color);
    OutputOptions {
        json: args.json,
        palette,
        width: args.width.unwrap_or_else(inspect::palette::terminal_width),
        print,
        body: inspect::BodyStyle {
            max_lines: args.max_body_lines,
            palette,
            redactor: inspect::Redactor {
                show_secrets: args.show_secrets,
                secrets: args.secrets.iter().map(|s| s.expose().to_owned()).collect(),
            },
        },
    }
}

/// Starts a relay inside this process on a free loopback port and returns its URL.
async fn start_embedded_relay(
    stop: CancellationToken,
) -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("could not start the embedded relay on 127.0.0.1")?;
    let url = format!("http://{}", listener.local_addr()?);
    let config = relay_server::Config::default();
    let task = tokio::spawn(async move {
        if let Err(e) = relay_server::run(listener, config, stop.cancelled_owned()).await {
            eprintln!("hooks: error: embedded relay failed: {e:#}");
        }
    });
    Ok((url, task))
}

/// Connects, serves the session, and reconnects after every loss, keeping the channel.
async fn attach_loop(
    args: &ListenArgs,
    relay_url: &str,
    embedded: bool,
    context: &Arc<Context>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    // Several URLs are the nodes of a relay cluster, tried in order on every (re)connect.
    let ws_urls = relays::parse(relay_url)
        .iter()
        .map(|url| connect_url(url))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if ws_urls.is_empty() {
        return Err(anyhow!("--relay {relay_url:?} names no relay URL"));
    }
    // For messages: a relay URL's user info is a credential (and never sent).
    let relay_url = relays::parse(relay_url)
        .iter()
        .map(|url| inspect::redact::userinfo(url).into_owned())
        .collect::<Vec<_>>()
        .join(", ");
    let mut hello = ClientMessage::Hello(protocol::ClientHello {
        version: PROTOCOL_VERSION,
        channel: args.channel.clone(),
        respond: args.respond,
        timeout_ms: args
            .timeout
            .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        offline: args.offline,
        token: args.token.clone(),
        stream_bodies: true,
    });
    // Only a wss:// relay needs TLS: loading the platform's roots costs memory and start-up time.
    let wss = ws_urls.iter().any(|url| url.starts_with("wss://"));
    let tls = match (wss, args.ca_cert.as_deref()) {
        (false, None) => Connector::Plain,
        (_, ca_cert) => tls_connector(ca_cert)?,
    };
    let mut attached_once = false;
    let mut failures = 0u32;
    let mut disconnected_since: Option<Instant> = None;
    loop {
        // With --exit-after, an attempt still running at the limit is abandoned there: a port
        // that accepts and never answers would hold it for CONNECT_TIMEOUT (issue 17).
        let give_up_at = args
            .exit_after
            .zip(disconnected_since)
            .map(|(limit, since)| since + limit);
        let attempt = tokio::select! {
            attempt = connect_first(&ws_urls, &hello, &tls) => attempt,
            () = sleep_until(give_up_at) => Err(ConnectError::Unreachable(anyhow!(
                "still connecting at the --exit-after limit"
            ))),
            _ = shutdown.cancelled() => return Ok(()),
        };
        match attempt {
            Ok((ws, attachment)) => {
                failures = 0;
                let Attachment {
                    channel: name,
                    url,
                    epoch,
                    ..
                } = attachment.clone();
                if let Some(recorder) = &context.recorder {
                    recorder.attached(&name, &url);
                }
                *context
                    .session
                    .lock()
                    .expect("session lock is never poisoned") = Some(attachment);
                let event = if attached_once {
                    Event::Reconnected { url }
                } else {
                    Event::Ready {
                        url,
                        channel: name.clone(),
                        forward_to: context.forwarder.target().to_string(),
                        embedded,
                    }
                };
                let _ = context.events.send(event).await;
                attached_once = true;
                // Reconnect to the same channel, so the URL stays the same.
                if let ClientMessage::Hello(protocol::ClientHello { channel, .. }) = &mut hello {
                    *channel = Some(name);
                }
                match serve(ws, epoch, context, shutdown).await {
                    SessionEnd::Shutdown => return Ok(()),
                    SessionEnd::Lost(reason) => {
                        disconnected_since = Some(Instant::now());
                        let _ = context.events.send(Event::Disconnected { reason }).await;
                    }
                }
            }
            // The relay's sentence, on one line: it cannot forge another line of output.
            Err(ConnectError::Refused(message)) if !attached_once => {
                return Err(anyhow!(inspect::sanitize(&message)))
            }
            Err(ConnectError::Unreachable(e)) if !attached_once => {
                return Err(e.context(format!("could not reach the relay at {relay_url}")))
            }
            // Refused for its token (taken out of the relay's tokens file, say): asking again
            // with the same token cannot succeed, so hooks stops rather than retry forever.
            Err(ConnectError::Refused(message)) if relay_server::is_token_refusal(&message) => {
                return Err(anyhow!(message))
            }
            Err(ConnectError::Refused(message)) => {
                let message = inspect::sanitize(&message);
                debug!(%message, "reconnect refused; retrying");
            }
            Err(ConnectError::Unreachable(e)) => debug!(error = %e, "reconnect failed; retrying"),
        }
        let mut pause = backoff(failures);
        failures = failures.saturating_add(1);
        if let (Some(limit), Some(since)) = (args.exit_after, disconnected_since) {
            // Give up at the limit; the last pause ends there.
            let left = limit.saturating_sub(since.elapsed());
            if left.is_zero() {
                return Err(anyhow!(
                    "disconnected from the relay at {relay_url} for {:.1} s (--exit-after {} s)",
                    since.elapsed().as_secs_f64(),
                    limit.as_secs_f64()
                ));
            }
            pause = pause.min(left);
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.cancelled() => return Ok(()),
        }
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// The pause before reconnect attempt `failures`: exponential from [`BACKOFF_START`], capped at
/// [`BACKOFF_CAP`], with jitter so a relay restart is not met by every CLI at once.
fn backoff(failures: u32) -> Duration {
    let full = BACKOFF_START
        .saturating_mul(2u32.saturating_pow(failures.min(16)))
        .min(BACKOFF_CAP);
    let jitter = f64::from(getrandom::u32().unwrap_or(u32::MAX / 2)) / f64::from(u32::MAX);
    full.mul_f64(0.5 + jitter / 2.0)
}

/// TLS settings for `wss://` relays: the platform's roots, plus `ca_cert` when given.
fn tls_connector(ca_cert: Option<&std::path::Path>) -> anyhow::Result<Connector> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_cert {
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
            .with_context(|| format!("could not read the CA certificate {}", path.display()))?;
        for cert in certs {
            let cert = cert.with_context(|| format!("{} is not valid PEM", path.display()))?;
            roots
                .add(cert)
                .with_context(|| format!("{} is not a usable CA certificate", path.display()))?;
        }
    } else if added == 0 {
        debug!("no platform root certificates found; https relays will need --ca-cert");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Connector::Rustls(Arc::new(config)))
}

/// The WebSocket URL of a relay: `http://h` → `ws://h/_hooks/v1/connect`, `https` → `wss`.
fn connect_url(relay_url: &str) -> anyhow::Result<String> {
    let (scheme, rest) = relay_url.split_once("://").ok_or_else(|| {
        let shown = inspect::redact::userinfo(relay_url);
        anyhow!("relay URL {shown:?} needs a scheme: http:// or https://")
    })?;
    let ws_scheme = match scheme {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => return Err(anyhow!("relay URL scheme {other:?} is not http or https")),
    };
    Ok(format!("{ws_scheme}://{rest}{}", protocol::CONNECT_PATH))
}

/// [`connect`] to each of `ws_urls` in turn (the nodes of a relay cluster) until one attaches.
/// When none does: a refusal, if one refused (its sentence is what the user must read), else
/// the first failure.
async fn connect_first(
    ws_urls: &[String],
    hello: &ClientMessage,
    tls: &Connector,
) -> Result<(Ws, Attachment), ConnectError> {
    let channel = match hello {
        ClientMessage::Hello(hello) => hello.channel.as_deref(),
        _ => None,
    };
    let attempt = |url: &str| {
        let url = relays::with_channel(url, channel);
        async move { connect(&url, hello, tls).await }
    };
    match relays::first(ws_urls, attempt).await {
        Ok((_, attached)) => Ok(attached),
        Err(mut failures) => {
            let refused = failures
                .iter()
                .position(|e| matches!(e, ConnectError::Refused(_)));
            match refused.or((!failures.is_empty()).then_some(0)) {
                Some(at) => Err(failures.swap_remove(at)),
                None => Err(ConnectError::Unreachable(anyhow!("no relay URL to try"))),
            }
        }
    }
}

/// Opens a session: WebSocket, hello both ways. Returns the socket, channel and public URL.
async fn connect(
    ws_url: &str,
    hello: &ClientMessage,
    tls: &Connector,
) -> Result<(Ws, Attachment), ConnectError> {
    let config = relay_server::ws_config(protocol::DEFAULT_MAX_BODY, CLI_READ_BUFFER);
    let opened = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::connect_async_tls_with_config(
            ws_url,
            Some(config),
            true,
            Some(tls.clone()),
        ),
    )
    .await;
    let mut ws = match opened {
        Ok(Ok((ws, _response))) => ws,
        Ok(Err(e)) => return Err(ConnectError::Unreachable(anyhow!(describe(&e)))),
        Err(_) => {
            return Err(ConnectError::Unreachable(anyhow!(
                "no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            )))
        }
    };
    ws.send(Message::Binary(protocol::encode(hello, &[])))
        .await
        .map_err(|e| ConnectError::Unreachable(anyhow!(describe(&e))))?;
    let reply = tokio::time::timeout(protocol::HELLO_TIMEOUT, ws.next()).await;
    let frame = match reply {
        Ok(Some(Ok(Message::Binary(frame)))) => frame,
        Ok(Some(Err(e))) => return Err(ConnectError::Unreachable(anyhow!(describe(&e)))),
        _ => {
            return Err(ConnectError::Unreachable(anyhow!(
                "the relay did not answer the hello"
            )))
        }
    };
    match protocol::decode::<RelayMessage>(frame) {
        Ok((RelayMessage::Hello(protocol::RelayHello { version, .. }), _))
            if version != PROTOCOL_VERSION =>
        {
            Err(ConnectError::Refused(protocol::version_mismatch(
                version,
                PROTOCOL_VERSION,
            )))
        }
        Ok((
            RelayMessage::Hello(protocol::RelayHello {
                channel,
                url,
                respond,
                timeout_ms,
                epoch,
                max_body,
                ..
            }),
            _,
        )) => {
            let timeout = (respond == Respond::App).then(|| Duration::from_millis(timeout_ms));
            Ok((
                ws,
                Attachment {
                    channel,
                    url,
                    timeout,
                    epoch,
                    max_body: max_body.map(|max| usize::try_from(max).unwrap_or(usize::MAX)),
                },
            ))
        }
        Ok((RelayMessage::Error(protocol::Error { message }), _)) => Err(ConnectError::Refused(
            format!("the relay refused the session: {message}"),
        )),
        Ok(_) => Err(ConnectError::Unreachable(anyhow!(
            "the relay sent a request before its hello"
        ))),
        Err(e) => Err(ConnectError::Unreachable(anyhow!(
            "the relay's hello is not valid: {e}"
        ))),
    }
}

/// A WebSocket error as one short phrase ("connection refused"), without tungstenite's prefixes
/// and the repeated source chain.
fn describe(e: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        // tokio-tungstenite reports TLS handshake failures as I/O errors wrapping rustls's.
        Error::Io(io)
            if io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>()) =>
        {
            format!(
                "TLS: {io} (for a relay with a private CA, pass its certificate with --ca-cert)"
            )
        }
        Error::Io(io) => {
            let text = io.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text);
            text.to_lowercase()
        }
        Error::Http(response) => format!(
            "the server answered HTTP {} instead of opening a session; is this a hooks relay?",
            response.status()
        ),
        Error::Tls(tls) => format!(
            "TLS: {tls} (for a relay with a private CA, pass its certificate with --ca-cert)"
        ),
        other => other.to_string(),
    }
}

/// Serves one attached session, whose relay's queue has `epoch`, until it is lost or the user
/// stops hooks.
async fn serve(
    ws: Ws,
    epoch: u64,
    context: &Arc<Context>,
    shutdown: &CancellationToken,
) -> SessionEnd {
    let (sink, mut stream) = ws.split();
    let (outbox, outbox_rx) = mpsc::channel::<Message>(OUTBOX_CAPACITY);
    let writer = tokio::spawn(write_loop(sink, outbox_rx));
    context.set_outbox(Some((epoch, outbox)));
    let in_flight = TaskTracker::new();
    let end = tokio::select! {
        reason = read_loop(&mut stream, epoch, context, &in_flight) => SessionEnd::Lost(reason),
        _ = shutdown.cancelled() => SessionEnd::Shutdown,
    };
    in_flight.close();
    if matches!(end, SessionEnd::Shutdown) {
        // Finish what the app is handling, answer and acknowledge it, then close cleanly.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
            in_flight.wait().await;
            context.wait_settled().await;
        })
        .await;
        context.set_outbox(None);
        let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
    } else {
        context.set_outbox(None);
        writer.abort();
    }
    end
}

/// Writes queued frames and pings to the relay; sends a close frame once every sender is gone.
async fn write_loop(
    mut sink: futures_util::stream::SplitSink<Ws, Message>,
    mut outbox: mpsc::Receiver<Message>,
) {
    let mut ping = tokio::time::interval(protocol::PING_INTERVAL);
    loop {
        let message = tokio::select! {
            message = outbox.recv() => match message {
                Some(message) => message,
                None => break,
            },
            _ = ping.tick() => Message::Ping(Bytes::new()),
        };
        if protocol::session::write_batch(&mut sink, message, || outbox.try_recv().ok())
            .await
            .is_err()
        {
            return;
        }
    }
    let _ = sink.send(Message::Close(None)).await;
}

/// Reads frames until the session ends; returns why it ended.
async fn read_loop(
    stream: &mut futures_util::stream::SplitStream<Ws>,
    epoch: u64,
    context: &Arc<Context>,
    in_flight: &TaskTracker,
) -> String {
    // Dropped with the session: the bodies still arriving end in an error, so their requests
    // fail at the app and are forgotten, to be forwarded again when the relay redelivers them.
    let mut streams = Streams::default();
    loop {
        let message = match tokio::time::timeout(protocol::SILENCE_LIMIT, stream.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(e))) => return format!("connection lost: {}", describe(&e)),
            Ok(None) => return "connection closed".to_owned(),
            Err(_) => {
                return format!(
                    "no word from the relay for {} s",
                    protocol::SILENCE_LIMIT.as_secs()
                )
            }
        };
        let frame = match message {
            Message::Binary(frame) => frame,
            Message::Close(Some(frame)) if !frame.reason.is_empty() => {
                return frame.reason.to_string()
            }
            Message::Close(_) => return "the relay closed the session".to_owned(),
            _ => continue,
        };
        match protocol::decode::<RelayMessage>(frame) {
            Ok((
                RelayMessage::Request(protocol::Request {
                    id,
                    received_at_ms,
                    method,
                    target,
                    headers,
                    body_len,
                    redelivered,
                }),
                body,
            )) => {
                let mut job = Job {
                    delivery: Delivery { epoch, id },
                    redelivered,
                    received_at_ms,
                    method,
                    target,
                    headers,
                    body,
                    streamed: None,
                };
                let incoming = match body_len {
                    None => None,
                    Some(len) => match streams.open(id, len) {
                        Ok((incoming, streamed)) => {
                            job.streamed = Some(streamed);
                            Some(incoming)
                        }
                        Err(reason) => return reason,
                    },
                };
                if receive(job, context, in_flight).await {
                    if let Some(incoming) = incoming {
                        streams.insert(id, incoming);
                    }
                }
            }
            Ok((RelayMessage::Body(protocol::Body { id }), piece)) => {
                if let Err(reason) = streams.piece(id, piece) {
                    return reason;
                }
            }
            Ok((RelayMessage::Abort(protocol::Abort { id, reason }), _)) => {
                streams.abort(id, reason)
            }
            Ok((RelayMessage::Error(protocol::Error { message }), _)) => return message,
            Ok((RelayMessage::Hello(_), _)) => debug!("ignoring a second hello"),
            Err(e) => return format!("the relay sent a bad frame: {e}"),
        }
    }
}

/// Starts handling a request, unless it is a redelivery of one already handled; `true` if it
/// started.
async fn receive(job: Job, context: &Arc<Context>, in_flight: &TaskTracker) -> bool {
    let seen = context
        .handled
        .lock()
        .expect("handled lock is never poisoned")
        .start(job.delivery);
    match seen {
        Seen::New => {
            in_flight.spawn(handle(job, Arc::clone(context)));
            return true;
        }
        // Its acknowledgement was lost: acknowledge again, don't forward again.
        Seen::Done => {
            let ack = ClientMessage::Ack(protocol::Ack {
                id: job.delivery.id,
            });
            context.send(job.delivery, &ack, &[]).await
        }
        // Still at the app; its handler acknowledges it when done.
        Seen::InProgress => {}
    }
    false
}

/// The bodies a session is receiving in pieces ([`RelayMessage::Body`]), by request: each
/// piece goes on to the app's request at once, and into the whole body, which the handler
/// gets once the last piece is in (for the capture, the signature and the terminal).
#[derive(Default)]
struct Streams {
    open: std::collections::HashMap<RequestId, Incoming>,
}

/// One body arriving in pieces.
struct Incoming {
    /// To the app's request.
    pieces: mpsc::UnboundedSender<Result<Bytes, Cut>>,
    /// The body so far (room for all of it is taken with the first piece).
    body: bytes::BytesMut,
    len: usize,
    whole: tokio::sync::oneshot::Sender<Bytes>,
}

/// A job's body still arriving: what its handler forwards, and the whole body once in.
struct Streamed {
    pieces: Pieces,
    whole: tokio::sync::oneshot::Receiver<Bytes>,
}

impl Streams {
    /// Makes ready for request `id`'s body of `len` bytes; `Err` is why the session ends.
    fn open(&self, id: RequestId, len: u64) -> Result<(Incoming, Streamed), String> {
        if self.open.len() >= protocol::MAX_STREAMS {
            return Err(format!(
                "the relay sent more than {} bodies in pieces at once",
                protocol::MAX_STREAMS
            ));
        }
        let len = usize::try_from(len)
            .ok()
            .filter(|&len| len <= protocol::DEFAULT_MAX_BODY)
            .ok_or_else(|| {
                format!(
                    "the relay announced a body of {len} bytes for request {id}, over the limit of {}",
                    protocol::DEFAULT_MAX_BODY
                )
            })?;
        let (pieces, receiver) = mpsc::unbounded_channel();
        let (whole, body) = tokio::sync::oneshot::channel();
        let incoming = Incoming {
            pieces,
            body: bytes::BytesMut::new(),
            len,
            whole,
        };
        let streamed = Streamed {
            pieces: Pieces::new(receiver, len as u64),
            whole: body,
        };
        Ok((incoming, streamed))
    }

    fn insert(&mut self, id: RequestId, incoming: Incoming) {
        if incoming.len == 0 {
            let _ = incoming.whole.send(Bytes::new());
            return;
        }
        self.open.insert(id, incoming);
    }

    /// Passes on the next piece of `id`'s body; `Err` is why the session ends. A piece for a
    /// request not (or no longer) streaming, a redelivery already handled, is dropped.
    fn piece(&mut self, id: RequestId, piece: Bytes) -> Result<(), String> {
        let Some(incoming) = self.open.get_mut(&id) else {
            return Ok(());
        };
        if incoming.body.len() + piece.len() > incoming.len {
            return Err(format!(
                "the relay sent more than the {} bytes it announced for request {id}",
                incoming.len
            ));
        }
        if incoming.body.capacity() == 0 {
            incoming.body.reserve(incoming.len);
        }
        incoming.body.extend_from_slice(&piece);
        // The app's request may be over already (it failed, or answered early).
        let _ = incoming.pieces.send(Ok(piece));
        if incoming.body.len() == incoming.len {
            if let Some(incoming) = self.open.remove(&id) {
                let _ = incoming.whole.send(incoming.body.freeze());
            }
        }
        Ok(())
    }

    /// The relay will not send the rest of `id`'s body.
    fn abort(&mut self, id: RequestId, reason: String) {
        if let Some(incoming) = self.open.remove(&id) {
            debug!(%id, %reason, "the relay abandoned a request while its body was arriving");
            let _ = incoming.pieces.send(Err(Cut(reason)));
        }
    }
}

/// One request from the relay, ready to forward.
struct Job {
    delivery: Delivery,
    /// The relay sent it before, to an earlier session (see `RelayMessage::Request`).
    redelivered: bool,
    received_at_ms: u64,
    method: String,
    target: String,
    headers: Vec<protocol::Header>,
    /// The body; empty until it is all in when it arrives in pieces (`streamed`).
    body: Bytes,
    streamed: Option<Streamed>,
}

/// Forwards one request, answers the relay, records the capture, acknowledges the request, then
/// tells the printer.
async fn handle(mut job: Job, context: Arc<Context>) {
    if skip_redelivery(&job, &context).await {
        return;
    }
    let started = Instant::now();
    let (body, whole) = match job.streamed.take() {
        Some(streamed) => (forward::streamed(streamed.pieces), Some(streamed.whole)),
        None => (forward::whole(job.body.clone()), None),
    };
    let forwarding = context
        .forwarder
        .forward(&job.method, &job.target, &job.headers, body);
    // The app's time: until it answered, even when that was before the last piece came.
    let (result, duration) = match whole {
        None => (forwarding.await, started.elapsed()),
        // Watched beside the app's answer, which may come before the last piece or, when the
        // app is not reading, not at all until the body is in.
        Some(mut whole) => {
            tokio::pin!(forwarding);
            let mut answered = None;
            let body = loop {
                tokio::select! {
                    body = &mut whole => break body,
                    result = &mut forwarding, if answered.is_none() => {
                        answered = Some((result, started.elapsed()));
                    }
                }
            };
            match body {
                Ok(body) => job.body = body,
                // The relay abandoned it (the sender went away: nothing was stored) or the
                // session ended (the relay delivers it again, whole, on the next one): nothing
                // to answer, record or acknowledge. Forgotten at once, before a redelivery can
                // come, and the app's request is dropped with `forwarding`.
                Err(_) => {
                    context
                        .handled
                        .lock()
                        .expect("handled lock is never poisoned")
                        .forget(job.delivery);
                    return;
                }
            }
            match answered {
                Some(answered) => answered,
                None => (forwarding.await, started.elapsed()),
            }
        }
    };
    let id = job.delivery.id;
    let result = result.and_then(|response| context.within_relay_limit(response));
    let (answer, status, error, hint) = match &result {
        Ok(response) => {
            let message = ClientMessage::Response(protocol::Response {
                id,
                status: response.status,
                headers: response.headers.clone(),
            });
            context.send(job.delivery, &message, &response.body).await;
            let answer = inspect::Answer {
                status: response.status,
                headers: response.headers.clone(),
                body: response.body.clone(),
            };
            (Some(answer), response.status, None, None)
        }
        Err(e) => {
            let hint = e.hint(context.forwarder.target());
            let reason = match &hint {
                Some(hint) => format!("{e} ({hint})"),
                None => e.to_string(),
            };
            context
                .send(
                    job.delivery,
                    &ClientMessage::Failed(protocol::Failed { id, reason }),
                    &[],
                )
                .await;
            (None, 502, Some(e.to_string()), hint)
        }
    };
    // The answer is on its way to the relay; what follows never delays a webhook.
    let event = inspect::recognize(&job.headers, &job.body);
    let (public_url, sender_timeout) = context.public_url(&job.target);
    let signature = check_signature(&context.signatures, &job, &public_url);
    context
        .handled
        .lock()
        .expect("handled lock is never poisoned")
        .finish(job.delivery);
    let mut exchange = Box::new(Exchange {
        id: id.0,
        relay_id: id.0,
        relay_epoch: job.delivery.epoch,
        redelivered: job.redelivered,
        received_at_ms: job.received_at_ms,
        method: job.method,
        path: job.target,
        request_headers: job.headers,
        request_body: job.body,
        answer,
        status,
        error,
        hint,
        duration,
        event,
        signature,
        sender_timed_out: sender_timeout.filter(|limit| duration > *limit),
    });
    if let Some(recorder) = &context.recorder {
        let record = recorder.capture(&mut exchange);
        // Queued and remembered under one lock, so `waiting` is in queueing order, which is
        // the order commits are reported in.
        let mut waiting = context.waiting();
        if waiting.closed {
            // `settle` is gone (hooks is stopping): recorded, but acknowledged and printed here.
            let copy = record.clone();
            let _ = recorder.record(record);
            capture::restore(&mut exchange, copy);
        } else {
            match recorder.record(record) {
                Ok(()) => {
                    if waiting.unacked == 0 {
                        // The oldest unacknowledged entry now: `settle` times it.
                        context.waiting_added.notify_one();
                    }
                    waiting.unacked += 1;
                    waiting.queue.push_back(Waiting {
                        delivery: job.delivery,
                        queued_at: Instant::now(),
                        acked: false,
                        exchange,
                    });
                    // `settle` acknowledges and prints it once committed.
                    return;
                }
                Err(record) => capture::restore(&mut exchange, record),
            }
        }
    }
    context
        .send(job.delivery, &ClientMessage::Ack(protocol::Ack { id }), &[])
        .await;
    let _ = context.events.send(Event::Request(exchange)).await;
}

/// Acknowledges and prints exchanges as their captures are committed, in the order they were
/// queued; acknowledges those whose commit takes longer than [`ACK_WAIT`] without waiting for
/// it (a stalled disk must not hold the relay's window). Ends when `stop` is cancelled and
/// nothing waits, or when the store closes; then it acknowledges and prints what is left, and
/// handlers do their own from then on.
async fn settle(
    context: Arc<Context>,
    mut commits: store::Commits,
    stop: CancellationToken,
    lines: mpsc::UnboundedSender<Box<Exchange>>,
) {
    loop {
        let (overdue_at, empty) = {
            let waiting = context.waiting();
            let oldest = waiting.queue.iter().find(|w| !w.acked);
            (
                oldest.map(|w| w.queued_at + ACK_WAIT),
                waiting.queue.is_empty(),
            )
        };
        let outcomes = tokio::select! {
            biased;
            outcomes = commits.recv() => match outcomes {
                Some(outcomes) => outcomes,
                None => break,
            },
            _ = tokio::time::sleep_until(overdue_at.unwrap_or_else(Instant::now).into()),
                if overdue_at.is_some() => {
                ack_overdue(&context).await;
                continue;
            }
            _ = context.waiting_added.notified(), if overdue_at.is_none() => continue,
            _ = stop.cancelled(), if empty => break,
        };
        let settled: Vec<Waiting> = {
            let mut waiting = context.waiting();
            let n = outcomes.len().min(waiting.queue.len());
            let settled: Vec<Waiting> = waiting.queue.drain(..n).collect();
            waiting.unacked -= settled.iter().filter(|w| !w.acked).count();
            waiting.settling += settled.len();
            settled
        };
        let count = settled.len();
        let recorder = context.recorder.as_ref();
        let mut acks = Vec::with_capacity(count);
        let mut printed = Vec::with_capacity(count);
        for (waiting, (outcome, record)) in settled.into_iter().zip(outcomes) {
            let mut exchange = waiting.exchange;
            capture::restore(&mut exchange, record);
            if let Some(id) = recorder.and_then(|r| r.committed(outcome)) {
                exchange.id = id.unsigned_abs();
            }
            if !waiting.acked {
                acks.push(waiting.delivery);
            }
            printed.push(exchange);
        }
        context.ack_all(&acks).await;
        for exchange in printed {
            let _ = lines.send(exchange);
        }
        context.waiting().settling -= count;
        context.settled.notify_waiters();
    }
    // The store is gone, or hooks is stopping: what is left goes out without a capture id.
    let left: Vec<Waiting> = {
        let mut waiting = context.waiting();
        waiting.closed = true;
        waiting.unacked = 0;
        waiting.queue.drain(..).collect()
    };
    let acks: Vec<Delivery> = left
        .iter()
        .filter(|w| !w.acked)
        .map(|w| w.delivery)
        .collect();
    context.ack_all(&acks).await;
    for waiting in left {
        let _ = lines.send(waiting.exchange);
    }
    context.settled.notify_waiters();
}

/// Acknowledges the waiting exchanges queued [`ACK_WAIT`] ago or earlier.
async fn ack_overdue(context: &Context) {
    let now = Instant::now();
    let overdue: Vec<Delivery> = {
        let mut waiting = context.waiting();
        let overdue: Vec<Delivery> = waiting
            .queue
            .iter_mut()
            .filter(|w| !w.acked && w.queued_at + ACK_WAIT <= now)
            .map(|w| {
                w.acked = true;
                w.delivery
            })
            .collect();
        waiting.unacked -= overdue.len();
        overdue
    };
    debug!(
        count = overdue.len(),
        "acknowledging before the capture is committed"
    );
    context.ack_all(&overdue).await;
}

/// Acknowledges, without forwarding it again, a request that an earlier run captured (so
/// forwarded) and died before acknowledging; says whether it did. One it has no capture of is
/// forwarded, and flagged if the relay says it sent it before (`Job::redelivered`).
async fn skip_redelivery(job: &Job, context: &Context) -> bool {
    let Some(recorder) = &context.recorder else {
        return false;
    };
    if !recorder.seen_before(job.delivery) {
        return false;
    }
    context
        .handled
        .lock()
        .expect("handled lock is never poisoned")
        .finish(job.delivery);
    let ack = ClientMessage::Ack(protocol::Ack {
        id: job.delivery.id,
    });
    context.send(job.delivery, &ack, &[]).await;
    true
}

/// The signature verdict for one webhook, as shown.
fn check_signature(signatures: &Signatures, job: &Job, url: &str) -> Option<inspect::Signature> {
    let headers: Vec<(&str, &[u8])> = job
        .headers
        .iter()
        .map(|h| (h.name.as_str(), &h.value[..]))
        .collect();
    let input = verify::VerifyInput {
        method: &job.method,
        url,
        headers: &headers,
        body: &job.body,
    };
    let checked = verify::check(
        &input,
        &signatures.secrets,
        signatures.provider,
        signatures.tolerance,
        std::time::SystemTime::now(),
    );
    let unchecked = |provider: verify::Provider, reason: String| inspect::Signature {
        provider: Some(provider.name().to_owned()),
        assumed: signatures.provider.is_none(),
        verdict: "unchecked".to_owned(),
        reason: Some(reason),
    };
    match checked {
        Ok(report) => {
            let expected = !signatures.secrets.is_empty() || signatures.provider.is_some();
            let verdict = report.verdict().as_str().to_owned();
            let reason = match report.provider {
                // An unsigned webhook is news only when a signature was expected.
                None if !expected => None,
                _ => report.reason.or(report.note.map(str::to_owned)),
            };
            Some(inspect::Signature {
                provider: report.provider.map(|p| p.name().to_owned()),
                assumed: report.assumed,
                verdict,
                reason,
            })
        }
        Err(verify::VerifyError::NoSecret { provider }) => Some(unchecked(
            provider,
            "signed, not checked: pass --secret (or set HOOKS_SECRET) to check it".to_owned(),
        )),
        Err(e @ verify::VerifyError::UnusableSecret { provider, .. }) => {
            Some(unchecked(provider, e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_urls_map_to_websocket_urls() {
        assert_eq!(
            connect_url("http://127.0.0.1:9").unwrap(),
            "ws://127.0.0.1:9/_hooks/v1/connect"
        );
        assert_eq!(
            connect_url("https://relay.example.com").unwrap(),
            "wss://relay.example.com/_hooks/v1/connect"
        );
        assert!(connect_url("relay.example.com").is_err());
        assert!(connect_url("ftp://relay.example.com").is_err());
    }

    /// Opens a stream of `len` bytes for `id` in `streams`.
    fn open(streams: &mut Streams, id: u64, len: u64) -> Streamed {
        let (incoming, streamed) = streams.open(RequestId(id), len).unwrap();
        streams.insert(RequestId(id), incoming);
        streamed
    }

    #[tokio::test]
    async fn pieces_reach_the_app_at_once_and_the_whole_body_at_the_end() {
        let mut streams = Streams::default();
        let Streamed { pieces, whole } = open(&mut streams, 1, 6);
        let mut app = std::pin::pin!(http_body_util::StreamBody::new(pieces));
        streams
            .piece(RequestId(1), Bytes::from_static(b"abc"))
            .unwrap();
        use http_body_util::BodyExt as _;
        let first = app.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, "abc", "before the rest has come");
        streams
            .piece(RequestId(1), Bytes::from_static(b"def"))
            .unwrap();
        assert_eq!(whole.await.unwrap(), "abcdef");
        let second = app.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(second, "def");
        assert!(app.frame().await.is_none(), "the body ends with its length");
        assert!(streams.open.is_empty());
    }

    #[tokio::test]
    async fn an_abort_or_a_lost_session_fails_the_apps_body_and_withholds_the_whole() {
        use http_body_util::BodyExt as _;
        let mut streams = Streams::default();
        let aborted = open(&mut streams, 1, 10);
        let lost = open(&mut streams, 2, 10);
        streams
            .piece(RequestId(1), Bytes::from_static(b"abc"))
            .unwrap();
        streams.abort(RequestId(1), "the sender went away".into());
        let mut app = std::pin::pin!(http_body_util::StreamBody::new(aborted.pieces));
        assert!(app.frame().await.unwrap().is_ok(), "the piece that came");
        let cut = app.frame().await.unwrap().unwrap_err();
        assert_eq!(cut.to_string(), "the sender went away");
        assert!(aborted.whole.await.is_err());
        drop(streams);
        let mut app = std::pin::pin!(http_body_util::StreamBody::new(lost.pieces));
        assert!(app.frame().await.unwrap().is_err(), "short of its length");
        assert!(lost.whole.await.is_err());
    }

    #[test]
    fn a_relay_that_breaks_the_streaming_limits_ends_the_session() {
        let mut streams = Streams::default();
        let _kept = open(&mut streams, 1, 4);
        let error = streams
            .piece(RequestId(1), Bytes::from_static(b"12345"))
            .unwrap_err();
        assert!(error.contains("more than the 4 bytes"), "{error}");
        let too_long = protocol::DEFAULT_MAX_BODY as u64 + 1;
        assert!(streams.open(RequestId(2), too_long).is_err());
        let mut kept = Vec::new();
        for id in 2..=protocol::MAX_STREAMS as u64 {
            kept.push(open(&mut streams, id, 4));
        }
        let error = streams.open(RequestId(99), 4).err().unwrap();
        assert!(error.contains("at once"), "{error}");
        // A piece for a request not streaming (a redelivery already handled) is dropped.
        assert!(streams.piece(RequestId(500), Bytes::new()).is_ok());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(0) <= BACKOFF_START);
        assert!(backoff(0) >= BACKOFF_START / 2);
        assert!(backoff(3) >= BACKOFF_START * 4);
        assert!(backoff(100) <= BACKOFF_CAP);
        assert!(backoff(100) >= BACKOFF_CAP / 2);
    }
}
