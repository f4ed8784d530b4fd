//! The providers hooks knows: their names and aliases, and the facts about each one in one table
//! ([`Provider::facts`]: the headers that carry or name its signature, the replay window its
//! official SDK enforces by default, how long it waits for an answer). Each provider's scheme and
//! event recognizer are in its own file.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A webhook signature scheme, named after the provider that uses it.
///
/// Svix, Clerk and Resend sign with Standard Webhooks, so their names parse to
/// [`Provider::StandardWebhooks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Stripe: `Stripe-Signature: t=…,v1=…`, HMAC-SHA256 hex over `t.body`.
    Stripe,
    /// GitHub: `X-Hub-Signature-256: sha256=…` (legacy `X-Hub-Signature: sha1=…`) over the body.
    GitHub,
    /// Standard Webhooks (Svix, Clerk, Resend): `webhook-*` or `svix-*` headers.
    StandardWebhooks,
    /// Slack: `X-Slack-Signature: v0=…` over `v0:ts:body`.
    Slack,
    /// Shopify: `X-Shopify-Hmac-Sha256`, HMAC-SHA256 base64 over the body.
    Shopify,
    /// Twilio: `X-Twilio-Signature`, HMAC-SHA1 base64 over the URL and sorted form parameters.
    Twilio,
    /// Discord: `X-Signature-Ed25519` over `timestamp + body`, checked with the app's public key.
    Discord,
    /// Paddle Billing: `Paddle-Signature: ts=…;h1=…` over `ts:body`.
    Paddle,
    /// Linear: `Linear-Signature`, HMAC-SHA256 hex over the body.
    Linear,
    /// Zoom: `x-zm-signature: v0=…` over `v0:ts:body`.
    Zoom,
    /// Square: `x-square-hmacsha256-signature` over the notification URL and the body.
    Square,
    /// Mailgun: a `signature` object in the body, HMAC-SHA256 hex over `timestamp + token`.
    Mailgun,
    /// Intercom: `X-Hub-Signature: sha1=…` over the body.
    Intercom,
    /// GitLab: `X-Gitlab-Token` carries the secret token itself.
    GitLab,
    /// SendGrid Event Webhook: ECDSA P-256 over `timestamp + body`.
    SendGrid,
    /// Twitch EventSub: `Twitch-Eventsub-Message-Signature: sha256=…` over `id + timestamp + body`.
    Twitch,
    /// Typeform: `Typeform-Signature: sha256=…` with a base64 digest of the body.
    Typeform,
    /// Calendly: `Calendly-Webhook-Signature: t=…,v1=…` over `t.body`.
    Calendly,
    /// HubSpot: `X-HubSpot-Signature-v3` (HMAC) or `X-HubSpot-Signature` v1/v2 (plain SHA-256).
    HubSpot,
}

/// The replay window a provider's official SDK enforces when nobody configures one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// How old (and, when `future` is set, how far ahead) a timestamp may be.
    pub tolerance: Duration,
    /// Whether a timestamp further than `tolerance` in the future is rejected too.
    pub future: bool,
    /// Whether a timestamp exactly `tolerance` old is already rejected (HubSpot's `< 300`).
    pub strict: bool,
}

impl Window {
    const fn past(secs: u64) -> Self {
        Self {
            tolerance: Duration::from_secs(secs),
            future: false,
            strict: false,
        }
    }

    const fn both(secs: u64) -> Self {
        Self {
            tolerance: Duration::from_secs(secs),
            future: true,
            strict: false,
        }
    }
}

impl Provider {
    /// Every provider, in the order `hooks verify --help` lists them.
    pub const ALL: [Provider; 19] = [
        Provider::Stripe,
        Provider::GitHub,
        Provider::StandardWebhooks,
        Provider::Slack,
        Provider::Shopify,
        Provider::Twilio,
        Provider::Discord,
        Provider::Paddle,
        Provider::Linear,
        Provider::Zoom,
        Provider::Square,
        Provider::Mailgun,
        Provider::Intercom,
        Provider::GitLab,
        Provider::SendGrid,
        Provider::Twitch,
        Provider::Typeform,
        Provider::Calendly,
        Provider::HubSpot,
    ];

