//! Routes each HTTP request the relay receives: its own endpoints under `/_hooks/`, and webhooks
//! under `/<channel>/…`, which it hands to the channel's session and answers with the app's reply.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::budget::Budget;
use crate::protocol::{self, Offline, RelayMessage, Respond};
use crate::queue::{Committing, FrameFile, QueueError};
use crate::quote::quote;
use crate::Relay;
use crate::{answer, session};

/// The relay's response body type: always fully buffered.
pub(crate) type Body = Full<Bytes>;

/// Handles one HTTP request from `peer`.
pub(crate) async fn handle(
    relay: Arc<Relay>,
    req: Request<Incoming>,
    peer: IpAddr,
    sessions: TaskTracker,
    shutdown: CancellationToken,
) -> Result<Response<Body>, Infallible> {
    if has_dot_segment(req.uri().path()) {
        // `/<channel>/../admin` would reach `<base>/../admin`, outside `--forward-to`'s base.
        return Ok(text(
            StatusCode::BAD_REQUEST,
            "the path has a dot segment (. or ..); webhook paths never do",
        ));
    }
    if let Some(channel) = subdomain_channel(&relay, &req) {
        let target = match req.uri().query() {
            Some(query) => format!("{}?{query}", req.uri().path()),
            None => req.uri().path().to_owned(),
        };
        return Ok(measured(&relay, webhook(&relay, req, channel, target)).await);
    }
    let path = req.uri().path();
    let response = if path == protocol::HEALTH_PATH {
        text(StatusCode::OK, "ok")
    } else if path == protocol::CONNECT_PATH {
        connect(relay, req, peer, sessions, shutdown)
    } else if path == protocol::METRICS_PATH {
        metrics(&relay)
    } else if path.starts_with(protocol::RESERVED_PREFIX) || path == "/_hooks" {
        text(StatusCode::NOT_FOUND, "no such relay endpoint")
    } else {
        match split_target(req.uri()) {
            Some((channel, target)) => {
                let channel = channel.to_owned();
                measured(&relay, webhook(&relay, req, channel, target)).await
            }
            None => text(
                StatusCode::NOT_FOUND,
                "no channel in this URL; webhooks go to /<channel>/…",
            ),
        }
    };
    Ok(response)
}

/// Runs a webhook's handling and counts its status, latency and response size.
async fn measured(
    relay: &Relay,
    handling: impl std::future::Future<Output = Response<Body>>,
) -> Response<Body> {
    let started = std::time::Instant::now();
    let response = handling.await;
    relay
        .metrics
        .webhook(response.status().as_u16(), started.elapsed());
    let size = hyper::body::Body::size_hint(response.body()).lower();
    relay
        .metrics
        .response_bytes
        .fetch_add(size, Ordering::Relaxed);
    response
}

fn metrics(relay: &Relay) -> Response<Body> {
    let stats = relay.channels.stats();
    let text = relay
        .metrics
        .render(&stats, relay.budget.used(), relay.budget.limit());
    let mut response = Response::new(Full::new(Bytes::from(text)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// With `--subdomains`, the channel named by a `Host` of `<channel>.<public host>`.
fn subdomain_channel(relay: &Relay, req: &Request<Incoming>) -> Option<String> {
    let public = relay.subdomain_host.as_deref()?;
    let public = strip_port(public);
    let host = req.headers().get(header::HOST)?.to_str().ok()?;
    let label = strip_port(host)
        .to_ascii_lowercase()
        .strip_suffix(&format!(".{}", public.to_ascii_lowercase()))?
        .to_owned();
    (!label.is_empty() && !label.contains('.')).then_some(label)
}

/// `host:port` → `host`; IPv6 literals keep their brackets.
fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port))
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!host.starts_with('[') || name.ends_with(']')) =>
        {
            name
        }
        _ => host,
    }
}

/// A plain-text response of one line.
pub(crate) fn text(status: StatusCode, line: &str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(format!("{line}\n"))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Upgrades `/_hooks/v1/connect` to a WebSocket and runs the session of `peer` on it.
fn connect(
    relay: Arc<Relay>,
    mut req: Request<Incoming>,
    peer: IpAddr,
    sessions: TaskTracker,
    shutdown: CancellationToken,
) -> Response<Body> {
    let is_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let key = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned();
    let (true, Some(key), &Method::GET) = (is_upgrade, key, req.method()) else {
        return text(
            StatusCode::BAD_REQUEST,
            "this endpoint is for hooks CLI sessions (WebSocket upgrade expected)",
        );
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let config = protocol::session::ws_config(relay.config.max_body, session::RELAY_READ_BUFFER);
    sessions.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let io = TokioIo::new(upgraded);
                let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
                session::run(relay, ws, peer, shutdown).await;
            }
            Err(e) => debug!(error = %e, "websocket upgrade failed"),
        }
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    let accept = derive_accept_key(key.as_bytes());
    headers.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).expect("base64 is a valid header value"),
    );
    response
}

