//! HubSpot (hubspot-api-python `utils/signature.py`):
//! - v3: `X-HubSpot-Signature-v3`, the base64 HMAC-SHA256 of `method + uri + body + timestamp`
//!   keyed with the app's client secret, and `X-HubSpot-Request-Timestamp` in milliseconds. The
//!   SDK accepts `now - floor(ts / 1000) < 300`, old timestamps only.
//! - v1 and v2: `X-HubSpot-Signature` (hex) with `X-HubSpot-Signature-Version: v1|v2`, a plain
//!   SHA-256 (not an HMAC) of `secret + body` (v1) or `secret + method + uri + body` (v2). No
//!   timestamp.
//!
//! The URI is the full URL, hashed exactly as given. v3 is checked when its header is present.

use sha2::{Digest as _, Sha256};

use super::diagnose;
use super::event::{Input, Recognized};
use super::mac::{self, Alg, HmacScheme, KeyRule};
use super::provider::Provider;
use super::secret::Secret;
use super::window::Timestamp;
use super::{header, NoMatch, Signed, Stamp, VerifyInput};
use serde_json::Value;

const V3_SIGNATURE: &str = "X-HubSpot-Signature-v3";
const V3_TIMESTAMP: &str = "X-HubSpot-Request-Timestamp";
const SIGNATURE: &str = "X-HubSpot-Signature";
const VERSION: &str = "X-HubSpot-Signature-Version";

pub(super) fn verify(input: &VerifyInput<'_>, secrets: &[Secret]) -> Result<Stamp, NoMatch> {
    match input.signature(V3_SIGNATURE) {
        Err(NoMatch::Unsigned) => verify_v1_v2(input, secrets),
        value => verify_v3(value?, input, secrets),
    }
}

fn verify_v3(value: &str, input: &VerifyInput<'_>, secrets: &[Secret]) -> Result<Stamp, NoMatch> {
    let tag = mac::base64_tag(Alg::Sha256, value).map_err(NoMatch::malformed)?;
    let ts = input.required(V3_TIMESTAMP)?;
    let at = Timestamp::parse_millis(ts.trim())
        .map_err(|why| NoMatch::Invalid(format!("{V3_TIMESTAMP} header is malformed: {why}")))?;
    let prefix = [input.method.as_bytes(), input.url.as_bytes()].concat();
    HmacScheme {
        provider: Provider::HubSpot,
        alg: Alg::Sha256,
        key: KeyRule::Raw,
        prefix: &prefix,
        body: input.body,
        suffix: ts.as_bytes(),
        candidates: &[tag],
        signs_url: true,
    }
    .check(secrets)?;
    // The SDK compares whole seconds: floor(ts / 1000).
    Ok(Stamp::At(Timestamp::from_secs(at.unix_secs())))
}

fn verify_v1_v2(input: &VerifyInput<'_>, secrets: &[Secret]) -> Result<Stamp, NoMatch> {
    let tag = mac::hex_tag(Alg::Sha256, input.signature(SIGNATURE)?).map_err(NoMatch::malformed)?;
    let v2 = match input.optional(VERSION).map(str::trim) {
        None | Some("v1") => false,
        Some("v2") => true,
        Some(other) => {
            return Err(NoMatch::Invalid(format!(
                "{VERSION} header is malformed: expected v1 or v2, got {}",
                mac::quote(other)
            )))
        }
    };
    if secrets.is_empty() {
        return Err(NoMatch::Unusable(String::new()));
    }
    let matches = |body: &[u8]| {
        secrets.iter().any(|secret| {
            let digest = plain_digest(secret, v2, input, body);
            mac::matches_any(&digest, std::slice::from_ref(&tag))
        })
    };
    if matches(input.body) {
        return Ok(Stamp::None);
    }
    Err(NoMatch::Invalid(
        diagnose::body_hint(input.body, matches)
            .unwrap_or_else(|| diagnose::mismatch(secrets.len(), v2)),
    ))
}

/// v1: `sha256(secret + body)`; v2: `sha256(secret + method + uri + body)`.
fn plain_digest(secret: &Secret, v2: bool, input: &VerifyInput<'_>, body: &[u8]) -> Vec<u8> {
    let mut hash = Sha256::new();
    hash.update(secret.expose().as_bytes());
    if v2 {
        hash.update(input.method.as_bytes());
        hash.update(input.url.as_bytes());
    }
    hash.update(body);
    hash.finalize().to_vec()
}

/// v1 or v2 when the request names that version, v3 otherwise.
pub(super) fn sign(secret: &Secret, input: &VerifyInput<'_>, at: Timestamp) -> Signed {
    let version = input.optional(VERSION).map(str::trim);
    if let Some(version @ ("v1" | "v2")) = version {
        let digest = plain_digest(secret, version == "v2", input, input.body);
        return Signed {
            headers: vec![
                header(SIGNATURE, mac::to_hex(&digest)),
                header(VERSION, version),
            ],
            body: None,
        };
    }
    let ts = at.unix_millis().to_string();
    let tag = mac::hmac(
        Alg::Sha256,
        secret.expose().as_bytes(),
        &[
            input.method.as_bytes(),
            input.url.as_bytes(),
            input.body,
            ts.as_bytes(),
        ],
    );
    Signed {
        headers: vec![
            header(V3_SIGNATURE, mac::to_base64(&tag)),
            header(V3_TIMESTAMP, ts),
        ],
        body: None,
    }
}

/// The HubSpot event in a request, if it is one.
pub(super) fn recognize(i: &Input<'_>) -> Option<Recognized> {
    if !i.has("x-hubspot-signature") && !i.has("x-hubspot-signature-v3") {
        return None;
    }
    Some(Recognized {
        provider: Provider::HubSpot,
        event_type: i.text("/0/subscriptionType"),
        event_id: i.text("/0/eventId"),
        occurred_at: i
            .json("/0/occurredAt")
            .and_then(Value::as_i64)
            .map(|ms| ms / 1000),
        object_id: i.text("/0/objectId"),
    })
}