    /// Names that parse to a provider besides its own name.
    pub const ALIASES: [(&'static str, Provider); 3] = [
        ("svix", Provider::StandardWebhooks),
        ("clerk", Provider::StandardWebhooks),
        ("resend", Provider::StandardWebhooks),
    ];

    /// The name used on the command line and in output, e.g. `standard-webhooks`.
    pub const fn name(self) -> &'static str {
        match self {
            Provider::Stripe => "stripe",
            Provider::GitHub => "github",
            Provider::StandardWebhooks => "standard-webhooks",
            Provider::Slack => "slack",
            Provider::Shopify => "shopify",
            Provider::Twilio => "twilio",
            Provider::Discord => "discord",
            Provider::Paddle => "paddle",
            Provider::Linear => "linear",
            Provider::Zoom => "zoom",
            Provider::Square => "square",
            Provider::Mailgun => "mailgun",
            Provider::Intercom => "intercom",
            Provider::GitLab => "gitlab",
            Provider::SendGrid => "sendgrid",
            Provider::Twitch => "twitch",
            Provider::Typeform => "typeform",
            Provider::Calendly => "calendly",
            Provider::HubSpot => "hubspot",
        }
    }

    /// What hooks knows about this provider, besides its scheme's code (in its own file).
    ///
    /// Windows are the SDKs' defaults (sources in `shared/signatures/SCHEMES.md`): Stripe's and
    /// Paddle's SDKs only reject old timestamps, Standard Webhooks, Slack and Linear reject both
    /// directions, HubSpot's SDK accepts an age strictly below 300 s, and Zoom, Discord, SendGrid
    /// and Mailgun check nothing. Delivery timeouts are as the providers document them (Stripe
    /// publishes no number; 20 s is what its dashboard's timeouts show in practice).
    pub const fn facts(self) -> Facts {
        const NONE: &[&str] = &[];
        let facts = Facts {
            signature_headers: NONE,
            marker_headers: NONE,
            other_headers: NONE,
            window: None,
            signs_timestamp: true,
            coverage_note: None,
            delivery_timeout: None,
        };
        match self {
            Provider::Stripe => Facts {
                signature_headers: &["Stripe-Signature"],
                window: Some(Window::past(300)),
                delivery_timeout: Some(Duration::from_secs(20)),
                ..facts
            },
            Provider::GitHub => Facts {
                signature_headers: &["X-Hub-Signature-256"],
                marker_headers: &["X-GitHub-Event", "X-GitHub-Delivery"],
                // The legacy SHA-1 header; alone, it is Intercom's (see `detect`).
                other_headers: &["X-Hub-Signature"],
                signs_timestamp: false,
                delivery_timeout: Some(Duration::from_secs(10)),
                ..facts
            },
            Provider::StandardWebhooks => Facts {
                signature_headers: &["webhook-signature", "svix-signature"],
                marker_headers: &["webhook-id", "svix-id"],
                other_headers: &["webhook-timestamp", "svix-timestamp"],
                window: Some(Window::both(300)),
                ..facts
            },
            Provider::Slack => Facts {
                signature_headers: &["X-Slack-Signature"],
                marker_headers: &["X-Slack-Request-Timestamp"],
                window: Some(Window::both(300)),
                delivery_timeout: Some(Duration::from_secs(3)),
                ..facts
            },
            Provider::Shopify => Facts {
                signature_headers: &["X-Shopify-Hmac-Sha256", "shopify-hmac-sha256"],
                marker_headers: &["X-Shopify-Topic"],
                signs_timestamp: false,
                delivery_timeout: Some(Duration::from_secs(5)),
                ..facts
            },
            Provider::Twilio => Facts {
                signature_headers: &["X-Twilio-Signature"],
                other_headers: &["Content-Type"],
                signs_timestamp: false,
                delivery_timeout: Some(Duration::from_secs(15)),
                ..facts
            },
            Provider::Discord => Facts {
                signature_headers: &["X-Signature-Ed25519"],
                marker_headers: &["X-Signature-Timestamp"],
                ..facts
            },
            Provider::Paddle => Facts {
                signature_headers: &["Paddle-Signature"],
                window: Some(Window::past(5)),
                ..facts
            },
            Provider::Linear => Facts {
                signature_headers: &["Linear-Signature"],
                marker_headers: &["Linear-Delivery"],
                window: Some(Window::both(60)),
                ..facts
            },
            Provider::Zoom => Facts {
                signature_headers: &["x-zm-signature"],
                marker_headers: &["x-zm-request-timestamp"],
                delivery_timeout: Some(Duration::from_secs(3)),
                ..facts
            },
            Provider::Square => Facts {
                signature_headers: &["x-square-hmacsha256-signature", "x-square-signature"],
                signs_timestamp: false,
                ..facts
            },
            // Mailgun signs inside the body (see `mailgun::carries_signature`).
            Provider::Mailgun => Facts {
                other_headers: &["Content-Type"],
                coverage_note: Some(
                    "mailgun signs the timestamp and token only; the body is not covered",
                ),
                ..facts
            },
            Provider::Intercom => Facts {
                signature_headers: &["X-Hub-Signature"],
                signs_timestamp: false,
                ..facts
            },
            Provider::GitLab => Facts {
                signature_headers: &["X-Gitlab-Token"],
                marker_headers: &["X-Gitlab-Event"],
                signs_timestamp: false,
                coverage_note: Some("gitlab sends the secret token itself; the body is not signed"),
                ..facts
            },
            Provider::SendGrid => Facts {
                signature_headers: &["X-Twilio-Email-Event-Webhook-Signature"],
                marker_headers: &["X-Twilio-Email-Event-Webhook-Timestamp"],
                ..facts
            },
            Provider::Twitch => Facts {
                signature_headers: &["Twitch-Eventsub-Message-Signature"],
                marker_headers: &["Twitch-Eventsub-Message-Id"],
                other_headers: &["Twitch-Eventsub-Message-Timestamp"],
                window: Some(Window::past(600)),
                ..facts
            },
            Provider::Typeform => Facts {
                signature_headers: &["Typeform-Signature"],
                signs_timestamp: false,
                ..facts
            },
            Provider::Calendly => Facts {
                signature_headers: &["Calendly-Webhook-Signature"],
                window: Some(Window::past(180)),
                delivery_timeout: Some(Duration::from_secs(15)),
                ..facts
            },
            // HubSpot v1/v2 sign no timestamp, but v3 does.
            Provider::HubSpot => Facts {
                signature_headers: &["X-HubSpot-Signature-v3", "X-HubSpot-Signature"],
                marker_headers: &["X-HubSpot-Request-Timestamp"],
                other_headers: &["X-HubSpot-Signature-Version"],
                window: Some(Window {
                    tolerance: Duration::from_secs(300),
                    future: false,
                    strict: true,
                }),
                ..facts
            },
        }
    }

