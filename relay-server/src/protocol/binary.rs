//! The binary meta of the messages that travel for every webhook (a request, a piece of its body,
//! an abort; the app's response, an acknowledgement, a failure): fixed-size fields and
//! length-prefixed bytes, written without a serializer and read without a parser, header values
//! as slices of the received frame. The hellos and the relay's error stay JSON (`codec.rs`).
//!
//! Layout (integers big-endian, as the frame's length prefix is):
//!
//! ```text
//! u8   kind         1 request, 2 body, 3 abort (from the relay); 4 response, 5 ack, 6 failed
//! u64  id
//! then, by kind:
//!   request   u64 received_at_ms, u8 flags (1: redelivered, 2: body_len follows),
//!             [u64 body_len], bytes method, bytes target, headers
//!   response  u16 status, headers
//!   abort     bytes reason            failed   bytes reason
//!   body, ack nothing more
//! bytes     = u32 length, then that many bytes (text fields are UTF-8)
//! headers   = u32 count (at most MAX_HEADERS), then per header: bytes name, bytes value
//! ```
//!
//! A JSON meta starts with `{` (0x7B), never a kind, so a frame says which it is by its first
//! byte; frames of the earlier layout (JSON for every message), kept in a relay's queue across
//! an upgrade, still decode.
//!
//! Why: decoding and encoding JSON metas cost the relay about 14,000 instructions per webhook
//! and the CLI about 16,000 (issue 24's profile), most of it for the header list, each of
//! whose values was also copied into an allocation of its own.

use bytes::{BufMut, Bytes, BytesMut};

use super::codec::ProtocolError;
use super::limits::MAX_HEADERS;
use super::messages::{
    Abort, Ack, Body, ClientMessage, Failed, Header, RelayMessage, Request, RequestId, Response,
};

/// The first byte of a binary meta: which message follows.
mod kind {
    pub const REQUEST: u8 = 1;
    pub const BODY: u8 = 2;
    pub const ABORT: u8 = 3;
    pub const RESPONSE: u8 = 4;
    pub const ACK: u8 = 5;
    pub const FAILED: u8 = 6;
}

/// A request's flags: it was sent before (see [`Request::redelivered`]).
const REDELIVERED: u8 = 1;
/// A request's flags: its body follows in pieces, `body_len` bytes (see [`Request::body_len`]).
const HAS_BODY_LEN: u8 = 2;

/// Where a request's id is in its frame: after the frame's meta length and the kind.
const REQUEST_ID_AT: usize = 4 + 1;

/// Where a request's flags are in its frame: after the frame's meta length, the kind, the id
/// and `received_at_ms`. A redelivery sets a bit there ([`mark_redelivered`]).
const REQUEST_FLAGS_AT: usize = 4 + 1 + 8 + 8;

/// Whether `meta` (a frame's meta section) is binary rather than JSON.
pub(super) fn is_binary(meta: &[u8]) -> bool {
    meta.first().is_some_and(|&first| first != b'{')
}

/// The request fields that are not its headers, as [`request_frame`] writes them.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// See [`Request::id`].
    pub id: RequestId,
    /// See [`Request::received_at_ms`].
    pub received_at_ms: u64,
    /// See [`Request::method`].
    pub method: &'a str,
    /// See [`Request::target`].
    pub target: &'a str,
    /// See [`Request::body_len`].
    pub body_len: Option<u64>,
    /// See [`Request::redelivered`].
    pub redelivered: bool,
}

/// The start of a request's frame (its length prefix and meta) written straight from borrowed
/// fields and headers, with room for `payload_len` payload bytes after it: the relay frames
/// what it read without building a [`Request`] first. `headers` gives the header list each
/// time it is called (it is walked twice: to size the frame, then to write it).
pub fn request_frame<'h, I>(
    head: &RequestHead<'_>,
    headers: impl Fn() -> I,
    payload_len: usize,
) -> BytesMut
where
    I: Iterator<Item = (&'h str, &'h [u8])>,
{
    let meta_len = 1
        + 8
        + 8
        + 1
        + head.body_len.map_or(0, |_| 8)
        + 4
        + head.method.len()
        + 4
        + head.target.len()
        + 4
        + headers()
            .map(|(name, value)| 8 + name.len() + value.len())
            .sum::<usize>();
    let mut frame = BytesMut::with_capacity(4 + meta_len + payload_len);
    frame.put_u32(len32(meta_len));
    put_request_head(&mut frame, head);
    put_headers(&mut frame, headers());
    debug_assert_eq!(frame.len(), 4 + meta_len);
    frame
}

