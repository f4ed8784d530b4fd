//! A session's WebSocket, typed: each end sends its own messages and receives the other's, with
//! the hello and the heartbeat's silence limit built in. bore's `Delimited` is the model.
//!
//! [`Session`] is generic over the WebSocket (anything that is a sink and a stream of WebSocket
//! messages), so the relay (a hyper upgrade), the CLI (TCP or TLS) and tests (both ends in one
//! process over `tokio::io::duplex`) share it. A session is opened whole, for the hello, then
//! [`split`](Session::split) into a [`Writer`] and a [`Reader`] that its tasks own apart.

mod batch;
#[cfg(test)]
mod tests;

use std::marker::PhantomData;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{Sink, SinkExt as _, Stream, StreamExt as _};
pub use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
pub use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

pub use batch::{feed, write_batch, MessageSink, WRITE_BATCH};

use super::codec::{decode, encode, Decode, Encode, ProtocolError};
use super::limits::{
    max_frame_len, version_mismatch, HELLO_TIMEOUT, PROTOCOL_VERSION, SILENCE_LIMIT,
};
use super::messages::{ClientHello, ClientMessage, Error, RelayHello, RelayMessage};

/// A WebSocket a session runs on: a sink and a stream of WebSocket messages, as
/// `tokio_tungstenite::WebSocketStream` is over any connection.
pub trait WebSocket:
    Sink<WsMessage, Error = WsError> + Stream<Item = Result<WsMessage, WsError>> + Unpin
{
}

impl<W> WebSocket for W where
    W: Sink<WsMessage, Error = WsError> + Stream<Item = Result<WsMessage, WsError>> + Unpin
{
}

/// One end of a session: the messages it sends, and those it receives.
pub trait Side {
    /// The messages this end sends.
    type Sends: Encode;
    /// The messages this end receives.
    type Receives: Decode;
}

/// The CLI's end of a session.
#[derive(Debug)]
pub enum Cli {}

impl Side for Cli {
    type Sends = ClientMessage;
    type Receives = RelayMessage;
}

/// The relay's end of a session.
#[derive(Debug)]
pub enum Relay {}

impl Side for Relay {
    type Sends = RelayMessage;
    type Receives = ClientMessage;
}

/// The CLI's end of a session on the WebSocket `W`.
pub type CliSession<W> = Session<W, Cli>;

/// The relay's end of a session on the WebSocket `W`.
pub type RelaySession<W> = Session<W, Relay>;

/// WebSocket settings for a session that may carry bodies up to `max_body`: no message or frame
/// larger than a message of this protocol can be.
///
/// `read_buffer` is allocated up front for every session: the relay, which holds thousands of
/// mostly idle sessions, uses a small one; the CLI, one session that may receive 25 MiB bodies,
/// can afford tungstenite's 128 KiB.
pub fn ws_config(max_body: usize, read_buffer: usize) -> WebSocketConfig {
    let max = max_frame_len(max_body);
    WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
        .read_buffer_size(read_buffer)
}

/// Why a hello did not open a session.
#[derive(Debug, thiserror::Error)]
pub enum HelloError {
    /// No message came within [`HELLO_TIMEOUT`].
    #[error("no hello received in time")]
    TimedOut,
    /// The connection failed.
    #[error("connection lost: {0}")]
    Lost(WsError),
    /// The peer ended the session, or sent something that is no protocol message, first.
    #[error("the session ended before its hello")]
    Closed,
    /// Another message of the protocol came first.
    #[error("expected a hello message first")]
    OutOfOrder,
    /// The first frame is not a message of this protocol.
    #[error("could not read hello: {0}")]
    Malformed(ProtocolError),
    /// The two ends speak different versions of the protocol (see [`version_mismatch`]).
    #[error("{}", version_mismatch(*relay, *cli))]
    VersionMismatch {
        /// The relay's version.
        relay: u32,
        /// The CLI's version.
        cli: u32,
    },
    /// The relay refused the session; its sentence for the user.
    #[error("the relay refused the session: {0}")]
    Refused(String),
}