    /// The header that carries the signature, as the provider spells it (`Unsigned` names it).
    pub const fn signature_header(self) -> &'static str {
        match self.facts().signature_headers {
            [first, ..] => first,
            // Mailgun signs inside the body; `Unsigned` says so in its own words.
            [] => "signature object in the body",
        }
    }

    /// The replay window the provider's official SDK enforces by default, if any.
    pub const fn default_window(self) -> Option<Window> {
        self.facts().window
    }

    /// Whether the scheme signs a timestamp at all (so `--tolerance` can apply).
    pub const fn signs_timestamp(self) -> bool {
        self.facts().signs_timestamp
    }

    /// What the signature leaves uncovered, for schemes that do not sign the whole body.
    pub const fn coverage_note(self) -> Option<&'static str> {
        self.facts().coverage_note
    }

    /// How long the provider waits for a response before it counts the delivery as failed and
    /// retries.
    pub const fn delivery_timeout(self) -> Option<Duration> {
        self.facts().delivery_timeout
    }

    /// Every header name some provider's scheme or detection reads, each once, in the order of
    /// [`Provider::ALL`]: what fuzzing and property tests put random values in.
    pub fn header_names() -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for provider in Provider::ALL {
            let facts = provider.facts();
            for list in [
                facts.signature_headers,
                facts.marker_headers,
                facts.other_headers,
            ] {
                for &name in list {
                    if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                        names.push(name);
                    }
                }
            }
        }
        names
    }
}