/// A response's frame written from borrowed headers and body: the CLI answers without cloning
/// the app's headers into a [`Response`].
pub fn response_frame(id: RequestId, status: u16, headers: &[Header], body: &[u8]) -> Bytes {
    let meta_len = 1
        + 8
        + 2
        + 4
        + headers
            .iter()
            .map(|h| 8 + h.name.len() + h.value.len())
            .sum::<usize>();
    let mut frame = BytesMut::with_capacity(4 + meta_len + body.len());
    frame.put_u32(len32(meta_len));
    frame.put_u8(kind::RESPONSE);
    frame.put_u64(id.0);
    frame.put_u16(status);
    put_headers(
        &mut frame,
        headers.iter().map(|h| (h.name.as_str(), &h.value[..])),
    );
    frame.put_slice(body);
    frame.freeze()
}

/// `frame`, a binary request frame, with its id set to `id` and its redelivered flag as given:
/// a copy with those bytes written over; `None` if it is not one.
pub(super) fn with_id(frame: &Bytes, id: RequestId, redelivered: bool) -> Option<Bytes> {
    let mut copy = request_copy(frame)?;
    copy[REQUEST_ID_AT..REQUEST_ID_AT + 8].copy_from_slice(&id.0.to_be_bytes());
    match redelivered {
        true => copy[REQUEST_FLAGS_AT] |= REDELIVERED,
        false => copy[REQUEST_FLAGS_AT] &= !REDELIVERED,
    }
    Some(copy.freeze())
}

/// `frame`, a binary request frame, with its redelivered flag set; `None` if it is not one.
/// The frame is copied once, its meta and body untouched but for that bit.
pub(super) fn mark_redelivered(frame: &Bytes) -> Option<Bytes> {
    let mut marked = request_copy(frame)?;
    marked[REQUEST_FLAGS_AT] |= REDELIVERED;
    Some(marked.freeze())
}

/// A copy of `frame` to write over, if it is a binary request frame.
fn request_copy(frame: &Bytes) -> Option<BytesMut> {
    let meta = frame.get(4..)?;
    if !is_binary(meta) || meta[0] != kind::REQUEST || frame.len() <= REQUEST_FLAGS_AT {
        return None;
    }
    Some(BytesMut::from(&frame[..]))
}

/// Writes `message`'s binary meta into `frame`; `false` for the messages whose meta is JSON
/// (the hello and the relay's error).
pub(super) fn put_relay_message(frame: &mut BytesMut, message: &RelayMessage) -> bool {
    match message {
        RelayMessage::Request(request) => {
            let head = RequestHead {
                id: request.id,
                received_at_ms: request.received_at_ms,
                method: &request.method,
                target: &request.target,
                body_len: request.body_len,
                redelivered: request.redelivered,
            };
            put_request_head(frame, &head);
            put_headers(frame, header_pairs(&request.headers));
        }
        RelayMessage::Body(Body { id }) => {
            frame.put_u8(kind::BODY);
            frame.put_u64(id.0);
        }
        RelayMessage::Abort(Abort { id, reason }) => {
            frame.put_u8(kind::ABORT);
            frame.put_u64(id.0);
            put_bytes(frame, reason.as_bytes());
        }
        RelayMessage::Hello(_) | RelayMessage::Error(_) => return false,
    }
    true
}

/// Writes `message`'s binary meta into `frame`; `false` for the hello, whose meta is JSON.
pub(super) fn put_client_message(frame: &mut BytesMut, message: &ClientMessage) -> bool {
    match message {
        ClientMessage::Response(Response {
            id,
            status,
            headers,
        }) => {
            frame.put_u8(kind::RESPONSE);
            frame.put_u64(id.0);
            frame.put_u16(*status);
            put_headers(frame, header_pairs(headers));
        }
        ClientMessage::Ack(Ack { id }) => {
            frame.put_u8(kind::ACK);
            frame.put_u64(id.0);
        }
        ClientMessage::Failed(Failed { id, reason }) => {
            frame.put_u8(kind::FAILED);
            frame.put_u64(id.0);
            put_bytes(frame, reason.as_bytes());
        }
        ClientMessage::Hello(_) => return false,
    }
    true
}

/// Reads a binary meta from the relay.
pub(super) fn relay_message(meta: Bytes) -> Result<RelayMessage, ProtocolError> {
    let mut fields = Fields::new(meta);
    let kind = fields.u8()?;
    let id = RequestId(fields.u64()?);
    let message = match kind {
        kind::REQUEST => {
            let received_at_ms = fields.u64()?;
            let flags = fields.u8()?;
            if flags & !(REDELIVERED | HAS_BODY_LEN) != 0 {
                return Err(ProtocolError::BadFields("a request has unknown flags"));
            }
            let body_len = match flags & HAS_BODY_LEN {
                0 => None,
                _ => Some(fields.u64()?),
            };
            RelayMessage::Request(Request {
                id,
                received_at_ms,
                method: fields.text()?,
                target: fields.text()?,
                headers: fields.headers()?,
                body_len,
                redelivered: flags & REDELIVERED != 0,
            })
        }
        kind::BODY => RelayMessage::Body(Body { id }),
        kind::ABORT => RelayMessage::Abort(Abort {
            id,
            reason: fields.text()?,
        }),
        _ => return Err(ProtocolError::BadFields("not a message from the relay")),
    };
    fields.end()?;
    Ok(message)
}

