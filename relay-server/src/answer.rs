//! Every answer the relay gives a sender: a line of plain text (its refusals), and the app's
//! reply. The relay frames the app's reply itself, so that nothing a CLI sends can be read by the
//! sender as more than the answer to its own request (issue 17).

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use tracing::warn;

use crate::channel::Reply;
use crate::queue::QueueError;
use crate::quote::quote;

/// The relay's response body type: always fully buffered.
pub(crate) type Body = Full<Bytes>;

/// `Retry-After` seconds suggested when a channel refuses a webhook for now.
pub(crate) const REJECT_RETRY_AFTER: &str = "30";

/// `Retry-After` seconds suggested when the relay's store cannot take a webhook (a node of a
/// cluster that cannot reach NATS): a restart or a failover takes seconds.
pub(crate) const STORE_RETRY_AFTER: &str = "5";

/// `Retry-After` seconds suggested when the relay's memory budget is spent: what holds it is on
/// its way (bodies being read, frames being sent), so room comes back within moments.
const MEMORY_RETRY_AFTER: &str = "5";

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

/// `response`, suggesting the sender retry after `seconds`.
pub(crate) fn retry_after(mut response: Response<Body>, seconds: &'static str) -> Response<Body> {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
    response
}

/// An empty answer with `status` (a channel's `--respond STATUS`).
pub(crate) fn status(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// The answer to a sender whose request could not be queued.
pub(crate) fn not_stored(result: Result<(), QueueError>) -> Response<Body> {
    if let Err(e) = result {
        warn!(error = %e, "could not queue a request");
    }
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "the relay could not store this request; retry later",
    )
}

/// The answer to a sender when the relay's memory budget (`--max-memory`) has no room for its
/// request.
pub(crate) fn over_memory(limit: usize) -> Response<Body> {
    let line = format!(
        "the relay holds its limit of {limit} bytes of requests in memory (--max-memory); retry later"
    );
    retry_after(
        text(StatusCode::SERVICE_UNAVAILABLE, &line),
        MEMORY_RETRY_AFTER,
    )
}

/// `404`: no session has claimed channel `name` (or it was forgotten after `--retention`).
pub(crate) fn unknown_channel(name: &str) -> Response<Body> {
    let line = format!(
        "unknown channel {}: no hooks session has claimed it",
        quote(name)
    );
    text(StatusCode::NOT_FOUND, &line)
}

/// `503` with `Retry-After`: channel `name`'s CLI is away and asked for `--offline reject`.
pub(crate) fn offline(name: &str) -> Response<Body> {
    let line = format!("no hooks session is attached to channel {name}; retry later");
    retry_after(
        text(StatusCode::SERVICE_UNAVAILABLE, &line),
        REJECT_RETRY_AFTER,
    )
}

/// `429` with `Retry-After: 1`: channel `name` is over `--rate`.
pub(crate) fn over_rate(name: &str, rate: Option<u32>) -> Response<Body> {
    let line = format!(
        "channel {name} is over this relay's rate of {} webhooks per second (--rate); retry later",
        rate.unwrap_or_default()
    );
    retry_after(text(StatusCode::TOO_MANY_REQUESTS, &line), "1")
}

/// `429` with `Retry-After`: channel `name` holds `queued` undelivered requests, its
/// `--max-queued`.
pub(crate) fn queue_full(name: &str, queued: usize) -> Response<Body> {
    let line = format!(
        "channel {name} has {queued} undelivered requests, its limit (--max-queued); retry later"
    );
    retry_after(
        text(StatusCode::TOO_MANY_REQUESTS, &line),
        REJECT_RETRY_AFTER,
    )
}

/// The answer to a sender whose body is over `--max-body`.
pub(crate) fn too_large(max_body: usize) -> Response<Body> {
    text(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("request body exceeds this relay's limit of {max_body} bytes (--max-body)"),
    )
}

