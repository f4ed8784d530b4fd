//! Frames: a message and its payload in one binary WebSocket message (the layout is in the
//! module's opening comment), encoded and decoded. A message's meta is binary for the messages
//! of every webhook (`binary.rs`) and JSON for the hellos and the relay's error.

use bytes::{BufMut, Bytes, BytesMut};

use super::binary;
use super::limits::{MAX_HEADERS, MAX_META_LEN};
use super::messages::{ClientMessage, Header, RelayMessage, Request, RequestId};

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
    /// A binary meta section is not a message of this protocol; what is wrong with it.
    #[error("frame meta section is not a valid message: {0}")]
    BadFields(&'static str),
    /// A message carries more than [`MAX_HEADERS`] headers.
    #[error("message carries {0} headers, more than the {MAX_HEADERS} allowed")]
    TooManyHeaders(usize),
}

/// A message one side sends: it writes its meta into a frame.
pub trait Encode {
    /// Writes this message's meta section at the end of `frame`.
    fn put_meta(&self, frame: &mut BytesMut);
}

/// A message one side receives: it reads itself from a frame's meta section.
pub trait Decode: Sized {
    /// Reads the message in `meta`, a slice of the frame (so that header values can share its
    /// memory).
    fn from_meta(meta: Bytes) -> Result<Self, ProtocolError>;
}

impl Encode for RelayMessage {
    fn put_meta(&self, frame: &mut BytesMut) {
        if !binary::put_relay_message(frame, self) {
            put_json(frame, self);
        }
    }
}

impl Encode for ClientMessage {
    fn put_meta(&self, frame: &mut BytesMut) {
        if !binary::put_client_message(frame, self) {
            put_json(frame, self);
        }
    }
}

/// A meta written by hand as JSON (tests that play a hostile or an older peer).
impl Encode for serde_json::Value {
    fn put_meta(&self, frame: &mut BytesMut) {
        put_json(frame, self);
    }
}

impl Decode for RelayMessage {
    fn from_meta(meta: Bytes) -> Result<Self, ProtocolError> {
        match binary::is_binary(&meta) {
            true => binary::relay_message(meta),
            false => Ok(serde_json::from_slice(&meta)?),
        }
    }
}

impl Decode for ClientMessage {
    fn from_meta(meta: Bytes) -> Result<Self, ProtocolError> {
        match binary::is_binary(&meta) {
            true => binary::client_message(meta),
            false => Ok(serde_json::from_slice(&meta)?),
        }
    }
}

fn put_json<M: serde::Serialize>(frame: &mut BytesMut, message: &M) {
    serde_json::to_writer(frame.writer(), message)
        .expect("protocol messages always serialize to JSON");
}

/// Encodes `message` and its body `payload` into one frame.
pub fn encode<M: Encode>(message: &M, payload: &[u8]) -> Bytes {
    encode_buf(message, payload)
}

/// [`encode`] with the payload in pieces (e.g. a request body as it arrived), copied once,
/// straight into the frame.
pub fn encode_buf<M: Encode>(message: &M, mut payload: impl bytes::Buf) -> Bytes {
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
pub fn frame_for<M: Encode>(message: &M, payload_len: usize) -> BytesMut {
    // Most metas are short: an id, a status, a few headers.
    let mut frame = BytesMut::with_capacity(4 + 128 + payload_len);
    frame.put_u32(0);
    message.put_meta(&mut frame);
    let meta_len = u32::try_from(frame.len() - 4).expect("meta is far below 4 GiB");
    frame[..4].copy_from_slice(&meta_len.to_be_bytes());
    frame
}

/// Decodes one frame into its message and payload; the payload (and a binary meta's header
/// values) share the frame's memory.
pub fn decode<M: Decode>(frame: Bytes) -> Result<(M, Bytes), ProtocolError> {
    let start = payload_start(&frame)?;
    let message = M::from_meta(frame.slice(4..start))?;
    Ok((message, frame.slice(start..)))
}

/// Where `frame`'s payload starts: after its length prefix and meta section, which is read
/// no further than its length.
pub fn payload_start(frame: &[u8]) -> Result<usize, ProtocolError> {
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
    Ok(4 + meta_len)
}

/// Checks the header count of a decoded message against [`MAX_HEADERS`].
pub fn check_headers(headers: &[Header]) -> Result<(), ProtocolError> {
    if headers.len() > MAX_HEADERS {
        return Err(ProtocolError::TooManyHeaders(headers.len()));
    }
    Ok(())
}

/// `frame`, a [`RelayMessage::Request`], with its id set to `id` and `redelivered` as given
/// (a cluster's store gives the id once it has the frame): the bytes written over in a copy of
/// a binary frame, a JSON one decoded and written again. `None` when `frame` is not a request.
pub fn with_id(frame: &Bytes, id: RequestId, redelivered: bool) -> Option<Bytes> {
    binary::with_id(frame, id, redelivered).or_else(|| {
        rewrite_json(frame, |request| {
            request.id = id;
            request.redelivered = redelivered;
        })
    })
}

/// `frame`, a [`RelayMessage::Request`] as the queue keeps it, with `redelivered` set: one bit
/// of its meta is set in a copy of the frame (a frame of the earlier, JSON layout is decoded and
/// written again). Only for redeliveries, which are rare. A frame that is not a request comes
/// back as it was.
pub fn mark_redelivered(frame: Bytes) -> Bytes {
    binary::mark_redelivered(&frame)
        .or_else(|| rewrite_json(&frame, |request| request.redelivered = true))
        .unwrap_or(frame)
}

/// `frame`, a request of the earlier, JSON layout, decoded, changed by `change` and written
/// again; `None` when it is not one.
fn rewrite_json(frame: &Bytes, change: impl FnOnce(&mut Request)) -> Option<Bytes> {
    match decode::<RelayMessage>(frame.clone()) {
        Ok((RelayMessage::Request(mut request), body)) => {
            change(&mut request);
            Some(encode(&RelayMessage::Request(request), &body))
        }
        _ => None,
    }
}
