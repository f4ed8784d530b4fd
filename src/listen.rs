//! `hooks listen`: attach to a relay (or start one in-process), forward every webhook to the app,
//! send the app's answer back, and reconnect with backoff when the session drops.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use relay_server::protocol::{self, ClientMessage, RelayMessage, RequestId, PROTOCOL_VERSION};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use crate::cli::ListenArgs;
use crate::forward::Forwarder;
use crate::inspect::{self, Event, Events, Exchange, OutputOptions};

/// How long to wait for a TCP + WebSocket connection to the relay.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The relay pings every 5 s; a session silent for this long is dead.
const SILENCE_LIMIT: Duration = Duration::from_secs(15);

/// Frames waiting to be written to the relay.
const OUTBOX_CAPACITY: usize = 256;

/// How long Ctrl-C waits for requests already at the app to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// First and largest pause between reconnection attempts.
const BACKOFF_START: Duration = Duration::from_millis(250);
const BACKOFF_CAP: Duration = Duration::from_secs(30);

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Why a connection attempt failed.
enum ConnectError {
    /// The relay answered and refused the session; its sentence says why.
    Refused(String),
    /// The relay could not be reached or spoke nonsense.
    Unreachable(anyhow::Error),
}

/// Why a session ended.
enum SessionEnd {
    /// The user asked hooks to stop.
    Shutdown,
    /// The session was lost; hooks reconnects.
    Lost(String),
}

/// Runs `hooks listen` until Ctrl-C/SIGTERM (`Ok`) or a failure that reconnecting cannot fix.
pub async fn listen(args: ListenArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let max_body = protocol::DEFAULT_MAX_BODY;
    let forwarder = Arc::new(Forwarder::new(args.forward_to.clone(), max_body)?);
    let (events, printer) = inspect::spawn_printer(OutputOptions { json: args.json });
    let relay_stop = CancellationToken::new();
    let (relay_url, embedded) = match &args.relay {
        Some(url) => (url.trim_end_matches('/').to_owned(), None),
        None => {
            let (url, task) = start_embedded_relay(relay_stop.clone()).await?;
            (url, Some(task))
        }
    };
    let result = attach_loop(
        &args,
        &relay_url,
        embedded.is_some(),
        &forwarder,
        &events,
        &shutdown,
    )
    .await;
    drop(events);
    let _ = printer.await;
    relay_stop.cancel();
    if let Some(task) = embedded {
        let _ = task.await;
    }
    result
}

/// Starts a relay inside this process on a free loopback port and returns its URL.
async fn start_embedded_relay(
    stop: CancellationToken,
) -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("could not start the embedded relay on 127.0.0.1")?;
    let url = format!("http://{}", listener.local_addr()?);
    let config = relay_server::Config::default();
    let task = tokio::spawn(async move {
        if let Err(e) = relay_server::run(listener, config, stop.cancelled_owned()).await {
            eprintln!("hooks: error: embedded relay failed: {e:#}");
        }
    });
    Ok((url, task))
}

/// Connects, serves the session, and reconnects after every loss, keeping the channel.
async fn attach_loop(
    args: &ListenArgs,
    relay_url: &str,
    embedded: bool,
    forwarder: &Arc<Forwarder>,
    events: &Events,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let ws_url = connect_url(relay_url)?;
    let mut channel = args.channel.clone();
    let mut attached_once = false;
    let mut failures = 0u32;
    loop {
        let attempt = tokio::select! {
            attempt = connect(&ws_url, channel.clone()) => attempt,
            _ = shutdown.cancelled() => return Ok(()),
        };
        match attempt {
            Ok((ws, name, url)) => {
                failures = 0;
                let event = if attached_once {
                    Event::Reconnected { url }
                } else {
                    Event::Ready {
                        url,
                        channel: name.clone(),
                        forward_to: forwarder.target().to_string(),
                        embedded,
                    }
                };
                let _ = events.send(event).await;
                attached_once = true;
                channel = Some(name);
                match serve(ws, forwarder, events, shutdown).await {
                    SessionEnd::Shutdown => return Ok(()),
                    SessionEnd::Lost(reason) => {
                        let _ = events.send(Event::Disconnected { reason }).await;
                    }
                }
            }
            Err(ConnectError::Refused(message)) if !attached_once => return Err(anyhow!(message)),
            Err(ConnectError::Unreachable(e)) if !attached_once => {
                return Err(e.context(format!("could not reach the relay at {relay_url}")))
            }
            Err(ConnectError::Refused(message)) => debug!(%message, "reconnect refused; retrying"),
            Err(ConnectError::Unreachable(e)) => debug!(error = %e, "reconnect failed; retrying"),
        }
        let pause = backoff(failures);
        failures = failures.saturating_add(1);
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.cancelled() => return Ok(()),
        }
    }
}