/// Reads a binary meta from the CLI.
pub(super) fn client_message(meta: Bytes) -> Result<ClientMessage, ProtocolError> {
    let mut fields = Fields::new(meta);
    let kind = fields.u8()?;
    let id = RequestId(fields.u64()?);
    let message = match kind {
        kind::RESPONSE => ClientMessage::Response(Response {
            id,
            status: fields.u16()?,
            headers: fields.headers()?,
        }),
        kind::ACK => ClientMessage::Ack(Ack { id }),
        kind::FAILED => ClientMessage::Failed(Failed {
            id,
            reason: fields.text()?,
        }),
        _ => return Err(ProtocolError::BadFields("not a message from the CLI")),
    };
    fields.end()?;
    Ok(message)
}

fn put_request_head(frame: &mut BytesMut, head: &RequestHead<'_>) {
    frame.put_u8(kind::REQUEST);
    frame.put_u64(head.id.0);
    frame.put_u64(head.received_at_ms);
    let mut flags = 0;
    if head.redelivered {
        flags |= REDELIVERED;
    }
    if head.body_len.is_some() {
        flags |= HAS_BODY_LEN;
    }
    frame.put_u8(flags);
    if let Some(len) = head.body_len {
        frame.put_u64(len);
    }
    put_bytes(frame, head.method.as_bytes());
    put_bytes(frame, head.target.as_bytes());
}

fn header_pairs(headers: &[Header]) -> impl Iterator<Item = (&str, &[u8])> + Clone {
    headers.iter().map(|h| (h.name.as_str(), &h.value[..]))
}

/// Writes the count, then each header. The count is written first and set once they are all
/// in, so the headers are walked once.
fn put_headers<'h>(frame: &mut BytesMut, headers: impl Iterator<Item = (&'h str, &'h [u8])>) {
    let at = frame.len();
    frame.put_u32(0);
    let mut count = 0usize;
    for (name, value) in headers {
        put_bytes(frame, name.as_bytes());
        put_bytes(frame, value);
        count += 1;
    }
    frame[at..at + 4].copy_from_slice(&len32(count).to_be_bytes());
}

fn put_bytes(frame: &mut BytesMut, bytes: &[u8]) {
    frame.put_u32(len32(bytes.len()));
    frame.put_slice(bytes);
}

fn len32(len: usize) -> u32 {
    u32::try_from(len).expect("a message's fields are far below 4 GiB")
}

/// A binary meta being read, field by field; every length is checked against what is left.
struct Fields {
    meta: Bytes,
    at: usize,
}

impl Fields {
    fn new(meta: Bytes) -> Self {
        Fields { meta, at: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], ProtocolError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.meta.len())
            .ok_or(ProtocolError::BadFields(
                "the meta section ends inside a field",
            ))?;
        let field = &self.meta[self.at..end];
        self.at = end;
        Ok(field)
    }

    fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, ProtocolError> {
        let field = self.take(2)?;
        Ok(u16::from_be_bytes([field[0], field[1]]))
    }

    fn u32(&mut self) -> Result<u32, ProtocolError> {
        let field = self.take(4)?;
        Ok(u32::from_be_bytes(field.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Result<u64, ProtocolError> {
        let field = self.take(8)?;
        Ok(u64::from_be_bytes(field.try_into().expect("8 bytes")))
    }

    /// Length-prefixed bytes, sharing the frame's memory.
    fn bytes(&mut self) -> Result<Bytes, ProtocolError> {
        let len = self.u32()? as usize;
        let start = self.at;
        self.take(len)?;
        Ok(self.meta.slice(start..start + len))
    }

    /// Length-prefixed UTF-8 text.
    fn text(&mut self) -> Result<String, ProtocolError> {
        let len = self.u32()? as usize;
        let field = self.take(len)?;
        std::str::from_utf8(field)
            .map(str::to_owned)
            .map_err(|_| ProtocolError::BadFields("a text field is not UTF-8"))
    }

    fn headers(&mut self) -> Result<Vec<Header>, ProtocolError> {
        let count = self.u32()? as usize;
        if count > MAX_HEADERS {
            return Err(ProtocolError::TooManyHeaders(count));
        }
        let mut headers = Vec::with_capacity(count);
        for _ in 0..count {
            let name = self.text()?;
            let value = self.bytes()?;
            headers.push(Header { name, value });
        }
        Ok(headers)
    }

    /// Nothing may follow the last field.
    fn end(self) -> Result<(), ProtocolError> {
        match self.at == self.meta.len() {
            true => Ok(()),
            false => Err(ProtocolError::BadFields(
                "the meta section has bytes after its last field",
            )),
        }
    }
}
