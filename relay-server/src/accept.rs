//! The accept loop: takes TCP connections, serves HTTP/1.1 on each in its own task, and shuts
//! down gracefully.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use anyhow::Context as _;

use crate::backend::{Backend as _, Backends, Local, Nats};
use crate::budget::Budget;
use crate::channel::{Channels, Settings};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::protocol::Respond;
use crate::relay::Relay;
use crate::route;
use crate::tls::Tls;
use crate::tokens::Tokens;

/// How often requests past the retention are deleted.
const EXPIRE_EVERY: Duration = Duration::from_secs(60);

/// How long shutdown waits for in-flight requests and sessions to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves the relay on `listener` until `shutdown` completes, then finishes in-flight requests
/// (for at most a few seconds) and returns.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    run_with_reload(listener, config, shutdown, Arc::new(Notify::new()), || {}).await
}

/// Like [`run`]; each notification of `reload` (SIGHUP in `main`) rereads the TLS certificate
/// and the tokens file. `ready` is called once the relay is set up (its queue open), just
/// before it starts accepting.
pub async fn run_with_reload(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
    reload: Arc<Notify>,
    ready: impl FnOnce(),
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let tls = config.tls.clone().map(Tls::load).transpose()?;
    let tokens = Tokens::load(config.tokens_file.clone())?;
    // On loopback (the relay hooks listen embeds) nobody else can reach it anyway.
    if !tokens.required() && !addr.ip().is_loopback() {
        warn!("no --tokens-file: this relay is open, any CLI may attach to any free channel");
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    let base_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{addr}"));
    let subdomain_host = config
        .subdomains
        .then(|| base_url.split_once("://").map(|(_, host)| host.to_owned()))
        .flatten();
    let defaults = Settings {
        respond: Respond::App,
        timeout: config.response_timeout,
        offline: config.offline,
    };
    let budget = crate::budget::Budget::new(config.max_memory);
    let backend = open_backend(&config, defaults, &budget).await?;
    let relay = Arc::new(Relay {
        backend,
        defaults,
        budget,
        base_url,
        subdomain_host,
        tokens,
        tls,
        metrics: Metrics::default(),
        sessions: Arc::new(Semaphore::new(config.max_sessions)),
        refusals: Default::default(),
        opening: Semaphore::new(crate::session::MAX_OPENING),
        config,
    });
    info!(
        %addr,
        url = %relay.base_url,
        epoch = relay.backend.epoch(),
        "relay listening"
    );
    if let (true, Some(local)) = (relay.tokens.required(), relay.backend.local()) {
        warn_ownerless(&local.channels);
    }
    ready();
    let cancel = CancellationToken::new();
    let tasks = TaskTracker::new();
    tasks.spawn(expire_loop(Arc::clone(&relay), cancel.clone()));
    tasks.spawn(reload_loop(Arc::clone(&relay), reload, cancel.clone()));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let relay = Arc::clone(&relay);
                    tasks.spawn(accept(relay, stream, peer.ip(), tasks.clone(), cancel.clone()));
                }
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning, and keep serving.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    info!("relay shutting down");
    cancel.cancel();
    tasks.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait())
        .await
        .is_err()
    {
        warn!("some connections did not finish within {SHUTDOWN_GRACE:?}");
    }
    relay.backend.close().await;
    Ok(())
}

/// Says which channels belong to no token (claimed while the relay was open), so that the
/// operator can give them to one.
fn warn_ownerless(channels: &Channels) {
    let (names, queued) = channels.ownerless();
    if names.is_empty() {
        return;
    }
    let shown: Vec<&str> = names.iter().take(20).map(String::as_str).collect();
    warn!(
        count = names.len(),
        queued,
        channels = %shown.join(", "),
        "channels claimed before this relay required tokens belong to no token until the tokens file gives them to one (TOKEN channels=NAME,NAME); their webhooks keep queuing"
    );
}

/// Opens the relay's backend: a node of the cluster with `--nats`, else the queue in
/// `--data-dir` (in memory without one).
async fn open_backend(
    config: &Config,
    defaults: Settings,
    budget: &Arc<Budget>,
) -> anyhow::Result<Backends> {
    if let Some(nats) = &config.nats {
        let limits = crate::backend::nats::Limits::of(config);
        let node = Nats::connect(nats, limits, Arc::clone(budget)).await?;
        return Ok(Backends::Nats(node));
    }
    let dir = config.data_dir.as_deref();
    let (local, snapshot) = Local::open(dir, defaults, Arc::clone(budget), config.max_queued)
        .with_context(|| match dir {
            Some(dir) => format!("could not open the relay queue in {}", dir.display()),
            None => "could not open the in-memory relay queue".to_owned(),
        })?;
    info!(
        queued = snapshot.pending.len(),
        channels = snapshot.channels.len(),
        durable = dir.is_some(),
        "relay queue open"
    );
    Ok(Backends::Local(local))
}

