//! Typeform: `Typeform-Signature: sha256=<base64>`, the HMAC-SHA256 of the body keyed with the
//! secret as is. The `sha256=` label looks like GitHub's, but the digest is base64, not hex.

use super::event::{self, Input, Recognized};
use super::mac;
use super::provider::Provider;
use super::secret::Secret;
use super::shopify::{base64_body_tag, verify_base64_body};
use super::{header, NoMatch, Signed, Stamp, VerifyInput};

const HEADER: &str = "Typeform-Signature";

pub(super) fn verify(input: &VerifyInput<'_>, secrets: &[Secret]) -> Result<Stamp, NoMatch> {
    let value =
        mac::after_label(input.signature(HEADER)?, "sha256=").map_err(NoMatch::malformed)?;
    verify_base64_body(Provider::Typeform, value, input, secrets)
}

pub(super) fn sign(secret: &Secret, input: &VerifyInput<'_>) -> Signed {
    Signed {
        headers: vec![header(
            HEADER,
            format!("sha256={}", base64_body_tag(secret, input)),
        )],
        body: None,
    }
}

/// The Typeform event in a request, if it is one.
pub(super) fn recognize(i: &Input<'_>) -> Option<Recognized> {
    if !i.has("typeform-signature") {
        return None;
    }
    Some(Recognized {
        provider: Provider::Typeform,
        event_type: i.text("/event_type"),
        event_id: i.text("/event_id"),
        occurred_at: i
            .text("/form_response/submitted_at")
            .as_deref()
            .and_then(event::rfc3339),
        object_id: i.text("/form_response/token"),
    })
}
