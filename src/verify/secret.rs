//! [`Secret`]: a signing secret, token or public key that never shows up in `Debug` output.

use std::fmt;
use std::str::FromStr;

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
