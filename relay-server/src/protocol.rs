//! The relay ⇄ CLI wire protocol: messages, frame codec and the limits that bound them.
//!
//! This is the only place that knows the wire format; the relay and the `hooks` CLI both use it.
//!
//! One WebSocket carries one session. Every protocol message is one binary WebSocket message laid
//! out as
//!
//! ```text
//! u32 big-endian  meta length (N)
//! N bytes         meta: the message as JSON (serde, internally tagged by "type")
//! rest            payload: the raw body bytes of a request or response (may be empty)
//! ```
//!
//! Bodies are never base64-encoded or re-encoded: the payload is the body, byte for byte, and
//! decoding hands it out as a zero-copy slice of the received frame.
//!
//! A long request body may instead follow its request in pieces ([`RelayMessage::Body`]), so
//! that the CLI forwards it while it is still arriving: only to a CLI whose hello asked for it
//! (`stream_bodies`), and only for bodies of at least [`STREAM_FROM`] bytes (see there).

use std::fmt;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use serde::{de, Deserialize, Serialize};
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

/// Bodies a sender declares (`Content-Length`) at least this long are streamed to a CLI that
/// accepts it ([`RelayMessage::Body`]): the relay passes each piece on as it arrives and the
/// CLI forwards it to the app at once, so the three transfers (sender to relay, relay to CLI,
/// CLI to app) overlap instead of following each other. Shorter bodies go whole in their
/// request's frame, which costs one message rather than several.
pub const STREAM_FROM: usize = 256 * 1024;

/// Largest piece of a streamed body in one [`RelayMessage::Body`] message: with its meta, one
/// WebSocket frame ([`FRAGMENT_LEN`]).
pub const CHUNK_LEN: usize = FRAGMENT_LEN - 256;

/// Most requests one session streams at once; a relay sends further long bodies whole while
/// this many are under way, and a CLI ends a session that opens more.
pub const MAX_STREAMS: usize = 16;

/// Version of this protocol; both sides send it in their hello and refuse a mismatch.
pub const PROTOCOL_VERSION: u32 = 1;

/// Path of the CLI's WebSocket endpoint on the relay.
pub const CONNECT_PATH: &str = "/_hooks/v1/connect";

/// Path of the relay's liveness endpoint.
pub const HEALTH_PATH: &str = "/_hooks/health";

/// Path of the relay's Prometheus metrics.
pub const METRICS_PATH: &str = "/_hooks/metrics";

/// Paths under this prefix belong to the relay and are never a channel.
pub const RESERVED_PREFIX: &str = "/_hooks/";

/// Default largest request or response body, in bytes (25 MiB). Stripe caps its events at
/// 256 KiB and GitHub at 25 MiB, so this holds what real providers send.
pub const DEFAULT_MAX_BODY: usize = 25 * 1024 * 1024;

/// Largest meta section (the JSON with the method, target and header list). Headers beyond this
/// are refused by the relay with `431` before they reach a session.
pub const MAX_META_LEN: usize = 256 * 1024;

/// Most headers one request or response may carry.
pub const MAX_HEADERS: usize = 500;

/// How long either side waits for the other's hello before giving up.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// How often each side pings the other.
pub const PING_INTERVAL: Duration = Duration::from_secs(3);

/// A peer silent this long (no frame, no ping, no pong) is dead: about three missed pings.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(10);

/// Shortest and longest channel name a CLI may ask for.
pub const CHANNEL_LEN: std::ops::RangeInclusive<usize> = 1..=64;

/// Largest WebSocket message either side accepts for a given body limit.
pub fn max_frame_len(max_body: usize) -> usize {
    4 + MAX_META_LEN + max_body
}

/// Identifies one webhook request within a relay, and matches its response to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One header: its name (lowercase, as HTTP/2 and hyper carry it) and its raw value bytes.
///
/// On the wire a header is a two-element array `[name, value]`; the value is a JSON string when it
/// is valid UTF-8 (the usual case) and an array of byte values otherwise, so no byte is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name, lowercase.
    pub name: String,
    /// Header value, exactly as received.
    pub value: Bytes,
}

impl Serialize for Header {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&self.name)?;
        match std::str::from_utf8(&self.value) {
            Ok(text) => t.serialize_element(text)?,
            Err(_) => t.serialize_element(&self.value.as_ref())?,
        }
        t.end()
    }
}

// Written by hand rather than with `#[serde(untagged)]` for the value: untagged buffers every
// value before trying each shape, and headers are decoded for every webhook.
impl<'de> Deserialize<'de> for Header {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct HeaderVisitor;
        impl<'de> de::Visitor<'de> for HeaderVisitor {
            type Value = Header;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a header: [name, value]")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Header, A::Error> {
                let name: String = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let HeaderValue(value) = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                Ok(Header { name, value })
            }
        }
        d.deserialize_tuple(2, HeaderVisitor)
    }
}

/// A header value on the wire: a string, or an array of byte values.
struct HeaderValue(Bytes);

impl<'de> Deserialize<'de> for HeaderValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> de::Visitor<'de> for ValueVisitor {
            type Value = HeaderValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a header value: a string or an array of bytes")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<HeaderValue, E> {
                Ok(HeaderValue(Bytes::copy_from_slice(text.as_bytes())))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<HeaderValue, E> {
                Ok(HeaderValue(Bytes::from(text)))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<HeaderValue, A::Error> {
                let mut raw = Vec::new();
                while let Some(byte) = seq.next_element::<u8>()? {
                    raw.push(byte);
                }
                Ok(HeaderValue(Bytes::from(raw)))
            }
        }
        d.deserialize_any(ValueVisitor)
    }
}

