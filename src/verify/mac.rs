//! The building blocks every HMAC scheme shares: computing a tag, comparing it in constant time
//! against the candidates a header carries, decoding hex and base64, turning a [`Secret`] into
//! key bytes, and [`HmacScheme`], the check most providers are an instance of.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::diagnose;
use super::provider::Provider;
pub(crate) use super::secret::KeyRule;
use super::secret::{Secret, LENIENT_BASE64};

/// The hash under the HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    /// HMAC-SHA1: GitHub's legacy header, Intercom, Twilio, Square's legacy header.
    Sha1,
    /// HMAC-SHA256: everyone else.
    Sha256,
}

impl Alg {
    /// Length of a tag in bytes.
    pub(crate) const fn len(self) -> usize {
        match self {
            Alg::Sha1 => 20,
            Alg::Sha256 => 32,
        }
    }
}

/// HMAC of the concatenation of `parts` under `key` (any length is a valid HMAC key).
pub(crate) fn hmac(alg: Alg, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    match alg {
        Alg::Sha1 => {
            let mut mac =
                Hmac::<Sha1>::new_from_slice(key).expect("HMAC accepts a key of any length");
            parts.iter().for_each(|part| mac.update(part));
            mac.finalize().into_bytes().to_vec()
        }
        Alg::Sha256 => {
            let mut mac =
                Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts a key of any length");
            parts.iter().for_each(|part| mac.update(part));
            mac.finalize().into_bytes().to_vec()
        }
    }
}

/// Whether `tag` equals one of `candidates`. Every candidate is compared, each in constant time,
/// so the time taken does not depend on where (or whether) a match is.
pub(crate) fn matches_any(tag: &[u8], candidates: &[Vec<u8>]) -> bool {
    candidates
        .iter()
        .fold(subtle::Choice::from(0), |found, candidate| {
            found | tag.ct_eq(candidate)
        })
        .into()
}

/// Lowercase hex.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Standard base64 with padding.
pub(crate) fn to_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes hex of either case.
pub(crate) fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    hex::decode(text.trim()).map_err(|_| format!("{} is not hex", quote(text)))
}

/// Decodes standard base64, padded or not.
pub(crate) fn from_base64(text: &str) -> Result<Vec<u8>, String> {
    LENIENT_BASE64
        .decode(text.trim())
        .map_err(|_| format!("{} is not base64", quote(text)))
}

/// A signature of exactly `alg`'s length, hex-encoded.
pub(crate) fn hex_tag(alg: Alg, text: &str) -> Result<Vec<u8>, String> {
    let bytes = from_hex(text)?;
    if bytes.len() != alg.len() {
        return Err(format!(
            "expected {} hex characters, got {}",
            alg.len() * 2,
            text.trim().len()
        ));
    }
    Ok(bytes)
}

