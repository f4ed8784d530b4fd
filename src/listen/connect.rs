//! Connecting to the relay: the WebSocket URL, TLS for `wss://` relays, and the hello each way,
//! which says the channel, its public URL and how the relay answers senders.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use relay_server::protocol::session::{Cli, CliSession, HelloError, Reader, Writer};
use relay_server::protocol::{self, ClientHello, RelayHello, Respond};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use tracing::debug;

use crate::inspect;

/// How long to wait for a TCP + WebSocket connection to the relay.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The session's read buffer: bodies up to 25 MiB arrive here, so bigger reads pay off.
const CLI_READ_BUFFER: usize = 128 * 1024;

/// A session's WebSocket.
type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// The CLI's end of a session with the relay, typed: the protocol's own wrapper (send, receive,
/// the hello, the silence limit), as the relay holds its end.
pub(super) type Session = CliSession<Ws>;

/// The sending half of a [`Session`], which the session's writer task owns.
pub(super) type SessionWriter = Writer<Ws, Cli>;

/// The receiving half of a [`Session`], which the session's read loop owns.
pub(super) type SessionReader = Reader<Ws, Cli>;

/// What the relay's hello said.
#[derive(Clone)]
pub(super) struct Attachment {
    pub channel: String,
    pub url: String,
    /// How long senders wait for the app; `None` when the relay answers them at once.
    pub timeout: Option<Duration>,
    /// The epoch of the relay's queue (see `delivery`).
    pub epoch: u64,
    /// The relay's `--max-body`, which bounds the app's answers too (`None`: an older relay).
    pub max_body: Option<usize>,
}

/// Why a connection attempt failed.
pub(super) enum ConnectError {
    /// The relay answered and refused the session; its sentence says why.
    Refused(String),
    /// The relay could not be reached or spoke nonsense.
    Unreachable(anyhow::Error),
}

/// TLS settings for `wss://` relays: the platform's roots, plus `ca_cert` when given.
pub(super) fn tls_connector(ca_cert: Option<&std::path::Path>) -> anyhow::Result<Connector> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_cert {
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
            .with_context(|| format!("could not read the CA certificate {}", path.display()))?;
        for cert in certs {
            let cert = cert.with_context(|| format!("{} is not valid PEM", path.display()))?;
            roots
                .add(cert)
                .with_context(|| format!("{} is not a usable CA certificate", path.display()))?;
        }
    } else if added == 0 {
        debug!("no platform root certificates found; https relays will need --ca-cert");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Connector::Rustls(Arc::new(config)))
}

/// The WebSocket URL of a relay: `http://h` → `ws://h/_hooks/v1/connect`, `https` → `wss`.
pub(super) fn connect_url(relay_url: &str) -> anyhow::Result<String> {
    let (scheme, rest) = relay_url.split_once("://").ok_or_else(|| {
        let shown = inspect::redact::userinfo(relay_url);
        anyhow!("relay URL {shown:?} needs a scheme: http:// or https://")
    })?;
    let ws_scheme = match scheme {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => return Err(anyhow!("relay URL scheme {other:?} is not http or https")),
    };
    Ok(format!("{ws_scheme}://{rest}{}", protocol::CONNECT_PATH))
}

/// Opens a session: WebSocket, hello both ways. Returns the session and what the relay's hello
/// said (channel, public URL, how it answers senders).
pub(super) async fn connect(
    ws_url: &str,
    hello: &ClientHello,
    tls: &Connector,
) -> Result<(Session, Attachment), ConnectError> {
    let config = relay_server::ws_config(protocol::DEFAULT_MAX_BODY, CLI_READ_BUFFER);
    let opened = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::connect_async_tls_with_config(
            ws_url,
            Some(config),
            true,
            Some(tls.clone()),
        ),
    )
    .await;
    let ws = match opened {
        Ok(Ok((ws, _response))) => ws,
        Ok(Err(e)) => return Err(ConnectError::Unreachable(anyhow!(describe(&e)))),
        Err(_) => {
            return Err(ConnectError::Unreachable(anyhow!(
                "no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            )))
        }
    };
    let mut session = Session::new(ws);
    match session.hello(hello).await {
        Ok(reply) => Ok((session, attachment(reply))),
        Err(e) => Err(refused_or_unreachable(e)),
    }
}

/// What the relay's hello says about the session.
fn attachment(hello: RelayHello) -> Attachment {
    let timeout = (hello.respond == Respond::App).then(|| Duration::from_millis(hello.timeout_ms));
    Attachment {
        channel: hello.channel,
        url: hello.url,
        timeout,
        epoch: hello.epoch,
        max_body: hello
            .max_body
            .map(|max| usize::try_from(max).unwrap_or(usize::MAX)),
    }
}

/// Why a hello opened no session, in the sentence `hooks listen` says.
fn refused_or_unreachable(e: HelloError) -> ConnectError {
    let unreachable = |why: String| ConnectError::Unreachable(anyhow!(why));
    match e {
        // "the relay refused the session: …", and which side to upgrade.
        HelloError::Refused(_) | HelloError::VersionMismatch { .. } => {
            ConnectError::Refused(e.to_string())
        }
        HelloError::Lost(e) => unreachable(describe(&e)),
        HelloError::TimedOut | HelloError::Closed => {
            unreachable("the relay did not answer the hello".to_owned())
        }
        HelloError::OutOfOrder => {
            unreachable("the relay sent a request before its hello".to_owned())
        }
        HelloError::Malformed(e) => unreachable(format!("the relay's hello is not valid: {e}")),
    }
}

/// A WebSocket error as one short phrase ("connection refused"), without tungstenite's prefixes
/// and the repeated source chain.
pub(super) fn describe(e: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        // tokio-tungstenite reports TLS handshake failures as I/O errors wrapping rustls's.
        Error::Io(io)
            if io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>()) =>
        {
            format!(
                "TLS: {io} (for a relay with a private CA, pass its certificate with --ca-cert)"
            )
        }
        Error::Io(io) => {
            let text = io.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text);
            text.to_lowercase()
        }
        Error::Http(response) => format!(
            "the server answered HTTP {} instead of opening a session; is this a hooks relay?",
            response.status()
        ),
        Error::Tls(tls) => format!(
            "TLS: {tls} (for a relay with a private CA, pass its certificate with --ca-cert)"
        ),
        other => other.to_string(),
    }
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
}
