//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=…][,v0=…]`, HMAC-SHA256 over `"<t>." + body`
//! keyed with the whole secret string, `whsec_` prefix included (stripe-python `_webhook.py`).
//! Any `v1` may match (rotation); `v0` and unknown keys are ignored. 300 s, old timestamps only.

use super::event::{Input, Recognized};
use super::mac::{self, Alg, HmacScheme, KeyRule};
use super::provider::Provider;
use super::secret::Secret;
use super::window::Timestamp;
use super::{header, NoMatch, Signed, Stamp, VerifyInput};
use serde_json::Value;

const HEADER: &str = "Stripe-Signature";

/// A parsed `t=…,v1=…` header (Stripe's format, which Calendly copies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TimedHeader {
    /// The `t` value.
    pub t: i64,
    /// Every decodable `v1` value.
    pub v1: Vec<Vec<u8>>,
}

/// Parses `t=<unix>,v1=<hex>[,…]`. Items without `=` and keys other than `t` and `v1` are
/// ignored, as Stripe's SDKs do; the first `t` counts.
pub(super) fn parse_timed(value: &str) -> Result<TimedHeader, String> {
    let mut t = None;
    let mut v1 = Vec::new();
    let mut bad_v1 = None;
    for item in value.split(',') {
        let Some((key, val)) = item.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" if t.is_none() => t = Some(Timestamp::parse_secs(val.trim())?),
            "v1" => match mac::hex_tag(Alg::Sha256, val) {
                Ok(tag) => v1.push(tag),
                Err(why) => bad_v1 = Some(why),
            },
            _ => {}
        }
    }
    let t = t.ok_or("no t= timestamp")?.unix_secs();
    if v1.is_empty() {
        return Err(match bad_v1 {
            Some(why) => format!("v1= {why}"),
            None => "no v1= signature (v0= is not checked)".into(),
        });
    }
    Ok(TimedHeader { t, v1 })
}

/// Checks a `t=…,v1=…` header for `provider`.
pub(super) fn verify_timed(
    provider: Provider,
    name: &str,
    input: &VerifyInput<'_>,
    secrets: &[Secret],
) -> Result<Stamp, NoMatch> {
    let parsed = parse_timed(input.signature(name)?).map_err(NoMatch::malformed)?;
    let prefix = format!("{}.", parsed.t);
    HmacScheme {
        provider,
        alg: Alg::Sha256,
        key: KeyRule::Raw,
        prefix: prefix.as_bytes(),
        body: input.body,
        suffix: b"",
        candidates: &parsed.v1,
        signs_url: false,
    }
    .check(secrets)?;
    Ok(Stamp::At(Timestamp::from_secs(parsed.t)))
}

/// `t=<at>,v1=<hex>` for `input`'s body.
pub(super) fn sign_timed(
    name: &str,
    secret: &Secret,
    input: &VerifyInput<'_>,
    at: Timestamp,
) -> Signed {
    let t = at.unix_secs();
    let prefix = format!("{t}.");
    let tag = mac::hmac(
        Alg::Sha256,
        secret.expose().as_bytes(),
        &[prefix.as_bytes(), input.body],
    );
    Signed {
        headers: vec![header(name, format!("t={t},v1={}", mac::to_hex(&tag)))],
        body: None,
    }
}

pub(super) fn verify(input: &VerifyInput<'_>, secrets: &[Secret]) -> Result<Stamp, NoMatch> {
    verify_timed(Provider::Stripe, HEADER, input, secrets)
}

pub(super) fn sign(secret: &Secret, input: &VerifyInput<'_>, at: Timestamp) -> Signed {
    sign_timed(HEADER, secret, input, at)
}

/// The Stripe event in a request, if it is one.
pub(super) fn recognize(i: &Input<'_>) -> Option<Recognized> {
    let is_event = i.json("/object").and_then(Value::as_str) == Some("event");
    if !i.has("stripe-signature") && !is_event {
        return None;
    }
    Some(Recognized {
        provider: Provider::Stripe,
        event_type: i.text("/type"),
        event_id: i.text("/id"),
        occurred_at: i.json("/created").and_then(Value::as_i64),
        object_id: i.text("/data/object/id"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_items_are_read_leniently() {
        let sig = "ab".repeat(32);
        let parsed = parse_timed(&format!("t=12, v1={sig},v0=zz,junk,v1={sig},x=1")).unwrap();
        assert_eq!(parsed.t, 12);
        assert_eq!(parsed.v1.len(), 2);
    }

    #[test]
    fn header_problems_are_named() {
        let sig = "ab".repeat(32);
        assert_eq!(
            parse_timed(&format!("v1={sig}")),
            Err("no t= timestamp".into())
        );
        assert_eq!(
            parse_timed("t=1,v0=abcd"),
            Err("no v1= signature (v0= is not checked)".into())
        );
        assert_eq!(
            parse_timed("t=1,v1=abcd"),
            Err("v1= expected 64 hex characters, got 4".into())
        );
        assert!(parse_timed(&format!("t=soon,v1={sig}"))
            .unwrap_err()
            .contains("not a number"));
    }
}
