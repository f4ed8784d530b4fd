//! Frames: a message and its payload in one binary WebSocket message (the layout is in the
//! module's opening comment), encoded and decoded.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use super::limits::{MAX_HEADERS, MAX_META_LEN};
use super::messages::{Header, RelayMessage};

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

/// Checks the header count of a decoded message against [`MAX_HEADERS`].
pub fn check_headers(headers: &[Header]) -> Result<(), ProtocolError> {
    if headers.len() > MAX_HEADERS {
        return Err(ProtocolError::TooManyHeaders(headers.len()));
    }
    Ok(())
}

/// `frame`, a [`RelayMessage::Request`] as the queue keeps it, with `redelivered` set: its meta
/// is written again, and the body copied after it. Only for redeliveries, which are rare. A
/// frame that is not a request comes back as it was.
pub fn mark_redelivered(frame: Bytes) -> Bytes {
    match decode::<RelayMessage>(frame.clone()) {
        Ok((RelayMessage::Request(mut request), body)) => {
            request.redelivered = true;
            encode(&RelayMessage::Request(request), &body)
        }
        _ => frame,
    }
}