/// Deletes requests older than the retention, and forgets channels no session attached to for
/// as long: once a minute, or four times per retention when that is shorter.
async fn expire_loop(relay: Arc<Relay>, cancel: CancellationToken) {
    let every = (relay.config.retention / 4).clamp(Duration::from_millis(100), EXPIRE_EVERY);
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => return,
        }
        let upkept = relay.backend.upkeep(relay.config.retention).await;
        if upkept.expired > 0 {
            info!(
                count = upkept.expired,
                "expired undelivered requests past the retention"
            );
        }
        for (channel, queued) in upkept.forgotten {
            let what =
                "forgot a channel no hooks session attached to within the retention (--retention)";
            match queued {
                0 => info!(%channel, "{what}"),
                _ => warn!(%channel, queued, "{what}, with the requests it queued"),
            }
        }
    }
}

/// Rereads the TLS certificate and the tokens file on each notification.
async fn reload_loop(relay: Arc<Relay>, reload: Arc<Notify>, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = reload.notified() => {}
            _ = cancel.cancelled() => return,
        }
        if let Some(tls) = &relay.tls {
            match tls.reload() {
                Ok(()) => info!("TLS certificate reloaded"),
                Err(e) => {
                    warn!(error = %format!("{e:#}"), "TLS certificate not reloaded; keeping the old one")
                }
            }
        }
        if let Err(e) = relay.tokens.reload() {
            warn!(error = %format!("{e:#}"), "tokens not reloaded; keeping the old ones");
        }
    }
}

/// Takes one connection from `peer`: TLS handshake when configured, then HTTP.
async fn accept(
    relay: Arc<Relay>,
    stream: TcpStream,
    peer: IpAddr,
    tasks: TaskTracker,
    cancel: CancellationToken,
) {
    // Webhook answers are small writes that must not wait for Nagle's algorithm.
    let _ = stream.set_nodelay(true);
    let Some(tls) = &relay.tls else {
        return serve(relay, stream, peer, tasks, cancel).await;
    };
    let handshake = tokio::time::timeout(relay.config.read_timeout, tls.acceptor().accept(stream));
    match handshake.await {
        Ok(Ok(stream)) => serve(relay, stream, peer, tasks, cancel).await,
        Ok(Err(e)) => debug!(error = %e, "TLS handshake failed"),
        Err(_) => debug!("TLS handshake timed out"),
    }
}

/// Serves HTTP on one connection, then lingers on it (see [`linger`]) unless it was upgraded.
async fn serve<S>(
    relay: Arc<Relay>,
    stream: S,
    peer: IpAddr,
    tasks: TaskTracker,
    cancel: CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let read_timeout = relay.config.read_timeout;
    let max_buf = relay.config.max_header_bytes;
    let service = {
        let cancel = cancel.clone();
        service_fn(move |req| {
            route::handle(Arc::clone(&relay), req, peer, tasks.clone(), cancel.clone())
        })
    };
    let mut conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(read_timeout)
        .max_buf_size(max_buf)
        // max_buf_size alone is checked only while a head is incomplete; this checks the
        // parsed head's exact size.
        .max_header_size(max_buf)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let result = tokio::select! {
        result = &mut conn => result,
        _ = cancel.cancelled() => {
            std::pin::Pin::new(&mut conn).graceful_shutdown();
            (&mut conn).await
        }
    };
    if let Err(e) = result {
        debug!(error = %e, "connection ended with an error");
    }
    if let Some(parts) = conn.into_parts() {
        linger(parts.io.into_inner(), &cancel).await;
    }
}

/// Most bytes read and thrown away on a connection after the relay's last answer.
const LINGER_BYTES: usize = 1024 * 1024;

/// Longest the relay keeps reading a connection after its last answer.
const LINGER_TIME: Duration = Duration::from_secs(5);

/// Closes a connection gracefully, as nginx's lingering close does: half-closes it, then reads
/// and throws away what the client still sends, until it closes too or [`LINGER_BYTES`] or
/// [`LINGER_TIME`] run out.
///
/// The relay answers some requests before their body is in (`404`, `413`, `503`, …). Closed at
/// once, the socket would still hold unread body bytes, and the kernel would answer them with a
/// reset, which destroys the answer at a client still uploading (Python's `http.client`, which
/// sends the whole body before it reads anything, saw a reset 19 times in 20). A client that
/// waits with `Expect: 100-continue` (curl) sends no body and is not held up.
pub(crate) async fn linger<S>(mut io: S, cancel: &CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Flushes the answer (a TLS stream's included) and sends FIN, so the client sees the
    // answer end however long the rest takes.
    if io.shutdown().await.is_err() {
        return;
    }
    let deadline = tokio::time::Instant::now() + LINGER_TIME;
    let mut buffer = vec![0u8; 16 * 1024];
    let mut left = LINGER_BYTES;
    while left > 0 {
        tokio::select! {
            read = io.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            },
            _ = tokio::time::sleep_until(deadline) => return,
            _ = cancel.cancelled() => return,
        }
    }
}
