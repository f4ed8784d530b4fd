//! Sends one webhook to the developer's app through a pooled keep-alive client and returns the
//! app's response, byte for byte.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, HOST};
use http::{Method, Request};
use http_body_util::{BodyExt, Either, Full, LengthLimitError, Limited, StreamBody};
use hyper::body::Frame;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use relay_server::protocol::Header;

use crate::exchange::Response;
use crate::target::Target;

/// Why a request did not get a response from the app.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The relay sent something that cannot be an HTTP request.
    #[error("request cannot be forwarded: {0}")]
    Invalid(String),
    /// No connection to the app could be made.
    #[error("could not connect to {authority}: {cause}")]
    Connect {
        /// The app's `host:port`.
        authority: String,
        /// The underlying cause, e.g. "connection refused".
        cause: String,
    },
    /// The exchange with the app failed after connecting.
    #[error("request to {authority} failed: {cause}")]
    Exchange {
        /// The app's `host:port`.
        authority: String,
        /// What failed.
        cause: String,
    },
    /// The app's response body was larger than the limit.
    #[error("the app's response body exceeds {0} bytes")]
    ResponseTooLarge(usize),
    /// The app's response body was larger than the relay's `--max-body`.
    #[error("the app's response body exceeds the relay's limit of {0} bytes (--max-body)")]
    OverRelayLimit(usize),
}

impl ForwardError {
    /// A hint for the terminal when the cause is a common mistake.
    pub fn hint(&self, target: &Target) -> Option<String> {
        match self {
            ForwardError::Connect { .. } => Some(match target.port() {
                Some(port) => format!("is your app listening on {port}?"),
                None => "is your app listening?".into(),
            }),
            _ => None,
        }
    }
}

/// A request body for the app: whole, or in pieces as they come from the relay.
pub type ForwardBody = Either<Full<Bytes>, StreamBody<Pieces>>;

/// The body of a request forwarded while it is still arriving: the pieces, in order, as the
/// session's reader receives them.
#[derive(Debug)]
pub struct Pieces {
    pieces: tokio::sync::mpsc::UnboundedReceiver<Result<Bytes, Cut>>,
    /// Bytes still to come.
    left: u64,
}

/// The rest of a streamed body will not come; the message says why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Cut(pub String);

impl Pieces {
    /// A body of `len` bytes that comes from `pieces`; it fails if they end short.
    pub fn new(pieces: tokio::sync::mpsc::UnboundedReceiver<Result<Bytes, Cut>>, len: u64) -> Self {
        Pieces { pieces, left: len }
    }
}

