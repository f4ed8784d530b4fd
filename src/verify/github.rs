//! GitHub: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 of the body keyed with the secret as
//! is; the legacy `X-Hub-Signature: sha1=<hex>` is checked only when the SHA-256 header is
//! absent. No timestamp is signed (GitHub's answer to replays is `X-GitHub-Delivery`).

use super::event::{self, Input, Recognized};
use super::mac::{self, Alg, HmacScheme, KeyRule};
use super::provider::Provider;
use super::secret::Secret;
use super::{header, NoMatch, Signed, Stamp, VerifyInput};

const SHA256_HEADER: &str = "X-Hub-Signature-256";
const SHA1_HEADER: &str = "X-Hub-Signature";

pub(super) fn verify(input: &VerifyInput<'_>, secrets: &[Secret]) -> Result<Stamp, NoMatch> {
    let (alg, value, label) = match input.signature(SHA256_HEADER) {
        Err(NoMatch::Unsigned) => (Alg::Sha1, input.signature(SHA1_HEADER)?, "sha1="),
        value => (Alg::Sha256, value?, "sha256="),
    };
    verify_hub_signature(Provider::GitHub, alg, label, value, input, secrets)
}

/// Checks a `sha1=`/`sha256=` hex signature of the body (GitHub's format, which Intercom uses).
pub(super) fn verify_hub_signature(
    provider: Provider,
    alg: Alg,
    label: &str,
    value: &str,
    input: &VerifyInput<'_>,
    secrets: &[Secret],
) -> Result<Stamp, NoMatch> {
    let tag = mac::after_label(value, label)
        .and_then(|hex| mac::hex_tag(alg, hex))
        .map_err(NoMatch::malformed)?;
    HmacScheme {
        provider,
        alg,
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

/// Both headers, as GitHub sends them.
pub(super) fn sign(secret: &Secret, input: &VerifyInput<'_>) -> Signed {
    let key = secret.expose().as_bytes();
    let sha256 = mac::hmac(Alg::Sha256, key, &[input.body]);
    let sha1 = mac::hmac(Alg::Sha1, key, &[input.body]);
    Signed {
        headers: vec![
            header(SHA256_HEADER, format!("sha256={}", mac::to_hex(&sha256))),
            header(SHA1_HEADER, format!("sha1={}", mac::to_hex(&sha1))),
        ],
        body: None,
    }
}

/// The GitHub event in a request, if it is one.
pub(super) fn recognize(i: &Input<'_>) -> Option<Recognized> {
    let event = i.header("x-github-event")?;
    Some(Recognized {
        provider: Provider::GitHub,
        event_type: Some(event::dotted(event, i.text("/action"))),
        event_id: i.header("x-github-delivery").map(str::to_owned),
        occurred_at: None,
        object_id: None,
    })
}
