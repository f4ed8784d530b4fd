//! The webhook provider's side: a plain HTTP/1.1 client, an HTTPS client trusting a private CA
//! made per test, and raw sockets for what no well-behaved client sends.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncReadExt;

use super::{values, within, HeaderPair};

/// A request body the client can send: buffered or streamed (chunked).
pub type ClientBody = BoxBody<Bytes, Infallible>;

/// A response as the sender saw it.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers in order, repeats included.
    pub headers: Vec<HeaderPair>,
    /// Body bytes.
    pub body: Bytes,
}

impl Reply {
    /// The values of every header named `name` (lowercase), in order.
    pub fn header(&self, name: &str) -> Vec<&[u8]> {
        values(&self.headers, name)
    }

    /// The body as text (lossy), for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A plain HTTP/1.1 client playing the webhook provider.
#[derive(Clone)]
pub struct Sender {
    client: Client<HttpConnector, ClientBody>,
}

impl Default for Sender {
    fn default() -> Self {
        Sender {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

/// A buffered body.
pub fn full(body: impl Into<Bytes>) -> ClientBody {
    Full::new(body.into()).boxed()
}

/// A body sent with `Transfer-Encoding: chunked` (no length known up front).
pub fn chunked(chunks: Vec<Bytes>) -> ClientBody {
    let frames = futures_util::stream::iter(
        chunks
            .into_iter()
            .map(|c| Ok::<_, Infallible>(hyper::body::Frame::data(c))),
    );
    http_body_util::StreamBody::new(frames).boxed()
}

impl Sender {
    /// Sends `method url` with `headers` (appended in order) and `body`.
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[HeaderPair],
        body: ClientBody,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(url)
            .body(body)
            .expect("valid test request");
        for (name, value) in headers {
            request.headers_mut().append(
                hyper::header::HeaderName::from_bytes(name.as_bytes()).expect("valid header name"),
                hyper::header::HeaderValue::from_bytes(value).expect("valid header value"),
            );
        }
        let what = format!("the answer to {method} {url}");
        let response = within(&what, self.client.request(request))
            .await
            .unwrap_or_else(|e| panic!("{method} {url} failed: {e:?}"));
        let (parts, body) = response.into_parts();
        let body = within(&what, body.collect())
            .await
            .unwrap_or_else(|e| panic!("reading the body of {method} {url} failed: {e}"))
            .to_bytes();
        Reply {
            status: parts.status.as_u16(),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect(),
            body,
        }
    }

    /// Like [`Sender::send`], but a failure (connection refused or reset, no answer within
    /// `limit`) is an `Err` describing it instead of a panic: for tests where the relay may be
    /// down.
    pub async fn try_send(
        &self,
        method: &str,
        url: &str,
        headers: &[HeaderPair],
        body: ClientBody,
        limit: Duration,
    ) -> Result<Reply, String> {
        let mut request = Request::builder()
            .method(method)
            .uri(url)
            .body(body)
            .map_err(|e| format!("invalid request {method} {url}: {e}"))?;
        for (name, value) in headers {
            request.headers_mut().append(
                hyper::header::HeaderName::from_bytes(name.as_bytes()).expect("valid header name"),
                hyper::header::HeaderValue::from_bytes(value).expect("valid header value"),
            );
        }
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("{method} {url} failed: {e:?}"))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| format!("reading the body of {method} {url} failed: {e}"))?
                .to_bytes();
            Ok(Reply {
                status: parts.status.as_u16(),
                headers: parts
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                    .collect(),
                body,
            })
        };
        match tokio::time::timeout(limit, exchange).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer to {method} {url} within {limit:?}")),
        }
    }

    /// `POST url` with `body` and no extra headers.
    pub async fn post(&self, url: &str, body: impl Into<Bytes>) -> Reply {
        self.send("POST", url, &[], full(body)).await
    }

    /// `GET url`.
    pub async fn get(&self, url: &str) -> Reply {
        self.send("GET", url, &[], full(Bytes::new())).await
    }
}

// ---------------------------------------------------------------------------------------------
// HTTPS and raw sockets
// ---------------------------------------------------------------------------------------------

