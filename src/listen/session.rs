//! One session with the relay: the writer task that owns the session's sending half, the reader
//! that turns messages into jobs (bodies that arrive in pieces included: [`Streams`]), and the
//! [`Outbox`] through which handlers answer and acknowledge requests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use relay_server::protocol::session::{Outgoing, RecvError};
use relay_server::protocol::{self, Abort, ClientMessage, RelayMessage, RequestId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use super::connect::{describe, Session, SessionReader, SessionWriter};
use super::delivery::{Delivery, Seen};
use super::handle::{handle, Job, Streamed};
use super::Context;
use crate::forward::{Cut, Pieces};

/// Messages waiting to be written to the relay, encoded.
const OUTBOX_CAPACITY: usize = 256;

/// How long Ctrl-C waits for requests already at the app to finish.
pub(super) const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why a session ended.
pub(super) enum SessionEnd {
    /// The user asked hooks to stop.
    Shutdown,
    /// The session was lost; hooks reconnects.
    Lost(String),
}

/// The attached session's outbox, with its relay's epoch. Handlers look it up when they answer,
/// so a request that outlives its session is answered and acknowledged on the next one, if that
/// one is of the same epoch.
#[derive(Default)]
pub(super) struct Outbox {
    current: Mutex<Option<(u64, mpsc::Sender<Bytes>)>>,
}

impl Outbox {
    fn set(&self, outbox: Option<(u64, mpsc::Sender<Bytes>)>) {
        *self.current.lock().expect("outbox lock is never poisoned") = outbox;
    }

    /// The current session's outbox, if its relay's epoch is `epoch`: a request of another
    /// epoch (a relay that came back with an empty queue) is unknown to it, and the same id may
    /// name another request there, so its answer and acknowledgement must not go to it.
    fn of_epoch(&self, epoch: u64) -> Option<mpsc::Sender<Bytes>> {
        match &*self.current.lock().expect("outbox lock is never poisoned") {
            Some((current, outbox)) if *current == epoch => Some(outbox.clone()),
            _ => None,
        }
    }

    /// Sends `message` about request `delivery` on the current session, if it is of its epoch.
    pub async fn send(&self, delivery: Delivery, message: &ClientMessage, payload: &[u8]) {
        if let Some(outbox) = self.of_epoch(delivery.epoch) {
            let _ = outbox.send(protocol::encode(message, payload)).await;
        }
    }

    /// Sends the app's response to request `delivery`, framed from the borrowed headers and
    /// body (nothing cloned into a message first).
    pub async fn respond(&self, delivery: Delivery, response: &crate::exchange::Response) {
        if let Some(outbox) = self.of_epoch(delivery.epoch) {
            let frame = protocol::response_frame(
                delivery.id,
                response.status,
                &response.headers,
                &response.body,
            );
            let _ = outbox.send(frame).await;
        }
    }

    /// Acknowledges `delivery`: the relay forgets it.
    pub async fn ack(&self, delivery: Delivery) {
        let ack = ClientMessage::Ack(protocol::Ack { id: delivery.id });
        self.send(delivery, &ack, &[]).await;
    }

    /// Acknowledges each of `deliveries` (those of the current session's epoch).
    pub async fn ack_all(&self, deliveries: &[Delivery]) {
        for &delivery in deliveries {
            self.ack(delivery).await;
        }
    }
}

/// Serves one attached session, whose relay's queue has `epoch`, until it is lost or the user
/// stops hooks.
pub(super) async fn serve(
    session: Session,
    epoch: u64,
    context: &Arc<Context>,
    shutdown: &CancellationToken,
) -> SessionEnd {
    let (writer, mut reader) = session.split();
    let (outbox, outbox_rx) = mpsc::channel::<Bytes>(OUTBOX_CAPACITY);
    let writer = tokio::spawn(write_loop(writer, outbox_rx));
    context.outbox.set(Some((epoch, outbox)));
    let in_flight = TaskTracker::new();
    let end = tokio::select! {
        reason = read_loop(&mut reader, epoch, context, &in_flight) => SessionEnd::Lost(reason),
        _ = shutdown.cancelled() => SessionEnd::Shutdown,
    };
    in_flight.close();
    if matches!(end, SessionEnd::Shutdown) {
        // Finish what the app is handling, answer and acknowledge it, then close cleanly.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
            in_flight.wait().await;
            context.settle.wait().await;
        })
        .await;
        context.outbox.set(None);
        let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
    } else {
        context.outbox.set(None);
        writer.abort();
    }
    end
}

