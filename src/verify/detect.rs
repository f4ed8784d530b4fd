//! Recognising the provider from a request's headers, where they are distinctive, so `--provider`
//! is rarely needed. A scan of a few dozen header names per request: cheap enough for every
//! request `hooks listen` forwards.

use super::provider::Provider;
use super::{mailgun, VerifyInput};

/// A provider recognised from a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detection {
    /// The provider.
    pub provider: Provider,
    /// The header (or `body`) that gave it away, as the provider spells it.
    pub from: &'static str,
    /// Whether that was a signature (as opposed to, say, `X-GitHub-Event` on an unsigned hook).
    pub signed: bool,
}

/// Headers that carry a signature, each unique to one provider. First match wins, so a
/// provider's main header comes before the headers it shares a prefix with.
const SIGNATURE_HEADERS: &[(&str, Provider)] = &[
    ("Stripe-Signature", Provider::Stripe),
    ("X-Hub-Signature-256", Provider::GitHub),
    ("webhook-signature", Provider::StandardWebhooks),
    ("svix-signature", Provider::StandardWebhooks),
    ("X-Slack-Signature", Provider::Slack),
    ("X-Shopify-Hmac-Sha256", Provider::Shopify),
    ("shopify-hmac-sha256", Provider::Shopify),
    ("X-Twilio-Email-Event-Webhook-Signature", Provider::SendGrid),
    ("X-Twilio-Signature", Provider::Twilio),
    ("X-Signature-Ed25519", Provider::Discord),
    ("Paddle-Signature", Provider::Paddle),
    ("Linear-Signature", Provider::Linear),
    ("x-zm-signature", Provider::Zoom),
    ("x-square-hmacsha256-signature", Provider::Square),
    ("x-square-signature", Provider::Square),
    ("X-Gitlab-Token", Provider::GitLab),
    ("Twitch-Eventsub-Message-Signature", Provider::Twitch),
    ("Typeform-Signature", Provider::Typeform),
    ("Calendly-Webhook-Signature", Provider::Calendly),
    ("X-HubSpot-Signature-v3", Provider::HubSpot),
    ("X-HubSpot-Signature", Provider::HubSpot),
    // GitHub's legacy SHA-1 header is Intercom's only one; see `detect`.
    ("X-Hub-Signature", Provider::Intercom),
];

/// Headers that name a provider without being a signature: the request is that provider's, and
/// unsigned if none of its signature headers is there.
const PROVIDER_HEADERS: &[(&str, Provider)] = &[
    ("X-GitHub-Event", Provider::GitHub),
    ("X-GitHub-Delivery", Provider::GitHub),
    ("webhook-id", Provider::StandardWebhooks),
    ("svix-id", Provider::StandardWebhooks),
    ("X-Slack-Request-Timestamp", Provider::Slack),
    ("X-Shopify-Topic", Provider::Shopify),
    ("X-Signature-Timestamp", Provider::Discord),
    ("Linear-Delivery", Provider::Linear),
    ("x-zm-request-timestamp", Provider::Zoom),
    ("X-Gitlab-Event", Provider::GitLab),
    ("X-Twilio-Email-Event-Webhook-Timestamp", Provider::SendGrid),
    ("Twitch-Eventsub-Message-Id", Provider::Twitch),
    ("X-HubSpot-Request-Timestamp", Provider::HubSpot),
];

/// The provider whose headers `input` carries, if they are distinctive.
///
/// `X-Hub-Signature` alone is GitHub's legacy header when an `X-GitHub-*` header is there too,
/// and Intercom's otherwise. Mailgun signs inside the body, so a JSON or form body with a
/// `signature` (timestamp, token, signature) is Mailgun's when no header matched.
pub fn detect(input: &VerifyInput<'_>) -> Option<Detection> {
    let has = |name: &str| input.header(name).is_some();
    for &(name, provider) in SIGNATURE_HEADERS {
        if has(name) {
            let provider = if provider == Provider::Intercom
                && (has("X-GitHub-Event") || has("X-GitHub-Delivery"))
            {
                Provider::GitHub
            } else {
                provider
            };
            return Some(Detection {
                provider,
                from: name,
                signed: true,
            });
        }
    }
    if mailgun::carries_signature(input) {
        return Some(Detection {
            provider: Provider::Mailgun,
            from: "body",
            signed: true,
        });
    }
    PROVIDER_HEADERS
        .iter()
        .find(|(name, _)| has(name))
        .map(|&(from, provider)| Detection {
            provider,
            from,
            signed: false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect_headers(headers: &[(&str, &[u8])]) -> Option<(Provider, &'static str, bool)> {
        let input = VerifyInput {
            method: "POST",
            url: "https://example.com/",
            headers,
            body: b"{}",
        };
        detect(&input).map(|d| (d.provider, d.from, d.signed))
    }

    #[test]
    fn signature_headers_name_their_provider_in_any_case() {
        assert_eq!(
            detect_headers(&[("stripe-signature", b"t=1,v1=00")]),
            Some((Provider::Stripe, "Stripe-Signature", true))
        );
        assert_eq!(
            detect_headers(&[("SVIX-SIGNATURE", b"v1,x")]),
            Some((Provider::StandardWebhooks, "svix-signature", true))
        );
        assert_eq!(
            detect_headers(&[("X-Twilio-Email-Event-Webhook-Signature", b"x")]),
            Some((
                Provider::SendGrid,
                "X-Twilio-Email-Event-Webhook-Signature",
                true
            ))
        );
    }

    #[test]
    fn x_hub_signature_is_github_only_beside_github_headers() {
        assert_eq!(
            detect_headers(&[("X-Hub-Signature", b"sha1=00")]).map(|d| d.0),
            Some(Provider::Intercom)
        );
        assert_eq!(
            detect_headers(&[("X-Hub-Signature", b"sha1=00"), ("X-GitHub-Event", b"push")])
                .map(|d| d.0),
            Some(Provider::GitHub)
        );
    }

    #[test]
    fn provider_headers_without_signature_mean_unsigned() {
        assert_eq!(
            detect_headers(&[("X-GitHub-Event", b"push")]),
            Some((Provider::GitHub, "X-GitHub-Event", false))
        );
        assert_eq!(
            detect_headers(&[("Content-Type", b"application/json")]),
            None
        );
        assert_eq!(detect_headers(&[]), None);
    }
}