/// Why a session yielded no message.
#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    /// Nothing at all from the peer, not even a ping, for the silence limit.
    #[error("no word from the peer for {} s", .0.as_secs())]
    Silent(Duration),
    /// The connection failed.
    #[error("connection lost: {0}")]
    Lost(WsError),
    /// The connection ended without a close frame.
    #[error("connection closed")]
    Ended,
    /// The peer closed the session, with its reason when it gave one.
    #[error("{}", .0.as_deref().unwrap_or("the peer closed the session"))]
    Closed(Option<String>),
    /// A frame that is not a message of this protocol.
    #[error("bad frame: {0}")]
    Malformed(ProtocolError),
}

/// One end (`S`) of a session on the WebSocket `W`.
pub struct Session<W, S> {
    ws: W,
    silence: Duration,
    side: PhantomData<fn() -> S>,
}

impl<W: WebSocket, S: Side> Session<W, S> {
    /// The session on an open WebSocket; a peer silent for [`SILENCE_LIMIT`] is dead.
    pub fn new(ws: W) -> Self {
        Session {
            ws,
            silence: SILENCE_LIMIT,
            side: PhantomData,
        }
    }

    /// Sends `message` with its body `payload`, and flushes.
    pub async fn send(&mut self, message: &S::Sends, payload: &[u8]) -> Result<(), WsError> {
        send(&mut self.ws, message, payload).await
    }

    /// The next message and its payload; pings, pongs and text messages are passed over, and
    /// any of them restarts the silence clock.
    pub async fn recv(&mut self) -> Result<(S::Receives, Bytes), RecvError> {
        recv(&mut self.ws, self.silence).await
    }

    /// Sends a close frame (`frame` gives its code and reason) and flushes.
    pub async fn close(&mut self, frame: Option<CloseFrame>) -> Result<(), WsError> {
        self.ws.send(WsMessage::Close(frame)).await
    }

    /// The WebSocket, to be set up again (the relay widens its limits once a hello is accepted).
    pub fn into_inner(self) -> W {
        self.ws
    }

    /// Splits the session into the halves its writing and reading tasks own.
    pub fn split(self) -> (Writer<W, S>, Reader<W, S>) {
        let (sink, stream) = self.ws.split();
        let writer = Writer {
            sink,
            side: PhantomData,
        };
        let reader = Reader {
            stream,
            silence: self.silence,
            side: PhantomData,
        };
        (writer, reader)
    }
}

impl<W: WebSocket> Session<W, Relay> {
    /// Waits up to [`HELLO_TIMEOUT`] for the CLI's hello, which must be its first message, of
    /// this protocol's version.
    pub async fn recv_hello(&mut self) -> Result<ClientHello, HelloError> {
        let ClientMessage::Hello(hello) = first_message(&mut self.ws).await? else {
            return Err(HelloError::OutOfOrder);
        };
        if hello.version != PROTOCOL_VERSION {
            return Err(HelloError::VersionMismatch {
                relay: PROTOCOL_VERSION,
                cli: hello.version,
            });
        }
        Ok(hello)
    }

    /// Refuses the session with `message`, a sentence for the user, then closes it. Failures
    /// are not reported: the session is over either way. Gives the WebSocket back, for its
    /// owner to read what the peer may still be sending before the connection is dropped.
    pub async fn refuse(mut self, message: String) -> W {
        let _ = self
            .send(&RelayMessage::Error(Error { message }), &[])
            .await;
        let _ = self.close(None).await;
        self.ws
    }
}

impl<W: WebSocket> Session<W, Cli> {
    /// Says `hello` and waits up to [`HELLO_TIMEOUT`] for the relay's answer: its hello, of this
    /// protocol's version, or its refusal ([`HelloError::Refused`]).
    pub async fn hello(&mut self, hello: &ClientHello) -> Result<RelayHello, HelloError> {
        let message = ClientMessage::Hello(hello.clone());
        self.send(&message, &[]).await.map_err(HelloError::Lost)?;
        match first_message(&mut self.ws).await? {
            RelayMessage::Hello(reply) if reply.version != PROTOCOL_VERSION => {
                Err(HelloError::VersionMismatch {
                    relay: reply.version,
                    cli: PROTOCOL_VERSION,
                })
            }
            RelayMessage::Hello(reply) => Ok(reply),
            RelayMessage::Error(Error { message }) => Err(HelloError::Refused(message)),
            _ => Err(HelloError::OutOfOrder),
        }
    }
}