/// Messages the CLI sends to the relay.
///
/// On the wire an object whose first field, `"type"`, names the variant (`"hello"`,
/// `"response"`, …), followed by the variant's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// First message of a session: the protocol version and the channel the CLI wants
    /// (`None` asks the relay for a fresh random one).
    Hello {
        /// The CLI's [`PROTOCOL_VERSION`].
        version: u32,
        /// Channel name to claim, or `None` for a random unguessable one.
        channel: Option<String>,
        /// How the relay answers senders on this channel.
        #[serde(default)]
        respond: Respond,
        /// How long a sender waits for the app in [`Respond::App`] mode, in milliseconds;
        /// `None` keeps the relay's default.
        #[serde(default)]
        timeout_ms: Option<u64>,
        /// What the relay does with webhooks while no CLI is attached; `None` keeps the relay's
        /// default.
        #[serde(default)]
        offline: Option<Offline>,
        /// The CLI's token, for relays that require one.
        #[serde(default)]
        token: Option<Token>,
        /// The CLI takes long request bodies in pieces ([`RelayMessage::Body`]) and forwards
        /// each as it arrives. A relay that does not know the field ignores it, and sends
        /// bodies whole.
        #[serde(default)]
        stream_bodies: bool,
    },
    /// The app's response to a request; the frame's payload is the response body.
    Response {
        /// The request this answers.
        id: RequestId,
        /// HTTP status code from the app.
        status: u16,
        /// Response headers in the order the app sent them, hop-by-hop headers removed.
        headers: Vec<Header>,
    },
    /// The CLI has recorded this request: the relay may forget it and will not redeliver it.
    Ack {
        /// The request recorded.
        id: RequestId,
    },
    /// The CLI could not get a response from the app; the relay answers the sender `502`.
    Failed {
        /// The request this answers.
        id: RequestId,
        /// One line saying what went wrong, e.g. "connection refused by localhost:3000".
        reason: String,
    },
}

/// Messages the relay sends to the CLI; on the wire like [`ClientMessage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RelayMessage {
    /// Answer to the CLI's hello: the session is attached to `channel`, reachable at `url`.
    Hello {
        /// The relay's [`PROTOCOL_VERSION`].
        version: u32,
        /// The channel this session now holds.
        channel: String,
        /// The public URL that webhooks for this channel are sent to.
        url: String,
        /// How the relay answers senders on this channel.
        #[serde(default)]
        respond: Respond,
        /// How long senders wait for the app in [`Respond::App`] mode, in milliseconds.
        #[serde(default)]
        timeout_ms: u64,
        /// The epoch of the relay's queue: a random number made with the queue and kept in it
        /// (a queue in memory gets a fresh one each time its relay starts). Request ids are
        /// unique within an epoch, so a CLI remembers the requests it handled by relay URL,
        /// epoch and id: a relay that comes back on the same URL with an empty queue counts
        /// its ids from 1 again, in a new epoch. Requests of another epoch than the session's
        /// are not the relay's to hear about: a CLI neither answers nor acknowledges them on
        /// this session. `0` (what a relay without the field is read as) means no epoch.
        #[serde(default)]
        epoch: u64,
        /// The relay's `--max-body`: it answers `502` for a response body over it, and does not
        /// read a frame much larger, so the CLI reports a larger answer from the app as failed
        /// instead of sending it. Absent from older relays.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_body: Option<u64>,
    },
    /// A webhook for the CLI to forward; the frame's payload is the request body.
    Request {
        /// Identifies this request within the queue's epoch (see [`RelayMessage::Hello`]); the
        /// CLI answers with the same id. Ids grow and are never reused within an epoch (the
        /// queue commits a reserve of ids before it hands them out), so a CLI can drop repeats.
        id: RequestId,
        /// When the relay received it, in milliseconds since the Unix epoch (a queued request is
        /// delivered later than that).
        received_at_ms: u64,
        /// HTTP method, e.g. `POST`.
        method: String,
        /// Path after the channel, with the query: `/a/b?x=1` for `/<channel>/a/b?x=1`.
        target: String,
        /// Request headers in the order the sender sent them, hop-by-hop headers removed.
        headers: Vec<Header>,
        /// Set when the body is not this frame's payload (which is then empty) but follows in
        /// [`RelayMessage::Body`] messages, this many bytes in all; only to a CLI whose hello
        /// set `stream_bodies`, and only for a body the sender declared at least
        /// [`STREAM_FROM`] long. A redelivered request always carries its body whole.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body_len: Option<u64>,
        /// The relay sent this request to a session before (which did not acknowledge it), or
        /// it was pending when the relay started and may have been: the app may have seen it.
        /// A CLI that has no record of handling it forwards it and says so. Absent when false.
        #[serde(default, skip_serializing_if = "is_false")]
        redelivered: bool,
    },
    /// The next piece of a streamed request's body (see `body_len`); the frame's payload is the
    /// piece, at most [`CHUNK_LEN`] bytes. The pieces come in order, and the request is whole
    /// once they add up to `body_len`.
    Body {
        /// The request the piece belongs to.
        id: RequestId,
    },
    /// The rest of a streamed request's body will not come: the sender went away or broke a
    /// limit. The relay has not stored the request; the CLI forgets it.
    Abort {
        /// The request abandoned.
        id: RequestId,
        /// Why, in a few words: "the sender's connection failed before the body was all in".
        reason: String,
    },
    /// The relay refuses or ends the session; `message` is a sentence for the user.
    Error {
        /// What went wrong and what to do about it.
        message: String,
    },
}

fn is_false(value: &bool) -> bool {
    !value
}

