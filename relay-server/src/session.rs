//! CLI sessions: the hello, attaching to a channel through the backend (`crate::backend`), and
//! pumping frames: the backend's requests out, the CLI's replies and acknowledgements back in.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use crate::backend::{AnySubscription, Backend as _, Claim, Subscription as _};
use crate::channel::{Attached, Reply, Settings, Taken};
use crate::protocol::session::{
    self as wire, CloseCode, CloseFrame, HelloError, Outgoing, RecvError, RelaySession,
};
use crate::protocol::{
    self, Ack, ClientHello, ClientMessage, Failed, RelayHello, RelayMessage, Respond, Response,
};
use crate::quote::{excerpt, quote};
use crate::relay::Relay;
use crate::tokens::Licence;

/// Bytes of frames a session's outbox holds, with those its writer is sending (or one frame,
/// when a frame is larger: see `channel/outbox.rs`). Frames beyond wait for room, so a
/// slow or stalled CLI slows its own delivery rather than growing the relay's memory. 2 MiB is
/// 32 pieces of a streamed body, and more than a socket's send buffer takes at once.
pub const OUTBOX_BYTES: usize = 2 * 1024 * 1024;

/// How often the relay pings a session. The CLI pings too; a session silent for
/// [`protocol::SILENCE_LIMIT`] is dead.
const PING_INTERVAL: Duration = protocol::PING_INTERVAL;

/// Most sessions reading their hello at once. They have shown no token yet, so they do not
/// count under `--max-sessions` (strangers could otherwise fill it); each waits at most
/// [`protocol::HELLO_TIMEOUT`], and past this many the next one is refused at once.
pub(crate) const MAX_OPENING: usize = 1024;

/// A fresh unguessable channel name of 128 random bits: 22 characters of `[A-Za-z0-9_-]`, or,
/// for subdomain URLs (DNS is case-insensitive), 26 lowercase letters and digits.
pub(crate) fn random_channel(dns_safe: bool) -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
    if dns_safe {
        return base32_lower(&bytes);
    }
    let name = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    // Names starting with '_' are the relay's own; swap the first character rather than retry.
    match name.strip_prefix('_') {
        Some(rest) => format!("h{rest}"),
        None => name,
    }
}

/// RFC 4648 base32 in lowercase, without padding.
fn base32_lower(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Read buffer of one relay session. What the relay reads from a CLI is mostly small (answers,
/// acknowledgements); 128 KiB per idle session would be 1.3 GB at 10,000 sessions. The price:
/// tungstenite reads at most this much per system call, so a large response body from the app
/// takes one read per 2 KiB (about 5,000 for 10 MiB, a few milliseconds).
pub const RELAY_READ_BUFFER: usize = 2 * 1024;

/// WebSocket settings until a session's hello is accepted: no message larger than a hello can
/// be (its meta, [`protocol::MAX_META_LEN`], and no body), so that strangers waiting for their
/// token's check cannot make the relay read `--max-body` each.
pub(crate) fn hello_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    protocol::session::ws_config(0, RELAY_READ_BUFFER)
}

/// The session's WebSocket again, with the limits of an accepted session (bodies up to
/// `max_body`). The CLI says nothing after its hello until the relay's hello answers it, so
/// nothing read ahead is lost with the first WebSocket's buffer.
async fn widen(session: Session, max_body: usize) -> Session {
    let io = session.into_inner().into_inner();
    let config = protocol::session::ws_config(max_body, RELAY_READ_BUFFER);
    let ws = WebSocketStream::from_raw_socket(
        io,
        tokio_tungstenite::tungstenite::protocol::Role::Server,
        Some(config),
    )
    .await;
    Session::new(ws)
}

/// A session's WebSocket, as hyper's upgrade hands it over.
type Ws = WebSocketStream<TokioIo<Upgraded>>;

/// The relay's end of a session.
type Session = RelaySession<Ws>;

/// Runs one CLI session of `peer` from its hello to its end.
///
/// The WebSocket comes boxed, and goes on boxed to [`open`]: an `async fn` keeps each of its
/// arguments in its future for as long as the future lives, even once it has moved them on, so
/// a stream passed by value through `run`, `serve` and `pump` took its 328 bytes three times
/// more in every idle session.
pub(crate) async fn run(relay: Arc<Relay>, ws: Box<Ws>, peer: IpAddr, shutdown: CancellationToken) {
    static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);
    let span = tracing::info_span!("session", id = NEXT_SESSION.fetch_add(1, Ordering::Relaxed));
    serve(relay, ws, peer, shutdown).instrument(span).await
}

