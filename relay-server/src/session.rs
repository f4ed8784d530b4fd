//! CLI sessions: the WebSocket handshake, the channel registry, and matching responses to the
//! requests waiting for them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use crate::protocol::{self, ClientMessage, Header, RelayMessage, RequestId, PROTOCOL_VERSION};
use crate::Relay;

/// Frames waiting for the session's writer. Requests beyond this wait for room, so a slow CLI
/// slows its own senders rather than growing the relay's memory.
const OUTBOX_CAPACITY: usize = 64;

/// How often the relay pings an idle session; a session silent for three of these is dead.
const PING_INTERVAL: Duration = Duration::from_secs(5);

/// What the CLI answered for one request.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The app's response.
    Response {
        status: u16,
        headers: Vec<Header>,
        body: Bytes,
    },
    /// The CLI could not reach the app; `reason` is one line for the sender.
    Failed { reason: String },
}

/// The relay's handle on one attached CLI session.
pub(crate) struct Session {
    outbox: mpsc::Sender<Message>,
    /// Requests sent to the CLI and not yet answered. `None` once the session has ended, so a
    /// request can never be registered on a dead session and wait for nothing.
    pending: Mutex<Option<HashMap<RequestId, oneshot::Sender<Reply>>>>,
}

/// Removes a request's pending entry when its sender stops waiting (answered, timed out, or the
/// sender hung up).
pub(crate) struct PendingGuard {
    session: Arc<Session>,
    id: RequestId,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        if let Some(pending) = self.session.pending().as_mut() {
            pending.remove(&self.id);
        }
    }
}

impl Session {
    fn pending(
        &self,
    ) -> std::sync::MutexGuard<'_, Option<HashMap<RequestId, oneshot::Sender<Reply>>>> {
        self.pending
            .lock()
            .expect("pending map lock is never poisoned")
    }

    /// Sends one request frame to the CLI and returns where its reply will arrive, or `None` when
    /// the session has ended.
    pub(crate) async fn deliver(
        self: &Arc<Self>,
        id: RequestId,
        frame: Bytes,
    ) -> Option<(oneshot::Receiver<Reply>, PendingGuard)> {
        let (tx, rx) = oneshot::channel();
        self.pending().as_mut()?.insert(id, tx);
        let guard = PendingGuard {
            session: Arc::clone(self),
            id,
        };
        self.outbox.send(Message::Binary(frame)).await.ok()?;
        Some((rx, guard))
    }

    fn complete(&self, id: RequestId, reply: Reply) {
        let waiter = self.pending().as_mut().and_then(|p| p.remove(&id));
        match waiter {
            // The sender may have given up (timeout, hang-up); its reply has nowhere to go.
            Some(waiter) => drop(waiter.send(reply)),
            None => debug!(%id, "reply for a request nobody waits for"),
        }
    }

    /// Ends the session: every waiting request learns at once that no reply will come.
    fn close(&self) {
        self.pending().take();
    }
}

/// Channels with an attached session.
#[derive(Default)]
pub(crate) struct Channels {
    attached: Mutex<HashMap<String, Arc<Session>>>,
}

impl Channels {
    /// The session attached to `channel`, if any.
    pub(crate) fn get(&self, channel: &str) -> Option<Arc<Session>> {
        self.lock().get(channel).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.attached
            .lock()
            .expect("channel map lock is never poisoned")
    }

    fn claim(&self, channel: &str, session: &Arc<Session>) -> bool {
        let mut attached = self.lock();
        if attached.contains_key(channel) {
            return false;
        }
        attached.insert(channel.to_owned(), Arc::clone(session));
        true
    }

    fn release(&self, channel: &str, session: &Arc<Session>) {
        let mut attached = self.lock();
        if attached
            .get(channel)
            .is_some_and(|s| Arc::ptr_eq(s, session))
        {
            attached.remove(channel);
        }
    }
}

/// A fresh unguessable channel name: 128 random bits as 22 characters of `[A-Za-z0-9_-]`.
pub(crate) fn random_channel() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
    let name = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    // Names starting with '_' are the relay's own; swap the first character rather than retry.
    match name.strip_prefix('_') {
        Some(rest) => format!("h{rest}"),
        None => name,
    }
}

/// WebSocket settings for a session that may carry bodies up to `max_body`.
pub fn ws_config(max_body: usize) -> WebSocketConfig {
    let max = protocol::max_frame_len(max_body);
    WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

type Ws = WebSocketStream<TokioIo<Upgraded>>;

/// Runs one CLI session from its hello to its end.
pub(crate) async fn run(relay: Arc<Relay>, ws: Ws, shutdown: CancellationToken) {
    static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);
    let span = tracing::info_span!("session", id = NEXT_SESSION.fetch_add(1, Ordering::Relaxed));
    serve(relay, ws, shutdown).instrument(span).await
}

