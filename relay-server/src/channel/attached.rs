//! The relay's side of an attached CLI session: its outbox, its window of requests in flight,
//! and the requests whose bodies are streamed to it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::outbox::Outbox;
use crate::protocol::{self, Abort, RelayMessage, RequestId, MAX_STREAMS};

/// The relay's handle on an attached CLI session: where its frames go, and the requests it has
/// been sent and not yet acknowledged.
pub(crate) struct Attached {
    /// Request frames for the session's writer.
    pub outbox: Outbox,
    /// One permit per request the session may still be sent (`--max-in-flight`).
    pub window: Semaphore,
    in_flight: Mutex<HashSet<RequestId>>,
    /// The CLI takes long bodies in pieces (its hello's `stream_bodies`).
    streams: bool,
    /// Streams the session may still be sent at once ([`MAX_STREAMS`]).
    stream_slots: Semaphore,
    /// Cancelled once the session is detached: whoever streams to it stops waiting for room.
    closed: CancellationToken,
}

impl Attached {
    /// A session handle with an outbox of `outbox_bytes`, allowing `max_in_flight`
    /// unacknowledged requests, which takes long bodies in pieces when `streams`.
    pub fn new(outbox_bytes: usize, max_in_flight: usize, streams: bool) -> Self {
        Attached {
            outbox: Outbox::new(outbox_bytes),
            window: Semaphore::new(max_in_flight),
            in_flight: Mutex::new(HashSet::new()),
            streams,
            stream_slots: Semaphore::new(if streams { MAX_STREAMS } else { 0 }),
            closed: CancellationToken::new(),
        }
    }

    /// Takes a window slot for `id` (waiting for one if the CLI is behind).
    pub async fn reserve(&self, id: RequestId) -> bool {
        match self.window.acquire().await {
            Ok(permit) => {
                permit.forget();
                self.in_flight
                    .lock()
                    .expect("in-flight lock is never poisoned")
                    .insert(id);
                true
            }
            Err(_) => false,
        }
    }

    /// Sends `frame` at once when the window and the outbox have room; `false` leaves it to
    /// the delivery loop. Saves a task hop per webhook on an idle session.
    pub(super) fn try_send_now(&self, id: RequestId, frame: &Bytes) -> bool {
        let Ok(permit) = self.window.try_acquire() else {
            return false;
        };
        // In flight before the frame leaves, so an early acknowledgement finds it.
        let mut in_flight = self
            .in_flight
            .lock()
            .expect("in-flight lock is never poisoned");
        in_flight.insert(id);
        if self.outbox.try_send(frame.clone()) {
            permit.forget();
            true
        } else {
            in_flight.remove(&id);
            false
        }
    }

    /// Frees `id`'s window slot once the CLI has acknowledged it.
    pub fn release(&self, id: RequestId) {
        let removed = self
            .in_flight
            .lock()
            .expect("in-flight lock is never poisoned")
            .remove(&id);
        if removed {
            self.window.add_permits(1);
        }
    }

    /// Starts streaming request `id` by sending `head` (its request message announcing
    /// `body_len`), when the session takes streams and has a stream slot, window room and
    /// outbox room.
    pub(super) fn start_stream(self: &Arc<Self>, id: RequestId, head: &Bytes) -> Option<Stream> {
        if !self.streams {
            return None;
        }
        let slot = self.stream_slots.try_acquire().ok()?;
        if !self.try_send_now(id, head) {
            return None;
        }
        slot.forget();
        Some(Stream {
            session: Arc::clone(self),
            id,
            ended: false,
        })
    }

    /// The session is detached: nothing more is sent to it, and whoever streams to it stops
    /// waiting for room.
    pub(crate) fn close(&self) {
        self.closed.cancel();
    }
}

/// A request whose body is being streamed to one session: it holds the request's window slot
/// and one of the session's [`MAX_STREAMS`] slots.
///
/// It ends with the last piece ([`Stream::finish`]) or an abort ([`Stream::abort`]), and a
/// stream dropped without either (its sender's connection ended while the relay was reading
/// or storing the request) sends the abort itself. Either way that last frame is queued by a
/// task of its own, which nothing cancels, and the stream slot is given back only once it is:
/// the CLI, reading frames in order, then never sees more than [`MAX_STREAMS`] open at once.
pub(crate) struct Stream {
    session: Arc<Attached>,
    id: RequestId,
    ended: bool,
}

impl Stream {
    /// The request streamed.
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// Whether the body goes to `session`.
    pub(super) fn goes_to(&self, session: &Arc<Attached>) -> bool {
        Arc::ptr_eq(&self.session, session)
    }

    /// Queues `frame` (a piece of the body) for the session, waiting for room; `false` once
    /// the session is gone, when the rest of the body has nowhere to go.
    pub async fn send(&self, frame: Bytes) -> bool {
        send_to(&self.session, frame).await
    }

    /// Queues the last piece: the request is pending, and the CLI acknowledges it once
    /// handled.
    pub fn finish(mut self, last: Bytes) {
        self.ended = true;
        self.end(last, false);
    }

    /// Tells the CLI to forget the request (not stored: the sender went away, or the queue
    /// failed), and frees its window slot, since the CLI will not acknowledge it.
    pub fn abort(mut self, reason: &str) {
        self.ended = true;
        self.end(abort_frame(self.id, reason), true);
    }

    fn end(&self, frame: Bytes, release: bool) {
        let session = Arc::clone(&self.session);
        let id = self.id;
        let done = move |session: &Attached| {
            if release {
                session.release(id);
            }
            session.stream_slots.add_permits(1);
        };
        // No runtime: it is being torn down, and the session with it.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            done(&session);
            return;
        };
        runtime.spawn(async move {
            send_to(&session, frame).await;
            done(&session);
        });
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        if !self.ended {
            self.end(
                abort_frame(self.id, "the relay stopped reading the request"),
                true,
            );
        }
    }
}

/// Queues `frame` for `session`, waiting for room; `false` once the session is gone.
async fn send_to(session: &Attached, frame: Bytes) -> bool {
    tokio::select! {
        () = session.outbox.send(frame) => !session.closed.is_cancelled(),
        () = session.closed.cancelled() => false,
    }
}

/// The frame telling the CLI that `id`'s body will not come, and why.
fn abort_frame(id: RequestId, reason: &str) -> Bytes {
    let message = RelayMessage::Abort(Abort {
        id,
        reason: reason.to_owned(),
    });
    protocol::encode(&message, &[])
}
