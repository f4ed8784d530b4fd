//! Handling one request: forward it to the app (while its body may still be arriving), answer
//! the relay, then, beside the hot path, recognise the event, check the signature, record the
//! exchange and have it acknowledged and printed (see `settle`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use relay_server::protocol::{self, ClientMessage};

use super::delivery::Delivery;
use super::Context;
use crate::exchange::{Exchange, Outcome, Request, Response, Signature, Verdict};
use crate::forward::{self, ForwardError, Pieces};
use crate::verify;

/// One request from the relay, ready to forward.
pub(super) struct Job {
    pub delivery: Delivery,
    /// The relay sent it before, to an earlier session (see `RelayMessage::Request`).
    pub redelivered: bool,
    pub received_at_ms: u64,
    pub method: String,
    pub target: String,
    pub headers: Vec<protocol::Header>,
    /// The body; empty until it is all in when it arrives in pieces (`streamed`).
    pub body: Bytes,
    /// The length of a body that arrives in pieces.
    pub body_len: Option<u64>,
    pub streamed: Option<Streamed>,
}

/// A job's body still arriving: what its handler forwards, and the whole body once in.
pub(super) struct Streamed {
    pub pieces: Pieces,
    pub whole: tokio::sync::oneshot::Receiver<Bytes>,
}

/// `--secret`, `--provider`, `--tolerance`.
pub(super) struct Signatures {
    pub secrets: Vec<verify::Secret>,
    pub provider: Option<verify::Provider>,
    pub tolerance: Option<Duration>,
}

/// Forwards one request, answers the relay, records the capture, acknowledges the request, then
/// tells the printer.
pub(super) async fn handle(mut job: Job, context: Arc<Context>) {
    if skip_redelivery(&job, &context).await {
        return;
    }
    let Some((result, duration)) = forward(&mut job, &context).await else {
        // The relay abandoned it (the sender went away: nothing was stored) or the session
        // ended (the relay delivers it again, whole, on the next one): nothing to answer,
        // record or acknowledge. Forgotten at once, before a redelivery can come.
        context.handled().forget(job.delivery);
        return;
    };
    let result = result.and_then(|response| context.within_relay_limit(response));
    let (outcome, hint) = answer(&job, result, &context).await;
    // The answer is on its way to the relay; what follows never delays a webhook.
    context.handled().finish(job.delivery);
    let delivery = job.delivery;
    let exchange = Box::new(exchange(job, outcome, hint, duration, &context));
    let exchange = match &context.recorder {
        // `settle` acknowledges and prints it once committed.
        Some(recorder) => match context.settle.record(recorder, delivery, exchange) {
            None => return,
            Some(exchange) => exchange,
        },
        None => exchange,
    };
    context.outbox.ack(delivery).await;
    context.printer.offer(exchange);
}

/// The exchange of `job`, with the event recognised in it and its signature verdict.
fn exchange(
    job: Job,
    outcome: Outcome,
    hint: Option<String>,
    duration: Duration,
    context: &Context,
) -> Exchange {
    let session = context.session().clone();
    let (public_url, sender_timeout) = match &session {
        Some(session) => (format!("{}{}", session.url, job.target), session.timeout),
        None => (job.target.clone(), None),
    };
    let request = Request {
        method: job.method,
        path: job.target,
        headers: job.headers,
        body: job.body,
    };
    let event = verify::recognize(&request.headers, &request.body);
    let signature = check_signature(&context.signatures, &request, &public_url);
    let (channel, channel_url) = session.map(|s| (s.channel, s.url)).unzip();
    Exchange {
        channel,
        channel_url,
        relay_id: Some(job.delivery.id.0),
        relay_epoch: Some(job.delivery.epoch).filter(|&epoch| epoch != 0),
        redelivered: job.redelivered,
        hint,
        sender_timed_out: sender_timeout.filter(|limit| duration > *limit),
        event,
        signature,
        ..Exchange::new(
            i64::try_from(job.received_at_ms).unwrap_or(i64::MAX),
            context.forwarder.target().to_string(),
            request,
            outcome,
            duration,
        )
    }
}