/// A signature of exactly `alg`'s length, base64-encoded.
pub(crate) fn base64_tag(alg: Alg, text: &str) -> Result<Vec<u8>, String> {
    let bytes = from_base64(text)?;
    if bytes.len() != alg.len() {
        return Err(format!(
            "expected a base64 {}-byte digest, got {} bytes",
            alg.len(),
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// The value after a `label` such as `sha256=` or `v0=`.
pub(crate) fn after_label<'a>(value: &'a str, label: &str) -> Result<&'a str, String> {
    value
        .trim()
        .strip_prefix(label)
        .ok_or_else(|| format!("expected {label}… but got {}", quote(value)))
}

/// A piece of untrusted header text, quoted and cut short for an error message.
pub(crate) fn quote(text: &str) -> String {
    const MAX: usize = 40;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

/// Why an HMAC check did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No secret's tag matches; the reason says what most likely went wrong.
    Mismatch(String),
    /// No secret could be turned into a key for this scheme.
    Unusable(String),
}

/// The check most providers are: HMAC over `prefix + body + suffix` under a key derived from one
/// of the secrets, equal to one of the signatures the header carries.
#[derive(Debug, Clone)]
pub(crate) struct HmacScheme<'a> {
    /// Whose scheme this is (for messages).
    pub provider: Provider,
    /// The hash.
    pub alg: Alg,
    /// How secrets become keys.
    pub key: KeyRule,
    /// Bytes signed before the body.
    pub prefix: &'a [u8],
    /// The body, exactly as received.
    pub body: &'a [u8],
    /// Bytes signed after the body.
    pub suffix: &'a [u8],
    /// Decoded signatures from the header; one match is enough (key rotation).
    pub candidates: &'a [Vec<u8>],
    /// Whether the URL is part of the signed bytes (for the mismatch message).
    pub signs_url: bool,
}

impl HmacScheme<'_> {
    /// Passes when one secret signs to one of the candidates.
    pub(crate) fn check(&self, secrets: &[Secret]) -> Result<(), Failure> {
        let mut unusable = None;
        let mut any_usable = false;
        for secret in secrets {
            match self.key.derive(secret) {
                Ok(key) => {
                    any_usable = true;
                    if self.matches(&key, self.body) {
                        return Ok(());
                    }
                }
                Err(why) => {
                    unusable.get_or_insert(why);
                }
            }
        }
        if !any_usable {
            return Err(Failure::Unusable(unusable.unwrap_or_default()));
        }
        Err(Failure::Mismatch(self.explain(secrets)))
    }

    fn matches(&self, key: &[u8], body: &[u8]) -> bool {
        let tag = hmac(self.alg, key, &[self.prefix, body, self.suffix]);
        matches_any(&tag, self.candidates)
    }

    fn explain(&self, secrets: &[Secret]) -> String {
        let keys: Vec<Vec<u8>> = secrets
            .iter()
            .filter_map(|s| self.key.derive(s).ok())
            .collect();
        diagnose::secret_hint(self.provider, self.key, secrets, |key| {
            self.matches(key, self.body)
        })
        .or_else(|| {
            diagnose::body_hint(self.body, |body| {
                keys.iter().any(|key| self.matches(key, body))
            })
        })
        .unwrap_or_else(|| diagnose::mismatch(secrets.len(), self.signs_url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_2202_and_4231_vectors() {
        // RFC 2202 test case 2 and RFC 4231 test case 2: key "Jefe".
        let data: &[&[u8]] = &[b"what do ya want ", b"for nothing?"];
        assert_eq!(
            to_hex(&hmac(Alg::Sha1, b"Jefe", data)),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            to_hex(&hmac(Alg::Sha256, b"Jefe", data)),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn any_candidate_may_match() {
        let tag = vec![1, 2, 3];
        assert!(matches_any(&tag, &[vec![9, 9, 9], vec![1, 2, 3]]));
        assert!(!matches_any(&tag, &[vec![1, 2], vec![1, 2, 3, 4]]));
        assert!(!matches_any(&tag, &[]));
    }

    #[test]
    fn standard_webhooks_keys_decode_with_or_without_prefix_and_padding() {
        let rule = KeyRule::StandardWebhooks;
        let expected = LENIENT_BASE64
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        for text in [
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ] {
            assert_eq!(rule.derive(&Secret::new(text)), Ok(expected.clone()));
        }
        assert_eq!(
            rule.derive(&Secret::new("whsec_dGVzdA")),
            Ok(b"test".to_vec())
        );
        assert!(rule.derive(&Secret::new("whsec_not base64!")).is_err());
        assert!(rule.derive(&Secret::new("whpk_AAAA")).is_err());
    }

    #[test]
    fn tags_must_have_the_digest_length() {
        assert!(hex_tag(Alg::Sha256, &"ab".repeat(32)).is_ok());
        assert_eq!(
            hex_tag(Alg::Sha256, "abcd"),
            Err("expected 64 hex characters, got 4".into())
        );
        assert!(hex_tag(Alg::Sha1, "zz").is_err());
        assert!(base64_tag(Alg::Sha1, "AAAA").is_err());
    }

    #[test]
    fn quotes_are_cut_on_character_boundaries() {
        assert_eq!(quote("abc"), "\"abc\"");
        let long = "é".repeat(50);
        assert_eq!(quote(&long), format!("{:?}…", "é".repeat(40)));
    }
}
