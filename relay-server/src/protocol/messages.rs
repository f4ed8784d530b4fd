//! The messages of the protocol: one enum per direction, each variant wrapping one struct that
//! holds its fields. The struct is declared once and serves the encoder (serde's derive) and the
//! tag-first decoder (`decode.rs`) alike.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

#[cfg(doc)]
use super::limits::{CHUNK_LEN, PROTOCOL_VERSION, STREAM_FROM};

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

/// Messages the CLI sends to the relay.
///
/// On the wire an object whose first field, `"type"`, names the variant (`"hello"`,
/// `"response"`, …), followed by the fields of the variant's struct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// First message of a session.
    Hello(ClientHello),
    /// The app's response to a request; the frame's payload is the response body.
    Response(Response),
    /// The CLI has recorded this request: the relay may forget it and will not redeliver it.
    Ack(Ack),
    /// The CLI could not get a response from the app; the relay answers the sender `502`.
    Failed(Failed),
}

/// The CLI's hello: the protocol version and the channel the CLI wants (`None` asks the relay
/// for a fresh random one), with how the relay should treat that channel's webhooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientHello {
    /// The CLI's [`PROTOCOL_VERSION`].
    pub version: u32,
    /// Channel name to claim, or `None` for a random unguessable one.
    pub channel: Option<String>,
    /// How the relay answers senders on this channel.
    #[serde(default)]
    pub respond: Respond,
    /// How long a sender waits for the app in [`Respond::App`] mode, in milliseconds; `None`
    /// keeps the relay's default.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// What the relay does with webhooks while no CLI is attached; `None` keeps the relay's
    /// default.
    #[serde(default)]
    pub offline: Option<Offline>,
    /// The CLI's token, for relays that require one.
    #[serde(default)]
    pub token: Option<Token>,
    /// The CLI takes long request bodies in pieces ([`RelayMessage::Body`]) and forwards each as
    /// it arrives. A relay that does not know the field ignores it, and sends bodies whole.
    #[serde(default)]
    pub stream_bodies: bool,
}

/// The app's response to a request ([`ClientMessage::Response`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The request this answers.
    pub id: RequestId,
    /// HTTP status code from the app.
    pub status: u16,
    /// Response headers in the order the app sent them, hop-by-hop headers removed.
    pub headers: Vec<Header>,
}

/// The CLI has recorded a request ([`ClientMessage::Ack`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The request recorded.
    pub id: RequestId,
}

/// The CLI could not get a response from the app ([`ClientMessage::Failed`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failed {
    /// The request this answers.
    pub id: RequestId,
    /// One line saying what went wrong, e.g. "connection refused by localhost:3000".
    pub reason: String,
}

/// Messages the relay sends to the CLI; on the wire like [`ClientMessage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RelayMessage {
    /// Answer to the CLI's hello: the session is attached to a channel.
    Hello(RelayHello),
    /// A webhook for the CLI to forward; the frame's payload is the request body.
    Request(Request),
    /// The next piece of a streamed request's body (see [`Request::body_len`]); the frame's
    /// payload is the piece, at most [`CHUNK_LEN`] bytes. The pieces come in order, and the
    /// request is whole once they add up to `body_len`.
    Body(Body),
    /// The rest of a streamed request's body will not come: the sender went away or broke a
    /// limit. The relay has not stored the request; the CLI forgets it.
    Abort(Abort),
    /// The relay refuses or ends the session.
    Error(Error),
}

/// The relay's hello: the session is attached to `channel`, reachable at `url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayHello {
    /// The relay's [`PROTOCOL_VERSION`].
    pub version: u32,
    /// The channel this session now holds.
    pub channel: String,
    /// The public URL that webhooks for this channel are sent to.
    pub url: String,
    /// How the relay answers senders on this channel.
    #[serde(default)]
    pub respond: Respond,
    /// How long senders wait for the app in [`Respond::App`] mode, in milliseconds.
    #[serde(default)]
    pub timeout_ms: u64,
    /// The epoch of the relay's queue: a random number made with the queue and kept in it (a
    /// queue in memory gets a fresh one each time its relay starts). Request ids are unique
    /// within an epoch, so a CLI remembers the requests it handled by relay URL, epoch and id:
    /// a relay that comes back on the same URL with an empty queue counts its ids from 1 again,
    /// in a new epoch. Requests of another epoch than the session's are not the relay's to hear
    /// about: a CLI neither answers nor acknowledges them on this session. `0` (what a relay
    /// without the field is read as) means no epoch.
    #[serde(default)]
    pub epoch: u64,
    /// The relay's `--max-body`: it answers `502` for a response body over it, and does not
    /// read a frame much larger, so the CLI reports a larger answer from the app as failed
    /// instead of sending it. Absent from older relays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body: Option<u64>,
}

/// A webhook for the CLI to forward ([`RelayMessage::Request`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Identifies this request within the queue's epoch (see [`RelayHello::epoch`]); the CLI
    /// answers with the same id. Ids grow and are never reused within an epoch (the queue
    /// commits a reserve of ids before it hands them out), so a CLI can drop repeats.
    pub id: RequestId,
    /// When the relay received it, in milliseconds since the Unix epoch (a queued request is
    /// delivered later than that).
    pub received_at_ms: u64,
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path after the channel, with the query: `/a/b?x=1` for `/<channel>/a/b?x=1`.
    pub target: String,
    /// Request headers in the order the sender sent them, hop-by-hop headers removed.
    pub headers: Vec<Header>,
    /// Set when the body is not this frame's payload (which is then empty) but follows in
    /// [`RelayMessage::Body`] messages, this many bytes in all; only to a CLI whose hello set
    /// `stream_bodies`, and only for a body the sender declared at least [`STREAM_FROM`] long.
    /// A redelivered request always carries its body whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_len: Option<u64>,
    /// The relay sent this request to a session before (which did not acknowledge it), or it
    /// was pending when the relay started and may have been: the app may have seen it. A CLI
    /// that has no record of handling it forwards it and says so. Absent when false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub redelivered: bool,
}

/// A piece of a streamed request's body ([`RelayMessage::Body`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Body {
    /// The request the piece belongs to.
    pub id: RequestId,
}

/// A streamed request abandoned ([`RelayMessage::Abort`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Abort {
    /// The request abandoned.
    pub id: RequestId,
    /// Why, in a few words: "the sender's connection failed before the body was all in".
    pub reason: String,
}

/// The relay refuses or ends the session ([`RelayMessage::Error`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Error {
    /// What went wrong and what to do about it: a sentence for the user.
    pub message: String,
}

fn is_false(value: &bool) -> bool {
    !value
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
