//! The relay ⇄ CLI wire protocol: messages, frame codec and the limits that bound them.
//!
//! This is the only place that knows the wire format; the relay and the `hooks` CLI both use it.
//!
//! One WebSocket carries one session. Every protocol message is one binary WebSocket message laid
//! out as
//!
//! ```text
//! u32 big-endian  meta length (N)
//! N bytes         meta: the message, binary for the messages of every webhook (request, body,
//!                 abort, response, ack, failed: a kind byte, the id, fixed fields and
//!                 length-prefixed bytes; see `binary.rs`), JSON for the hellos and the relay's
//!                 error (serde, internally tagged by "type", so its first byte is `{`)
//! rest            payload: the raw body bytes of a request or response (may be empty)
//! ```
//!
//! The hellos stay JSON so that any version of either side can read the other's and answer a
//! mismatch with a sentence (see [`version_mismatch`]); version 1 sent every message as JSON,
//! which version 2 still reads (a relay's queue keeps frames across an upgrade).
//!
//! Bodies are never base64-encoded or re-encoded: the payload is the body, byte for byte, and
//! decoding hands it out as a zero-copy slice of the received frame.
//!
//! A long request body may instead follow its request in pieces ([`RelayMessage::Body`]), so
//! that the CLI forwards it while it is still arriving: only to a CLI whose hello asked for it
//! (`stream_bodies`), and only for bodies of at least [`STREAM_FROM`] bytes (see there).
//!
//! The messages are in `messages.rs` (their hand-written JSON decoders in `decode.rs`, their
//! binary metas in `binary.rs`), frames in `codec.rs`, the version and the named limits in
//! `limits.rs`; [`session`] carries messages over a WebSocket, typed, with the hello and the
//! heartbeat's limits.

mod binary;
mod codec;
mod decode;
mod limits;
mod messages;
pub mod session;
#[cfg(test)]
mod tests;

pub use binary::{request_frame, response_frame, RequestHead};
pub use codec::{
    check_headers, decode, encode, encode_buf, frame_for, mark_redelivered, payload_start, with_id,
    Decode, Encode, ProtocolError,
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
