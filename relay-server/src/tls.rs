//! TLS for the relay: loads the certificate chain and key (PEM), and swaps them in on SIGHUP
//! without dropping connections.

use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;

/// The TLS settings in force.
pub(crate) struct Tls {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

impl Tls {
    /// Loads `files`.
    pub fn load(files: TlsFiles) -> anyhow::Result<Self> {
        let config = server_config(&files)?;
        Ok(Tls {
            files,
            current: RwLock::new(config),
        })
    }

    /// Rereads the files; on error the certificate in force stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let config = server_config(&self.files)?;
        *self.current.write().expect("tls lock is never poisoned") = config;
        Ok(())
    }

    /// An acceptor with the certificate in force now.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(
            &self.current.read().expect("tls lock is never poisoned"),
        ))
    }
}

fn server_config(files: &TlsFiles) -> anyhow::Result<Arc<ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .with_context(|| format!("could not read the certificate {}", files.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("certificate {} is not valid PEM", files.cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("no certificate found in {}", files.cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("could not read a private key from {}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!(
                "certificate {} and key {} do not form a valid pair",
                files.cert.display(),
                files.key.display()
            )
        })?;
    // The relay speaks HTTP/1.1 only (WebSocket upgrades need it).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
