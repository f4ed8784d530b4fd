//! Shopify: `X-Shopify-Hmac-Sha256` (Events deliveries: `shopify-hmac-sha256`), the base64
//! HMAC-SHA256 of the body keyed with the app's client secret as is. No timestamp is signed.
//! Several `--secret`s play the part of the SDK's `apiSecretKeyFallback`.

use super::event::{self, Input, Recognized};
use super::mac::{self, Alg, HmacScheme, KeyRule};
use super::provider::Provider;
use super::secret::Secret;
use super::{header, NoMatch, Signed, Stamp, VerifyInput};

const HEADER: &str = "X-Shopify-Hmac-Sha256";
const EVENTS_HEADER: &str = "shopify-hmac-sha256";

pub(super) fn verify(input: &VerifyInput<'_>, secrets: &[Secret]) -> Result<Stamp, NoMatch> {
    let value = match input.signature(HEADER) {
        Err(NoMatch::Unsigned) => input.signature(EVENTS_HEADER)?,
        value => value?,
    };
    verify_base64_body(Provider::Shopify, value, input, secrets)
}

/// Checks a base64 HMAC-SHA256 of the body (Shopify's format; Typeform's after its label).
pub(super) fn verify_base64_body(
    provider: Provider,
    value: &str,
    input: &VerifyInput<'_>,
    secrets: &[Secret],
) -> Result<Stamp, NoMatch> {
    let tag = mac::base64_tag(Alg::Sha256, value).map_err(NoMatch::malformed)?;
    HmacScheme {
        provider,
        alg: Alg::Sha256,
        key: KeyRule::Raw,
        prefix: b"",
        body: input.body,
        suffix: b"",
        candidates: &[tag],
        signs_url: false,
    }
    .check(secrets)?;
    Ok(Stamp::None)
}

/// The base64 HMAC-SHA256 of the body.
pub(super) fn base64_body_tag(secret: &Secret, input: &VerifyInput<'_>) -> String {
    mac::to_base64(&mac::hmac(
        Alg::Sha256,
        secret.expose().as_bytes(),
        &[input.body],
    ))
}

/// The header the request already uses (`shopify-hmac-sha256` for Events), else the classic.
pub(super) fn sign(secret: &Secret, input: &VerifyInput<'_>) -> Signed {
    let name = if input.header(EVENTS_HEADER).is_some() && input.header(HEADER).is_none() {
        EVENTS_HEADER
    } else {
        HEADER
    };
    Signed {
        headers: vec![header(name, base64_body_tag(secret, input))],
        body: None,
    }
}

/// The Shopify event in a request, if it is one.
pub(super) fn recognize(i: &Input<'_>) -> Option<Recognized> {
    let topic = i.header("x-shopify-topic").or(i.header("shopify-topic"))?;
    Some(Recognized {
        provider: Provider::Shopify,
        event_type: Some(topic.to_owned()),
        event_id: i
            .header("x-shopify-webhook-id")
            .or(i.header("x-shopify-event-id"))
            .map(str::to_owned),
        occurred_at: i.header("x-shopify-triggered-at").and_then(event::rfc3339),
        object_id: i.text("/admin_graphql_api_id").or(i.text("/id")),
    })
}
