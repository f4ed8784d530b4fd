//! Handling one request: choose its route (see `routing`), forward it to that app (while its
//! body may still be arriving) and to the copy routes' apps, answer the relay, then, beside the
//! hot path, recognise the event, check the signature, record the exchange and have it
//! acknowledged and printed (see `settle`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use relay_server::protocol::{self, ClientMessage};

use super::delivery::Delivery;
use super::routing::{Choice, Table, Via};
use super::Context;
use crate::exchange::{Exchange, Outcome, Recognized, Request, Response, Signature, Verdict};
use crate::forward::{self, ForwardError, Forwarder, Pieces};
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

/// How signatures are checked: `--secret`, `--provider`, `--tolerance`, or a route's own.
pub(super) struct Signatures {
    pub secrets: Vec<verify::Secret>,
    pub provider: Option<verify::Provider>,
    pub tolerance: Option<Duration>,
    /// What to say of a signed request when there is no secret, if not the usual hint: a
    /// route's `secret_env` variable that is not set.
    pub missing: Option<String>,
}

/// Longest a copy route's app may take: nobody waits for its answer, but its capture does.
const COPY_TIMEOUT: Duration = Duration::from_secs(30);

/// Forwards one request (to its route's app, the default target, or nowhere), answers the
/// relay, records the capture, acknowledges the request, then tells the printer; copy routes
/// get the request at the same time, and their answers are recorded as captures of their own.
pub(super) async fn handle(mut job: Job, context: Arc<Context>) {
    if skip_redelivery(&job, &context).await {
        return;
    }
    let table = context.routing.table();
    let Some(mut choice) = choose(&mut job, &table, &context).await else {
        context.handled().forget(job.delivery);
        return;
    };
    let event = choice.event.take().flatten();
    if choice.copies.is_empty() {
        return primary(job, choice.via, event, &table, &context).await;
    }
    let copies = choice.copies.iter().map(|&i| {
        let job = copy_of(&job);
        copy(job, Via::Route(i), event.clone(), &table, &context)
    });
    let copying = futures_util::future::join_all(copies);
    let primary = primary(job, choice.via, event, &table, &context);
    tokio::join!(primary, copying);
}

/// Where `job` goes. A body arriving in pieces is waited for when a route's match reads it,
/// and when a copy route gets the request (a copy needs it whole); `None` when it will not be
/// all in.
async fn choose(job: &mut Job, table: &Table, context: &Context) -> Option<Choice> {
    if !table.has_routes() {
        return Some(table.unrouted(&job.method, &job.target));
    }
    if table.needs_body() {
        whole_body(job).await?;
    }
    let request = Request {
        method: std::mem::take(&mut job.method),
        path: std::mem::take(&mut job.target),
        headers: std::mem::take(&mut job.headers),
        body: job.body.clone(),
    };
    let size = job.body_len.unwrap_or(job.body.len() as u64);
    let received_at_ms = i64::try_from(job.received_at_ms).unwrap_or(i64::MAX);
    let signatures = table.session_signatures();
    let channel_url = context.session().as_ref().map(|s| s.url.clone());
    let choice = table.choose(&request, size, received_at_ms, |request| {
        check_signature(signatures, request, channel_url.as_deref()).map(|s| s.verdict)
    });
    (job.method, job.target, job.headers) = (request.method, request.path, request.headers);
    if !choice.copies.is_empty() {
        whole_body(job).await?;
    }
    Some(choice)
}

/// Waits for the rest of a body arriving in pieces, which is then forwarded whole; `None`
/// when it will not be all in.
async fn whole_body(job: &mut Job) -> Option<()> {
    if let Some(streamed) = job.streamed.take() {
        // Pieces nobody reads would pile up beside the whole body.
        drop(streamed.pieces);
        job.body = streamed.whole.await.ok()?;
    }
    Some(())
}

