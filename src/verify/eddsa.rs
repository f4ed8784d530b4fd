//! Ed25519 for the schemes that sign with it (Discord, Standard Webhooks `v1a`): reading keys and
//! signatures, and verifying with `verify_strict`, which also refuses weak keys and malleable
//! signatures that a genuine signer never produces.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

/// A public key from its 32 bytes.
pub(crate) fn public_key(bytes: &[u8]) -> Result<VerifyingKey, String> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| format!("an Ed25519 public key is 32 bytes, not {}", bytes.len()))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "not a valid Ed25519 public key".to_owned())
}

/// A 64-byte signature.
pub(crate) fn signature(bytes: &[u8]) -> Result<Signature, String> {
    let bytes: [u8; 64] = bytes
        .try_into()
        .map_err(|_| format!("an Ed25519 signature is 64 bytes, not {}", bytes.len()))?;
    Ok(Signature::from_bytes(&bytes))
}

/// Whether one of `candidates` is `key`'s signature of `message`.
pub(crate) fn verify_any(key: &VerifyingKey, message: &[u8], candidates: &[Signature]) -> bool {
    candidates
        .iter()
        .any(|sig| key.verify_strict(message, sig).is_ok())
}

/// A private key from its 32-byte seed or 64-byte keypair (seed then public key).
pub(crate) fn signing_key(bytes: &[u8]) -> Result<SigningKey, String> {
    if let Ok(seed) = <[u8; 32]>::try_from(bytes) {
        return Ok(SigningKey::from_bytes(&seed));
    }
    let pair: [u8; 64] = bytes.try_into().map_err(|_| {
        format!(
            "an Ed25519 private key is a 32-byte seed or a 64-byte keypair, not {} bytes",
            bytes.len()
        )
    })?;
    SigningKey::from_keypair_bytes(&pair)
        .map_err(|_| "the keypair's public half does not belong to its seed".to_owned())
}

/// `key`'s signature of `message`.
pub(crate) fn sign(key: &SigningKey, message: &[u8]) -> [u8; 64] {
    key.sign(message).to_bytes()
}