/// `frame`, a [`RelayMessage::Request`] as the queue keeps it, with `redelivered` set: its meta
/// is written again, and the body copied after it. Only for redeliveries, which are rare. A
/// frame that is not a request comes back as it was.
pub fn mark_redelivered(frame: Bytes) -> Bytes {
    match decode::<RelayMessage>(frame.clone()) {
        Ok((
            RelayMessage::Request {
                id,
                received_at_ms,
                method,
                target,
                headers,
                body_len,
                ..
            },
            body,
        )) => {
            let message = RelayMessage::Request {
                id,
                received_at_ms,
                method,
                target,
                headers,
                body_len,
                redelivered: true,
            };
            encode(&message, &body)
        }
        _ => frame,
    }
}

// Both message types are decoded by hand: serde's derive for internally tagged enums buffers the
// whole object (headers included) before it looks at the tag. `encode` writes the tag first, so
// the decoder reads it first and hands the rest of the object to the variant's fields.

/// Reads the `"type"` field, which must come first; returns its value.
fn message_tag<'de, A: de::MapAccess<'de>>(map: &mut A) -> Result<String, A::Error> {
    match map.next_key::<String>()? {
        Some(key) if key == "type" => map.next_value(),
        Some(_) => Err(de::Error::custom(
            "a message's \"type\" must be its first field",
        )),
        None => Err(de::Error::missing_field("type")),
    }
}

/// Deserializes the rest of a message's object as `T`, the fields of its variant.
fn message_fields<'de, A: de::MapAccess<'de>, T: Deserialize<'de>>(map: A) -> Result<T, A::Error> {
    T::deserialize(de::value::MapAccessDeserializer::new(map))
}

const CLIENT_VARIANTS: &[&str] = &["hello", "response", "ack", "failed"];
const RELAY_VARIANTS: &[&str] = &["hello", "request", "body", "abort", "error"];

impl<'de> Deserialize<'de> for ClientMessage {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Hello {
            version: u32,
            channel: Option<String>,
            #[serde(default)]
            respond: Respond,
            #[serde(default)]
            timeout_ms: Option<u64>,
            #[serde(default)]
            offline: Option<Offline>,
            #[serde(default)]
            token: Option<Token>,
            #[serde(default)]
            stream_bodies: bool,
        }
        #[derive(Deserialize)]
        struct Response {
            id: RequestId,
            status: u16,
            headers: Vec<Header>,
        }
        #[derive(Deserialize)]
        struct Ack {
            id: RequestId,
        }
        #[derive(Deserialize)]
        struct Failed {
            id: RequestId,
            reason: String,
        }
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = ClientMessage;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a message from the CLI")
            }
            fn visit_map<A: de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ClientMessage, A::Error> {
                let tag = message_tag(&mut map)?;
                Ok(match tag.as_str() {
                    "hello" => {
                        let h: Hello = message_fields(map)?;
                        ClientMessage::Hello {
                            version: h.version,
                            channel: h.channel,
                            respond: h.respond,
                            timeout_ms: h.timeout_ms,
                            offline: h.offline,
                            token: h.token,
                            stream_bodies: h.stream_bodies,
                        }
                    }
                    "response" => {
                        let r: Response = message_fields(map)?;
                        ClientMessage::Response {
                            id: r.id,
                            status: r.status,
                            headers: r.headers,
                        }
                    }
                    "ack" => ClientMessage::Ack {
                        id: message_fields::<_, Ack>(map)?.id,
                    },
                    "failed" => {
                        let f: Failed = message_fields(map)?;
                        ClientMessage::Failed {
                            id: f.id,
                            reason: f.reason,
                        }
                    }
                    other => return Err(de::Error::unknown_variant(other, CLIENT_VARIANTS)),
                })
            }
        }
        d.deserialize_map(Visitor)
    }
}

impl<'de> Deserialize<'de> for RelayMessage {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Hello {
            version: u32,
            channel: String,
            url: String,
            #[serde(default)]
            respond: Respond,
            #[serde(default)]
            timeout_ms: u64,
            #[serde(default)]
            epoch: u64,
            max_body: Option<u64>,
        }
        #[derive(Deserialize)]
        struct Request {
            id: RequestId,
            received_at_ms: u64,
            method: String,
            target: String,
            headers: Vec<Header>,
            #[serde(default)]
            body_len: Option<u64>,
            #[serde(default)]
            redelivered: bool,
        }
        #[derive(Deserialize)]
        struct Body {
            id: RequestId,
        }
        #[derive(Deserialize)]
        struct Abort {
            id: RequestId,
            reason: String,
        }
        #[derive(Deserialize)]
        struct Error {
            message: String,
        }
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = RelayMessage;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a message from the relay")
            }
            fn visit_map<A: de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RelayMessage, A::Error> {
                let tag = message_tag(&mut map)?;
                Ok(match tag.as_str() {
                    "hello" => {
                        let h: Hello = message_fields(map)?;
                        RelayMessage::Hello {
                            version: h.version,
                            channel: h.channel,
                            url: h.url,
                            respond: h.respond,
                            timeout_ms: h.timeout_ms,
                            epoch: h.epoch,
                            max_body: h.max_body,
                        }
                    }
                    "request" => {
                        let r: Request = message_fields(map)?;
                        RelayMessage::Request {
                            id: r.id,
                            received_at_ms: r.received_at_ms,
                            method: r.method,
                            target: r.target,
                            headers: r.headers,
                            body_len: r.body_len,
                            redelivered: r.redelivered,
                        }
                    }
                    "body" => RelayMessage::Body {
                        id: message_fields::<_, Body>(map)?.id,
                    },
                    "abort" => {
                        let a: Abort = message_fields(map)?;
                        RelayMessage::Abort {
                            id: a.id,
                            reason: a.reason,
                        }
                    }
                    "error" => RelayMessage::Error {
                        message: message_fields::<_, Error>(map)?.message,
                    },
                    other => return Err(de::Error::unknown_variant(other, RELAY_VARIANTS)),
                })
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// Headers that belong to one HTTP hop and are never passed on, in requests or in responses
/// (RFC 9110 §7.6.1), besides those a `Connection` header names. `upgrade` is one: the relay
/// upgrades only its own session endpoint.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The headers of `map` that are not hop-by-hop, in order (repeated names keep their order):
/// without [`HOP_BY_HOP`] and every name listed in `Connection`. Requests on their way to the CLI
/// and responses on their way back both pass through this.
pub fn end_to_end(
    map: &http::HeaderMap,
) -> impl Iterator<Item = (&http::HeaderName, &http::HeaderValue)> {
    let named_by_connection: Vec<String> = map
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    map.iter().filter(move |(name, _)| {
        let name = name.as_str();
        !HOP_BY_HOP.contains(&name) && !named_by_connection.iter().any(|n| n == name)
    })
}

/// The headers of `map` to forward, as [`end_to_end`] keeps them.
pub fn forwardable_headers(map: &http::HeaderMap) -> Vec<Header> {
    end_to_end(map)
        .map(|(name, value)| Header {
            name: name.as_str().to_owned(),
            value: Bytes::copy_from_slice(value.as_bytes()),
        })
        .collect()
}

/// A CLI token. Its `Debug` output never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Token(pub String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(redacted)")
    }
}

