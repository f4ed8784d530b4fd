//! Carrying the app's answer from the node that holds the session to the node where the sender
//! waits (core NATS request-reply: lossy, which a sender that times out with `504` absorbs), and
//! large payloads through the object store.
//!
//! Each node subscribes once to `hooks.reply.<node>.*`; a sender that waits registers a token,
//! and its request carries `hooks.reply.<node>.<token>` in a header. An answer for this very node
//! skips NATS.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_nats::jetstream::object_store::{GetErrorKind, ObjectMetadata, ObjectStore};
use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio::io::AsyncReadExt as _;
use tokio::sync::oneshot;
use tracing::{debug, warn};

use crate::backend::ReplyWait;
use crate::channel::Reply;
use crate::protocol::{self, ClientMessage, Failed, RequestId, Response};

/// The header naming where the sender waits for the app's reply.
pub(super) const REPLY_HEADER: &str = "Hooks-Reply";

/// The header naming the object that holds a payload too large for a message.
pub(super) const BODY_HEADER: &str = "Hooks-Body";

/// Chunks of the objects bodies are stored in: fewer, larger messages than the default 128 KiB,
/// well within a message's 1 MiB.
const CHUNK: usize = 512 * 1024;

/// Senders on this node waiting for the app's reply, by token.
pub(super) struct Replies {
    /// `hooks.reply.<node>.`
    prefix: String,
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
}

/// Withdraws a sender's interest when it stops waiting.
struct Withdraw {
    replies: Arc<Replies>,
    token: u64,
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        self.replies.lock().remove(&self.token);
    }
}