/// The pause before reconnect attempt `failures`: exponential from [`BACKOFF_START`], capped at
/// [`BACKOFF_CAP`], with jitter so a relay restart is not met by every CLI at once.
fn backoff(failures: u32) -> Duration {
    let full = BACKOFF_START
        .saturating_mul(2u32.saturating_pow(failures.min(16)))
        .min(BACKOFF_CAP);
    let jitter = f64::from(getrandom::u32().unwrap_or(u32::MAX / 2)) / f64::from(u32::MAX);
    full.mul_f64(0.5 + jitter / 2.0)
}

/// The WebSocket URL of a relay: `http://h` → `ws://h/_hooks/v1/connect`, `https` → `wss`.
fn connect_url(relay_url: &str) -> anyhow::Result<String> {
    let (scheme, rest) = relay_url
        .split_once("://")
        .ok_or_else(|| anyhow!("relay URL {relay_url:?} needs a scheme: http:// or https://"))?;
    let ws_scheme = match scheme {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => return Err(anyhow!("relay URL scheme {other:?} is not http or https")),
    };
    Ok(format!("{ws_scheme}://{rest}{}", protocol::CONNECT_PATH))
}

/// Opens a session: WebSocket, hello both ways. Returns the socket, channel and public URL.
async fn connect(
    ws_url: &str,
    channel: Option<String>,
) -> Result<(Ws, String, String), ConnectError> {
    let config = relay_server::ws_config(protocol::DEFAULT_MAX_BODY);
    let opened = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::connect_async_with_config(ws_url, Some(config), true),
    )
    .await;
    let mut ws = match opened {
        Ok(Ok((ws, _response))) => ws,
        Ok(Err(e)) => return Err(ConnectError::Unreachable(anyhow!(describe(&e)))),
        Err(_) => {
            return Err(ConnectError::Unreachable(anyhow!(
                "no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            )))
        }
    };
    let hello = ClientMessage::Hello {
        version: PROTOCOL_VERSION,
        channel,
    };
    ws.send(Message::Binary(protocol::encode(&hello, &[])))
        .await
        .map_err(|e| ConnectError::Unreachable(anyhow!(e)))?;
    let reply = tokio::time::timeout(protocol::HELLO_TIMEOUT, ws.next()).await;
    let frame = match reply {
        Ok(Some(Ok(Message::Binary(frame)))) => frame,
        Ok(Some(Err(e))) => return Err(ConnectError::Unreachable(anyhow!(e))),
        _ => {
            return Err(ConnectError::Unreachable(anyhow!(
                "the relay did not answer the hello"
            )))
        }
    };
    match protocol::decode::<RelayMessage>(frame) {
        Ok((RelayMessage::Hello { version, .. }, _)) if version != PROTOCOL_VERSION => Err(
            ConnectError::Refused(protocol::version_mismatch(version, PROTOCOL_VERSION)),
        ),
        Ok((RelayMessage::Hello { channel, url, .. }, _)) => Ok((ws, channel, url)),
        Ok((RelayMessage::Error { message }, _)) => Err(ConnectError::Refused(format!(
            "the relay refused the session: {message}"
        ))),
        Ok(_) => Err(ConnectError::Unreachable(anyhow!(
            "the relay sent a request before its hello"
        ))),
        Err(e) => Err(ConnectError::Unreachable(anyhow!(
            "the relay's hello is not valid: {e}"
        ))),
    }
}

/// A WebSocket error as one short phrase ("connection refused"), without tungstenite's prefixes
/// and the repeated source chain.
fn describe(e: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        Error::Io(io) => {
            let text = io.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text);
            text.to_lowercase()
        }
        Error::Http(response) => format!(
            "the server answered HTTP {} instead of opening a session; is this a hooks relay?",
            response.status()
        ),
        other => other.to_string(),
    }
}

