//! Calendly: `Calendly-Webhook-Signature: t=<unix>,v1=<hex>`, Stripe's construction with the
//! signing key used as is. Calendly's guidance is a 3-minute window, old timestamps only.

use super::event::{self, Input, Recognized};
use super::provider::Provider;
use super::secret::Secret;
use super::stripe::{sign_timed, verify_timed};
use super::window::Timestamp;
use super::{NoMatch, Signed, Stamp, VerifyInput};

const HEADER: &str = "Calendly-Webhook-Signature";

pub(super) fn verify(input: &VerifyInput<'_>, secrets: &[Secret]) -> Result<Stamp, NoMatch> {
    verify_timed(Provider::Calendly, HEADER, input, secrets)
}

pub(super) fn sign(secret: &Secret, input: &VerifyInput<'_>, at: Timestamp) -> Signed {
    sign_timed(HEADER, secret, input, at)
}

/// The Calendly event in a request, if it is one.
pub(super) fn recognize(i: &Input<'_>) -> Option<Recognized> {
    if !i.has("calendly-webhook-signature") {
        return None;
    }
    Some(Recognized {
        provider: Provider::Calendly,
        event_type: i.text("/event"),
        event_id: None,
        occurred_at: i.text("/created_at").as_deref().and_then(event::rfc3339),
        object_id: i.text("/payload/uri"),
    })
}
