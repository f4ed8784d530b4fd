//! Explaining a signature that does not match. A bare "invalid" sends people hunting; instead the
//! likely mistakes are re-tried (a secret with its `whsec_` prefix treated the other way, a body
//! that was parsed and re-serialised or had its line endings changed), and the reason names the
//! one that reproduces the signature. These retries run only after a mismatch.

use serde_json::Value;

use super::provider::Provider;
use super::secret::{KeyRule, Secret};

/// Bodies larger than this are not re-serialised to explain a mismatch; the generic reason is
/// given instead, so a stream of large failing webhooks costs no more than checking them.
const MAX_BODY_TO_RETRY: usize = 1 << 20;

/// The reason when the body was re-serialised on the way.
pub(crate) const BODY_REPARSED: &str =
    "body differs from what was signed (was it parsed and re-serialised?)";

/// A reason naming a secret mix-up, when another reading of one of `secrets` matches.
pub(crate) fn secret_hint(
    provider: Provider,
    rule: KeyRule,
    secrets: &[Secret],
    matches: impl Fn(&[u8]) -> bool,
) -> Option<String> {
    for secret in secrets {
        let text = secret.expose();
        let trimmed = text.trim();
        if trimmed != text && !trimmed.is_empty() {
            let key = rule.derive(&Secret::new(trimmed));
            if key.is_ok_and(|key| matches(&key)) {
                return Some(
                    "the secret has spaces or a line break around it; copy it again without them"
                        .into(),
                );
            }
        }
        if let Some(reason) = prefix_hint(provider, rule, text, &matches) {
            return Some(reason);
        }
    }
    None
}

fn prefix_hint(
    provider: Provider,
    rule: KeyRule,
    text: &str,
    matches: &impl Fn(&[u8]) -> bool,
) -> Option<String> {
    match rule {
        KeyRule::Raw => {
            if let Some(rest) = text.strip_prefix("whsec_") {
                let decoded = KeyRule::StandardWebhooks.derive(&Secret::new(text));
                if decoded.is_ok_and(|key| matches(&key)) {
                    return Some(format!(
                        "secret looks like a Standard Webhooks key (whsec_ + base64) but {provider} uses the string as is; the sender signed with its base64-decoded bytes"
                    ));
                }
                if matches(rest.as_bytes()) {
                    return Some(format!(
                        "the sender signed without the whsec_ prefix, but {provider} signs with the whole string"
                    ));
                }
            } else if provider == Provider::Stripe && matches(format!("whsec_{text}").as_bytes()) {
                return Some(
                    "secret is missing its whsec_ prefix; stripe signs with the whole string"
                        .into(),
                );
            }
            None
        }
        KeyRule::StandardWebhooks => matches(text.as_bytes()).then(|| {
            format!(
                "the sender signed with the secret string as is, but {provider} base64-decodes what follows whsec_"
            )
        }),
    }
}

/// A reason naming what happened to the body, when a likely alteration of it matches.
pub(crate) fn body_hint(body: &[u8], matches: impl Fn(&[u8]) -> bool) -> Option<String> {
    if body.len() > MAX_BODY_TO_RETRY {
        return None;
    }
    for (variant, reason) in body_variants(body) {
        if variant != body && matches(&variant) {
            return Some(reason.to_owned());
        }
    }
    None
}

fn body_variants(body: &[u8]) -> Vec<(Vec<u8>, &'static str)> {
    let mut variants = Vec::new();
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        let sorted = sort_keys(value.clone());
        for value in [&value, &sorted] {
            if let Ok(compact) = serde_json::to_vec(value) {
                variants.push((compact, BODY_REPARSED));
            }
            if let Ok(pretty) = serde_json::to_vec_pretty(value) {
                let mut with_newline = pretty.clone();
                with_newline.push(b'\n');
                variants.push((pretty, BODY_REPARSED));
                variants.push((with_newline, BODY_REPARSED));
            }
        }
    }
    const LINE_ENDINGS: &str =
        "body differs from what was signed: its line endings were changed (CRLF and LF)";
    if body.windows(2).any(|w| w == b"\r\n") {
        variants.push((replace(body, b"\r\n", b"\n"), LINE_ENDINGS));
    } else if body.contains(&b'\n') {
        variants.push((replace(body, b"\n", b"\r\n"), LINE_ENDINGS));
    }
    const TRAILING: &str =
        "body differs from what was signed: whitespace was added or removed at its end";
    let trimmed = body.trim_ascii_end();
    variants.push((trimmed.to_vec(), TRAILING));
    for ending in [&b"\n"[..], b"\r\n"] {
        let mut extended = trimmed.to_vec();
        extended.extend_from_slice(ending);
        variants.push((extended, TRAILING));
    }
    variants
}

fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len() + haystack.len() / 16);
    let mut rest = haystack;
    while !rest.is_empty() {
        if rest.starts_with(from) {
            out.extend_from_slice(to);
            rest = &rest[from.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

/// The reason when nothing more specific was found.
pub(crate) fn mismatch(secrets: usize, signs_url: bool) -> String {
    let head = if secrets > 1 {
        format!("signature matches none of the {secrets} secrets: wrong secrets")
    } else {
        "signature does not match: wrong secret".to_owned()
    };
    if signs_url {
        format!("{head}, the body differs from what was signed (was it parsed and re-serialised?), or the URL is not the one the provider signed (give it with --url)")
    } else {
        format!(
            "{head}, or the body differs from what was signed (was it parsed and re-serialised?)"
        )
    }
}

/// The reason for a public-key signature when nothing more specific was found.
pub(crate) fn mismatch_public_key(keys: usize) -> String {
    let head = if keys > 1 {
        format!("signature matches none of the {keys} public keys: wrong keys")
    } else {
        "signature does not match: wrong public key".to_owned()
    };
    format!("{head}, or the body differs from what was signed (was it parsed and re-serialised?)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserialised_json_is_recognised() {
        let signed = b"{\n  \"b\": 1,\n  \"a\": [\n    1\n  ]\n}\n";
        let received = br#"{"b":1,"a":[1]}"#;
        assert_eq!(
            body_hint(received, |body| body == signed).as_deref(),
            Some(BODY_REPARSED)
        );
        let sorted = br#"{"a":[1],"b":1}"#;
        assert_eq!(
            body_hint(received, |body| body == sorted).as_deref(),
            Some(BODY_REPARSED)
        );
    }

    #[test]
    fn line_endings_and_trailing_whitespace_are_recognised() {
        let hint = body_hint(b"a\nb\n", |body| body == b"a\r\nb\r\n").unwrap();
        assert!(hint.contains("line endings"), "{hint}");
        let hint = body_hint(b"a=1&b=2\n", |body| body == b"a=1&b=2").unwrap();
        assert!(hint.contains("at its end"), "{hint}");
        assert_eq!(body_hint(b"x", |_| false), None);
    }

    #[test]
    fn whsec_mixups_are_named() {
        let decoded = KeyRule::StandardWebhooks
            .derive(&Secret::new("whsec_dGVzdGtleQ=="))
            .unwrap();
        let hint = secret_hint(
            Provider::Stripe,
            KeyRule::Raw,
            &[Secret::new("whsec_dGVzdGtleQ==")],
            |key| key == decoded,
        )
        .unwrap();
        assert!(hint.starts_with("secret looks like a Standard Webhooks key (whsec_ + base64) but stripe uses the string as is"), "{hint}");

        let hint = secret_hint(
            Provider::Stripe,
            KeyRule::Raw,
            &[Secret::new("abc")],
            |key| key == b"whsec_abc",
        );
        assert_eq!(
            hint.as_deref(),
            Some("secret is missing its whsec_ prefix; stripe signs with the whole string")
        );

        let hint = secret_hint(
            Provider::StandardWebhooks,
            KeyRule::StandardWebhooks,
            &[Secret::new("whsec_dGVzdGtleQ==")],
            |key| key == b"whsec_dGVzdGtleQ==",
        )
        .unwrap();
        assert!(hint.contains("base64-decodes"), "{hint}");
    }

    #[test]
    fn surrounding_whitespace_in_a_secret_is_named() {
        let hint = secret_hint(
            Provider::GitHub,
            KeyRule::Raw,
            &[Secret::new("s3cret\n")],
            |key| key == b"s3cret",
        )
        .unwrap();
        assert!(hint.contains("spaces or a line break"), "{hint}");
    }

    #[test]
    fn generic_reasons() {
        assert_eq!(
            mismatch(1, false),
            "signature does not match: wrong secret, or the body differs from what was signed (was it parsed and re-serialised?)"
        );
        assert!(mismatch(3, true).starts_with("signature matches none of the 3 secrets"));
        assert!(mismatch(1, true).ends_with("(give it with --url)"));
    }
}