/// Writes queued messages and pings to the relay; sends a close frame once every sender is
/// gone.
async fn write_loop(mut writer: SessionWriter, mut outbox: mpsc::Receiver<Bytes>) {
    let mut ping = tokio::time::interval(protocol::PING_INTERVAL);
    loop {
        let first = tokio::select! {
            frame = outbox.recv() => match frame {
                Some(frame) => Outgoing::Frame(frame),
                None => break,
            },
            _ = ping.tick() => Outgoing::Ping,
        };
        if writer
            .write_batch(first, || outbox.try_recv().ok())
            .await
            .is_err()
        {
            return;
        }
    }
    let _ = writer.close(None).await;
}

/// Reads messages until the session ends; returns why it ended.
async fn read_loop(
    reader: &mut SessionReader,
    epoch: u64,
    context: &Arc<Context>,
    in_flight: &TaskTracker,
) -> String {
    // Dropped with the session: the bodies still arriving end in an error, so their requests
    // fail at the app and are forgotten, to be forwarded again when the relay redelivers them.
    let mut streams = Streams::default();
    loop {
        let ended = match reader.recv().await {
            Ok((RelayMessage::Request(request), body)) => {
                let job = Job {
                    delivery: Delivery {
                        epoch,
                        id: request.id,
                    },
                    redelivered: request.redelivered,
                    received_at_ms: request.received_at_ms,
                    method: request.method,
                    target: request.target,
                    headers: request.headers,
                    body,
                    body_len: request.body_len,
                    streamed: None,
                };
                start(job, &mut streams, context, in_flight).await
            }
            Ok((RelayMessage::Body(body), piece)) => streams.piece(body.id, piece),
            Ok((RelayMessage::Abort(Abort { id, reason }), _)) => {
                streams.abort(id, reason);
                Ok(())
            }
            Ok((RelayMessage::Error(error), _)) => Err(error.message),
            Ok((RelayMessage::Hello(_), _)) => {
                debug!("ignoring a second hello");
                Ok(())
            }
            Err(e) => Err(lost(e)),
        };
        if let Err(reason) = ended {
            return reason;
        }
    }
}

/// Why the session ended, as `hooks listen` says it when it reconnects.
fn lost(e: RecvError) -> String {
    match e {
        RecvError::Silent(limit) => format!("no word from the relay for {} s", limit.as_secs()),
        RecvError::Lost(e) => format!("connection lost: {}", describe(&e)),
        RecvError::Ended => "connection closed".to_owned(),
        RecvError::Closed(Some(reason)) => reason,
        RecvError::Closed(None) => "the relay closed the session".to_owned(),
        RecvError::Malformed(e) => format!("the relay sent a bad frame: {e}"),
    }
}

/// Starts `job`, its body streaming in `streams` when it arrives in pieces; `Err` is why the
/// session ends.
async fn start(
    mut job: Job,
    streams: &mut Streams,
    context: &Arc<Context>,
    in_flight: &TaskTracker,
) -> Result<(), String> {
    let id = job.delivery.id;
    let incoming = match job.body_len {
        None => None,
        Some(len) => {
            let (incoming, streamed) = streams.open(id, len)?;
            job.streamed = Some(streamed);
            Some(incoming)
        }
    };
    if receive(job, context, in_flight).await {
        if let Some(incoming) = incoming {
            streams.insert(id, incoming);
        }
    }
    Ok(())
}

/// Starts handling a request, unless it is a redelivery of one already handled; `true` if it
/// started.
async fn receive(job: Job, context: &Arc<Context>, in_flight: &TaskTracker) -> bool {
    let seen = context.handled().start(job.delivery);
    match seen {
        Seen::New => {
            in_flight.spawn(handle(job, Arc::clone(context)));
            return true;
        }
        // Its acknowledgement was lost: acknowledge again, don't forward again.
        Seen::Done => context.outbox.ack(job.delivery).await,
        // Still at the app; its handler acknowledges it when done.
        Seen::InProgress => {}
    }
    false
}

/// The bodies a session is receiving in pieces ([`RelayMessage::Body`]), by request: each
/// piece goes on to the app's request at once, and into the whole body, which the handler
/// gets once the last piece is in (for the capture, the signature and the terminal).
#[derive(Default)]
pub(super) struct Streams {
    open: super::delivery::IdMap<RequestId, Incoming>,
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