/// The primary part of [`handle`]: forward, answer the relay, record, acknowledge, print.
async fn primary(
    mut job: Job,
    via: Via,
    event: Option<Recognized>,
    table: &Table,
    context: &Context,
) {
    let Some((result, duration)) = forward(&mut job, &via, table).await else {
        // The relay abandoned it (the sender went away: nothing was stored) or the session
        // ended (the relay delivers it again, whole, on the next one): nothing to answer,
        // record or acknowledge. Forgotten at once, before a redelivery can come.
        context.handled().forget(job.delivery);
        return;
    };
    let result = result.and_then(|response| context.within_relay_limit(response));
    let (outcome, hint) = answer(&job, result, table.forwarder(&via), context).await;
    // The answer is on its way to the relay; what follows never delays a webhook. The session's
    // writer, woken by it, writes it first (with the answers of the handlers woken meanwhile):
    // recognition, signatures and the capture ran before it did (issue 24's trace: the answer
    // left 300 us after the app's, behind the capture thread).
    tokio::task::yield_now().await;
    context.handled().finish(job.delivery);
    let delivery = job.delivery;
    let exchange = Box::new(exchange(
        job, outcome, hint, duration, &via, event, table, context,
    ));
    let exchange = match &context.recorder {
        // `settle` acknowledges and prints it once committed.
        Some(recorder) => match context.settle.record(recorder, Some(delivery), exchange) {
            None => return,
            Some(exchange) => exchange,
        },
        None => exchange,
    };
    context.outbox.ack(delivery).await;
    context.printer.offer(exchange);
}

/// A copy of `job` for a copy route: the same request, its body whole.
fn copy_of(job: &Job) -> Job {
    Job {
        delivery: job.delivery,
        redelivered: job.redelivered,
        received_at_ms: job.received_at_ms,
        method: job.method.clone(),
        target: job.target.clone(),
        headers: job.headers.clone(),
        body: job.body.clone(),
        body_len: None,
        streamed: None,
    }
}

/// Sends `job` to copy route `via` and records the answer (or why there is none) as a capture
/// of its own; nothing goes to the relay.
async fn copy(mut job: Job, via: Via, event: Option<Recognized>, table: &Table, context: &Context) {
    let forwarding = forward(&mut job, &via, table);
    let (result, duration) = match tokio::time::timeout(COPY_TIMEOUT, forwarding).await {
        Ok(Some(forwarded)) => forwarded,
        Ok(None) => return,
        Err(_) => {
            let late = format!("no answer within {} s", COPY_TIMEOUT.as_secs());
            (Err(ForwardError::Invalid(late)), COPY_TIMEOUT)
        }
    };
    let (outcome, hint) = match result {
        Ok(response) => (Outcome::Answered(response), None),
        Err(e) => {
            let hint = table.forwarder(&via).and_then(|f| e.hint(f.target()));
            (Outcome::Failed(e.to_string()), hint)
        }
    };
    let mut exchange = exchange(job, outcome, hint, duration, &via, event, table, context);
    exchange.copy = true;
    let exchange = Box::new(exchange);
    let exchange = match &context.recorder {
        Some(recorder) => match context.settle.record(recorder, None, exchange) {
            None => return,
            Some(exchange) => exchange,
        },
        None => exchange,
    };
    context.printer.offer(exchange);
}