/// What a CLI asked for in its hello.
struct Hello {
    channel: Option<String>,
    settings: Settings,
    token: Option<protocol::Token>,
    stream_bodies: bool,
}

/// A session past its hello, attached to its channel.
struct Opened<'r> {
    session: Session,
    name: String,
    subscription: AnySubscription,
    /// Its token's standing, on a relay with tokens.
    licence: Option<Licence<'r>>,
    /// Its place under `--max-sessions`.
    _slot: tokio::sync::OwnedSemaphorePermit,
}

async fn serve(relay: Arc<Relay>, ws: Box<Ws>, peer: IpAddr, shutdown: CancellationToken) {
    // Opening is boxed, and over before pumping starts: a session's future keeps the size of
    // its largest phase for as long as it lives, and only pumping lasts.
    let Some(opened) = Box::pin(open(&relay, ws, peer, &shutdown)).await else {
        return;
    };
    let Opened {
        session,
        name,
        subscription,
        licence,
        _slot,
    } = opened;
    info!(channel = %name, queued = subscription.queued(), "session attached");
    // Split here, not in `pump`: its arguments stay in its future (see `run`).
    let (writer, reader) = session.split();
    pump(
        &subscription,
        &name,
        licence.as_ref(),
        writer,
        reader,
        shutdown,
    )
    .await;
    subscription.detach().await;
    info!(channel = %name, "session ended");
}

/// Reads the hello, checks the token, takes a session slot, attaches the channel and answers
/// the hello; `None` when the session was refused or lost on the way. The slot is taken only
/// once the token is accepted, so strangers cannot fill `--max-sessions`.
async fn open<'a>(
    relay: &'a Relay,
    ws: Box<Ws>,
    peer: IpAddr,
    shutdown: &CancellationToken,
) -> Option<Opened<'a>> {
    let mut session = Session::new(*ws);
    let Ok(opening) = relay.opening.try_acquire() else {
        let message = "too many hooks sessions are starting at once; try again shortly";
        refuse(relay, session, peer, message.to_owned(), shutdown).await;
        return None;
    };
    let subdomains = relay.subdomain_host.is_some();
    let hello = match read_hello(&mut session, relay.defaults, subdomains).await {
        Ok(hello) => hello,
        Err(message) => {
            drop(opening);
            refuse(relay, session, peer, message, shutdown).await;
            return None;
        }
    };
    let name = hello
        .channel
        .unwrap_or_else(|| random_channel(relay.subdomain_host.is_some()));
    let token = hello.token.as_ref().map(|t| t.0.as_str());
    let licence = match relay.tokens.check(token, &name) {
        Ok(licence) => licence,
        Err(message) => {
            refuse(relay, session, peer, message, shutdown).await;
            return None;
        }
    };
    drop(opening);
    let mut session = widen(session, relay.config.max_body).await;
    let Ok(slot) = Arc::clone(&relay.sessions).try_acquire_owned() else {
        let message = format!(
            "this relay is at its limit of {} sessions (--max-sessions); try again later",
            relay.config.max_sessions
        );
        refuse(relay, session, peer, message, shutdown).await;
        return None;
    };
    let claim = Claim {
        name: &name,
        settings: hello.settings,
        licence: licence.as_ref(),
        stream_bodies: hello.stream_bodies,
        max_in_flight: relay.config.max_in_flight,
        outbox_bytes: OUTBOX_BYTES,
    };
    let subscription = match relay.backend.attach(claim).await {
        Ok(subscription) => subscription,
        Err(message) => {
            drop(slot);
            refuse(relay, session, peer, message, shutdown).await;
            return None;
        }
    };
    let reply = RelayMessage::Hello(RelayHello {
        version: protocol::PROTOCOL_VERSION,
        channel: name.clone(),
        url: relay.channel_url(&name),
        respond: hello.settings.respond,
        timeout_ms: u64::try_from(hello.settings.timeout.as_millis()).unwrap_or(u64::MAX),
        epoch: relay.backend.epoch(),
        max_body: Some(relay.config.max_body as u64),
    });
    if session.send(&reply, &[]).await.is_err() {
        subscription.detach().await;
        info!(channel = %name, "session ended before its hello was answered");
        return None;
    }
    Some(Opened {
        session,
        name,
        subscription,
        licence,
        _slot: slot,
    })
}