/// The sending half of a session (see [`Session::split`]).
pub struct Writer<W, S> {
    sink: SplitSink<W, WsMessage>,
    side: PhantomData<fn() -> S>,
}

/// What a [`Writer`] writes in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// A message already encoded (the relay keeps requests as frames in its queue).
    Frame(Bytes),
    /// A heartbeat.
    Ping,
}

impl<W: WebSocket, S: Side> Writer<W, S> {
    /// Sends `message` with its body `payload`, and flushes.
    pub async fn send(&mut self, message: &S::Sends, payload: &[u8]) -> Result<(), WsError> {
        send(&mut self.sink, message, payload).await
    }

    /// Writes `first` and the frames `next` has ready at once, with one flush (see
    /// [`write_batch`]).
    pub async fn write_batch(
        &mut self,
        first: Outgoing,
        mut next: impl FnMut() -> Option<Bytes>,
    ) -> Result<(), WsError> {
        let first = match first {
            Outgoing::Frame(frame) => WsMessage::Binary(frame),
            Outgoing::Ping => WsMessage::Ping(Bytes::new()),
        };
        write_batch(&mut self.sink, first, || next().map(WsMessage::Binary)).await
    }

    /// Sends a close frame (`frame` gives its code and reason) and flushes.
    pub async fn close(&mut self, frame: Option<CloseFrame>) -> Result<(), WsError> {
        self.sink.send(WsMessage::Close(frame)).await
    }
}

/// The receiving half of a session (see [`Session::split`]).
pub struct Reader<W, S> {
    stream: SplitStream<W>,
    silence: Duration,
    side: PhantomData<fn() -> S>,
}

impl<W: WebSocket, S: Side> Reader<W, S> {
    /// The next message and its payload (see [`Session::recv`]).
    pub async fn recv(&mut self) -> Result<(S::Receives, Bytes), RecvError> {
        recv(&mut self.stream, self.silence).await
    }
}

async fn send<M: Encode>(
    sink: &mut impl MessageSink,
    message: &M,
    payload: &[u8],
) -> Result<(), WsError> {
    feed(sink, WsMessage::Binary(encode(message, payload))).await?;
    sink.flush().await
}

/// The next binary message, decoded. The silence clock restarts with every message, so a peer
/// that only pings is alive.
async fn recv<M: Decode>(
    stream: &mut (impl Stream<Item = Result<WsMessage, WsError>> + Unpin),
    silence: Duration,
) -> Result<(M, Bytes), RecvError> {
    loop {
        let message = match tokio::time::timeout(silence, stream.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(e))) => return Err(RecvError::Lost(e)),
            Ok(None) => return Err(RecvError::Ended),
            Err(_) => return Err(RecvError::Silent(silence)),
        };
        match message {
            WsMessage::Binary(frame) => return decode(frame).map_err(RecvError::Malformed),
            WsMessage::Close(frame) => {
                let reason = frame.map(|f| f.reason.to_string());
                return Err(RecvError::Closed(reason.filter(|r| !r.is_empty())));
            }
            _ => {}
        }
    }
}

/// The peer's first message, its payload dropped: a hello carries none. It must come within
/// [`HELLO_TIMEOUT`] and be a binary message; nothing, not even a ping, comes before a hello.
async fn first_message<M: Decode>(ws: &mut impl WebSocket) -> Result<M, HelloError> {
    let frame = match tokio::time::timeout(HELLO_TIMEOUT, ws.next()).await {
        Ok(Some(Ok(WsMessage::Binary(frame)))) => frame,
        Ok(Some(Err(e))) => return Err(HelloError::Lost(e)),
        Ok(_) => return Err(HelloError::Closed),
        Err(_) => return Err(HelloError::TimedOut),
    };
    let (message, _) = decode(frame).map_err(HelloError::Malformed)?;
    Ok(message)
}