/// Whether `path` has a dot segment: `.` or `..` between slashes, their dots plain or
/// percent-encoded (`%2e`), which an app decoding the path would resolve.
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let mut rest = segment.as_bytes();
        let mut dots = 0;
        while !rest.is_empty() {
            rest = match rest {
                [b'.', tail @ ..] => tail,
                [b'%', b'2', b'e' | b'E', tail @ ..] => tail,
                _ => return false,
            };
            dots += 1;
        }
        (1..=2).contains(&dots)
    })
}

/// Splits `/<channel>/<rest>?<query>` into the channel and the target `/<rest>?<query>`.
/// The target is empty when the request names the channel alone (`/<channel>`).
fn split_target(uri: &http::Uri) -> Option<(&str, String)> {
    let path = uri.path().strip_prefix('/')?;
    let (channel, rest) = match path.find('/') {
        Some(i) => (&path[..i], &path[i..]),
        None => (path, ""),
    };
    if channel.is_empty() {
        return None;
    }
    let target = match uri.query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_owned(),
    };
    Some((channel, target))
}

/// Queues a webhook for `name` and answers the sender as the channel's settings say.
async fn webhook(
    relay: &Relay,
    req: Request<Incoming>,
    name: String,
    target: String,
) -> Response<Body> {
    let Some(channel) = relay.channels.get(&name) else {
        return text(
            StatusCode::NOT_FOUND,
            &format!(
                "unknown channel {}: no hooks session has claimed it",
                quote(&name)
            ),
        );
    };
    let status = channel.status();
    if !status.attached && status.settings.offline == Offline::Reject {
        let mut response = text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("no hooks session is attached to channel {name}; retry later"),
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(REJECT_RETRY_AFTER),
        );
        return response;
    }
    if !channel.admit(relay.config.rate) {
        let mut response = text(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "channel {name} is over this relay's rate of {} webhooks per second (--rate); retry later",
                relay.config.rate.unwrap_or_default()
            ),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    if status.queued >= relay.config.max_queued {
        let mut response = text(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "channel {name} has {} undelivered requests, its limit (--max-queued); retry later",
                status.queued
            ),
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(REJECT_RETRY_AFTER),
        );
        return response;
    }
    let max_body = relay.config.max_body;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max_body as u64) {
        return too_large(max_body);
    }
    let (parts, body) = req.into_parts();
    let id = match relay.next_id().await {
        Ok(id) => id,
        Err(e) => return not_stored(Err(e)),
    };
    let received_at_ms = unix_ms();
    let method = parts.method.as_str().to_owned();
    let is_head = parts.method == Method::HEAD;
    let headers = crate::headers::forwardable_headers(&parts.headers);
    // Registered before any of the request can reach the CLI: the app may answer a streamed
    // request before its body is all in.
    let waiter =
        (status.attached && status.settings.respond == Respond::App).then(|| channel.wait_for(id));
    let mut stream = match declared {
        Some(len) if status.attached && len >= protocol::STREAM_FROM as u64 => {
            let head = RelayMessage::Request(protocol::Request {
                id,
                received_at_ms,
                method: method.clone(),
                target: target.clone(),
                headers: headers.clone(),
                body_len: Some(len),
                redelivered: false,
            });
            channel.start_stream(id, &protocol::encode(&head, &[]))
        }
        _ => None,
    };
    let request = RelayMessage::Request(protocol::Request {
        id,
        received_at_ms,
        method,
        target,
        headers,
        body_len: None,
        redelivered: false,
    });
    // A body declared long goes to its frame file as it arrives (in a durable queue), whether
    // or not it is streamed to a CLI: the relay then holds a few pieces of it, not all of it.
    let read = match declared {
        Some(len) if stream.is_some() || len >= crate::frames::FILE_FROM as u64 => {
            let file = relay.queue.frame_file(id).await;
            let reading = Reading {
                request: &request,
                budget: &relay.budget,
                timeout: relay.config.read_timeout,
            };
            read_streamed(body, reading, len as usize, &mut stream, file).await
        }
        _ => {
            let reading = Reading {
                request: &request,
                budget: &relay.budget,
                timeout: relay.config.read_timeout,
            };
            read_whole(body, reading, declared, max_body).await
        }
    };
    let read = match read {
        Ok(read) => read,
        Err(e) => {
            if let Some(stream) = stream {
                stream.abort(e.reason());
            }
            return match e {
                ReadError::TooLarge => too_large(max_body),
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
                ReadError::NotStored(e) => not_stored(Err(QueueError::File(e))),
                ReadError::OverMemory => over_memory(relay.budget.limit()),
            };
        }
    };
    relay
        .metrics
        .request_bytes
        .fetch_add(read.body_len as u64, Ordering::Relaxed);
    // Delivered while the queue commits it: the sender hears back only once both are done, so
    // a relay killed meanwhile leaves the sender without an answer (it retries), never with a
    // 2xx for a request that is not stored.
    let Read { kept, last, .. } = read;
    let (committing, frame) = match kept {
        Kept::File(file) => (relay.queue.submit_file(id, &channel.name, file).await, None),
        Kept::Whole(frame) => {
            let committing = relay
                .queue
                .submit_insert(id, &channel.name, frame.clone())
                .await;
            (committing, Some(frame))
        }
    };
    if matches!(committing, Committing::Done(Err(_))) {
        if let Some(stream) = stream {
            stream.abort("the relay could not store it");
        }
        return not_stored(committing.committed().await);
    }
    match stream {
        // Pending before its last piece goes, so the acknowledgement finds it.
        Some(stream) => {
            if channel.streamed(&stream, frame, &relay.budget) {
                stream.finish(protocol::encode(
                    &RelayMessage::Body(protocol::Body { id }),
                    &last,
                ));
            } else {
                // The session that had the first pieces is gone; the request went whole to
                // the one attached now, or waits for one.
                stream.abort("the session was replaced");
            }
        }
        None => channel.enqueued(id, frame, &relay.budget),
    }
    match (status.settings.respond, waiter) {
        (Respond::Status(code), _) => {
            if let Err(e) = committing.committed().await {
                return not_stored(Err(e));
            }
            let code = StatusCode::from_u16(code).unwrap_or(StatusCode::ACCEPTED);
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = code;
            response
        }
        (Respond::App, Some((reply, _guard))) => {
            let timeout = status.settings.timeout;
            let (stored, reply) =
                tokio::join!(committing.committed(), tokio::time::timeout(timeout, reply));
            match (stored, reply) {
                // The app has it and answered: its answer goes back, stored or not.
                (stored, Ok(Ok(reply))) => {
                    if let Err(e) = stored {
                        warn!(error = %e, %id, "a delivered request could not be queued");
                    }
                    answer::respond(reply, is_head, max_body)
                }
                (Err(e), _) => not_stored(Err(e)),
                // The waiter was dropped only if the relay is going away.
                (Ok(()), Ok(Err(_))) => {
                    text(StatusCode::SERVICE_UNAVAILABLE, "the relay is shutting down")
                }
                (Ok(()), Err(_)) => text(
                    StatusCode::GATEWAY_TIMEOUT,
                    &format!(
                        "the app did not answer within {:.0?}; the request stays queued for the hooks CLI",
                        timeout
                    ),
                ),
            }
        }
        (Respond::App, None) => {
            if let Err(e) = committing.committed().await {
                return not_stored(Err(e));
            }
            text(
                StatusCode::ACCEPTED,
                &format!(
                    "queued: no hooks session is attached to channel {name}; it will be delivered when one attaches"
                ),
            )
        }
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

/// Where a read request's frame is.
enum Kept {
    /// In memory, whole (carrying its charge against the memory budget).
    Whole(Bytes),
    /// In its file, which the queue took in as the body arrived.
    File(FrameFile),
}

/// A webhook's body, read.
struct Read {
    kept: Kept,
    /// When streamed: the end of the body not yet sent in pieces, held back until the request
    /// is stored.
    last: Bytes,
    body_len: usize,
}

/// What reading a body needs besides the body.
struct Reading<'a> {
    /// The request message whose frame the body completes.
    request: &'a RelayMessage,
    /// What the body's bytes in memory count against.
    budget: &'a Arc<Budget>,
    /// How long the sender may take to send it (`--read-timeout`).
    timeout: std::time::Duration,
}

