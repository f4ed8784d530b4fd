//! The recording target app: a hyper server on `127.0.0.1:0` that records every request and
//! answers through a closure, so a test can say what the app saw and make it slow, failing or
//! held.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{headers, values, within, HeaderPair};

/// One request as the app received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Method, e.g. `POST`.
    pub method: String,
    /// Path and query exactly as on the request line.
    pub target: String,
    /// Every header in the order hyper's `HeaderMap` yields them (repeats in order).
    pub headers: Vec<HeaderPair>,
    /// Body bytes.
    pub body: Bytes,
}

impl Recorded {
    /// The values of every header named `name` (lowercase), in order.
    pub fn header(&self, name: &str) -> Vec<&[u8]> {
        values(&self.headers, name)
    }

    /// The headers without `host`, which every hop rewrites.
    pub fn headers_but_host(&self) -> Vec<HeaderPair> {
        self.headers
            .iter()
            .filter(|(name, _)| name != "host")
            .cloned()
            .collect()
    }
}

/// What the app answers.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers, appended in order (so repeats are kept).
    pub headers: Vec<HeaderPair>,
    /// Body bytes.
    pub body: Bytes,
    /// How long to wait before answering (to make concurrent requests finish out of order).
    pub delay: Duration,
    /// When set, the answer waits (after `delay`) until the test opens the latch, so a test can
    /// observe what happens while the app is still busy.
    pub hold: Option<Hold>,
}

impl Answer {
    /// `200` with `body` and no extra headers.
    pub fn ok(body: impl Into<Bytes>) -> Self {
        Answer {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
            hold: None,
        }
    }
}

/// The app's side of a latch: answers holding one wait until the test calls [`Latch::open`].
#[derive(Debug, Clone)]
pub struct Hold(watch::Receiver<bool>);

/// The test's side of a latch.
#[derive(Debug)]
pub struct Latch(watch::Sender<bool>);

/// A closed latch and the [`Hold`] that waits on it.
pub fn latch() -> (Latch, Hold) {
    let (tx, rx) = watch::channel(false);
    (Latch(tx), Hold(rx))
}

impl Latch {
    /// Lets every held answer go, now and later.
    pub fn open(&self) {
        self.0.send_replace(true);
    }
}

impl Hold {
    async fn wait(mut self) {
        // An error means the latch was dropped: nothing can open it any more, so let go.
        let _ = self.0.wait_for(|&open| open).await;
    }
}

type Handler = Arc<dyn Fn(&Recorded) -> Answer + Send + Sync>;

/// A hyper server on `127.0.0.1:0` that records every request and answers through a closure.
pub struct App {
    /// Address the app listens on.
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    count: watch::Receiver<usize>,
    token: CancellationToken,
}

impl Drop for App {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

impl App {
    /// Starts an app that answers every request with `handler(&request)`.
    pub async fn start(handler: impl Fn(&Recorded) -> Answer + Send + Sync + 'static) -> App {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the app");
        let addr = listener.local_addr().expect("app address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (count_tx, count) = watch::channel(0usize);
        let count_tx = Arc::new(count_tx);
        let token = CancellationToken::new();
        let handler: Handler = Arc::new(handler);
        let state = (Arc::clone(&requests), count_tx, handler);
        let stop = token.clone();
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    _ = stop.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                };
                let (requests, count_tx, handler) = (
                    Arc::clone(&state.0),
                    Arc::clone(&state.1),
                    Arc::clone(&state.2),
                );
                let stop = stop.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        answer(
                            req,
                            Arc::clone(&requests),
                            Arc::clone(&count_tx),
                            Arc::clone(&handler),
                        )
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.cancelled() => {}
                    }
                });
            }
        });
        App {
            addr,
            requests,
            count,
            token,
        }
    }

    /// An app that answers `200 ok` to everything.
    pub async fn ok() -> App {
        App::start(|_| Answer::ok("ok")).await
    }

    /// An app that answers `201` with a JSON body and two cookies: an answer with repeated
    /// headers for the capture store to keep.
    pub async fn created() -> App {
        App::start(|_| Answer {
            status: 201,
            headers: headers(&[
                ("content-type", "application/json"),
                ("set-cookie", "a=1"),
                ("set-cookie", "b=2"),
            ]),
            ..Answer::ok(r#"{"received":true}"#)
        })
        .await
    }

    /// The app's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `127.0.0.1:PORT`, as a `--forward-to` or `--to` target.
    pub fn target(&self) -> String {
        self.addr.to_string()
    }

    /// Every request recorded so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("requests lock").clone()
    }

    /// Waits until at least `n` requests were recorded and returns all of them.
    pub async fn wait_for(&self, n: usize) -> Vec<Recorded> {
        let mut count = self.count.clone();
        within(&format!("the app to receive {n} request(s)"), async {
            count
                .wait_for(|&seen| seen >= n)
                .await
                .expect("app is running");
        })
        .await;
        self.requests()
    }

    /// Waits up to `limit` until `done(every request so far)` holds. `Ok` with the requests when
    /// it does, `Err` with them when the time is up, so the caller can say what is missing.
    pub async fn wait_until(
        &self,
        limit: Duration,
        done: impl Fn(&[Recorded]) -> bool,
    ) -> Result<Vec<Recorded>, Vec<Recorded>> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut count = self.count.clone();
        loop {
            // Mark the count seen before reading, so a request recorded meanwhile wakes us.
            count.borrow_and_update();
            let all = self.requests();
            if done(&all) {
                return Ok(all);
            }
            match tokio::time::timeout_at(deadline, count.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return Err(self.requests()),
            }
        }
    }
}

async fn answer(
    req: Request<Incoming>,
    requests: Arc<Mutex<Vec<Recorded>>>,
    count: Arc<watch::Sender<usize>>,
    handler: Handler,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => panic!("app could not read a request body: {e}"),
    };
    let recorded = Recorded {
        method: parts.method.to_string(),
        target: parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect(),
        body,
    };
    let reply = handler(&recorded);
    {
        let mut all = requests.lock().expect("requests lock");
        all.push(recorded);
        count.send_replace(all.len());
    }
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    if let Some(hold) = reply.hold {
        hold.wait().await;
    }
    let mut response = Response::new(Full::new(reply.body));
    *response.status_mut() = hyper::StatusCode::from_u16(reply.status).expect("valid test status");
    for (name, value) in reply.headers {
        response.headers_mut().append(
            hyper::header::HeaderName::from_bytes(name.as_bytes()).expect("valid header name"),
            hyper::header::HeaderValue::from_bytes(&value).expect("valid header value"),
        );
    }
    Ok(response)
}
