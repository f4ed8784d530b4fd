//! Sending a signed event to its target and recording the exchange in the capture store, marked
//! as sent; or printing it as raw HTTP (`--print`).

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use bytes::Bytes;
use relay_server::protocol::{self, Header};
use tokio_util::sync::CancellationToken;

use super::template::Rendered;
use crate::exchange::{display_path, now_ms, Exchange, Outcome, Request, Signature};
use crate::forward::{self, ForwardError, Forwarder};
use crate::inspect::sanitize;
use crate::store::{self, Retention, Writer};
use crate::target::Target;
use crate::verify;

/// Sends events to one target and records them.
pub struct Delivery {
    forwarder: Forwarder,
    writer: Writer,
    timeout: Duration,
}

/// What became of one send.
pub struct Sent {
    /// The capture recorded for it.
    pub capture: Exchange,
    /// Why the target did not answer, with the hint `listen` gives.
    pub failure: Option<String>,
}

impl Delivery {
    /// A delivery to `target` that waits `timeout` for each answer, recording in the capture
    /// store (created if needed).
    pub async fn open(target: Target, timeout: Duration) -> anyhow::Result<Delivery> {
        let forwarder = Forwarder::new(target, protocol::DEFAULT_MAX_BODY)?;
        let path = store::path()?;
        let writer = tokio::task::spawn_blocking(move || {
            let (conn, _) = store::open_or_replace(&path)?;
            Writer::spawn(conn, path, Retention::default())
        })
        .await
        .map_err(|e| anyhow!("the capture store's task failed: {e}"))?
        .context("could not open the capture store")?;
        Ok(Delivery {
            forwarder,
            writer,
            timeout,
        })
    }

    /// Sends `request` and records it with its `signature` verdict; `Err` only when it could
    /// not be recorded or hooks is shutting down.
    pub async fn send(
        &self,
        request: &Rendered,
        signature: Option<Signature>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Sent> {
        let headers = wire_headers(request);
        let received_at_ms = now_ms();
        let started = Instant::now();
        let forwarded = self.forwarder.forward(
            &request.method,
            "",
            &headers,
            forward::whole(Bytes::from(request.body.clone())),
        );
        let result = tokio::select! {
            result = tokio::time::timeout(self.timeout, forwarded) => result,
            () = shutdown.cancelled() => return Err(anyhow!("interrupted")),
        };
        let duration = started.elapsed();
        let (outcome, failure) = match result {
            Err(_) => {
                let why = format!(
                    "{} did not answer within {:?}",
                    self.forwarder.target().authority,
                    self.timeout
                );
                (Outcome::Failed(why.clone()), Some(why))
            }
            Ok(Ok(response)) => (Outcome::Answered(response), None),
            Ok(Err(e)) => {
                let described = describe(&e, self.forwarder.target());
                (Outcome::Failed(e.to_string()), Some(described))
            }
        };
        let event = verify::recognize(&headers, &request.body);
        let target = self.forwarder.target();
        // Split as a forwarded webhook's capture is: where it went, and the path there.
        let origin = Target {
            base_path: String::new(),
            ..target.clone()
        };
        let sent = Request {
            method: request.method.clone(),
            path: display_path(&target.base_path),
            headers: as_sent(headers, target, request.body.len()),
            body: Bytes::from(request.body.clone()),
        };
        let mut capture = Exchange {
            event,
            signature,
            sent: true,
            ..Exchange::new(received_at_ms, origin.to_string(), sent, outcome, duration)
        };
        let pending = self.writer.record(capture.clone());
        let id = match pending {
            Ok(pending) => pending.await.map_err(|_| store::StoreError::Closed)?,
            Err(e) => Err(e),
        }
        .context("could not record the event")?;
        capture.id = Some(id);
        Ok(Sent { capture, failure })
    }
}

/// The request's headers as the forwarder takes them: lowercase names, in order.
fn wire_headers(request: &Rendered) -> Vec<Header> {
    request
        .headers
        .iter()
        .map(|(name, value)| Header {
            name: name.to_ascii_lowercase(),
            value: Bytes::from(value.clone()),
        })
        .collect()
}

/// The headers as the target got them: `Host` first, `Content-Length` last, as the forwarder
/// sends them.
fn as_sent(headers: Vec<Header>, target: &Target, length: usize) -> Vec<Header> {
    let mut sent = Vec::with_capacity(headers.len() + 2);
    sent.push(Header {
        name: "host".into(),
        value: Bytes::from(target.authority.clone()),
    });
    sent.extend(headers);
    sent.push(Header {
        name: "content-length".into(),
        value: Bytes::from(length.to_string()),
    });
    sent
}

fn describe(e: &ForwardError, target: &Target) -> String {
    match e.hint(target) {
        Some(hint) => format!("{e} ({hint})"),
        None => e.to_string(),
    }
}

/// Prints what was sent: one JSON object (as `hooks show --json`), or a line such as
/// `#15 stripe invoice.paid evt_… → 200 3.1 ms`.
pub fn print_sent(
    capture: &Exchange,
    provider: &str,
    note: &str,
    json: bool,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, &crate::show::capture_json(capture))?;
        out.write_all(b"\n")?;
    } else {
        let status = match &capture.outcome {
            Outcome::Answered(response) => response.status.to_string(),
            Outcome::Failed(_) => "no answer".to_owned(),
        };
        let recognized = capture.event.as_ref();
        let event = [
            Some(provider),
            recognized.and_then(|e| e.event_type.as_deref()),
            recognized.and_then(|e| e.event_id.as_deref()),
        ]
        .into_iter()
        .flatten()
        .map(sanitize)
        .collect::<Vec<_>>()
        .join(" ");
        writeln!(
            out,
            "#{} {event} → {} {status} {:.1} ms{note}",
            capture.number(),
            sanitize(&format!("{}{}", capture.target, capture.request.path)),
            capture.duration.as_secs_f64() * 1000.0,
        )?;
    }
    out.flush()?;
    Ok(())
}

/// The request as raw HTTP/1.1 (what `hooks verify` reads): request line, `Host`, the headers
/// as the template spells them, `Content-Length`, a blank line and the body.
pub fn raw(request: &Rendered, target: Option<&Target>) -> Vec<u8> {
    let (path, host) = match target {
        Some(target) => {
            let uri = target.uri_for("");
            let origin = target.scheme.len() + "://".len() + target.authority.len();
            (uri[origin..].to_owned(), target.authority.clone())
        }
        None => ("/".to_owned(), "localhost".to_owned()),
    };
    let mut out = Vec::with_capacity(request.body.len() + 1024);
    out.extend_from_slice(
        format!("{} {path} HTTP/1.1\r\nHost: {host}\r\n", request.method).as_bytes(),
    );
    for (name, value) in &request.headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", request.body.len()).as_bytes());
    out.extend_from_slice(&request.body);
    out
}