/// Reads a body whole into its request's frame, within the read timeout. A body `declared`
/// long is counted against the memory budget at once; one without a length (chunked) as it
/// grows. Either way it is refused ([`ReadError::OverMemory`]) rather than held past the budget.
async fn read_whole(
    mut body: Incoming,
    reading: Reading<'_>,
    declared: Option<u64>,
    max_body: usize,
) -> Result<Read, ReadError> {
    let declared = declared.map(|len| len as usize);
    let mut frame = protocol::frame_for(reading.request, declared.unwrap_or(0));
    let start = frame.len();
    let largest = start + max_body;
    let mut charge = reading
        .budget
        .try_charge(frame.capacity())
        .ok_or(ReadError::OverMemory)?;
    let deadline = tokio::time::Instant::now() + reading.timeout;
    loop {
        let next = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(next)) => next.map_err(|e| ReadError::Broken(e.to_string()))?,
            Ok(None) => break,
            Err(_) => return Err(ReadError::TimedOut),
        };
        // Trailers are not forwarded.
        let Ok(data) = next.into_data() else { continue };
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
    Ok(Read {
        kept: Kept::Whole(charge.attach(frame.freeze())),
        last: Bytes::new(),
        body_len,
    })
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
    stream: &mut Option<crate::channel::Stream>,
    mut file: Option<FrameFile>,
) -> Result<Read, ReadError> {
    let RelayMessage::Request(protocol::Request { id, .. }) = reading.request else {
        unreachable!("only requests have bodies to stream")
    };
    // In memory: the whole frame, whose payload starts at `start`. With a file: only what
    // is not yet both sent and written, from `start` = 0.
    let (mut buffer, start) = match &mut file {
        Some(file) => {
            let head = protocol::frame_for(reading.request, 0);
            file.write(&head).await.map_err(ReadError::NotStored)?;
            let room = FILE_BATCH + 2 * protocol::CHUNK_LEN;
            (bytes::BytesMut::with_capacity(room), 0)
        }
        None => {
            let frame = protocol::frame_for(reading.request, len);
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
    loop {
        let next = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(next)) => next.map_err(|e| ReadError::Broken(e.to_string()))?,
            Ok(None) => break,
            Err(_) => return Err(ReadError::TimedOut),
        };
        // Trailers are not forwarded (nor are they when a body is read whole).
        let Ok(data) = next.into_data() else { continue };
        if received + data.len() > len {
            return Err(ReadError::Broken("more body than declared".into()));
        }
        received += data.len();
        let waited = tokio::time::Instant::now();
        buffer.extend_from_slice(&data);
        while buffer.len() - sent > protocol::CHUNK_LEN {
            let Some(to) = stream.as_ref() else { break };
            let piece = &buffer[sent..sent + protocol::CHUNK_LEN];
            let piece = protocol::encode(&RelayMessage::Body(protocol::Body { id: *id }), piece);
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
        Some(file) => Kept::File(file),
        None => Kept::Whole(buffer),
    };
    Ok(Read {
        kept,
        last,
        body_len: len,
    })
}

/// The answer to a sender whose request could not be queued.
fn not_stored(result: Result<(), QueueError>) -> Response<Body> {
    if let Err(e) = result {
        warn!(error = %e, "could not queue a request");
    }
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "the relay could not store this request; retry later",
    )
}

