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
//!
//! The messages are in `messages.rs` (their hand-written decoders in `decode.rs`), frames in
//! `codec.rs`, the version and the named limits in `limits.rs`; [`session`] carries messages
//! over a WebSocket, typed, with the hello and the heartbeat's limits.

mod codec;
mod decode;
mod limits;
mod messages;
pub mod session;
#[cfg(test)]
mod tests;

pub use codec::{
    check_headers, decode, encode, encode_buf, frame_for, mark_redelivered, ProtocolError,
};
pub use limits::{
    max_frame_len, validate_channel, version_mismatch, CHANNEL_LEN, CHUNK_LEN, CONNECT_PATH,
    DEFAULT_MAX_BODY, FRAGMENT_LEN, HEALTH_PATH, HELLO_TIMEOUT, MAX_HEADERS, MAX_META_LEN,
    MAX_STREAMS, METRICS_PATH, PING_INTERVAL, PROTOCOL_VERSION, RESERVED_PREFIX, SILENCE_LIMIT,
    STREAM_FROM,
};
pub use messages::{
    Abort, Ack, Body, ClientHello, ClientMessage, Error, Failed, Header, Offline, RelayHello,
    RelayMessage, Request, RequestId, Respond, Response, Token,
};