/// Reads the CLI's hello; `Err` carries the sentence refusing it. With `subdomains`, a channel
/// name is a DNS label, where case does not count.
async fn read_hello(
    session: &mut Session,
    defaults: Settings,
    subdomains: bool,
) -> Result<Hello, String> {
    let ClientHello {
        channel,
        respond,
        timeout_ms,
        offline,
        token,
        stream_bodies,
        ..
    } = session.recv_hello().await.map_err(|e| match e {
        // A decoder's message may quote the peer's text at any length.
        HelloError::Malformed(e) => format!("could not read hello: {}", excerpt(&e.to_string())),
        HelloError::Lost(tokio_tungstenite::tungstenite::Error::Capacity(_)) => format!(
            "a hello may be at most {} bytes; this one is larger",
            protocol::MAX_META_LEN
        ),
        // Whatever came first was no hello, if anything came.
        HelloError::Lost(_) | HelloError::Closed => HelloError::OutOfOrder.to_string(),
        e => e.to_string(),
    })?;
    if let Some(name) = &channel {
        check_channel(name, subdomains)?;
    }
    if let Respond::Status(status) = respond {
        if !(200..=599).contains(&status) {
            return Err(format!(
                "--respond status {status} is not between 200 and 599"
            ));
        }
    }
    let settings = Settings {
        respond,
        timeout: timeout_ms.map_or(defaults.timeout, Duration::from_millis),
        offline: offline.unwrap_or(defaults.offline),
    };
    Ok(Hello {
        channel,
        settings,
        token,
        stream_bodies,
    })
}

/// Checks a channel name a hello asks for; `Err` is the refusal, quoting the name only once its
/// length is known to be sane.
fn check_channel(name: &str, subdomains: bool) -> Result<(), String> {
    if !protocol::CHANNEL_LEN.contains(&name.len()) {
        return Err(protocol::validate_channel(name).expect_err("the length is out of range"));
    }
    protocol::validate_channel(name).map_err(|e| format!("{e}: {}", quote(name)))?;
    // DNS lowercases hosts: `MyApp.<host>` would reach `myapp`, another session's maybe.
    if subdomains && name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "this relay serves channels as subdomains, where case does not count: \
             ask for {} rather than {}",
            quote(&name.to_ascii_lowercase()),
            quote(name)
        ));
    }
    Ok(())
}

/// Refuses the session of `peer` with `message` and closes it. The message is the relay's own
/// sentence, any peer input in it quoted short (see [`crate::quote`]). The connection lingers
/// (see [`crate::accept::linger`]): a peer still sending a hello larger than allowed would
/// otherwise get a reset instead of the sentence.
async fn refuse(
    relay: &Relay,
    session: Session,
    peer: IpAddr,
    message: String,
    shutdown: &CancellationToken,
) {
    relay.refusals.refused(peer, &message);
    relay
        .metrics
        .sessions_refused
        .fetch_add(1, Ordering::Relaxed);
    let ws = session.refuse(message).await;
    crate::accept::linger(ws.into_inner(), shutdown).await;
}

/// Moves frames both ways until the CLI leaves, goes silent, the relay shuts down, a reload
/// of the tokens file ends the session (`licence`), or the backend ends its delivery.
async fn pump(
    subscription: &AnySubscription,
    name: &str,
    licence: Option<&Licence<'_>>,
    writer: wire::Writer<Ws, wire::Relay>,
    reader: wire::Reader<Ws, wire::Relay>,
    shutdown: CancellationToken,
) {
    tokio::select! {
        _ = write(writer, name, subscription.attached(), licence, shutdown) => {}
        _ = read(reader, subscription) => {}
        _ = subscription.deliver() => {}
    }
}