/// What hooks knows about one provider ([`Provider::facts`]), besides its scheme's code and its
/// event recognizer, which are in the provider's own file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// Headers that carry its signature, the main one first, as the provider spells them: any
    /// one says a request is signed by it (see `detect`).
    pub signature_headers: &'static [&'static str],
    /// Headers that name it without signing: a request with one is this provider's, unsigned
    /// when none of its signature headers is there.
    pub marker_headers: &'static [&'static str],
    /// Other headers its scheme reads: timestamps, ids, versions, the body's type.
    pub other_headers: &'static [&'static str],
    /// The replay window its official SDK enforces by default, if any.
    pub window: Option<Window>,
    /// Whether its scheme signs a timestamp (so `--tolerance` can apply).
    pub signs_timestamp: bool,
    /// What its signature leaves uncovered, for schemes that do not sign the whole body.
    pub coverage_note: Option<&'static str>,
    /// How long it waits for an answer before it counts the delivery as failed and retries.
    pub delivery_timeout: Option<Duration>,
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for a name that is no provider; its message lists the names that are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider {name:?}; expected one of: {}", known_names())]
pub struct UnknownProvider {
    /// The name that was given.
    pub name: String,
}

fn known_names() -> String {
    let mut names: Vec<&str> = Provider::ALL.iter().map(|p| p.name()).collect();
    names.extend(Provider::ALIASES.iter().map(|(alias, _)| *alias));
    names.join(", ")
}

impl FromStr for Provider {
    type Err = UnknownProvider;

    /// Parses a name or alias, ignoring ASCII case (`GitHub`, `svix`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let wanted = text.trim();
        Provider::ALL
            .iter()
            .find(|p| p.name().eq_ignore_ascii_case(wanted))
            .copied()
            .or_else(|| {
                Provider::ALIASES
                    .iter()
                    .find(|(alias, _)| alias.eq_ignore_ascii_case(wanted))
                    .map(|(_, p)| *p)
            })
            .ok_or_else(|| UnknownProvider {
                name: text.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_and_alias_parses_back() {
        for provider in Provider::ALL {
            assert_eq!(provider.name().parse::<Provider>(), Ok(provider));
            assert_eq!(
                provider.name().to_uppercase().parse::<Provider>(),
                Ok(provider)
            );
        }
        assert_eq!("svix".parse(), Ok(Provider::StandardWebhooks));
        assert_eq!("Clerk".parse(), Ok(Provider::StandardWebhooks));
        assert_eq!("resend".parse(), Ok(Provider::StandardWebhooks));
    }

    #[test]
    fn unknown_name_lists_the_known_ones() {
        let err = "strype".parse::<Provider>().unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("unknown provider \"strype\"; expected one of: stripe, github,")
        );
        assert!(message.ends_with("svix, clerk, resend"));
    }

    #[test]
    fn windows_match_the_sdks() {
        let stripe = Provider::Stripe.default_window().unwrap();
        assert_eq!((stripe.tolerance.as_secs(), stripe.future), (300, false));
        assert!(Provider::Slack.default_window().unwrap().future);
        assert_eq!(
            Provider::Paddle
                .default_window()
                .unwrap()
                .tolerance
                .as_secs(),
            5
        );
        assert!(Provider::HubSpot.default_window().unwrap().strict);
        assert_eq!(Provider::Zoom.default_window(), None);
        assert_eq!(Provider::GitHub.default_window(), None);
    }

    /// Each provider's scheme reads the signature headers its facts list: a request with only
    /// one of them is signed (if wrongly), not unsigned.
    #[test]
    fn schemes_read_the_signature_headers_their_facts_list() {
        for provider in Provider::ALL {
            for &name in provider.facts().signature_headers {
                let headers: [(&str, &[u8]); 1] = [(name, b"x")];
                let input = crate::verify::VerifyInput {
                    method: "POST",
                    url: "https://example.com/",
                    headers: &headers,
                    body: b"{}",
                };
                let report = crate::verify::check(
                    &input,
                    &[],
                    Some(provider),
                    None,
                    std::time::SystemTime::now(),
                );
                let unsigned =
                    report.is_ok_and(|r| r.verdict() == crate::verify::Verdict::Unsigned);
                assert!(!unsigned, "{provider} does not read {name}");
            }
        }
    }

    #[test]
    fn header_names_hold_every_providers_headers_once() {
        let names = Provider::header_names();
        for provider in Provider::ALL {
            let facts = provider.facts();
            for name in facts.signature_headers.iter().chain(facts.other_headers) {
                assert!(names.contains(name), "{name}");
            }
        }
        let mut lower: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        lower.sort();
        lower.dedup();
        assert_eq!(lower.len(), names.len());
    }
}
