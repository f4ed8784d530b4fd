//! One webhook, from the sender's request to the sender's answer, in the order it goes:
//!
//! 1. [`admit`]: refuse it at once (its channel unknown, or offline and rejecting, or over its
//!    rate or its queue; its declared body too large); then [`start`]: give it an id, register
//!    the sender's wait for the app's reply, and start streaming a long body to the session;
//! 2. [`read::read_body`]: read its body into its frame, passing it on in pieces as it arrives
//!    when it is streamed;
//! 3. [`store_and_deliver`]: hand the frame to the queue and, while the queue commits it, to
//!    the channel's session (or keep its place in the channel's line);
//! 4. [`answer_sender`]: once the request is stored, answer as the channel's settings say: a
//!    fixed status, the app's reply, or `202` when no session is attached.

// Each stage returns the sender's answer as its `Err` when it refuses the webhook: one answer
// per webhook, moved once up to `webhook`, which is cheaper to read than a box around it.
#![allow(
    clippy::result_large_err,
    reason = "a stage's Err is the sender's answer"
)]

mod cluster;
mod read;

use std::sync::Arc;

use bytes::BytesMut;
use http::{header, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::sync::oneshot;
use tracing::warn;

use crate::answer::{self, text, Body};
use crate::backend::Local;
use crate::channel::{Channel, Reply, Settings, Stream, WaiterGuard};
use crate::headers::end_to_end;
use crate::protocol::{self, Offline, RelayMessage, RequestId, Respond};
use crate::queue::{Committing, Frame};
use crate::relay::Relay;
use read::Read;

/// Queues a webhook for channel `name` (`target` is the rest of its URL) and answers the
/// sender as the channel's settings say.
pub(crate) async fn webhook(
    relay: &Relay,
    req: Request<Incoming>,
    name: String,
    target: String,
) -> Response<Body> {
    let Some(local) = relay.backend.local() else {
        return cluster::webhook(relay, req, &name, target).await;
    };
    match stages(relay, local, req, &name, target).await {
        Ok(answer) | Err(answer) => answer,
    }
}

/// The stages in order, on the single-node backend `local`; `Err` is an answer given early,
/// when a stage refuses the webhook.
async fn stages(
    relay: &Relay,
    local: &Local,
    req: Request<Incoming>,
    name: &str,
    target: String,
) -> Result<Response<Body>, Response<Body>> {
    let admitted = admit(relay, local, name, req.headers())?;
    let (parts, body) = req.into_parts();
    let mut webhook = start(local, admitted, &parts, target).await?;
    let read = read::read_body(relay, local, &mut webhook, body).await?;
    let committing = store_and_deliver(relay, local, &mut webhook, read).await?;
    Ok(answer_sender(webhook, committing, relay.config.max_body).await)
}

/// A webhook its channel admitted.
struct Admitted {
    channel: Arc<Channel>,
    settings: Settings,
    /// A session is attached to the channel.
    attached: bool,
    /// The body's length, when the sender declared it (`Content-Length`).
    declared: Option<u64>,
}

/// A webhook on its way, past admission.
struct Webhook {
    channel: Arc<Channel>,
    settings: Settings,
    id: RequestId,
    /// The body's length, when the sender declared it.
    declared: Option<u64>,
    /// A `HEAD` request, whose answer has no body.
    is_head: bool,
    /// The start of the request's frame (its length prefix and meta), which the body completes
    /// (taken by [`read::read_body`]); with room for a short body declared.
    head: BytesMut,
    /// The sender's wait for the app's reply: with `--respond app`, while a session is
    /// attached.
    waiter: Option<(oneshot::Receiver<Reply>, WaiterGuard)>,
    /// The session the body is streamed to, while it is.
    stream: Option<Stream>,
}

/// The first stage: the refusals that need no body, each with its sentence (and a
/// `Retry-After` when waiting helps).
fn admit(
    relay: &Relay,
    local: &Local,
    name: &str,
    headers: &http::HeaderMap,
) -> Result<Admitted, Response<Body>> {
    let Some(channel) = local.channels.get(name) else {
        return Err(answer::unknown_channel(name));
    };
    let status = channel.status();
    if !status.attached && status.settings.offline == Offline::Reject {
        return Err(answer::offline(name));
    }
    if !channel.admit(relay.config.rate) {
        return Err(answer::over_rate(name, relay.config.rate));
    }
    if status.queued >= relay.config.max_queued {
        return Err(answer::queue_full(name, status.queued));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > relay.config.max_body as u64) {
        return Err(answer::too_large(relay.config.max_body));
    }
    Ok(Admitted {
        channel,
        settings: status.settings,
        attached: status.attached,
        declared,
    })
}

/// Gives an admitted webhook its id and its request message, registers the sender's wait for
/// the app's reply, and starts streaming a long body to the attached session when it can.
async fn start(
    local: &Local,
    admitted: Admitted,
    parts: &http::request::Parts,
    target: String,
) -> Result<Webhook, Response<Body>> {
    let Admitted {
        channel,
        settings,
        attached,
        declared,
    } = admitted;
    let id = local
        .queue
        .next_id()
        .await
        .map_err(|e| answer::not_stored(Err(e)))?;
    let mut request = protocol::RequestHead {
        id,
        received_at_ms: unix_ms(),
        method: parts.method.as_str(),
        target: &target,
        body_len: None,
        redelivered: false,
    };
    // Framed straight from the header map: no header list is built, and nothing is copied
    // but into the frame.
    let headers =
        || end_to_end(&parts.headers).map(|(name, value)| (name.as_str(), value.as_bytes()));
    // Room for a body read whole into this frame: one declared short enough (see `read`).
    let room = declared
        .filter(|&len| len < crate::queue::FILE_FROM as u64)
        .map_or(0, |len| len as usize);
    let head = protocol::request_frame(&request, headers, room);
    // Registered before any of the request can reach the CLI: the app may answer a streamed
    // request before its body is all in.
    let waiter = (attached && settings.respond == Respond::App).then(|| channel.wait_for(id));
    let stream = match declared {
        Some(len) if attached && len >= protocol::STREAM_FROM as u64 => {
            request.body_len = Some(len);
            let head = protocol::request_frame(&request, headers, 0).freeze();
            channel.start_stream(id, &head)
        }
        _ => None,
    };
    Ok(Webhook {
        channel,
        settings,
        id,
        declared,
        is_head: parts.method == Method::HEAD,
        head,
        waiter,
        stream,
    })
}

/// The third stage: hands the frame to the queue and, while the queue commits it, delivers it:
/// the last piece of a streamed body, or the whole request to the session attached (or its
/// place in the channel's line). The sender hears back only once both are done (see
/// [`answer_sender`]), so a relay killed meanwhile leaves the sender without an answer (it
/// retries), never with a 2xx for a request that is not stored.
async fn store_and_deliver(
    relay: &Relay,
    local: &Local,
    webhook: &mut Webhook,
    read: Read,
) -> Result<Committing, Response<Body>> {
    let Read { kept, last, .. } = read;
    let (id, channel) = (webhook.id, &webhook.channel);
    let frame = match &kept {
        Frame::Whole(frame) => Some(frame.clone()),
        Frame::File(_) => None,
    };
    let committing = local.queue.submit(id, &channel.name, kept).await;
    if matches!(committing, Committing::Done(Err(_))) {
        if let Some(stream) = webhook.stream.take() {
            stream.abort("the relay could not store it");
        }
        return Err(answer::not_stored(committing.committed().await));
    }
    match webhook.stream.take() {
        // Pending before its last piece goes, so the acknowledgement finds it.
        Some(stream) => {
            if channel.streamed(&stream, frame, &relay.budget) {
                let piece = RelayMessage::Body(protocol::Body { id });
                stream.finish(protocol::encode(&piece, &last));
            } else {
                // The session that had the first pieces is gone; the request went whole to
                // the one attached now, or waits for one.
                stream.abort("the session was replaced");
            }
        }
        None => channel.enqueued(id, frame, &relay.budget),
    }
    Ok(committing)
}

/// The last stage: once the request is stored, answers the sender with the channel's fixed
/// status, the app's reply (see [`app_reply`]), or `202` when no session was attached.
async fn answer_sender(
    mut webhook: Webhook,
    committing: Committing,
    max_body: usize,
) -> Response<Body> {
    if let Respond::Status(code) = webhook.settings.respond {
        return match committing.committed().await {
            Ok(()) => answer::status(StatusCode::from_u16(code).unwrap_or(StatusCode::ACCEPTED)),
            Err(e) => answer::not_stored(Err(e)),
        };
    }
    if let Some(waiter) = webhook.waiter.take() {
        return app_reply(&webhook, waiter, committing, max_body).await;
    }
    match committing.committed().await {
        Ok(()) => text(
            StatusCode::ACCEPTED,
            &format!(
                "queued: no hooks session is attached to channel {}; it will be delivered when one attaches",
                webhook.channel.name
            ),
        ),
        Err(e) => answer::not_stored(Err(e)),
    }
}

/// Waits for the app's reply (up to the channel's timeout) and for the commit, and answers
/// with the reply, which goes back even if the request could not be stored: the app has it.
async fn app_reply(
    webhook: &Webhook,
    (reply, _guard): (oneshot::Receiver<Reply>, WaiterGuard),
    committing: Committing,
    max_body: usize,
) -> Response<Body> {
    let timeout = webhook.settings.timeout;
    let replied = tokio::time::timeout(timeout, reply);
    match tokio::join!(committing.committed(), replied) {
        (stored, Ok(Ok(reply))) => {
            if let Err(e) = stored {
                warn!(error = %e, id = %webhook.id, "a delivered request could not be queued");
            }
            answer::respond(reply, webhook.is_head, max_body)
        }
        (Err(e), _) => answer::not_stored(Err(e)),
        // The waiter was dropped only if the relay is going away.
        (Ok(()), Ok(Err(_))) => text(StatusCode::SERVICE_UNAVAILABLE, "the relay is shutting down"),
        (Ok(()), Err(_)) => text(
            StatusCode::GATEWAY_TIMEOUT,
            &format!(
                "the app did not answer within {timeout:.0?}; the request stays queued for the hooks CLI"
            ),
        ),
    }
}

/// Now, in milliseconds since the Unix epoch.
fn unix_ms() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}
