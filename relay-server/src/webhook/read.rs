//! Reading a webhook's body into its request's frame: whole in memory, or, for a body declared
//! long, into the queue's frame file as it arrives and (to a session that takes it) on to the
//! CLI in pieces. Every byte held counts against the relay's memory budget.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tracing::debug;

use super::Webhook;
use crate::answer::{self, text, Body};
use crate::backend::Local;
use crate::budget::Budget;
use crate::channel::Stream;
use crate::protocol::{self, RelayMessage, RequestId};
use crate::queue::{Frame, FrameFile, QueueError};
use crate::relay::Relay;

/// The second stage: reads `webhook`'s body (see [`read_streamed`] and [`read_whole`]). `Err` is
/// the answer to a sender whose body could not be read; a stream of it to the session is
/// aborted.
pub(super) async fn read_body(
    relay: &Relay,
    local: &Local,
    webhook: &mut Webhook,
    body: Incoming,
) -> Result<Read, Response<Body>> {
    let reading = Reading {
        id: webhook.id,
        head: std::mem::take(&mut webhook.head),
        budget: &relay.budget,
        timeout: relay.config.read_timeout,
    };
    // A body declared long goes to its frame file as it arrives (in a durable queue), whether
    // or not it is streamed to a CLI: the relay then holds a few pieces of it, not all of it.
    let read = match webhook.declared {
        Some(len) if webhook.stream.is_some() || len >= crate::queue::FILE_FROM as u64 => {
            let file = local.queue.frame_file(webhook.id).await;
            read_streamed(body, reading, len as usize, &mut webhook.stream, file).await
        }
        _ => read_whole(body, reading, webhook.declared, relay.config.max_body).await,
    };
    match read {
        Ok(read) => {
            relay
                .metrics
                .request_bytes
                .fetch_add(read.body_len as u64, Ordering::Relaxed);
            Ok(read)
        }
        Err(e) => {
            if let Some(stream) = webhook.stream.take() {
                stream.abort(e.reason());
            }
            Err(refusal(relay, e))
        }
    }
}

/// The answer to a sender whose body could not be read.
fn refusal(relay: &Relay, e: ReadError) -> Response<Body> {
    match e {
        ReadError::TooLarge => answer::too_large(relay.config.max_body),
        ReadError::Broken(e) => {
            debug!(error = %e, "could not read request body");
            text(StatusCode::BAD_REQUEST, "could not read the request body")
        }
        ReadError::TimedOut => text(
            StatusCode::REQUEST_TIMEOUT,
            &format!(
                "the request body did not arrive within {} s (--read-timeout)",
                relay.config.read_timeout.as_secs()
            ),
        ),
        ReadError::NotStored(e) => answer::not_stored(Err(QueueError::File(e))),
        ReadError::OverMemory => answer::over_memory(relay.budget.limit()),
    }
}

/// Why a webhook's body could not be read.
enum ReadError {
    /// Longer than `--max-body`.
    TooLarge,
    /// The connection failed or the sender sent less (or more) than it declared.
    Broken(String),
    /// Not all in within `--read-timeout`.
    TimedOut,
    /// Its frame file could not be written.
    NotStored(std::io::Error),
    /// The relay's memory budget (`--max-memory`) has no room for it.
    OverMemory,
}

impl ReadError {
    /// A few words for the CLI when a streamed body is abandoned.
    fn reason(&self) -> &'static str {
        match self {
            ReadError::TooLarge => "the body exceeds the relay's --max-body",
            ReadError::Broken(_) => "the sender's connection failed before the body was all in",
            ReadError::TimedOut => "the body did not all arrive within the relay's --read-timeout",
            ReadError::NotStored(_) => "the relay could not store it",
            ReadError::OverMemory => "the relay's memory budget (--max-memory) is spent",
        }
    }
}

/// A webhook's body, read.
pub(super) struct Read {
    pub(super) kept: Frame,
    /// When streamed: the end of the body not yet sent in pieces, held back until the request
    /// is stored.
    pub(super) last: Bytes,
    body_len: usize,
}

