//! Attaching to the relay and staying attached: the embedded relay when none is configured, the
//! hello, and reconnecting with backoff after every loss (to the same channel, so the URL stays
//! the same) until the user stops hooks or `--exit-after` gives up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use relay_server::protocol::{ClientHello, PROTOCOL_VERSION};
use tokio::net::TcpListener;
use tokio_tungstenite::Connector;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::connect::{self, connect, connect_url, tls_connector, ConnectError, Session};
use super::session::{serve, SessionEnd};
use super::Context;
use crate::cli::ListenArgs;
use crate::inspect::{self, Event};
use crate::relays;

/// First and largest pause between reconnection attempts.
const BACKOFF_START: Duration = Duration::from_millis(250);
const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// Starts a relay inside this process on a free loopback port and returns its URL.
pub(super) async fn start_embedded_relay(
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
pub(super) async fn attach_loop(
    args: &ListenArgs,
    relay_url: &str,
    embedded: bool,
    context: &Arc<Context>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    // Several URLs are the nodes of a relay cluster, tried in order on every (re)connect.
    let ws_urls = relays::parse(relay_url)
        .iter()
        .map(|url| connect_url(url))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if ws_urls.is_empty() {
        return Err(anyhow!("--relay {relay_url:?} names no relay URL"));
    }
    // For messages: a relay URL's user info is a credential (and never sent).
    let relay_url = relays::parse(relay_url)
        .iter()
        .map(|url| inspect::redact::userinfo(url).into_owned())
        .collect::<Vec<_>>()
        .join(", ");
    let mut hello = hello(args);
    // Only a wss:// relay needs TLS: loading the platform's roots costs memory and start-up time.
    let wss = ws_urls.iter().any(|url| url.starts_with("wss://"));
    let tls = match (wss, args.ca_cert.as_deref()) {
        (false, None) => Connector::Plain,
        (_, ca_cert) => tls_connector(ca_cert)?,
    };
    let mut attached_once = false;
    let mut failures = 0u32;
    let mut disconnected_since: Option<Instant> = None;
    loop {
        // With --exit-after, an attempt still running at the limit is abandoned there: a port
        // that accepts and never answers would hold it for CONNECT_TIMEOUT (issue 17).
        let give_up_at = args
            .exit_after
            .zip(disconnected_since)
            .map(|(limit, since)| since + limit);
        let attempt = tokio::select! {
            attempt = connect_first(&ws_urls, &hello, &tls) => attempt,
            () = sleep_until(give_up_at) => Err(ConnectError::Unreachable(anyhow!(
                "still connecting at the --exit-after limit"
            ))),
            _ = shutdown.cancelled() => return Ok(()),
        };
        match attempt {
            Ok((session, attachment)) => {
                failures = 0;
                let epoch = attachment.epoch;
                let name = announce(context, attachment, attached_once, embedded);
                attached_once = true;
                // Reconnect to the same channel, so the URL stays the same.
                hello.channel = Some(name);
                match serve(session, epoch, context, shutdown).await {
                    SessionEnd::Shutdown => return Ok(()),
                    SessionEnd::Lost(reason) => {
                        disconnected_since = Some(Instant::now());
                        context.printer.show(Event::Disconnected { reason });
                    }
                }
            }
            Err(e) => retry_or_stop(e, attached_once, &relay_url)?,
        }
        let pause = pause(failures, args.exit_after, disconnected_since, &relay_url)?;
        failures = failures.saturating_add(1);
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.cancelled() => return Ok(()),
        }
    }
}

/// [`connect`] to each of `ws_urls` in turn (the nodes of a relay cluster) until one attaches.
/// When none does: a refusal, if one refused (its sentence is what the user must read), else
/// the first failure.
async fn connect_first(
    ws_urls: &[String],
    hello: &ClientHello,
    tls: &Connector,
) -> Result<(Session, connect::Attachment), ConnectError> {
    let attempt = |url: &str| {
        let url = relays::with_channel(url, hello.channel.as_deref());
        async move { connect(&url, hello, tls).await }
    };
    match relays::first(ws_urls, attempt).await {
        Ok((_, attached)) => Ok(attached),
        Err(mut failures) => {
            let refused = failures
                .iter()
                .position(|e| matches!(e, ConnectError::Refused(_)));
            match refused.or((!failures.is_empty()).then_some(0)) {
                Some(at) => Err(failures.swap_remove(at)),
                None => Err(ConnectError::Unreachable(anyhow!("no relay URL to try"))),
            }
        }
    }
}

/// The first hello: the channel asked for (none: the relay makes one up) and how to answer.
fn hello(args: &ListenArgs) -> ClientHello {
    ClientHello {
        version: PROTOCOL_VERSION,
        channel: args.channel.clone(),
        respond: args.respond,
        timeout_ms: args
            .timeout
            .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        offline: args.offline,
        token: args.token.clone(),
        stream_bodies: true,
    }
}

/// Makes `attachment` the current session and says so (ready, or reconnected); returns the
/// channel's name.
fn announce(
    context: &Context,
    attachment: connect::Attachment,
    again: bool,
    embedded: bool,
) -> String {
    let name = attachment.channel.clone();
    let url = attachment.url.clone();
    context.attach(attachment);
    context.printer.show(if again {
        Event::Reconnected { url }
    } else {
        Event::Ready {
            url,
            channel: name.clone(),
            forward_to: context.routing.table().describe(),
            embedded,
        }
    });
    name
}

/// Whether a failed attempt is worth another: `Err` ends `hooks listen` with why.
fn retry_or_stop(e: ConnectError, attached_once: bool, relay_url: &str) -> anyhow::Result<()> {
    match e {
        // The relay's sentence, on one line: it cannot forge another line of output.
        ConnectError::Refused(message) if !attached_once => {
            Err(anyhow!(inspect::sanitize(&message)))
        }
        ConnectError::Unreachable(e) if !attached_once => {
            Err(e.context(format!("could not reach the relay at {relay_url}")))
        }
        // Refused for its token (taken out of the relay's tokens file, say): asking again
        // with the same token cannot succeed, so hooks stops rather than retry forever.
        ConnectError::Refused(message) if relay_server::is_token_refusal(&message) => {
            Err(anyhow!(message))
        }
        ConnectError::Refused(message) => {
            let message = inspect::sanitize(&message);
            debug!(%message, "reconnect refused; retrying");
            Ok(())
        }
        ConnectError::Unreachable(e) => {
            debug!(error = %e, "reconnect failed; retrying");
            Ok(())
        }
    }
}

/// The pause before the next attempt; `Err` once disconnected for `--exit-after`, whose
/// limit the last pause ends at.
fn pause(
    failures: u32,
    exit_after: Option<Duration>,
    disconnected_since: Option<Instant>,
    relay_url: &str,
) -> anyhow::Result<Duration> {
    let pause = backoff(failures);
    let (Some(limit), Some(since)) = (exit_after, disconnected_since) else {
        return Ok(pause);
    };
    let left = limit.saturating_sub(since.elapsed());
    if left.is_zero() {
        return Err(anyhow!(
            "disconnected from the relay at {relay_url} for {:.1} s (--exit-after {} s)",
            since.elapsed().as_secs_f64(),
            limit.as_secs_f64()
        ));
    }
    Ok(pause.min(left))
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(0) <= BACKOFF_START);
        assert!(backoff(0) >= BACKOFF_START / 2);
        assert!(backoff(3) >= BACKOFF_START * 4);
        assert!(backoff(100) <= BACKOFF_CAP);
        assert!(backoff(100) >= BACKOFF_CAP / 2);
    }
}