impl futures_util::Stream for Pieces {
    type Item = Result<Frame<Bytes>, Cut>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        match self.pieces.poll_recv(cx) {
            Poll::Ready(Some(Ok(piece))) => {
                self.left = self.left.saturating_sub(piece.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(piece))))
            }
            Poll::Ready(Some(Err(cut))) => Poll::Ready(Some(Err(cut))),
            Poll::Ready(None) => Poll::Ready(Some(Err(Cut(
                "the session to the relay ended before the body was all in".into(),
            )))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A whole body, to forward.
pub fn whole(body: Bytes) -> ForwardBody {
    Either::Left(Full::new(body))
}

/// A body still arriving, to forward as it does.
pub fn streamed(pieces: Pieces) -> ForwardBody {
    Either::Right(StreamBody::new(pieces))
}

/// Forwards requests to one target.
pub struct Forwarder {
    client: Client<HttpsConnector<HttpConnector>, ForwardBody>,
    target: Target,
    /// `target` as text (its `Display`), made once rather than per request.
    shown: String,
    /// The `Host` header for `target`, made once; `None` if it cannot be one.
    host: Option<HeaderValue>,
    max_body: usize,
}

impl Forwarder {
    /// A forwarder to `target` that accepts app responses up to `max_body` bytes.
    pub fn new(target: Target, max_body: usize) -> anyhow::Result<Self> {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        // Only an https target needs the platform's roots; loading them costs memory and time.
        let builder = if target.scheme == "https" {
            builder.with_native_roots().map_err(|e| {
                anyhow::anyhow!("could not load the platform's root certificates: {e}")
            })?
        } else {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| anyhow::anyhow!("TLS protocol versions: {e}"))?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            builder.with_tls_config(config)
        };
        let https = builder.https_or_http().enable_http1().wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(https);
        let host = HeaderValue::from_str(&target.authority).ok();
        Ok(Forwarder {
            client,
            shown: target.to_string(),
            target,
            host,
            max_body,
        })
    }

    /// Where requests go.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Where requests go, as text (what [`Target`] displays).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Sends one request to the app: `method` and `target` as the relay gave them, every header
    /// in order except `Host` (rewritten to the app's authority), and `body` untouched.
    pub async fn forward(
        &self,
        method: &str,
        target: &str,
        headers: &[Header],
        body: ForwardBody,
    ) -> Result<Response, ForwardError> {
        let request = self.build(method, target, headers, body)?;
        let response = self.client.request(request).await.map_err(|e| {
            let authority = self.target.authority.clone();
            let cause = root_cause(&e);
            if e.is_connect() {
                ForwardError::Connect { authority, cause }
            } else {
                ForwardError::Exchange { authority, cause }
            }
        })?;
        let (parts, body) = response.into_parts();
        let body = match Limited::new(body, self.max_body).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<LengthLimitError>() => {
                return Err(ForwardError::ResponseTooLarge(self.max_body))
            }
            Err(e) => {
                return Err(ForwardError::Exchange {
                    authority: self.target.authority.clone(),
                    cause: format!("reading the response body: {e}"),
                })
            }
        };
        Ok(Response {
            status: parts.status.as_u16(),
            headers: relay_server::headers::forwardable_headers(&parts.headers),
            body,
        })
    }

    fn build(
        &self,
        method: &str,
        target: &str,
        headers: &[Header],
        body: ForwardBody,
    ) -> Result<Request<ForwardBody>, ForwardError> {
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| ForwardError::Invalid(format!("invalid method {method:?}")))?;
        let invalid = |e: &dyn std::fmt::Display| {
            let uri = self.target.uri_for(target);
            ForwardError::Invalid(format!("invalid URI {uri:?}: {e}"))
        };
        // From the `String`, whose buffer the URI keeps, rather than parsed from a copy of it.
        let uri = http::Uri::try_from(self.target.uri_for(target)).map_err(|e| invalid(&e))?;
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .body(body)
            .map_err(|e| invalid(&e))?;
        let map = request.headers_mut();
        map.reserve(headers.len() + 1);
        let host = self.host.clone();
        map.insert(
            HOST,
            host.ok_or_else(|| ForwardError::Invalid("invalid target host".into()))?,
        );
        for h in headers.iter().filter(|h| h.name != "host") {
            let name = HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| ForwardError::Invalid(format!("invalid header name {:?}", h.name)))?;
            let value = HeaderValue::from_maybe_shared(h.value.clone()).map_err(|_| {
                ForwardError::Invalid(format!("invalid value for header {:?}", h.name))
            })?;
            map.append(name, value);
        }
        Ok(request)
    }
}

/// The innermost error's message, which says what actually happened ("Connection refused").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let text = cause.to_string();
    // io::Error prints "Connection refused (os error 111)"; the errno helps nobody here.
    match text.split_once(" (os error") {
        Some((head, _)) => head.to_lowercase(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_rewritten_and_other_headers_kept_in_order() {
        let forwarder = Forwarder::new("localhost:3000/base".parse().unwrap(), 1024).unwrap();
        let headers = vec![
            Header {
                name: "host".into(),
                value: Bytes::from_static(b"relay.example.com"),
            },
            Header {
                name: "x-dup".into(),
                value: Bytes::from_static(b"1"),
            },
            Header {
                name: "x-dup".into(),
                value: Bytes::from_static(b"2"),
            },
        ];
        let req = forwarder
            .build("PATCH", "/a?b=1", &headers, whole(Bytes::from_static(b"x")))
            .unwrap();
        assert_eq!(req.method(), Method::PATCH);
        assert_eq!(req.uri(), "http://localhost:3000/base/a?b=1");
        assert_eq!(req.headers()["host"], "localhost:3000");
        let dups: Vec<_> = req.headers().get_all("x-dup").iter().collect();
        assert_eq!(dups, ["1", "2"]);
    }

    #[test]
    fn bad_method_is_an_error_not_a_panic() {
        let forwarder = Forwarder::new("3000".parse().unwrap(), 1024).unwrap();
        let err = forwarder
            .build("BAD METHOD", "/", &[], whole(Bytes::new()))
            .unwrap_err();
        assert!(err.to_string().contains("invalid method"), "{err}");
    }
}