/// Forwards `job` to the app; its result and the app's time, until it answered (even when that
/// was before the last piece of the body came). `None` when a body arriving in pieces will not
/// be all in; `job.body` is the whole body otherwise.
async fn forward(
    job: &mut Job,
    context: &Context,
) -> Option<(Result<Response, ForwardError>, Duration)> {
    let started = Instant::now();
    let (body, whole) = match job.streamed.take() {
        Some(streamed) => (forward::streamed(streamed.pieces), Some(streamed.whole)),
        None => (forward::whole(job.body.clone()), None),
    };
    let forwarding = context
        .forwarder
        .forward(&job.method, &job.target, &job.headers, body);
    let Some(mut whole) = whole else {
        return Some((forwarding.await, started.elapsed()));
    };
    // Watched beside the app's answer, which may come before the last piece or, when the app
    // is not reading, not at all until the body is in.
    tokio::pin!(forwarding);
    let mut answered = None;
    let body = loop {
        tokio::select! {
            body = &mut whole => break body,
            result = &mut forwarding, if answered.is_none() => {
                answered = Some((result, started.elapsed()));
            }
        }
    };
    // Without the whole body the app's request is dropped with `forwarding`.
    job.body = body.ok()?;
    Some(match answered {
        Some(answered) => answered,
        None => (forwarding.await, started.elapsed()),
    })
}

/// Answers the relay with the app's response, or why there is none (and a hint for a known
/// mistake).
async fn answer(
    job: &Job,
    result: Result<Response, ForwardError>,
    context: &Context,
) -> (Outcome, Option<String>) {
    let id = job.delivery.id;
    match result {
        Ok(response) => {
            let message = ClientMessage::Response(protocol::Response {
                id,
                status: response.status,
                headers: response.headers.clone(),
            });
            context
                .outbox
                .send(job.delivery, &message, &response.body)
                .await;
            (Outcome::Answered(response), None)
        }
        Err(e) => {
            let hint = e.hint(context.forwarder.target());
            let reason = match &hint {
                Some(hint) => format!("{e} ({hint})"),
                None => e.to_string(),
            };
            let failed = ClientMessage::Failed(protocol::Failed { id, reason });
            context.outbox.send(job.delivery, &failed, &[]).await;
            (Outcome::Failed(e.to_string()), hint)
        }
    }
}

/// Acknowledges, without forwarding it again, a request that an earlier run captured (so
/// forwarded) and died before acknowledging; says whether it did. One it has no capture of is
/// forwarded, and flagged if the relay says it sent it before (`Job::redelivered`).
async fn skip_redelivery(job: &Job, context: &Context) -> bool {
    let Some(recorder) = &context.recorder else {
        return false;
    };
    let channel_url = context.session().as_ref().map(|s| s.url.clone());
    if !channel_url.is_some_and(|url| recorder.seen_before(&url, job.delivery)) {
        return false;
    }
    context.handled().finish(job.delivery);
    context.outbox.ack(job.delivery).await;
    true
}

/// The signature verdict for one webhook, as shown.
fn check_signature(signatures: &Signatures, request: &Request, url: &str) -> Option<Signature> {
    let headers: Vec<(&str, &[u8])> = request
        .headers
        .iter()
        .map(|h| (h.name.as_str(), &h.value[..]))
        .collect();
    let input = verify::VerifyInput {
        method: &request.method,
        url,
        headers: &headers,
        body: &request.body,
    };
    let checked = verify::check(
        &input,
        &signatures.secrets,
        signatures.provider,
        signatures.tolerance,
        std::time::SystemTime::now(),
    );
    let unchecked = |provider: verify::Provider, reason: String| Signature {
        provider: Some(provider),
        assumed: signatures.provider.is_none(),
        verdict: Verdict::Unchecked,
        reason: Some(reason),
    };
    match checked {
        Ok(report) => {
            let expected = !signatures.secrets.is_empty() || signatures.provider.is_some();
            let verdict = report.verdict();
            let reason = match report.provider {
                // An unsigned webhook is news only when a signature was expected.
                None if !expected => None,
                _ => report.reason.or(report.note.map(str::to_owned)),
            };
            Some(Signature {
                provider: report.provider,
                assumed: report.assumed,
                verdict,
                reason,
            })
        }
        Err(verify::VerifyError::NoSecret { provider }) => Some(unchecked(
            provider,
            "signed, not checked: pass --secret (or set HOOKS_SECRET) to check it".to_owned(),
        )),
        Err(e @ verify::VerifyError::UnusableSecret { provider, .. }) => {
            Some(unchecked(provider, e.to_string()))
        }
    }
}
