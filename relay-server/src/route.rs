//! Routes each HTTP request the relay receives: its own endpoints under `/_hooks/` (health,
//! metrics, and the WebSocket upgrade that starts a CLI session), and webhooks under
//! `/<channel>/…` (or `<channel>.<host>` with `--subdomains`), which go to [`crate::webhook`].

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use crate::answer::{text, Body};
use crate::backend::Backend as _;
use crate::protocol;
use crate::relay::Relay;
use crate::{session, webhook};

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
        return Ok(measured(&relay, webhook::webhook(&relay, req, channel, target)).await);
    }
    let path = req.uri().path();
    let response = if path == protocol::HEALTH_PATH {
        health(&relay)
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
                measured(&relay, webhook::webhook(&relay, req, channel, target)).await
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

/// `200 ok` while the relay can take webhooks; `503` saying why not otherwise (a node of a
/// cluster that cannot reach NATS), so a load balancer sends them elsewhere.
fn health(relay: &Relay) -> Response<Body> {
    match relay.backend.ready() {
        Ok(()) => text(StatusCode::OK, "ok"),
        Err(reason) => crate::answer::retry_after(
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("not ready: {reason}"),
            ),
            crate::answer::STORE_RETRY_AFTER,
        ),
    }
}

fn metrics(relay: &Relay) -> Response<Body> {
    let stats = relay.backend.stats();
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
    sessions.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let io = TokioIo::new(upgraded);
                // Until its hello is accepted, a session reads no message larger than a hello.
                let config = session::hello_config();
                let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
                session::run(relay, Box::new(ws), peer, shutdown).await;
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