/// How the relay answers the sender of a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Respond {
    /// Wait for the app and return its response (up to the channel's timeout, then `504`).
    #[default]
    App,
    /// Answer this status at once, after queueing the request, and deliver it asynchronously.
    Status(u16),
}

/// What the relay does with a webhook for a known channel while no CLI is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Offline {
    /// Queue it, answer `202`, and deliver it when a CLI attaches.
    #[default]
    Queue,
    /// Answer `503` with `Retry-After`, so the provider's own retries redeliver it later.
    Reject,
}

/// Why a frame could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The frame is shorter than its length prefix says.
    #[error("frame is truncated: {0} bytes")]
    Truncated(usize),
    /// The meta section exceeds [`MAX_META_LEN`].
    #[error("frame meta section is {0} bytes, more than the {MAX_META_LEN} allowed")]
    MetaTooLong(usize),
    /// The meta section is not a message of this protocol.
    #[error("frame meta section is not a valid message: {0}")]
    BadMeta(#[from] serde_json::Error),
    /// A message carries more than [`MAX_HEADERS`] headers.
    #[error("message carries {0} headers, more than the {MAX_HEADERS} allowed")]
    TooManyHeaders(usize),
}

/// Encodes `message` and its body `payload` into one frame.
pub fn encode<M: Serialize>(message: &M, payload: &[u8]) -> Bytes {
    encode_buf(message, payload)
}

/// [`encode`] with the payload in pieces (e.g. a request body as it arrived), copied once,
/// straight into the frame.
pub fn encode_buf<M: Serialize>(message: &M, mut payload: impl bytes::Buf) -> Bytes {
    let mut frame = frame_for(message, payload.remaining());
    while payload.has_remaining() {
        let chunk = payload.chunk();
        let len = chunk.len();
        frame.put_slice(chunk);
        payload.advance(len);
    }
    frame.freeze()
}

/// The start of `message`'s frame, its meta, with room for `payload_len` payload bytes after
/// it: a frame whose payload is written as it arrives.
pub fn frame_for<M: Serialize>(message: &M, payload_len: usize) -> BytesMut {
    let meta = serde_json::to_vec(message).expect("protocol messages always serialize to JSON");
    let mut frame = BytesMut::with_capacity(4 + meta.len() + payload_len);
    frame.put_u32(u32::try_from(meta.len()).expect("meta is far below 4 GiB"));
    frame.put_slice(&meta);
    frame
}

/// Decodes one frame into its message and payload; the payload shares the frame's memory.
pub fn decode<M: for<'de> Deserialize<'de>>(frame: Bytes) -> Result<(M, Bytes), ProtocolError> {
    if frame.len() < 4 {
        return Err(ProtocolError::Truncated(frame.len()));
    }
    let meta_len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    if meta_len > MAX_META_LEN {
        return Err(ProtocolError::MetaTooLong(meta_len));
    }
    if frame.len() < 4 + meta_len {
        return Err(ProtocolError::Truncated(frame.len()));
    }
    let message: M = serde_json::from_slice(&frame[4..4 + meta_len])?;
    Ok((message, frame.slice(4 + meta_len..)))
}

/// Most frames written with one flush.
pub const WRITE_BATCH: usize = 64;

/// Longest WebSocket frame either side writes. A longer message (one carrying a large body) goes
/// out as several frames of one message (RFC 6455 fragmentation), which the peer's WebSocket
/// joins again before it hands the message on, so the protocol's messages are unchanged.
///
/// Why: tungstenite copies each frame whole into its write buffer, and after every partial
/// write to the socket moves the unwritten rest to the buffer's front. A 10 MiB body in one
/// frame was moved again and again while the socket drained it; in frames of this size each
/// byte is copied once, and the write buffer stays this small.
///
/// The price is on the receiving side, and lasts only while the message does: tungstenite joins
/// fragments into a vector that grows by doubling, so a 10 MiB message is held in 16 MiB, and is
/// copied once more; one frame was read into a buffer of its exact size. A write buffer, by
/// contrast, keeps its largest size for the session's whole life, in each of the relay's
/// sessions.
pub const FRAGMENT_LEN: usize = 64 * 1024;