/// A private CA and a leaf certificate for `localhost` and `127.0.0.1` signed by it, as PEM files
/// in a temporary directory: `ca.pem`, `cert.pem` (the leaf) and `key.pem` (the leaf's key).
pub struct TestCa {
    /// The CA certificate, for `hooks listen --ca-cert`.
    pub ca_pem: std::path::PathBuf,
    /// The leaf certificate the relay serves.
    pub cert_pem: std::path::PathBuf,
    /// The leaf's private key.
    pub key_pem: std::path::PathBuf,
    ca_der: rustls_pki_types::CertificateDer<'static>,
    _dir: tempfile::TempDir,
}

impl TestCa {
    /// Generates the CA and the leaf and writes the PEM files.
    pub fn new() -> TestCa {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "hooks test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign the CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let mut leaf_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("leaf params");
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf_params.use_authority_key_identifier_extension = true;
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate().expect("leaf key");
        let leaf = leaf_params
            .signed_by(&leaf_key, &issuer)
            .expect("sign the leaf");

        let dir = tempfile::tempdir().expect("temp dir for PEM files");
        let ca_pem = dir.path().join("ca.pem");
        let cert_pem = dir.path().join("cert.pem");
        let key_pem = dir.path().join("key.pem");
        std::fs::write(&ca_pem, ca_cert.pem()).expect("write ca.pem");
        std::fs::write(&cert_pem, leaf.pem()).expect("write cert.pem");
        std::fs::write(&key_pem, leaf_key.serialize_pem()).expect("write key.pem");
        TestCa {
            ca_pem,
            cert_pem,
            key_pem,
            ca_der: ca_cert.der().clone(),
            _dir: dir,
        }
    }

    /// The relay's `tls` setting: the leaf and its key.
    pub fn tls_files(&self) -> relay_server::config::TlsFiles {
        relay_server::config::TlsFiles {
            cert: self.cert_pem.clone(),
            key: self.key_pem.clone(),
        }
    }

    /// A rustls client configuration trusting this CA only.
    pub fn client_config(&self) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).expect("add the test CA");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}

/// An HTTPS/1.1 client playing the webhook provider, trusting a [`TestCa`].
#[derive(Clone)]
pub struct TlsSender {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, ClientBody>,
}

impl TlsSender {
    /// A client that trusts `ca` (and nothing else).
    pub fn new(ca: &TestCa) -> TlsSender {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(ca.client_config())
            .https_only()
            .enable_http1()
            .build();
        TlsSender {
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// Sends `method url` with `body`.
    pub async fn send(&self, method: &str, url: &str, body: ClientBody) -> Reply {
        let request = Request::builder()
            .method(method)
            .uri(url)
            .body(body)
            .expect("valid test request");
        let what = format!("the answer to {method} {url}");
        let response = within(&what, self.client.request(request))
            .await
            .unwrap_or_else(|e| panic!("{method} {url} failed: {e:?}"));
        let (parts, body) = response.into_parts();
        let body = within(&what, body.collect())
            .await
            .unwrap_or_else(|e| panic!("reading the body of {method} {url} failed: {e}"))
            .to_bytes();
        Reply {
            status: parts.status.as_u16(),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect(),
            body,
        }
    }

    /// `POST url` with `body`.
    pub async fn post(&self, url: &str, body: impl Into<Bytes>) -> Reply {
        self.send("POST", url, full(body)).await
    }

    /// `GET url`.
    pub async fn get(&self, url: &str) -> Reply {
        self.send("GET", url, full(Bytes::new())).await
    }
}

/// Writes `bytes` on a fresh connection to `addr` (ignoring write errors: the peer may close
/// early), then reads until the peer closes or resets it, for at most `limit`. Returns what was
/// read and whether the connection ended (`false`: still open at the deadline).
pub async fn raw_exchange(addr: SocketAddr, bytes: &[u8], limit: Duration) -> (Vec<u8>, bool) {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the relay");
    let _ = stream.write_all(bytes).await;
    read_until_closed(&mut stream, limit).await
}

/// Reads from `stream` until EOF or a reset (`true`), or until `limit` passes (`false`).
pub async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    limit: Duration,
) -> (Vec<u8>, bool) {
    let mut read = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (read, true),
            Ok(Ok(n)) => read.extend_from_slice(&buf[..n]),
            Err(_) => return (read, false),
        }
    }
}
