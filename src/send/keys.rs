//! Private keys for the providers that sign with one (Discord, SendGrid, Standard Webhooks
//! `v1a`): the public key that goes with a given one, and the key pair hooks generates once per
//! provider and keeps in its data directory, so the app is configured once.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _};

use crate::verify::{Provider, Secret};

/// Whether `provider` signs with a private key only (no shared secret exists).
pub fn private_only(provider: Provider) -> bool {
    matches!(provider, Provider::Discord | Provider::SendGrid)
}

/// A private key and the public key that checks its signatures, as `hooks verify` takes it.
#[derive(Debug, Clone)]
pub struct KeyPair {
    /// The private key, in the form [`crate::verify::sign`] takes.
    pub private: Secret,
    /// The public key, for the app (and `hooks verify --secret`).
    pub public: String,
}

/// The public key of `private` for `provider`; the error says what the key should look like.
pub fn public_of(provider: Provider, private: &Secret) -> Result<String, String> {
    let text = private.expose();
    match provider {
        Provider::Discord => {
            let seed = hex::decode(text)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .ok_or("a Discord private key is 64 hex characters (an Ed25519 seed)")?;
            let key = ed25519_dalek::SigningKey::from_bytes(&seed);
            Ok(hex::encode(key.verifying_key().as_bytes()))
        }
        Provider::StandardWebhooks => {
            let bytes = text
                .strip_prefix("whsk_")
                .and_then(|b64| BASE64.decode(b64).ok())
                .ok_or("a Standard Webhooks private key is whsk_ and base64 (v1a)")?;
            let seed = <[u8; 32]>::try_from(&bytes[..bytes.len().min(32)])
                .map_err(|_| "a whsk_ key holds a 32-byte seed (or a 64-byte keypair)")?;
            let key = ed25519_dalek::SigningKey::from_bytes(&seed);
            Ok(format!(
                "whpk_{}",
                BASE64.encode(key.verifying_key().as_bytes())
            ))
        }
        Provider::SendGrid => {
            let key = BASE64
                .decode(text)
                .ok()
                .and_then(|der| p256::ecdsa::SigningKey::from_pkcs8_der(&der).ok())
                .ok_or("a SendGrid private key is base64 PKCS#8 DER (P-256)")?;
            let public = key
                .verifying_key()
                .to_public_key_der()
                .map_err(|e| format!("could not encode the public key: {e}"))?;
            Ok(BASE64.encode(public.as_bytes()))
        }
        other => Err(format!("{other} signs with a shared secret: use --secret")),
    }
}

/// The key pair for `provider` kept in `data_dir`, generated (and written, readable by its owner
/// only) the first time; the path says where.
pub fn kept(provider: Provider, data_dir: &Path) -> anyhow::Result<(KeyPair, PathBuf)> {
    let dir = data_dir.join("keys");
    let path = dir.join(format!("{}.key", provider.name()));
    let private = match std::fs::read_to_string(&path) {
        Ok(text) => Secret::new(text.trim()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let private = generate(provider)?;
            write_private(&dir, &path, &private)?;
            // Another process may have written its own first: use what is on disk.
            Secret::new(std::fs::read_to_string(&path)?.trim())
        }
        Err(e) => return Err(anyhow::anyhow!("could not read {}: {e}", path.display())),
    };
    let public = public_of(provider, &private)
        .map_err(|why| anyhow::anyhow!("the key in {} is not usable: {why}", path.display()))?;
    Ok((KeyPair { private, public }, path))
}

/// A new private key for `provider`, in the form [`crate::verify::sign`] takes.
fn generate(provider: Provider) -> anyhow::Result<Secret> {
    let seed = random_32()?;
    Ok(Secret::new(match provider {
        Provider::Discord => hex::encode(seed),
        Provider::StandardWebhooks => format!("whsk_{}", BASE64.encode(seed)),
        Provider::SendGrid => {
            let key = p256_key()?;
            let der = key
                .to_pkcs8_der()
                .map_err(|e| anyhow::anyhow!("could not encode a P-256 key: {e}"))?;
            BASE64.encode(der.as_bytes())
        }
        other => anyhow::bail!("{other} has no private key"),
    }))
}

fn random_32() -> anyhow::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| anyhow::anyhow!("no random source to make a key with: {e}"))?;
    Ok(seed)
}

/// A random P-256 key: random scalars until one is valid (all but about 2^-32 of them are).
fn p256_key() -> anyhow::Result<p256::ecdsa::SigningKey> {
    for _ in 0..64 {
        if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&random_32()?) {
            return Ok(key);
        }
    }
    anyhow::bail!("could not make a P-256 key")
}

/// Writes `private` to `path` if no file is there yet, readable by its owner only.
fn write_private(dir: &Path, path: &Path, private: &Secret) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("could not create {}: {e}", dir.display()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => file
            .write_all(format!("{}\n", private.expose()).as_bytes())
            .map_err(|e| anyhow::anyhow!("could not write {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(anyhow::anyhow!("could not create {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_kept_and_match_their_public_keys() {
        let dir = tempfile::tempdir().unwrap();
        for provider in [
            Provider::Discord,
            Provider::SendGrid,
            Provider::StandardWebhooks,
        ] {
            let (first, path) = kept(provider, dir.path()).unwrap();
            let (again, _) = kept(provider, dir.path()).unwrap();
            assert_eq!(first.private, again.private, "{provider}: kept");
            assert_eq!(public_of(provider, &first.private).unwrap(), first.public);
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = std::fs::metadata(&path).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{provider}");
            }
        }
        assert!(public_of(Provider::Discord, &Secret::new("abc")).is_err());
        assert!(public_of(Provider::Stripe, &Secret::new("x"))
            .unwrap_err()
            .contains("--secret"));
    }
}