/// The sending half of a session's WebSocket, as both sides hold it.
pub trait MessageSink: futures_util::Sink<WsMessage, Error = WsError> + Unpin {}

impl<S: futures_util::Sink<WsMessage, Error = WsError> + Unpin> MessageSink for S {}

/// Feeds `message` into `sink` (without flushing), as frames of at most [`FRAGMENT_LEN`]
/// payload bytes when it is a longer binary message. The slices share `message`'s memory.
pub async fn feed(sink: &mut impl MessageSink, message: WsMessage) -> Result<(), WsError> {
    use futures_util::SinkExt as _;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    match message {
        WsMessage::Binary(data) if data.len() > FRAGMENT_LEN => {
            for (start, end) in fragments(data.len()) {
                let opcode = if start == 0 {
                    Data::Binary
                } else {
                    Data::Continue
                };
                let frame = Frame::message(
                    data.slice(start..end),
                    OpCode::Data(opcode),
                    end == data.len(),
                );
                sink.feed(WsMessage::Frame(frame)).await?;
            }
            Ok(())
        }
        message => sink.feed(message).await,
    }
}

/// The byte ranges of the frames a message of `len` bytes is sent in: [`FRAGMENT_LEN`] each,
/// the last one shorter, and one (empty) range for an empty message.
fn fragments(len: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..len.div_ceil(FRAGMENT_LEN).max(1))
        .map(move |i| (i * FRAGMENT_LEN, ((i + 1) * FRAGMENT_LEN).min(len)))
}

/// Writes `first` and whatever else `next` has ready at once (up to [`WRITE_BATCH`] messages
/// in all), then flushes once: under load many frames share one system call, and an idle
/// session still writes at once.
pub async fn write_batch(
    sink: &mut impl MessageSink,
    first: WsMessage,
    mut next: impl FnMut() -> Option<WsMessage>,
) -> Result<(), WsError> {
    use futures_util::SinkExt as _;
    feed(sink, first).await?;
    for _ in 1..WRITE_BATCH {
        match next() {
            Some(message) => feed(sink, message).await?,
            None => break,
        }
    }
    sink.flush().await
}

/// Checks the header count of a decoded message against [`MAX_HEADERS`].
pub fn check_headers(headers: &[Header]) -> Result<(), ProtocolError> {
    if headers.len() > MAX_HEADERS {
        return Err(ProtocolError::TooManyHeaders(headers.len()));
    }
    Ok(())
}

/// Whether `name` may be used as a channel: [`CHANNEL_LEN`] characters of `[A-Za-z0-9_-]`, not
/// starting with `_` (names starting with `_` are the relay's own, like `_hooks`).
pub fn validate_channel(name: &str) -> Result<(), String> {
    if !CHANNEL_LEN.contains(&name.len()) {
        return Err(format!(
            "channel name must be {} to {} characters long (got {} bytes)",
            CHANNEL_LEN.start(),
            CHANNEL_LEN.end(),
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "channel name may only use letters, digits, '_' and '-', not {bad:?}"
        ));
    }
    if name.starts_with('_') {
        return Err("channel names starting with '_' are reserved for the relay".into());
    }
    Ok(())
}

