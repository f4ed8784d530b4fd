//! Intercom: `X-Hub-Signature: sha1=<hex>`, HMAC-SHA1 of the body keyed with the app's client
//! secret. GitHub's legacy format; no timestamp.

use super::event::{Input, Recognized};
use super::github::verify_hub_signature;
use super::mac::{self, Alg};
use super::provider::Provider;
use super::secret::Secret;
use super::{header, NoMatch, Signed, Stamp, VerifyInput};
use serde_json::Value;

const HEADER: &str = "X-Hub-Signature";

pub(super) fn verify(input: &VerifyInput<'_>, secrets: &[Secret]) -> Result<Stamp, NoMatch> {
    let value = input.signature(HEADER)?;
    verify_hub_signature(
        Provider::Intercom,
        Alg::Sha1,
        "sha1=",
        value,
        input,
        secrets,
    )
}

pub(super) fn sign(secret: &Secret, input: &VerifyInput<'_>) -> Signed {
    let tag = mac::hmac(Alg::Sha1, secret.expose().as_bytes(), &[input.body]);
    Signed {
        headers: vec![header(HEADER, format!("sha1={}", mac::to_hex(&tag)))],
        body: None,
    }
}

/// The Intercom event in a request, if it is one.
pub(super) fn recognize(i: &Input<'_>) -> Option<Recognized> {
    if i.json("/type").and_then(Value::as_str) != Some("notification_event") {
        return None;
    }
    Some(Recognized {
        provider: Provider::Intercom,
        event_type: i.text("/topic"),
        event_id: i.text("/id"),
        occurred_at: i.json("/created_at").and_then(Value::as_i64),
        object_id: i.text("/data/item/id"),
    })
}
