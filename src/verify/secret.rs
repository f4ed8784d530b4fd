//! [`Secret`]: a signing secret, token or public key that never shows up in `Debug` output, and
//! the [`KeyRule`]s by which HMAC schemes turn one into key bytes.

use std::fmt;
use std::str::FromStr;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

/// A signing secret, token or key, exactly as the user pasted it.
///
/// Its `Debug` prints `(redacted)`, and it has no `Display`, so it cannot reach a log or an error
/// message by accident. Each scheme decides how to turn it into key bytes (Stripe uses the whole
/// string, Standard Webhooks base64-decodes what follows `whsec_`, Discord hex-decodes a public
/// key).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `text`, as given.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The secret's text, for the code that derives key bytes from it. Never print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

/// The error for an empty `--secret`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the secret is empty")]
pub struct EmptySecret;

impl FromStr for Secret {
    type Err = EmptySecret;

    /// Takes the text as is; only an empty string is refused, since it can only be a mistake.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            return Err(EmptySecret);
        }
        Ok(Self::new(text))
    }
}

/// Standard alphabet, padding optional: Standard Webhooks secrets come unpadded, and providers'
/// libraries are lenient about it too.
pub(crate) const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// How a scheme turns the secret the user pasted into HMAC key bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyRule {
    /// The string's UTF-8 bytes, as is (Stripe keeps its `whsec_` prefix in the key).
    Raw,
    /// `whsec_` (optional) followed by standard base64, decoded.
    StandardWebhooks,
}

impl KeyRule {
    /// The key bytes for `secret`, or why this secret cannot be such a key.
    pub(crate) fn derive(self, secret: &Secret) -> Result<Vec<u8>, String> {
        let text = secret.expose();
        match self {
            KeyRule::Raw => Ok(text.as_bytes().to_vec()),
            KeyRule::StandardWebhooks => {
                if text.starts_with("whpk_") || text.starts_with("whsk_") {
                    return Err("the secret is an Ed25519 key (whpk_/whsk_), but this request has v1 (HMAC) signatures only".into());
                }
                let encoded = text.strip_prefix("whsec_").unwrap_or(text);
                match LENIENT_BASE64.decode(encoded.trim()) {
                    Ok(key) if !key.is_empty() => Ok(key),
                    _ => Err("the secret is not a Standard Webhooks key: expected whsec_ followed by base64".into()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = Secret::new("whsec_hunter2");
        assert_eq!(format!("{secret:?}"), "(redacted)");
        assert_eq!(format!("{:?}", vec![secret.clone()]), "[(redacted)]");
        assert_eq!(secret.expose(), "whsec_hunter2");
    }

    #[test]
    fn empty_secret_is_refused() {
        assert_eq!("".parse::<Secret>(), Err(EmptySecret));
        assert_eq!(
            " x".parse::<Secret>().map(|s| s.expose().to_owned()),
            Ok(" x".into())
        );
    }
}
