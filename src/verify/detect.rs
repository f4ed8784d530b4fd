//! Recognising the provider from a request's headers, where they are distinctive, so `--provider`
//! is rarely needed. A scan of a few dozen header names per request: cheap enough for every
//! request `hooks listen` forwards.

use std::sync::OnceLock;

use super::provider::{Facts, Provider};
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

/// The providers whose signature headers ([`Facts::signature_headers`]) are looked for, in
/// this order: the first found wins. GitHub's legacy SHA-1 header is Intercom's only one, so
/// Intercom comes last; see `detect`.
const SIGNED: [Provider; 18] = [
    Provider::Stripe,
    Provider::GitHub,
    Provider::StandardWebhooks,
    Provider::Slack,
    Provider::Shopify,
    Provider::SendGrid,
    Provider::Twilio,
    Provider::Discord,
    Provider::Paddle,
    Provider::Linear,
    Provider::Zoom,
    Provider::Square,
    Provider::GitLab,
    Provider::Twitch,
    Provider::Typeform,
    Provider::Calendly,
    Provider::HubSpot,
    Provider::Intercom,
];

/// The providers whose marker headers ([`Facts::marker_headers`]: they name the provider without
/// being a signature) are looked for next, in this order.
const NAMED: [Provider; 11] = [
    Provider::GitHub,
    Provider::StandardWebhooks,
    Provider::Slack,
    Provider::Shopify,
    Provider::Discord,
    Provider::Linear,
    Provider::Zoom,
    Provider::GitLab,
    Provider::SendGrid,
    Provider::Twitch,
    Provider::HubSpot,
];

/// Each provider of `order` with each of its headers that `pick` lists, in order.
fn headers(
    order: &'static [Provider],
    pick: fn(&Facts) -> &'static [&'static str],
) -> impl Iterator<Item = (&'static str, Provider)> {
    order.iter().flat_map(move |&provider| {
        pick(&provider.facts())
            .iter()
            .map(move |&name| (name, provider))
    })
}

/// The headers of [`headers`], by the length of their names, each with its place in that
/// order. `detect` runs for every request `hooks listen` forwards: looking up each of the
/// request's few headers here costs a compare or two, where asking the request for each of
/// the three dozen known names cost about 2,500 instructions (issue 24's profile).
struct Known {
    /// By name length: (place in the order, name as the provider spells it, provider).
    by_len: Vec<Vec<(usize, &'static str, Provider)>>,
}

impl Known {
    fn new(order: &'static [Provider], pick: fn(&Facts) -> &'static [&'static str]) -> Known {
        let mut by_len: Vec<Vec<(usize, &'static str, Provider)>> = Vec::new();
        for (place, (name, provider)) in headers(order, pick).enumerate() {
            if by_len.len() <= name.len() {
                by_len.resize_with(name.len() + 1, Vec::new);
            }
            by_len[name.len()].push((place, name, provider));
        }
        Known { by_len }
    }

    /// The first known header, in the order, that `input` carries: its name and provider.
    fn first(&self, input: &VerifyInput<'_>) -> Option<(&'static str, Provider)> {
        let mut first: Option<&(usize, &'static str, Provider)> = None;
        for (name, _) in input.headers {
            let Some(known) = self.by_len.get(name.len()) else {
                continue;
            };
            for entry in known.iter().filter(|k| k.1.eq_ignore_ascii_case(name)) {
                if first.is_none_or(|f| entry.0 < f.0) {
                    first = Some(entry);
                }
            }
        }
        first.map(|&(_, name, provider)| (name, provider))
    }
}

fn signed() -> &'static Known {
    static KNOWN: OnceLock<Known> = OnceLock::new();
    KNOWN.get_or_init(|| Known::new(&SIGNED, |f| f.signature_headers))
}

fn named() -> &'static Known {
    static KNOWN: OnceLock<Known> = OnceLock::new();
    KNOWN.get_or_init(|| Known::new(&NAMED, |f| f.marker_headers))
}

/// The provider whose headers `input` carries, if they are distinctive.
///
/// `X-Hub-Signature` alone is GitHub's legacy header when an `X-GitHub-*` header is there too,
/// and Intercom's otherwise. Mailgun signs inside the body, so a JSON or form body with a
/// `signature` (timestamp, token, signature) is Mailgun's when no header matched.
pub fn detect(input: &VerifyInput<'_>) -> Option<Detection> {
    let has = |name: &str| input.header(name).is_some();
    if let Some((name, provider)) = signed().first(input) {
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
    if mailgun::carries_signature(input) {
        return Some(Detection {
            provider: Provider::Mailgun,
            from: "body",
            signed: true,
        });
    }
    named().first(input).map(|(from, provider)| Detection {
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

    /// The order of the providers decides, not the order of the request's headers.
    #[test]
    fn the_first_provider_in_the_order_wins_wherever_its_header_is() {
        assert_eq!(
            detect_headers(&[("svix-signature", b"v1,x"), ("Stripe-Signature", b"t=1")]),
            Some((Provider::Stripe, "Stripe-Signature", true))
        );
        assert_eq!(
            detect_headers(&[
                ("x-slack-request-timestamp", b"1"),
                ("x-github-delivery", b"d"),
                ("x-github-event", b"push"),
            ]),
            Some((Provider::GitHub, "X-GitHub-Event", false))
        );
    }

    /// The facts table and the detection orders agree: every signature and marker header
    /// of every provider is detected as that provider's.
    #[test]
    fn every_header_in_the_facts_is_detected_as_its_providers() {
        for provider in Provider::ALL {
            let facts = provider.facts();
            for (list, signed) in [
                (facts.signature_headers, true),
                (facts.marker_headers, false),
            ] {
                for &name in list {
                    assert_eq!(
                        detect_headers(&[(name, b"x")]),
                        Some((provider, name, signed)),
                        "{name}"
                    );
                }
            }
        }
    }
}
