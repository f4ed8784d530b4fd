//! Square: `x-square-hmacsha256-signature`, the base64 HMAC-SHA256 of the notification URL
//! followed by the body, keyed with the signature key as is (it looks like base64url but is not
//! decoded; square-python-sdk `webhooks_helper`). The legacy `x-square-signature` is HMAC-SHA1
//! and checked only when the SHA-256 header is absent. No timestamp.

use super::event::{self, Input, Recognized};
use super::mac::{self, Alg, HmacScheme, KeyRule};
use super::provider::Provider;
use super::secret::Secret;
use super::{header, NoMatch, Signed, Stamp, VerifyInput};

const SHA256_HEADER: &str = "x-square-hmacsha256-signature";
const SHA1_HEADER: &str = "x-square-signature";

pub(super) fn verify(input: &VerifyInput<'_>, secrets: &[Secret]) -> Result<Stamp, NoMatch> {
    let (alg, value) = match input.signature(SHA256_HEADER) {
        Err(NoMatch::Unsigned) => (Alg::Sha1, input.signature(SHA1_HEADER)?),
        value => (Alg::Sha256, value?),
    };
    let tag = mac::base64_tag(alg, value).map_err(NoMatch::malformed)?;
    HmacScheme {
        provider: Provider::Square,
        alg,
        key: KeyRule::Raw,
        prefix: input.url.as_bytes(),
        body: input.body,
        suffix: b"",
        candidates: &[tag],
        signs_url: true,
    }
    .check(secrets)?;
    Ok(Stamp::None)
}

/// The SHA-256 header, plus the legacy SHA-1 one when the request carried it.
pub(super) fn sign(secret: &Secret, input: &VerifyInput<'_>) -> Signed {
    let key = secret.expose().as_bytes();
    let parts: &[&[u8]] = &[input.url.as_bytes(), input.body];
    let mut headers = vec![header(
        SHA256_HEADER,
        mac::to_base64(&mac::hmac(Alg::Sha256, key, parts)),
    )];
    if input.header(SHA1_HEADER).is_some() {
        headers.push(header(
            SHA1_HEADER,
            mac::to_base64(&mac::hmac(Alg::Sha1, key, parts)),
        ));
    }
    Signed {
        headers,
        body: None,
    }
}

/// The Square event in a request, if it is one.
pub(super) fn recognize(i: &Input<'_>) -> Option<Recognized> {
    if !i.has("x-square-hmacsha256-signature") && !i.has("x-square-signature") {
        return None;
    }
    Some(Recognized {
        provider: Provider::Square,
        event_type: i.text("/type"),
        event_id: i.text("/event_id"),
        occurred_at: i.text("/created_at").as_deref().and_then(event::rfc3339),
        object_id: i.text("/data/id"),
    })
}