/// What reading a body needs besides the body.
struct Reading<'a> {
    /// The request's id.
    id: RequestId,
    /// The start of the request's frame, which the body completes.
    head: bytes::BytesMut,
    /// What the body's bytes in memory count against.
    budget: &'a Arc<Budget>,
    /// How long the sender may take to send it (`--read-timeout`).
    timeout: std::time::Duration,
}

/// Reads a body whole into its request's frame, within the read timeout. A body `declared`
/// long is counted against the memory budget at once; one without a length (chunked) as it
/// grows. Either way it is refused ([`ReadError::OverMemory`]) rather than held past the budget.
async fn read_whole(
    body: Incoming,
    reading: Reading<'_>,
    declared: Option<u64>,
    max_body: usize,
) -> Result<Read, ReadError> {
    let (frame, body_len) = read_into_frame(body, reading, declared, max_body).await?;
    Ok(Read {
        kept: Frame::Whole(frame),
        last: Bytes::new(),
        body_len,
    })
}

/// Reads a body whole into the request's frame, which starts with `head` (the cluster's path,
/// where the backend gives the id, 0 in the frame, once it is stored): [`read_whole`]'s frame,
/// or the answer to a sender whose body could not be read.
pub(super) async fn read_frame(
    relay: &Relay,
    head: bytes::BytesMut,
    body: Incoming,
    declared: Option<u64>,
) -> Result<Bytes, Response<Body>> {
    let reading = Reading {
        id: RequestId(0),
        head,
        budget: &relay.budget,
        timeout: relay.config.read_timeout,
    };
    match read_into_frame(body, reading, declared, relay.config.max_body).await {
        Ok((frame, body_len)) => {
            relay
                .metrics
                .request_bytes
                .fetch_add(body_len as u64, Ordering::Relaxed);
            Ok(frame)
        }
        Err(e) => Err(refusal(relay, e)),
    }
}

/// [`read_whole`]: the frame, charged against the memory budget, and the body's length.
async fn read_into_frame(
    mut body: Incoming,
    reading: Reading<'_>,
    declared: Option<u64>,
    max_body: usize,
) -> Result<(Bytes, usize), ReadError> {
    let declared = declared.map(|len| len as usize);
    let mut frame = reading.head;
    frame.reserve(declared.unwrap_or(0));
    let start = frame.len();
    let largest = start + max_body;
    let mut charge = reading
        .budget
        .try_charge(frame.capacity())
        .ok_or(ReadError::OverMemory)?;
    let deadline = tokio::time::Instant::now() + reading.timeout;
    while let Some(data) = next_data(&mut body, deadline).await? {
        let len = frame.len() + data.len();
        if len > largest {
            return Err(ReadError::TooLarge);
        }
        if declared.is_some_and(|declared| len - start > declared) {
            return Err(ReadError::Broken("more body than declared".into()));
        }
        if len > frame.capacity() {
            // Doubling, as a vector grows, within --max-body, or what the budget has left when
            // that is less; counted before it is allocated.
            let wanted = len.max(frame.capacity() * 2).min(largest);
            let have = charge.bytes();
            let added = charge
                .try_grow_between(len.saturating_sub(have), wanted.saturating_sub(have))
                .ok_or(ReadError::OverMemory)?;
            grow(&mut frame, have + added);
            charge.set(frame.capacity());
        }
        frame.extend_from_slice(&data);
    }
    let body_len = frame.len() - start;
    if declared.is_some_and(|declared| body_len != declared) {
        return Err(ReadError::Broken("less body than declared".into()));
    }
    Ok((charge.attach(frame.freeze()), body_len))
}

/// The next piece of `body`'s data, `None` at its end, once `deadline` has not passed.
/// Trailers are passed over: they are not forwarded.
async fn next_data(
    body: &mut Incoming,
    deadline: tokio::time::Instant,
) -> Result<Option<Bytes>, ReadError> {
    loop {
        let next = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(next)) => next.map_err(|e| ReadError::Broken(e.to_string()))?,
            Ok(None) => return Ok(None),
            Err(_) => return Err(ReadError::TimedOut),
        };
        if let Ok(data) = next.into_data() {
            return Ok(Some(data));
        }
    }
}