/// The session's writer: the outbox's frames, in batches, and pings, until the writing fails,
/// the relay shuts down or the session's token is revoked.
async fn write(
    mut writer: wire::Writer<Ws, wire::Relay>,
    name: &str,
    attached: &Attached,
    licence: Option<&Licence<'_>>,
    shutdown: CancellationToken,
) {
    let mut ping = tokio::time::interval(PING_INTERVAL);
    let revoked = async {
        match licence {
            Some(licence) => licence.revoked().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(revoked);
    loop {
        // What the writer took from the outbox counts there until it is written.
        let mut taken = Taken::default();
        let first = tokio::select! {
            frame = attached.outbox.recv(&mut taken) => Outgoing::Frame(frame),
            _ = ping.tick() => Outgoing::Ping,
            reason = &mut revoked => {
                info!(channel = %name, %reason, "session ended by a reload of the tokens file");
                Box::pin(end_revoked(&mut writer, reason)).await;
                return;
            }
            _ = shutdown.cancelled() => {
                let close = CloseFrame {
                    code: CloseCode::Away,
                    reason: "relay is shutting down".into(),
                };
                let _ = Box::pin(writer.close(Some(close))).await;
                return;
            }
        };
        if matches!(first, Outgoing::Frame(_)) {
            // Let the tasks already woken (other webhooks on their way) queue their frames
            // first: the batch then takes them all, in one write. Without this, the writer,
            // woken by the first frame, ran right after the webhook that queued it (tokio runs
            // a task just woken next) and wrote one frame per system call (issue 24).
            tokio::task::yield_now().await;
        }
        let waiting = || attached.outbox.try_recv(&mut taken);
        // Boxed, as are the endings above: a write's state (536 bytes) would otherwise be part
        // of every idle session's future, which waits in the `select!` above almost all its
        // life; one allocation per batch written instead.
        let written = Box::pin(writer.write_batch(first, waiting)).await;
        attached.outbox.written(taken);
        if let Err(e) = written {
            debug!(error = %e, "session write failed");
            return;
        }
    }
}

/// The session's reader: the CLI's answers and acknowledgements, until it leaves, goes silent
/// or sends what is not a message of the protocol.
async fn read(mut reader: wire::Reader<Ws, wire::Relay>, subscription: &AnySubscription) {
    loop {
        let received = reader
            .recv()
            .await
            .and_then(|(message, body)| receive(subscription, message, body));
        match received {
            Ok(()) => {}
            Err(RecvError::Lost(e)) => {
                debug!(error = %e, "session read failed");
                return;
            }
            Err(RecvError::Silent(limit)) => {
                warn!("session silent for {limit:?}; dropping it");
                return;
            }
            Err(RecvError::Malformed(e)) => {
                let error = excerpt(&e.to_string());
                warn!(%error, "bad frame from CLI; ending session");
                return;
            }
            Err(RecvError::Closed(_) | RecvError::Ended) => return,
        }
    }
}

/// Ends a session that the tokens file no longer allows: its reason as an `Error` message, which
/// the CLI shows, then a close frame.
async fn end_revoked(writer: &mut wire::Writer<Ws, wire::Relay>, reason: String) {
    let error = RelayMessage::Error(protocol::Error {
        message: reason.clone(),
    });
    let _ = writer.send(&error, &[]).await;
    let close = CloseFrame {
        code: CloseCode::Policy,
        reason: reason.into(),
    };
    let _ = writer.close(Some(close)).await;
}

/// Passes one message from the CLI on: an answer to the sender waiting for it, an
/// acknowledgement to the backend. A message with too many headers is a bad frame.
fn receive(
    subscription: &AnySubscription,
    message: ClientMessage,
    body: Bytes,
) -> Result<(), RecvError> {
    match message {
        ClientMessage::Response(Response {
            id,
            status,
            headers,
        }) => {
            protocol::check_headers(&headers).map_err(RecvError::Malformed)?;
            let reply = Reply::Response {
                status,
                headers,
                body,
            };
            subscription.reply(id, reply);
        }
        ClientMessage::Failed(Failed { id, reason }) => {
            subscription.reply(id, Reply::Failed { reason })
        }
        ClientMessage::Ack(Ack { id }) => subscription.ack(id),
        ClientMessage::Hello(_) => debug!("ignoring a second hello"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_channels_are_long_unguessable_and_url_safe() {
        let a = random_channel(false);
        let b = random_channel(false);
        assert_ne!(a, b);
        assert!(a.len() >= 16, "{a}");
        assert!(protocol::validate_channel(&a).is_ok(), "{a}");
        let dns = random_channel(true);
        assert_eq!(dns.len(), 26, "{dns}");
        assert!(
            dns.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "{dns}"
        );
        assert!(protocol::validate_channel(&dns).is_ok(), "{dns}");
    }
}