/// `Retry-After` seconds suggested when a channel refuses a webhook for now.
const REJECT_RETRY_AFTER: &str = "30";

/// `Retry-After` seconds suggested when the relay's memory budget is spent: what holds it is on
/// its way (bodies being read, frames being sent), so room comes back within moments.
const MEMORY_RETRY_AFTER: &str = "5";

/// The answer to a sender when the relay's memory budget (`--max-memory`) has no room for its
/// request.
fn over_memory(limit: usize) -> Response<Body> {
    let mut response = text(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!(
            "the relay holds its limit of {limit} bytes of requests in memory (--max-memory); retry later"
        ),
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(MEMORY_RETRY_AFTER),
    );
    response
}

fn unix_ms() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

fn too_large(max_body: usize) -> Response<Body> {
    text(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("request body exceeds this relay's limit of {max_body} bytes (--max-body)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(uri: &str) -> Option<(String, String)> {
        let uri: http::Uri = uri.parse().unwrap();
        split_target(&uri).map(|(c, t)| (c.to_owned(), t))
    }

    #[test]
    fn ports_are_stripped_from_hosts() {
        assert_eq!(strip_port("relay.example.com:8443"), "relay.example.com");
        assert_eq!(strip_port("relay.example.com"), "relay.example.com");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }

    #[test]
    fn targets_keep_rest_and_query_exactly() {
        assert_eq!(
            split("/ch/a/b?x=1&y=%20"),
            Some(("ch".into(), "/a/b?x=1&y=%20".into()))
        );
        assert_eq!(split("/ch"), Some(("ch".into(), "".into())));
        assert_eq!(split("/ch/"), Some(("ch".into(), "/".into())));
        assert_eq!(split("/ch?x"), Some(("ch".into(), "?x".into())));
        assert_eq!(split("/"), None);
    }

    #[test]
    fn dot_segments_are_found_plain_and_percent_encoded() {
        for path in [
            "/ch/../a",
            "/ch/.",
            "/ch/./a",
            "/ch/%2e%2E",
            "/ch/.%2e/a",
            "/ch/%2E/",
        ] {
            assert!(has_dot_segment(path), "{path}");
        }
        for path in [
            "/ch/a",
            "/ch/...",
            "/ch/..a",
            "/ch/a./b",
            "/ch/%2e%2ex",
            "/ch/%2f..",
            "/",
        ] {
            assert!(!has_dot_segment(path), "{path}");
        }
    }
}
