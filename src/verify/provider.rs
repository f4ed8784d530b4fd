//! The providers `hooks verify` knows: their names and aliases, the header that carries each one's
//! signature, and the replay window that each one's official SDK enforces by default.

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

    /// The header that carries the signature, as the provider spells it (`Unsigned` names it).
    pub const fn signature_header(self) -> &'static str {
        match self {
            Provider::Stripe => "Stripe-Signature",
            Provider::GitHub => "X-Hub-Signature-256",
            Provider::StandardWebhooks => "webhook-signature",
            Provider::Slack => "X-Slack-Signature",
            Provider::Shopify => "X-Shopify-Hmac-Sha256",
            Provider::Twilio => "X-Twilio-Signature",
            Provider::Discord => "X-Signature-Ed25519",
            Provider::Paddle => "Paddle-Signature",
            Provider::Linear => "Linear-Signature",
            Provider::Zoom => "x-zm-signature",
            Provider::Square => "x-square-hmacsha256-signature",
            // Mailgun signs inside the body; `Unsigned` says so in its own words.
            Provider::Mailgun => "signature object in the body",
            Provider::Intercom => "X-Hub-Signature",
            Provider::GitLab => "X-Gitlab-Token",
            Provider::SendGrid => "X-Twilio-Email-Event-Webhook-Signature",
            Provider::Twitch => "Twitch-Eventsub-Message-Signature",
            Provider::Typeform => "Typeform-Signature",
            Provider::Calendly => "Calendly-Webhook-Signature",
            Provider::HubSpot => "X-HubSpot-Signature-v3",
        }
    }

    /// The replay window the provider's official SDK enforces by default, if any.
    ///
    /// Sources are in `shared/signatures/SCHEMES.md`: Stripe's and Paddle's SDKs only reject old
    /// timestamps, Standard Webhooks, Slack and Linear reject both directions, HubSpot's SDK
    /// accepts an age strictly below 300 s, and Zoom, Discord, SendGrid and Mailgun check nothing.
    pub const fn default_window(self) -> Option<Window> {
        match self {
            Provider::Stripe => Some(Window::past(300)),
            Provider::StandardWebhooks | Provider::Slack => Some(Window::both(300)),
            Provider::Paddle => Some(Window::past(5)),
            Provider::Linear => Some(Window::both(60)),
            Provider::Twitch => Some(Window::past(600)),
            Provider::Calendly => Some(Window::past(180)),
            Provider::HubSpot => Some(Window {
                tolerance: Duration::from_secs(300),
                future: false,
                strict: true,
            }),
            _ => None,
        }
    }

    /// How long the provider waits for a response before it counts the delivery as failed and
    /// retries, as it documents (Stripe publishes no number; 20 s is what its dashboard's
    /// timeouts show in practice).
    pub const fn delivery_timeout(self) -> Option<Duration> {
        let seconds = match self {
            Provider::Slack | Provider::Zoom => 3,
            Provider::Shopify => 5,
            Provider::GitHub => 10,
            Provider::Calendly | Provider::Twilio => 15,
            Provider::Stripe => 20,
            _ => return None,
        };
        Some(Duration::from_secs(seconds))
    }

    /// Whether the scheme signs a timestamp at all (so `--tolerance` can apply).
    pub const fn signs_timestamp(self) -> bool {
        match self {
            Provider::GitHub
            | Provider::Shopify
            | Provider::Twilio
            | Provider::Square
            | Provider::Intercom
            | Provider::GitLab
            | Provider::Typeform => false,
            // HubSpot v1/v2 sign no timestamp, but v3 does.
            _ => true,
        }
    }

    /// What the signature leaves uncovered, for schemes that do not sign the whole body.
    pub const fn coverage_note(self) -> Option<&'static str> {
        match self {
            Provider::Mailgun => {
                Some("mailgun signs the timestamp and token only; the body is not covered")
            }
            Provider::GitLab => {
                Some("gitlab sends the secret token itself; the body is not signed")
            }
            _ => None,
        }
    }
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
}