/// Message the relay sends when the CLI's protocol version differs from its own.
pub fn version_mismatch(relay: u32, client: u32) -> String {
    let newer = if client < relay {
        "hooks"
    } else {
        "hooks-relay"
    };
    format!(
        "protocol version mismatch: this relay speaks v{relay} and this hooks CLI speaks v{client}; \
         upgrade {newer} so both match"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_with_binary_header_and_body() {
        let message = RelayMessage::Request {
            id: RequestId(7),
            received_at_ms: 1,
            method: "POST".into(),
            target: "/a/b?x=1".into(),
            headers: vec![
                Header {
                    name: "x-dup".into(),
                    value: Bytes::from_static(b"one"),
                },
                Header {
                    name: "x-bin".into(),
                    value: Bytes::from_static(b"\xff\xfe latin"),
                },
            ],
            body_len: None,
            redelivered: false,
        };
        let body = b"\x00\x01\xffbody".as_slice();
        let frame = encode(&message, body);
        let (decoded, payload): (RelayMessage, Bytes) = decode(frame).unwrap();
        assert_eq!(decoded, message);
        assert_eq!(payload.as_ref(), body);
    }

    #[test]
    fn every_message_round_trips() {
        let headers = vec![Header {
            name: "content-type".into(),
            value: Bytes::from_static(b"text/plain"),
        }];
        let client = [
            ClientMessage::Hello {
                version: PROTOCOL_VERSION,
                channel: Some("abc".into()),
                respond: Respond::Status(202),
                timeout_ms: Some(5),
                offline: Some(Offline::Reject),
                token: Some(Token("t".into())),
                stream_bodies: true,
            },
            ClientMessage::Response {
                id: RequestId(3),
                status: 418,
                headers: headers.clone(),
            },
            ClientMessage::Ack { id: RequestId(4) },
            ClientMessage::Failed {
                id: RequestId(5),
                reason: "connection refused".into(),
            },
        ];
        for message in client {
            let (decoded, _) = decode::<ClientMessage>(encode(&message, b"")).unwrap();
            assert_eq!(decoded, message);
        }
        let relay = [
            RelayMessage::Hello {
                version: PROTOCOL_VERSION,
                channel: "abc".into(),
                url: "http://relay/abc".into(),
                respond: Respond::App,
                timeout_ms: 30_000,
                epoch: (1 << 53) - 1,
                max_body: Some(1 << 20),
            },
            RelayMessage::Request {
                id: RequestId(6),
                received_at_ms: 2,
                method: "PUT".into(),
                target: "/big".into(),
                headers: headers.clone(),
                body_len: Some(10 << 20),
                redelivered: true,
            },
            RelayMessage::Body { id: RequestId(6) },
            RelayMessage::Abort {
                id: RequestId(6),
                reason: "the sender closed the connection".into(),
            },
            RelayMessage::Error {
                message: "no".into(),
            },
        ];
        for message in relay {
            let (decoded, _) = decode::<RelayMessage>(encode(&message, b"")).unwrap();
            assert_eq!(decoded, message);
        }
    }

    #[test]
    fn a_request_sent_whole_does_not_mention_streaming() {
        // CLIs from before streaming read these frames too; they must not change.
        let request = |body_len| RelayMessage::Request {
            id: RequestId(1),
            received_at_ms: 1,
            method: "POST".into(),
            target: "/".into(),
            headers: Vec::new(),
            body_len,
            redelivered: false,
        };
        let frame = encode(&request(None), b"");
        let meta = std::str::from_utf8(&frame[4..]).unwrap();
        assert!(!meta.contains("body_len"), "{meta}");
        assert!(!meta.contains("redelivered"), "{meta}");
        let frame = encode(&request(Some(5)), b"");
        assert!(std::str::from_utf8(&frame[4..])
            .unwrap()
            .contains(r#""body_len":5"#));
    }

    #[test]
    fn a_redelivery_is_marked_in_its_frame_and_keeps_its_body() {
        let request = RelayMessage::Request {
            id: RequestId(9),
            received_at_ms: 5,
            method: "POST".into(),
            target: "/x".into(),
            headers: vec![Header {
                name: "x-a".into(),
                value: Bytes::from_static(b"\xff"),
            }],
            body_len: None,
            redelivered: false,
        };
        let body = b"\x00body\xff";
        let marked = mark_redelivered(encode(&request, body));
        let (decoded, payload) = decode::<RelayMessage>(marked).unwrap();
        let mut unmarked = decoded;
        let RelayMessage::Request { redelivered, .. } = &mut unmarked else {
            panic!("{unmarked:?}");
        };
        assert!(*redelivered);
        *redelivered = false;
        assert_eq!(unmarked, request, "the rest is unchanged");
        assert_eq!(payload.as_ref(), body);
        // Anything else is left alone.
        let body_frame = encode(&RelayMessage::Body { id: RequestId(9) }, b"piece");
        assert_eq!(mark_redelivered(body_frame.clone()), body_frame);
    }

    #[test]
    fn a_hello_from_a_relay_without_epochs_reads_as_epoch_0() {
        let hello = r#"{"type":"hello","version":1,"channel":"c","url":"http://r/c"}"#;
        let (message, _) = decode::<RelayMessage>(frame(hello)).unwrap();
        let RelayMessage::Hello { epoch, .. } = message else {
            panic!("{message:?}");
        };
        assert_eq!(epoch, 0);
    }

    #[test]
    fn a_payload_in_pieces_encodes_like_a_whole_one() {
        let message = ClientMessage::Ack { id: RequestId(1) };
        let pieces = bytes::Buf::chain(&b"\x00\x01first "[..], &b"second\xff"[..]);
        assert_eq!(
            encode_buf(&message, pieces),
            encode(&message, b"\x00\x01first second\xff")
        );
    }

    /// The exact bytes of every message: the wire format is a contract with CLIs and relays of
    /// other versions, so a change to how a message is declared must not change them.
    #[test]
    fn every_message_has_pinned_bytes() {
        let header = |name: &str, value: &'static [u8]| Header {
            name: name.into(),
            value: Bytes::from_static(value),
        };
        let pinned = |message: &dyn erased::Encode, meta: &str| {
            let frame = message.encode(b"\x00body");
            let mut expected = (meta.len() as u32).to_be_bytes().to_vec();
            expected.extend_from_slice(meta.as_bytes());
            expected.extend_from_slice(b"\x00body");
            assert_eq!(
                frame.as_ref(),
                expected.as_slice(),
                "{}",
                String::from_utf8_lossy(&frame)
            );
        };
        pinned(
            &ClientMessage::Hello {
                version: PROTOCOL_VERSION,
                channel: Some("abc".into()),
                respond: Respond::Status(202),
                timeout_ms: Some(5),
                offline: Some(Offline::Reject),
                token: Some(Token("t".into())),
                stream_bodies: true,
            },
            r#"{"type":"hello","version":1,"channel":"abc","respond":{"status":202},"timeout_ms":5,"offline":"reject","token":"t","stream_bodies":true}"#,
        );
        pinned(
            &ClientMessage::Hello {
                version: PROTOCOL_VERSION,
                channel: None,
                respond: Respond::App,
                timeout_ms: None,
                offline: None,
                token: None,
                stream_bodies: false,
            },
            r#"{"type":"hello","version":1,"channel":null,"respond":"app","timeout_ms":null,"offline":null,"token":null,"stream_bodies":false}"#,
        );
        pinned(
            &ClientMessage::Response {
                id: RequestId(3),
                status: 418,
                headers: vec![
                    header("content-type", b"text/plain"),
                    header("x-bin", b"\xff\x00"),
                ],
            },
            r#"{"type":"response","id":3,"status":418,"headers":[["content-type","text/plain"],["x-bin",[255,0]]]}"#,
        );
        pinned(
            &ClientMessage::Ack { id: RequestId(4) },
            r#"{"type":"ack","id":4}"#,
        );
        pinned(
            &ClientMessage::Failed {
                id: RequestId(5),
                reason: "connection refused".into(),
            },
            r#"{"type":"failed","id":5,"reason":"connection refused"}"#,
        );
        pinned(
            &RelayMessage::Hello {
                version: PROTOCOL_VERSION,
                channel: "abc".into(),
                url: "http://relay/abc".into(),
                respond: Respond::App,
                timeout_ms: 30_000,
                epoch: 7,
                max_body: Some(1 << 20),
            },
            r#"{"type":"hello","version":1,"channel":"abc","url":"http://relay/abc","respond":"app","timeout_ms":30000,"epoch":7,"max_body":1048576}"#,
        );
        pinned(
            &RelayMessage::Hello {
                version: PROTOCOL_VERSION,
                channel: "abc".into(),
                url: "http://relay/abc".into(),
                respond: Respond::Status(202),
                timeout_ms: 0,
                epoch: 0,
                max_body: None,
            },
            r#"{"type":"hello","version":1,"channel":"abc","url":"http://relay/abc","respond":{"status":202},"timeout_ms":0,"epoch":0}"#,
        );
        pinned(
            &RelayMessage::Request {
                id: RequestId(6),
                received_at_ms: 2,
                method: "PUT".into(),
                target: "/big?x=1".into(),
                headers: vec![header("x-a", b"1"), header("x-a", b"2")],
                body_len: None,
                redelivered: false,
            },
            r#"{"type":"request","id":6,"received_at_ms":2,"method":"PUT","target":"/big?x=1","headers":[["x-a","1"],["x-a","2"]]}"#,
        );
        pinned(
            &RelayMessage::Request {
                id: RequestId(6),
                received_at_ms: 2,
                method: "POST".into(),
                target: "".into(),
                headers: Vec::new(),
                body_len: Some(10 << 20),
                redelivered: true,
            },
            r#"{"type":"request","id":6,"received_at_ms":2,"method":"POST","target":"","headers":[],"body_len":10485760,"redelivered":true}"#,
        );
        pinned(
            &RelayMessage::Body { id: RequestId(6) },
            r#"{"type":"body","id":6}"#,
        );
        pinned(
            &RelayMessage::Abort {
                id: RequestId(6),
                reason: "gone".into(),
            },
            r#"{"type":"abort","id":6,"reason":"gone"}"#,
        );
        pinned(
            &RelayMessage::Error {
                message: "no \"such\" channel".into(),
            },
            r#"{"type":"error","message":"no \"such\" channel"}"#,
        );
    }

    /// Either direction's message, for [`every_message_has_pinned_bytes`].
    mod erased {
        pub trait Encode {
            fn encode(&self, payload: &[u8]) -> bytes::Bytes;
        }
        impl<M: serde::Serialize> Encode for M {
            fn encode(&self, payload: &[u8]) -> bytes::Bytes {
                super::encode(self, payload)
            }
        }
    }

    /// A frame carrying `meta` as its JSON and no body.
    fn frame(meta: &str) -> Bytes {
        let mut frame = BytesMut::new();
        frame.put_u32(meta.len() as u32);
        frame.put_slice(meta.as_bytes());
        frame.freeze()
    }

    #[test]
    fn messages_decode_with_defaults_unknown_fields_and_byte_array_values() {
        let hello = r#"{"type":"hello","version":1,"channel":null,"future":[1,2]}"#;
        let (message, _) = decode::<ClientMessage>(frame(hello)).unwrap();
        assert_eq!(
            message,
            ClientMessage::Hello {
                version: 1,
                channel: None,
                respond: Respond::App,
                timeout_ms: None,
                offline: None,
                token: None,
                stream_bodies: false,
            }
        );
        let response = r#"{"type":"response","id":9,"status":200,"headers":[["x-a",[255,0,104]]]}"#;
        let (message, _) = decode::<ClientMessage>(frame(response)).unwrap();
        let ClientMessage::Response { headers, .. } = message else {
            panic!("{message:?}");
        };
        assert_eq!(headers[0].value.as_ref(), b"\xff\x00h");
    }

    #[test]
    fn malformed_messages_are_errors() {
        for meta in [
            r#"{"id":9,"type":"ack"}"#,
            r#"{"type":"nonsense","id":9}"#,
            r#"{"type":"ack"}"#,
            r#"{}"#,
            r#"{"type":"response","id":9,"status":200,"headers":[["x-a"]]}"#,
            r#"{"type":"response","id":9,"status":200,"headers":[["x-a","b","c"]]}"#,
            r#"{"type":"response","id":9,"status":200,"headers":[["x-a",[256]]]}"#,
            r#"{"type":"response","id":9,"status":200,"headers":[["x-a",{}]]}"#,
            r#"["ack",9]"#,
        ] {
            assert!(
                decode::<ClientMessage>(frame(meta)).is_err(),
                "{meta} should not decode"
            );
        }
        let error = decode::<ClientMessage>(frame(r#"{"id":9,"type":"ack"}"#)).unwrap_err();
        assert!(error.to_string().contains("first field"), "{error}");
    }

    #[test]
    fn truncated_and_oversized_frames_are_errors() {
        assert!(matches!(
            decode::<ClientMessage>(Bytes::from_static(b"\x00\x00")),
            Err(ProtocolError::Truncated(2))
        ));
        assert!(matches!(
            decode::<ClientMessage>(Bytes::from_static(b"\x00\x00\x00\x09{}")),
            Err(ProtocolError::Truncated(6))
        ));
        assert!(matches!(
            decode::<ClientMessage>(Bytes::from_static(b"\xff\xff\xff\xff")),
            Err(ProtocolError::MetaTooLong(_))
        ));
        assert!(matches!(
            decode::<ClientMessage>(Bytes::from_static(b"\x00\x00\x00\x02{}")),
            Err(ProtocolError::BadMeta(_))
        ));
    }

    #[test]
    fn hop_by_hop_headers_are_dropped_and_repeats_kept_in_order() {
        let mut map = http::HeaderMap::new();
        map.append("x-dup", "1".parse().unwrap());
        map.append("connection", "keep-alive, x-private".parse().unwrap());
        map.append("x-private", "p".parse().unwrap());
        map.append("transfer-encoding", "chunked".parse().unwrap());
        map.append("x-dup", "2".parse().unwrap());
        map.append("host", "example.com".parse().unwrap());
        let kept: Vec<(String, Bytes)> = forwardable_headers(&map)
            .into_iter()
            .map(|h| (h.name, h.value))
            .collect();
        assert_eq!(
            kept,
            vec![
                ("x-dup".to_owned(), Bytes::from_static(b"1")),
                ("x-dup".to_owned(), Bytes::from_static(b"2")),
                ("host".to_owned(), Bytes::from_static(b"example.com")),
            ]
        );
    }

    #[test]
    fn tokens_never_show_in_debug_output() {
        let hello = ClientMessage::Hello {
            version: PROTOCOL_VERSION,
            channel: None,
            respond: Respond::App,
            timeout_ms: None,
            offline: None,
            token: Some(Token("s3cret-token".into())),
            stream_bodies: false,
        };
        let debug = format!("{hello:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("redacted"), "{debug}");
    }

    #[test]
    fn channel_names_are_validated() {
        assert!(validate_channel("my-app_1").is_ok());
        assert!(validate_channel("").is_err());
        assert!(validate_channel("_hooks").is_err());
        assert!(validate_channel("a/b").is_err());
        assert!(validate_channel(&"a".repeat(65)).is_err());
    }

    #[test]
    fn fragments_cover_a_message_exactly_once() {
        for len in [
            0,
            1,
            FRAGMENT_LEN - 1,
            FRAGMENT_LEN,
            FRAGMENT_LEN + 1,
            3 * FRAGMENT_LEN + 7,
        ] {
            let ranges: Vec<_> = fragments(len).collect();
            assert_eq!(ranges.first().map(|r| r.0), Some(0), "len {len}");
            assert_eq!(ranges.last().map(|r| r.1), Some(len), "len {len}");
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].1, pair[1].0, "len {len}: gap or overlap");
            }
            assert!(ranges
                .iter()
                .all(|(a, b)| b - a <= FRAGMENT_LEN && (b > a || len == 0)));
            assert_eq!(ranges.len(), len.div_ceil(FRAGMENT_LEN).max(1), "len {len}");
        }
    }

    /// Sends `data` from a WebSocket of `role` with [`write_batch`] (or as one frame, when
    /// `whole`) to a peer that takes frames of at most [`FRAGMENT_LEN`], and returns what the
    /// peer read.
    async fn send_through(
        role: tokio_tungstenite::tungstenite::protocol::Role,
        data: Bytes,
        whole: bool,
    ) -> Result<Bytes, tokio_tungstenite::tungstenite::Error> {
        use futures_util::{SinkExt as _, StreamExt as _};
        use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
        use tokio_tungstenite::tungstenite::Message;
        use tokio_tungstenite::WebSocketStream;
        let (a, b) = tokio::io::duplex(16 * 1024);
        let peer_role = match role {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
        let strict = WebSocketConfig::default()
            .max_frame_size(Some(FRAGMENT_LEN))
            .max_message_size(Some(64 << 20));
        let mut sender = WebSocketStream::from_raw_socket(a, role, None).await;
        let mut peer = WebSocketStream::from_raw_socket(b, peer_role, Some(strict)).await;
        let send = tokio::spawn(async move {
            let message = Message::Binary(data);
            if whole {
                sender.send(message).await
            } else {
                write_batch(&mut sender, message, || None).await
            }
        });
        let received = match peer.next().await {
            Some(Ok(Message::Binary(got))) => Ok(got),
            Some(Ok(other)) => panic!("expected a binary message, got {other:?}"),
            Some(Err(e)) => Err(e),
            None => panic!("the peer saw the stream end"),
        };
        // Dropping the peer ends a sender still blocked on a refused frame.
        drop(peer);
        let sent = send.await.expect("the sender panicked");
        // A refused frame may also fail the sender's write; the peer's verdict is what counts.
        if received.is_ok() {
            sent?;
        }
        received
    }

    #[tokio::test]
    async fn long_messages_go_out_in_fragments_that_the_peer_joins() {
        use tokio_tungstenite::tungstenite::protocol::Role;
        let data: Bytes = (0..3 * FRAGMENT_LEN + 7)
            .map(|i| (i * 31 % 251) as u8)
            .collect::<Vec<u8>>()
            .into();
        // Both directions: the relay (server) sends requests; the CLI (client) masks its frames.
        for role in [Role::Server, Role::Client] {
            let got = send_through(role, data.clone(), false).await.unwrap();
            assert_eq!(got, data, "{role:?}");
            // The peer's frame limit is real: the same message in one frame is refused.
            assert!(
                send_through(role, data.clone(), true).await.is_err(),
                "{role:?}"
            );
        }
        // Short messages are unchanged.
        let short = Bytes::from_static(b"\x00\x00\x00\x02{}");
        assert_eq!(
            send_through(Role::Client, short.clone(), false)
                .await
                .unwrap(),
            short
        );
    }
}
