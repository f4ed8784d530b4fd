//! The protocol's version and the names and numbers that bound it: its paths, sizes, counts and
//! timeouts, what a channel may be called, and the sentence for a version mismatch.

use std::time::Duration;

/// Bodies a sender declares (`Content-Length`) at least this long are streamed to a CLI that
/// accepts it ([`RelayMessage::Body`]): the relay passes each piece on as it arrives and the
/// CLI forwards it to the app at once, so the three transfers (sender to relay, relay to CLI,
/// CLI to app) overlap instead of following each other. Shorter bodies go whole in their
/// request's frame, which costs one message rather than several.
///
/// [`RelayMessage::Body`]: super::RelayMessage::Body
pub const STREAM_FROM: usize = 256 * 1024;

/// Largest piece of a streamed body in one [`RelayMessage::Body`] message: with its meta, one
/// WebSocket frame ([`FRAGMENT_LEN`]).
///
/// [`RelayMessage::Body`]: super::RelayMessage::Body
pub const CHUNK_LEN: usize = FRAGMENT_LEN - 256;

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

/// Most requests one session streams at once; a relay sends further long bodies whole while
/// this many are under way, and a CLI ends a session that opens more.
pub const MAX_STREAMS: usize = 16;

/// Version of this protocol; both sides send it in their hello and refuse a mismatch. Version 2
/// sends the messages of every webhook with binary metas (version 1 sent JSON).
pub const PROTOCOL_VERSION: u32 = 2;

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