/// Makes `frame`'s capacity `capacity` (more than it is). `reserve` grows as a vector does, to
/// at least twice the capacity; less than that is a copy into a buffer of exactly that size.
fn grow(frame: &mut bytes::BytesMut, capacity: usize) {
    if capacity >= frame.capacity() * 2 {
        frame.reserve(capacity - frame.len());
    } else {
        let mut grown = bytes::BytesMut::with_capacity(capacity);
        grown.extend_from_slice(frame);
        *frame = grown;
    }
}

/// How much of a streamed body a frame file is written in at a time, at least.
const FILE_BATCH: usize = 256 * 1024;

/// Reads a body declared `len` bytes long and, while `stream` lasts, passes it on in pieces of
/// [`protocol::CHUNK_LEN`] as it arrives, holding the last piece back. The frame goes into
/// `file` as it arrives when there is one (only the pieces in hand count against the memory
/// budget), and is kept whole in memory otherwise (counted whole at once).
///
/// A piece waits for room in the session's outbox, so a slow CLI slows the sender down rather
/// than growing the relay's memory; that wait, and the file's writes, do not count against the
/// read timeout, which is the sender's. But a session that takes no piece within the read
/// timeout (a stalled CLI) is streamed to no more: the body is read on and delivered whole
/// later, as it is when the session goes away meanwhile.
async fn read_streamed(
    mut body: Incoming,
    reading: Reading<'_>,
    len: usize,
    stream: &mut Option<Stream>,
    mut file: Option<FrameFile>,
) -> Result<Read, ReadError> {
    let id = reading.id;
    // In memory: the whole frame, whose payload starts at `start`. With a file: only what
    // is not yet both sent and written, from `start` = 0.
    let (mut buffer, start) = match &mut file {
        Some(file) => {
            file.write(&reading.head)
                .await
                .map_err(ReadError::NotStored)?;
            let room = FILE_BATCH + 2 * protocol::CHUNK_LEN;
            (bytes::BytesMut::with_capacity(room), 0)
        }
        None => {
            let mut frame = reading.head;
            frame.reserve(len);
            let start = frame.len();
            (frame, start)
        }
    };
    let charge = reading
        .budget
        .try_charge(buffer.capacity())
        .ok_or(ReadError::OverMemory)?;
    let mut sent = start;
    let mut written = 0;
    let mut received = 0;
    let mut deadline = tokio::time::Instant::now() + reading.timeout;
    while let Some(data) = next_data(&mut body, deadline).await? {
        if received + data.len() > len {
            return Err(ReadError::Broken("more body than declared".into()));
        }
        received += data.len();
        let waited = tokio::time::Instant::now();
        buffer.extend_from_slice(&data);
        while buffer.len() - sent > protocol::CHUNK_LEN {
            let Some(to) = stream.as_ref() else { break };
            let piece = &buffer[sent..sent + protocol::CHUNK_LEN];
            let piece = protocol::encode(&RelayMessage::Body(protocol::Body { id }), piece);
            sent += protocol::CHUNK_LEN;
            match tokio::time::timeout(reading.timeout, to.send(piece)).await {
                Ok(true) => {}
                Ok(false) => *stream = None,
                Err(_) => {
                    debug!(%id, "the session took no piece of the body within the read timeout; delivering it whole later");
                    *stream = None;
                }
            }
        }
        if let Some(file) = &mut file {
            // In batches: each write is a trip to a blocking thread.
            if buffer.len() - written >= FILE_BATCH {
                file.write(&buffer[written..])
                    .await
                    .map_err(ReadError::NotStored)?;
                written = buffer.len();
            }
            if stream.is_none() {
                sent = buffer.len();
            }
            let done = sent.min(written);
            buffer.advance(done);
            sent -= done;
            written -= done;
        }
        deadline += waited.elapsed();
    }
    if let Some(file) = &mut file {
        file.write(&buffer[written..])
            .await
            .map_err(ReadError::NotStored)?;
    }
    if received != len {
        return Err(ReadError::Broken("less body than declared".into()));
    }
    // The buffer's memory stays counted while the last piece (a slice of it) is held.
    let buffer = charge.attach(buffer.freeze());
    let last = buffer.slice(sent..);
    let kept = match file {
        Some(file) => Frame::File(file),
        None => Frame::Whole(buffer),
    };
    Ok(Read {
        kept,
        last,
        body_len: len,
    })
}