/// Serves one attached session until it is lost or the user stops hooks.
async fn serve(
    ws: Ws,
    forwarder: &Arc<Forwarder>,
    events: &Events,
    shutdown: &CancellationToken,
) -> SessionEnd {
    let (mut sink, mut stream) = ws.split();
    let (outbox, mut outbox_rx) = mpsc::channel::<Message>(OUTBOX_CAPACITY);
    let in_flight = TaskTracker::new();
    let writer = async {
        while let Some(message) = outbox_rx.recv().await {
            if let Err(e) = sink.send(message).await {
                return format!("could not write to the relay: {e}");
            }
        }
        "session closed".to_owned()
    };
    let reader = async {
        loop {
            let message = match tokio::time::timeout(SILENCE_LIMIT, stream.next()).await {
                Ok(Some(Ok(message))) => message,
                Ok(Some(Err(e))) => return format!("connection lost: {e}"),
                Ok(None) => return "connection closed".to_owned(),
                Err(_) => {
                    return format!("no word from the relay for {} s", SILENCE_LIMIT.as_secs())
                }
            };
            match message {
                Message::Binary(frame) => match protocol::decode::<RelayMessage>(frame) {
                    Ok((
                        RelayMessage::Request {
                            id,
                            method,
                            target,
                            headers,
                        },
                        body,
                    )) => {
                        let job = Job {
                            id,
                            method,
                            target,
                            headers,
                            body,
                        };
                        in_flight.spawn(handle(
                            job,
                            Arc::clone(forwarder),
                            outbox.clone(),
                            events.clone(),
                        ));
                    }
                    Ok((RelayMessage::Error { message }, _)) => return message,
                    Ok((RelayMessage::Hello { .. }, _)) => debug!("ignoring a second hello"),
                    Err(e) => return format!("the relay sent a bad frame: {e}"),
                },
                Message::Close(frame) => {
                    return match frame {
                        Some(frame) if !frame.reason.is_empty() => frame.reason.to_string(),
                        _ => "the relay closed the session".to_owned(),
                    }
                }
                _ => {}
            }
        }
    };
    let end = tokio::select! {
        reason = writer => SessionEnd::Lost(reason),
        reason = reader => SessionEnd::Lost(reason),
        _ = shutdown.cancelled() => SessionEnd::Shutdown,
    };
    in_flight.close();
    if matches!(end, SessionEnd::Shutdown) {
        // Let requests already at the app finish and reach the printer; their answers cannot
        // reach the relay any more, which redelivers or times them out.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, in_flight.wait()).await;
    }
    end
}

/// One request from the relay, ready to forward.
struct Job {
    id: RequestId,
    method: String,
    target: String,
    headers: Vec<protocol::Header>,
    body: Bytes,
}

/// Forwards one request, answers the relay, then tells the printer.
async fn handle(
    job: Job,
    forwarder: Arc<Forwarder>,
    outbox: mpsc::Sender<Message>,
    events: Events,
) {
    let started = Instant::now();
    let result = forwarder
        .forward(&job.method, &job.target, &job.headers, job.body)
        .await;
    let duration = started.elapsed();
    let (frame, status, error, hint) = match result {
        Ok(response) => {
            let message = ClientMessage::Response {
                id: job.id,
                status: response.status,
                headers: response.headers,
            };
            (
                protocol::encode(&message, &response.body),
                response.status,
                None,
                None,
            )
        }
        Err(e) => {
            let hint = e.hint(forwarder.target());
            let reason = match &hint {
                Some(hint) => format!("{e} ({hint})"),
                None => e.to_string(),
            };
            let message = ClientMessage::Failed { id: job.id, reason };
            (
                protocol::encode(&message, &[]),
                502,
                Some(e.to_string()),
                hint,
            )
        }
    };
    // The answer goes to the relay first: the terminal never delays a webhook.
    let _ = outbox.send(Message::Binary(frame)).await;
    let exchange = Exchange {
        id: job.id.0,
        method: job.method,
        path: job.target,
        status,
        error,
        hint,
        duration,
    };
    let _ = events.send(Event::Request(exchange)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_urls_map_to_websocket_urls() {
        assert_eq!(
            connect_url("http://127.0.0.1:9").unwrap(),
            "ws://127.0.0.1:9/_hooks/v1/connect"
        );
        assert_eq!(
            connect_url("https://relay.example.com").unwrap(),
            "wss://relay.example.com/_hooks/v1/connect"
        );
        assert!(connect_url("relay.example.com").is_err());
        assert!(connect_url("ftp://relay.example.com").is_err());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(0) <= BACKOFF_START);
        assert!(backoff(0) >= BACKOFF_START / 2);
        assert!(backoff(3) >= BACKOFF_START * 4);
        assert!(backoff(100) <= BACKOFF_CAP);
        assert!(backoff(100) >= BACKOFF_CAP / 2);
    }
}