async fn serve(relay: Arc<Relay>, mut ws: Ws, shutdown: CancellationToken) {
    let requested = match read_hello(&mut ws).await {
        Ok(requested) => requested,
        Err(message) => return refuse(ws, message).await,
    };
    let channel = match requested {
        Some(name) => name,
        None => random_channel(),
    };
    let (outbox, outbox_rx) = mpsc::channel(OUTBOX_CAPACITY);
    let session = Arc::new(Session {
        outbox,
        pending: Mutex::new(Some(HashMap::new())),
    });
    if !relay.channels.claim(&channel, &session) {
        let message = format!(
            "channel {channel} is in use by another hooks session; stop that one or pick another --channel"
        );
        return refuse(ws, message).await;
    }
    let url = relay.channel_url(&channel);
    let hello = RelayMessage::Hello {
        version: PROTOCOL_VERSION,
        channel: channel.clone(),
        url,
    };
    if ws
        .send(Message::Binary(protocol::encode(&hello, &[])))
        .await
        .is_ok()
    {
        info!(%channel, "session attached");
        pump(&session, ws, outbox_rx, shutdown).await;
    }
    relay.channels.release(&channel, &session);
    session.close();
    info!(%channel, "session ended");
}

/// Reads the CLI's hello; `Ok` carries the channel it asks for, `Err` the sentence refusing it.
async fn read_hello(ws: &mut Ws) -> Result<Option<String>, String> {
    let first = tokio::time::timeout(protocol::HELLO_TIMEOUT, ws.next()).await;
    let frame = match first {
        Ok(Some(Ok(Message::Binary(frame)))) => frame,
        Ok(_) => return Err("expected a hello message first".into()),
        Err(_) => return Err("no hello received in time".into()),
    };
    match protocol::decode::<ClientMessage>(frame) {
        Ok((ClientMessage::Hello { version, .. }, _)) if version != PROTOCOL_VERSION => {
            Err(protocol::version_mismatch(PROTOCOL_VERSION, version))
        }
        Ok((ClientMessage::Hello { channel, .. }, _)) => {
            if let Some(name) = &channel {
                protocol::validate_channel(name).map_err(|e| format!("{e}: {name:?}"))?;
            }
            Ok(channel)
        }
        Ok(_) => Err("expected a hello message first".into()),
        Err(e) => Err(format!("could not read hello: {e}")),
    }
}

async fn refuse(mut ws: Ws, message: String) {
    warn!(%message, "session refused");
    let error = RelayMessage::Error { message };
    let _ = ws
        .send(Message::Binary(protocol::encode(&error, &[])))
        .await;
    let _ = ws.close(None).await;
}

/// Moves frames both ways until the CLI leaves, stops answering pings, or the relay shuts down.
async fn pump(
    session: &Session,
    ws: Ws,
    mut outbox: mpsc::Receiver<Message>,
    shutdown: CancellationToken,
) {
    let (mut sink, mut stream) = ws.split();
    let writer = async move {
        let mut ping = tokio::time::interval(PING_INTERVAL);
        loop {
            let message = tokio::select! {
                message = outbox.recv() => match message {
                    Some(message) => message,
                    None => break,
                },
                _ = ping.tick() => Message::Ping(Bytes::new()),
                _ = shutdown.cancelled() => {
                    let close = CloseFrame {
                        code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Away,
                        reason: "relay is shutting down".into(),
                    };
                    let _ = sink.send(Message::Close(Some(close))).await;
                    break;
                }
            };
            if let Err(e) = sink.send(message).await {
                debug!(error = %e, "session write failed");
                break;
            }
        }
    };
    let reader = async {
        let silence = PING_INTERVAL * 3;
        loop {
            let message = match tokio::time::timeout(silence, stream.next()).await {
                Ok(Some(Ok(message))) => message,
                Ok(Some(Err(e))) => {
                    debug!(error = %e, "session read failed");
                    break;
                }
                Ok(None) => break,
                Err(_) => {
                    warn!("session silent for {silence:?}; dropping it");
                    break;
                }
            };
            match message {
                Message::Binary(frame) => {
                    if let Err(e) = receive(session, frame) {
                        warn!(error = %e, "bad frame from CLI; ending session");
                        break;
                    }
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
    };
    tokio::select! {
        _ = writer => {}
        _ = reader => {}
    }
}

fn receive(session: &Session, frame: Bytes) -> Result<(), protocol::ProtocolError> {
    let (message, body) = protocol::decode::<ClientMessage>(frame)?;
    match message {
        ClientMessage::Response {
            id,
            status,
            headers,
        } => {
            protocol::check_headers(&headers)?;
            session.complete(
                id,
                Reply::Response {
                    status,
                    headers,
                    body,
                },
            );
        }
        ClientMessage::Failed { id, reason } => session.complete(id, Reply::Failed { reason }),
        ClientMessage::Hello { .. } => debug!("ignoring a second hello"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_channels_are_long_unguessable_and_url_safe() {
        let a = random_channel();
        let b = random_channel();
        assert_ne!(a, b);
        assert!(a.len() >= 16, "{a}");
        assert!(protocol::validate_channel(&a).is_ok(), "{a}");
    }
}