impl Replies {
    /// The replies of node `node`.
    pub fn new(node: &str) -> Arc<Replies> {
        Arc::new(Replies {
            prefix: format!("hooks.reply.{node}."),
            next: AtomicU64::new(1),
            waiting: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Reply>>> {
        self.waiting.lock().expect("reply lock is never poisoned")
    }

    /// The subject this node's replies arrive on.
    pub fn subscription(&self) -> String {
        format!("{}*", self.prefix)
    }

    /// Registers a sender's wait: the subject its request names, and the wait.
    pub fn register(self: &Arc<Self>) -> (String, ReplyWait) {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.lock().insert(token, tx);
        let guard = Withdraw {
            replies: Arc::clone(self),
            token,
        };
        (format!("{}{token}", self.prefix), ReplyWait::new(rx, guard))
    }

    /// Hands `reply` to the sender waiting on `subject` when that is on this node; gives it
    /// back otherwise.
    pub fn complete_here(&self, subject: &str, reply: Reply) -> Option<Reply> {
        let Some(token) = subject.strip_prefix(&self.prefix) else {
            return Some(reply);
        };
        let waiter = token.parse().ok().and_then(|t| self.lock().remove(&t));
        if let Some(waiter) = waiter {
            let _ = waiter.send(reply);
        }
        None
    }

    /// Takes this node's replies from `client` until it closes.
    pub async fn listen(self: Arc<Self>, client: async_nats::Client, bodies: Bodies) {
        let mut subscription = match client.subscribe(self.subscription()).await {
            Ok(subscription) => subscription,
            Err(e) => {
                warn!(error = %e, "could not subscribe to replies; senders will time out");
                return;
            }
        };
        while let Some(message) = subscription.next().await {
            let subject = message.subject.to_string();
            let headers = message.headers.unwrap_or_default();
            let reply = match unpack(&bodies.store, &headers, message.payload).await {
                Ok(frame) => decode_reply(frame),
                Err(Unpacked::Gone) => Reply::Failed {
                    reason: "the app's reply was lost between relay nodes".into(),
                },
                Err(Unpacked::Failed(reason)) => Reply::Failed { reason },
            };
            bodies.discard(&headers).await;
            self.complete_here(&subject, reply);
        }
        debug!("reply subscription ended");
    }
}

/// The frame carrying the app's reply to request `id`.
pub(super) fn encode_reply(id: RequestId, reply: Reply) -> Bytes {
    match reply {
        Reply::Response {
            status,
            headers,
            body,
        } => {
            let message = ClientMessage::Response(Response {
                id,
                status,
                headers,
            });
            protocol::encode(&message, &body)
        }
        Reply::Failed { reason } => {
            protocol::encode(&ClientMessage::Failed(Failed { id, reason }), &[])
        }
    }
}

/// The reply a frame from [`encode_reply`] carries; one that is not is a failure.
fn decode_reply(frame: Bytes) -> Reply {
    match protocol::decode::<ClientMessage>(frame) {
        Ok((
            ClientMessage::Response(Response {
                status, headers, ..
            }),
            body,
        )) => Reply::Response {
            status,
            headers,
            body,
        },
        Ok((ClientMessage::Failed(Failed { reason, .. }), _)) => Reply::Failed { reason },
        _ => Reply::Failed {
            reason: "the relay node holding the session sent an unreadable reply".into(),
        },
    }
}

/// Where large payloads go: the object store, with a name per payload.
#[derive(Clone)]
pub(super) struct Bodies {
    pub store: ObjectStore,
    /// `<node>-`: names unique across nodes.
    prefix: String,
    next: Arc<AtomicU64>,
    /// Frames longer than this go to the store (the server's message size, less room for
    /// headers).
    pub inline_max: usize,
}

impl Bodies {
    /// The bodies of node `node`, for a server that takes messages of `max_payload` bytes.
    pub fn new(store: ObjectStore, node: &str, max_payload: usize) -> Bodies {
        Bodies {
            store,
            prefix: format!("{node}-"),
            next: Arc::new(AtomicU64::new(1)),
            inline_max: max_payload.saturating_sub(16 * 1024).min(1024 * 1024),
        }
    }

    /// The message payload for `frame`: the frame itself when it fits in a message; otherwise
    /// its meta alone, with its body in an object named in `headers`.
    pub async fn pack(&self, frame: Bytes, headers: &mut HeaderMap) -> Result<Bytes, String> {
        if frame.len() <= self.inline_max {
            return Ok(frame);
        }
        let body_len = match protocol::payload_start(&frame) {
            Ok(start) => frame.len() - start,
            Err(e) => return Err(format!("not a frame: {e}")),
        };
        let meta = frame.slice(..frame.len() - body_len);
        let name = format!(
            "{}{}",
            self.prefix,
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        let object = ObjectMetadata {
            name: name.clone(),
            chunk_size: Some(CHUNK),
            ..ObjectMetadata::default()
        };
        let mut body = &frame[frame.len() - body_len..];
        self.store
            .put(object, &mut body)
            .await
            .map_err(|e| format!("could not store a body in the object store: {e}"))?;
        headers.insert(BODY_HEADER, name.as_str());
        Ok(meta)
    }

    /// Deletes the object named in `headers`, if any (a payload delivered, or not stored).
    pub async fn discard(&self, headers: &HeaderMap) {
        if let Some(name) = headers.get(BODY_HEADER) {
            if let Err(e) = self.store.delete(name.as_str()).await {
                debug!(object = %name, error = %e, "could not delete a body object; it expires with the retention");
            }
        }
    }
}

/// Why a message's frame could not be read whole.
pub(super) enum Unpacked {
    /// Its body's object is gone (expired with the retention).
    Gone,
    /// The object store failed.
    Failed(String),
}

/// The frame a message carries: its payload, with the body from the object its headers name.
pub(super) async fn unpack(
    store: &ObjectStore,
    headers: &HeaderMap,
    payload: Bytes,
) -> Result<Bytes, Unpacked> {
    let Some(name) = headers.get(BODY_HEADER) else {
        return Ok(payload);
    };
    let mut object = match store.get(name.as_str()).await {
        Ok(object) => object,
        Err(e) if e.kind() == GetErrorKind::NotFound => return Err(Unpacked::Gone),
        Err(e) => {
            return Err(Unpacked::Failed(format!(
                "could not read body object {name}: {e}"
            )))
        }
    };
    let mut frame = payload.to_vec();
    frame.reserve(object.info().size);
    object
        .read_to_end(&mut frame)
        .await
        .map_err(|e| Unpacked::Failed(format!("could not read body object {name}: {e}")))?;
    Ok(Bytes::from(frame))
}
