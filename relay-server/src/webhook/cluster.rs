//! One webhook on a node of a cluster, through the [`Backend`] seam alone: admit it, read its body
//! whole, hand it to the backend (which gives its id once it is stored), then answer as the
//! channel's settings say. The body is not streamed to the session as it arrives: the session may
//! be on another node, and the request reaches it through the store.

#![allow(
    clippy::result_large_err,
    reason = "a stage's Err is the sender's answer"
)]

use http::{header, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::{read, unix_ms};
use crate::answer::{self, text, Body, STORE_RETRY_AFTER};
use crate::backend::{Backend, BackendError, Sent, View};
use crate::headers::end_to_end;
use crate::protocol::{self, Offline, RequestId, Respond};
use crate::relay::Relay;

/// Stores a webhook for channel `name` (`target` is the rest of its URL) and answers the sender
/// as the channel's settings say.
pub(super) async fn webhook(
    relay: &Relay,
    req: Request<Incoming>,
    name: &str,
    target: String,
) -> Response<Body> {
    match stages(relay, &relay.backend, req, name, target).await {
        Ok(answer) | Err(answer) => answer,
    }
}

async fn stages<B: Backend>(
    relay: &Relay,
    backend: &B,
    req: Request<Incoming>,
    name: &str,
    target: String,
) -> Result<Response<Body>, Response<Body>> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let view = admit(relay, backend, name, declared).await?;
    let (parts, body) = req.into_parts();
    let request = protocol::RequestHead {
        id: RequestId(0),
        received_at_ms: unix_ms(),
        method: parts.method.as_str(),
        target: &target,
        body_len: None,
        redelivered: false,
    };
    let headers =
        || end_to_end(&parts.headers).map(|(name, value)| (name.as_str(), value.as_bytes()));
    let head = protocol::request_frame(&request, headers, 0);
    let frame = read::read_frame(relay, head, body, declared).await?;
    let wait = view.attached && view.settings.respond == Respond::App;
    let sent = backend
        .send(name, frame, wait)
        .await
        .map_err(|e| refusal(name, e))?;
    tracing::debug!(channel = %name, id = %sent.id, "webhook stored");
    let is_head = parts.method == Method::HEAD;
    Ok(answer(name, view, sent, is_head, relay.config.max_body).await)
}

/// The refusals that need no body: an unknown channel, one offline and rejecting, over its rate
/// (on this node) or its queue, a body declared too large, a store that cannot be reached.
async fn admit<B: Backend>(
    relay: &Relay,
    backend: &B,
    name: &str,
    declared: Option<u64>,
) -> Result<View, Response<Body>> {
    let view = match backend.channel(name).await {
        Ok(Some(view)) => view,
        Ok(None) => return Err(refusal(name, BackendError::Unknown)),
        Err(e) => return Err(refusal(name, e)),
    };
    if !view.attached && view.settings.offline == Offline::Reject {
        return Err(answer::offline(name));
    }
    if !backend.admit(name, relay.config.rate) {
        return Err(answer::over_rate(name, relay.config.rate));
    }
    if view
        .queued
        .is_some_and(|queued| queued >= relay.config.max_queued)
    {
        let limit = relay.config.max_queued;
        return Err(refusal(name, BackendError::Full { limit }));
    }
    if declared.is_some_and(|len| len > relay.config.max_body as u64) {
        return Err(answer::too_large(relay.config.max_body));
    }
    Ok(view)
}

/// The answer to a webhook the backend would not take.
fn refusal(name: &str, e: BackendError) -> Response<Body> {
    match e {
        BackendError::Unknown => answer::unknown_channel(name),
        BackendError::Full { limit } => answer::queue_full(name, limit),
        BackendError::Unavailable(reason) => {
            tracing::warn!(%reason, "could not store a webhook");
            let refusal = text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the relay could not store this request; retry later",
            );
            answer::retry_after(refusal, STORE_RETRY_AFTER)
        }
    }
}

/// Once the request is stored: the channel's fixed status, the app's reply (up to the channel's
/// timeout), or `202` when no session was attached.
async fn answer(
    name: &str,
    view: View,
    sent: Sent,
    is_head: bool,
    max_body: usize,
) -> Response<Body> {
    if let Respond::Status(code) = view.settings.respond {
        return answer::status(StatusCode::from_u16(code).unwrap_or(StatusCode::ACCEPTED));
    }
    let Some(reply) = sent.reply else {
        return text(
            StatusCode::ACCEPTED,
            &format!(
                "queued: no hooks session is attached to channel {name}; it will be delivered when one attaches"
            ),
        );
    };
    let timeout = view.settings.timeout;
    match tokio::time::timeout(timeout, reply.recv()).await {
        Ok(Some(reply)) => answer::respond(reply, is_head, max_body),
        Ok(None) => text(StatusCode::SERVICE_UNAVAILABLE, "the relay is shutting down"),
        Err(_) => text(
            StatusCode::GATEWAY_TIMEOUT,
            &format!(
                "the app did not answer within {timeout:.0?}; the request stays queued for the hooks CLI"
            ),
        ),
    }
}