/// The exchange of `job`, sent `via` a route (or not), with the event recognised in it and its
/// signature verdict under that route's settings.
#[allow(clippy::too_many_arguments)]
fn exchange(
    job: Job,
    outcome: Outcome,
    hint: Option<String>,
    duration: Duration,
    via: &Via,
    event: Option<Recognized>,
    table: &Table,
    context: &Context,
) -> Exchange {
    let session = context.session().clone();
    let sender_timeout = session.as_ref().and_then(|s| s.timeout);
    let request = Request {
        method: job.method,
        path: job.target,
        headers: job.headers,
        body: job.body,
    };
    let event = event.or_else(|| verify::recognize(&request.headers, &request.body));
    let channel_url = session.as_ref().map(|s| s.url.as_str());
    let signature = check_signature(table.signatures(via), &request, channel_url);
    let (channel, channel_url) = session.map(|s| (s.channel, s.url)).unzip();
    let (target, hint) = match (table.forwarder(via), via) {
        (Some(forwarder), _) => (forwarder.shown().to_owned(), hint),
        // hooks answered 404 itself: the reason is the note.
        (None, Via::Nowhere(reason)) => (String::new(), Some(reason.clone())),
        (None, _) => (String::new(), hint),
    };
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
        route: table.route_name(via),
        ..Exchange::new(
            i64::try_from(job.received_at_ms).unwrap_or(i64::MAX),
            target,
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
    via: &Via,
    table: &Table,
) -> Option<(Result<Response, ForwardError>, Duration)> {
    let Some(forwarder) = table.forwarder(via) else {
        // No route and no default: hooks answers itself, once it has the body to record.
        whole_body(job).await?;
        let reason = match via {
            Via::Nowhere(reason) => reason.as_str(),
            _ => "no target",
        };
        return Some((Ok(not_found(reason)), Duration::ZERO));
    };
    let path = table.path(via, &job.target);
    let started = Instant::now();
    let (body, whole) = match job.streamed.take() {
        Some(streamed) => (forward::streamed(streamed.pieces), Some(streamed.whole)),
        None => (forward::whole(job.body.clone()), None),
    };
    let forwarding = forwarder.forward(&job.method, &path, &job.headers, body);
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

/// hooks' own answer when no route takes a request and there is no default: `404`, and why.
fn not_found(reason: &str) -> Response {
    Response {
        status: 404,
        headers: vec![protocol::Header {
            name: "content-type".into(),
            value: Bytes::from_static(b"text/plain; charset=utf-8"),
        }],
        body: Bytes::from(format!("hooks: {reason}\n")),
    }
}

/// Answers the relay with the app's response, or why there is none (and a hint for a known
/// mistake about `forwarder`'s target).
async fn answer(
    job: &Job,
    result: Result<Response, ForwardError>,
    forwarder: Option<&Forwarder>,
    context: &Context,
) -> (Outcome, Option<String>) {
    let id = job.delivery.id;
    match result {
        Ok(response) => {
            context.outbox.respond(job.delivery, &response).await;
            (Outcome::Answered(response), None)
        }
        Err(e) => {
            let hint = forwarder.and_then(|f| e.hint(f.target()));
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
    let seen = context
        .session()
        .as_ref()
        .is_some_and(|s| recorder.seen_before(&s.url, job.delivery));
    if !seen {
        return false;
    }
    context.handled().finish(job.delivery);
    context.outbox.ack(job.delivery).await;
    true
}

/// The signature verdict for one webhook, as shown; `channel_url` is the public URL of the
/// channel it came through, if any (some providers sign the URL they called).
fn check_signature(
    signatures: &Signatures,
    request: &Request,
    channel_url: Option<&str>,
) -> Option<Signature> {
    let headers: Vec<(&str, &[u8])> = request
        .headers
        .iter()
        .map(|h| (h.name.as_str(), &h.value[..]))
        .collect();
    let mut input = verify::VerifyInput {
        method: &request.method,
        url: &request.path,
        headers: &headers,
        body: &request.body,
    };
    let expected = !signatures.secrets.is_empty() || signatures.provider.is_some();
    let detection = match signatures.provider {
        Some(_) => None,
        None => verify::detect(&input),
    };
    if !expected && detection.is_none() {
        // What `verify::check` finds when nothing is configured and no provider is recognised
        // (a webhook of one's own app, a load test): unsigned, and no news. Said here without
        // the URL below or the reason that would be dropped.
        return Some(Signature {
            provider: None,
            assumed: false,
            verdict: Verdict::Unsigned,
            reason: None,
        });
    }
    let url = channel_url.map(|url| format!("{url}{}", request.path));
    if let Some(url) = &url {
        input.url = url;
    }
    let (secrets, tolerance) = (&signatures.secrets, signatures.tolerance);
    let now = std::time::SystemTime::now();
    let checked = match signatures.provider {
        Some(provider) => verify::check(&input, secrets, Some(provider), tolerance, now),
        None => verify::check_detected(&input, secrets, detection, tolerance, now),
    };
    let unchecked = |provider: verify::Provider, reason: String| Signature {
        provider: Some(provider),
        assumed: signatures.provider.is_none(),
        verdict: Verdict::Unchecked,
        reason: Some(reason),
    };
    match checked {
        Ok(report) => {
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
            signatures.missing.clone().unwrap_or_else(|| {
                "signed, not checked: pass --secret (or set HOOKS_SECRET) to check it".to_owned()
            }),
        )),
        Err(e @ verify::VerifyError::UnusableSecret { provider, .. }) => {
            Some(unchecked(provider, e.to_string()))
        }
    }
}