/// Builds the sender's response from the CLI's reply to a request (a `HEAD` one when `is_head`).
///
/// The relay frames the response itself, whatever the CLI sent: hop-by-hop headers and
/// `content-length` are dropped (hyper writes the body's true length), and a status that does
/// not end an exchange (1xx, `101` with an upgrade among them) or a body over `--max-body` is
/// `502`. Otherwise a CLI could make the sender read part of its body as the answer to the
/// sender's next request on the connection, for another channel even (issue 17).
pub(crate) fn respond(reply: Reply, is_head: bool, max_body: usize) -> Response<Body> {
    let (status, headers, body) = match reply {
        Reply::Response {
            status,
            headers,
            body,
        } => (status, headers, body),
        Reply::Failed { reason } => return text(StatusCode::BAD_GATEWAY, &reason),
    };
    let status = match StatusCode::from_u16(status) {
        Ok(status) if !status.is_informational() => status,
        Ok(_) => {
            return text(
                StatusCode::BAD_GATEWAY,
                &format!("the app answered {status}, which cannot answer a webhook (1xx)"),
            )
        }
        Err(_) => {
            return text(
                StatusCode::BAD_GATEWAY,
                &format!("the app answered an invalid status {status}"),
            )
        }
    };
    if body.len() > max_body {
        return text(
            StatusCode::BAD_GATEWAY,
            &format!(
                "the app's response body of {} bytes exceeds this relay's limit of {max_body} bytes (--max-body)",
                body.len()
            ),
        );
    }
    let mut received = http::HeaderMap::new();
    for h in headers {
        match (
            header::HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_maybe_shared(h.value),
        ) {
            (Ok(name), Ok(value)) => {
                received.append(name, value);
            }
            _ => warn!(
                name = %quote(&h.name),
                "dropping a response header that is not valid HTTP"
            ),
        }
    }
    // A HEAD answer has no body, and its length is the one a GET would have had: the app's
    // stands, when it is one number.
    let (body, length) = match is_head {
        true => (Bytes::new(), head_length(&received)),
        false => (body, None),
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let map = response.headers_mut();
    for (name, value) in crate::headers::end_to_end(&received) {
        if name != header::CONTENT_LENGTH {
            map.append(name, value.clone());
        }
    }
    if let Some(length) = length {
        map.insert(header::CONTENT_LENGTH, length);
    }
    response
}

/// The `content-length` of an app's answer to `HEAD`, when it has exactly one that is a number.
fn head_length(headers: &http::HeaderMap) -> Option<HeaderValue> {
    let mut values = headers.get_all(header::CONTENT_LENGTH).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return None;
    };
    let digits = value.as_bytes();
    (!digits.is_empty() && digits.len() <= 19 && digits.iter().all(u8::is_ascii_digit))
        .then(|| value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, headers: &[(&str, &str)], body: &'static [u8]) -> Reply {
        Reply::Response {
            status,
            headers: headers
                .iter()
                .map(|(name, value)| crate::protocol::Header {
                    name: (*name).to_owned(),
                    value: Bytes::copy_from_slice(value.as_bytes()),
                })
                .collect(),
            body: Bytes::from_static(body),
        }
    }

    #[test]
    fn responses_are_framed_by_the_relay_whatever_the_cli_says() {
        let forged = reply(
            200,
            &[
                ("Content-Length", "2"),
                ("Transfer-Encoding", "chunked"),
                ("Connection", "close, X-Secret"),
                ("x-secret", "s"),
                ("x-app", "1"),
                ("x-app", "2"),
            ],
            b"ok and more",
        );
        let response = respond(forged, false, 1024);
        let names: Vec<(&str, &[u8])> = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect();
        assert_eq!(
            names,
            [("x-app", b"1".as_slice()), ("x-app", b"2".as_slice())]
        );
        assert_eq!(
            hyper::body::Body::size_hint(response.body()).exact(),
            Some(11)
        );
    }

    #[test]
    fn a_head_answer_keeps_the_apps_length_and_has_no_body() {
        let head = reply(200, &[("content-length", "1234")], b"");
        let response = respond(head, true, 1024);
        assert_eq!(response.headers()[header::CONTENT_LENGTH], "1234");
        let twice = reply(
            200,
            &[("content-length", "1"), ("content-length", "2")],
            b"xy",
        );
        let response = respond(twice, true, 1024);
        assert_eq!(response.headers().get(header::CONTENT_LENGTH), None);
        assert_eq!(
            hyper::body::Body::size_hint(response.body()).exact(),
            Some(0)
        );
    }
}
