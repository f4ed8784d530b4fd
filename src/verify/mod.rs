//! Webhook signature verification: one [`Outcome`] type, one file per provider's scheme, and the
//! dispatch between them ([`check`], [`detect`], [`sign`]), and the recognition of each
//! provider's events ([`recognize`]).
//!
//! [`check`] never panics and never fails on what a request contains: a missing, malformed or
//! wrong signature is an [`Outcome`]. It fails only when it cannot check at all: no secret was
//! given for a signed request, or no secret given can be a key for the provider's scheme.
//!
//! The signature is checked first; only a matching signature has its timestamp held against the
//! provider's replay window, so `Expired` always means "genuine, but old (or ahead)".

mod calendly;
pub mod command;
mod detect;
mod diagnose;
mod discord;
mod eddsa;
mod event;
mod github;
mod gitlab;
mod hubspot;
mod intercom;
mod linear;
mod mac;
mod mailgun;
mod outcome;
mod paddle;
mod provider;
mod pruned;
mod secret;
mod sendgrid;
mod shopify;
mod slack;
mod square;
mod standard_webhooks;
mod stripe;
mod twilio;
mod twitch;
mod typeform;
mod window;
mod zoom;

use std::time::{Duration, SystemTime};

use relay_server::protocol::Header;

pub use detect::{detect, Detection};
pub use event::Recognized;
pub use outcome::{Age, Outcome, Report, Verdict};
pub use provider::{Provider, UnknownProvider, Window};
pub use secret::{EmptySecret, Secret};

use mac::Failure;
use window::Timestamp;

/// One request as the verifier sees it. Building one borrows everything; nothing is copied.
///
/// From `hooks listen`, for a request with `Vec<Header>` headers:
/// `let headers: Vec<(&str, &[u8])> = req.headers.iter().map(|h| (h.name.as_str(), &h.value[..])).collect();`
#[derive(Clone, Copy)]
pub struct VerifyInput<'a> {
    /// The HTTP method, e.g. `POST` (HubSpot signs it).
    pub method: &'a str,
    /// The full public URL the provider called, with the query (Twilio, Square and HubSpot sign
    /// it). Schemes that do not sign the URL ignore it.
    pub url: &'a str,
    /// Headers in the order received; names in any case, values as raw bytes.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The body, exactly as received.
    pub body: &'a [u8],
}

impl std::fmt::Debug for VerifyInput<'_> {
    /// Header values can be secrets (GitLab's token is one): names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| *n).collect();
        f.debug_struct("VerifyInput")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl<'a> VerifyInput<'a> {
    /// The value of the first header called `name`, compared without regard to ASCII case.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| *value)
    }

    /// The signature header `name` as text; `Unsigned` when it is absent.
    fn signature(&self, name: &str) -> Result<&'a str, NoMatch> {
        match self.header(name) {
            None => Err(NoMatch::Unsigned),
            Some(value) => text_value(name, value),
        }
    }

    /// A header the scheme needs besides the signature; `Invalid` when it is absent.
    fn required(&self, name: &str) -> Result<&'a str, NoMatch> {
        match self.header(name) {
            None => Err(NoMatch::Invalid(format!("no {name} header"))),
            Some(value) => text_value(name, value),
        }
    }

    /// The header `name` as text, if present and text.
    fn optional(&self, name: &str) -> Option<&'a str> {
        self.header(name)
            .and_then(|value| std::str::from_utf8(value).ok())
    }
}

fn text_value<'a>(name: &str, value: &'a [u8]) -> Result<&'a str, NoMatch> {
    std::str::from_utf8(value).map_err(|_| NoMatch::malformed(format!("{name} is not UTF-8 text")))
}

/// What a scheme's signature carries about time, for the replay window.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stamp {
    /// The scheme signs no timestamp (or this request carries none).
    None,
    /// The signed timestamp.
    At(Timestamp),
    /// The timestamp could not be read; it only matters when a window applies.
    Unreadable(String),
}

/// Why a scheme found no matching signature.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NoMatch {
    /// No signature header (or body field) at all.
    Unsigned,
    /// A signature is there but incomplete, malformed or wrong.
    Invalid(String),
    /// None of the secrets can be a key for this scheme (or none was given).
    Unusable(String),
}

impl NoMatch {
    fn malformed(detail: impl std::fmt::Display) -> Self {
        NoMatch::Invalid(format!("signature header is malformed: {detail}"))
    }
}

impl From<Failure> for NoMatch {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Mismatch(reason) => NoMatch::Invalid(reason),
            Failure::Unusable(reason) => NoMatch::Unusable(reason),
        }
    }
}

/// Why a request could not be checked at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The request is signed, but no secret was given.
    #[error("the request carries a {provider} signature, but no secret was given to check it (pass --secret or set HOOKS_SECRET)")]
    NoSecret {
        /// Whose signature the request carries.
        provider: Provider,
    },
    /// No secret given can be a key for the provider's scheme (e.g. Discord needs a hex key).
    #[error("cannot check the {provider} signature: {reason}")]
    UnusableSecret {
        /// The provider whose scheme was checked.
        provider: Provider,
        /// What the secret should look like.
        reason: String,
    },
}

/// Checks `input`'s signature against `secrets` (valid when any one of them holds).
///
/// `provider: None` recognises the provider from the request ([`detect`]); the report says so in
/// `assumed` and `detected_from`. `tolerance` replaces the provider's default replay window
/// (`Duration::ZERO` turns the timestamp check off); `now` is the time timestamps are held
/// against.
///
/// With no secrets this still tells signed from unsigned cheaply: `Ok` with `Unsigned` (or
/// `Invalid` for a malformed header), or `Err(VerifyError::NoSecret)` naming the provider whose
/// signature the request carries.
pub fn check(
    input: &VerifyInput<'_>,
    secrets: &[Secret],
    provider: Option<Provider>,
    tolerance: Option<Duration>,
    now: SystemTime,
) -> Result<Report, VerifyError> {
    match provider {
        Some(provider) => check_as(input, secrets, provider, None, tolerance, now),
        None => check_detected(input, secrets, detect(input), tolerance, now),
    }
}

/// [`check`] with no provider named, `detection` being what [`detect`] found in `input`: for a
/// caller that looked already.
pub fn check_detected(
    input: &VerifyInput<'_>,
    secrets: &[Secret],
    detection: Option<Detection>,
    tolerance: Option<Duration>,
    now: SystemTime,
) -> Result<Report, VerifyError> {
    match detection {
        Some(found) => check_as(
            input,
            secrets,
            found.provider,
            Some(found.from),
            tolerance,
            now,
        ),
        None => Ok(unrecognised()),
    }
}

/// [`check`] with `provider`'s scheme, which was recognised from `detected_from` when not
/// given.
fn check_as(
    input: &VerifyInput<'_>,
    secrets: &[Secret],
    provider: Provider,
    detected_from: Option<&'static str>,
    tolerance: Option<Duration>,
    now: SystemTime,
) -> Result<Report, VerifyError> {
    let report = |outcome: Outcome, reason: Option<String>| Report {
        provider: Some(provider),
        assumed: detected_from.is_some(),
        detected_from,
        note: matches!(outcome, Outcome::Valid)
            .then(|| provider.coverage_note())
            .flatten(),
        outcome,
        reason,
    };
    let stamp = match verify_scheme(provider, input, secrets) {
        Ok(stamp) => stamp,
        Err(NoMatch::Unsigned) => {
            let reason = unsigned_reason(provider, input);
            return Ok(report(Outcome::Unsigned, Some(reason)));
        }
        Err(NoMatch::Invalid(reason)) => {
            let outcome = Outcome::Invalid {
                reason: reason.clone(),
            };
            return Ok(report(outcome, Some(reason)));
        }
        Err(NoMatch::Unusable(_)) if secrets.is_empty() => {
            return Err(VerifyError::NoSecret { provider });
        }
        Err(NoMatch::Unusable(reason)) => {
            return Err(VerifyError::UnusableSecret { provider, reason });
        }
    };
    let (outcome, reason) = apply_window(provider, stamp, tolerance, now);
    Ok(report(outcome, reason))
}

fn unrecognised() -> Report {
    Report {
        provider: None,
        assumed: false,
        detected_from: None,
        outcome: Outcome::Unsigned,
        reason: Some(
            "no signature header of a known provider (name the provider with --provider)".into(),
        ),
        note: None,
    }
}

/// "no X-Hub-Signature-256 header", plus the provider whose signature is there instead.
fn unsigned_reason(provider: Provider, input: &VerifyInput<'_>) -> String {
    let mut reason = format!("no {} header", provider.signature_header());
    if provider == Provider::Mailgun {
        reason = "no signature object in the body".into();
    }
    if let Some(other) = detect(input).filter(|d| d.signed && d.provider != provider) {
        reason.push_str(&format!(
            " (the request carries {}: is it from {}?)",
            other.from, other.provider
        ));
    }
    reason
}

fn apply_window(
    provider: Provider,
    stamp: Stamp,
    tolerance: Option<Duration>,
    now: SystemTime,
) -> (Outcome, Option<String>) {
    let window = match tolerance {
        Some(t) if t.is_zero() => None,
        Some(t) => Some(match provider.default_window() {
            Some(default) => Window {
                tolerance: t,
                ..default
            },
            // The SDK checks nothing; a window the user asks for applies both ways.
            None => Window {
                tolerance: t,
                future: true,
                strict: false,
            },
        }),
        None => provider.default_window(),
    };
    let Some(window) = window else {
        return (Outcome::Valid, None);
    };
    match stamp {
        Stamp::None => (Outcome::Valid, None),
        Stamp::Unreadable(reason) => (
            Outcome::Invalid {
                reason: reason.clone(),
            },
            Some(reason),
        ),
        Stamp::At(at) => match window::outside(at, now, window) {
            None => (Outcome::Valid, None),
            Some(age) => {
                let reason =
                    outcome::expired_reason(provider, age, window.tolerance, tolerance.is_some());
                let outcome = Outcome::Expired {
                    age,
                    tolerance: window.tolerance,
                };
                (outcome, Some(reason))
            }
        },
    }
}

fn verify_scheme(
    provider: Provider,
    input: &VerifyInput<'_>,
    secrets: &[Secret],
) -> Result<Stamp, NoMatch> {
    match provider {
        Provider::Stripe => stripe::verify(input, secrets),
        Provider::GitHub => github::verify(input, secrets),
        Provider::StandardWebhooks => standard_webhooks::verify(input, secrets),
        Provider::Slack => slack::verify(input, secrets),
        Provider::Shopify => shopify::verify(input, secrets),
        Provider::Twilio => twilio::verify(input, secrets),
        Provider::Discord => discord::verify(input, secrets),
        Provider::Paddle => paddle::verify(input, secrets),
        Provider::Linear => linear::verify(input, secrets),
        Provider::Zoom => zoom::verify(input, secrets),
        Provider::Square => square::verify(input, secrets),
        Provider::Mailgun => mailgun::verify(input, secrets),
        Provider::Intercom => intercom::verify(input, secrets),
        Provider::GitLab => gitlab::verify(input, secrets),
        Provider::SendGrid => sendgrid::verify(input, secrets),
        Provider::Twitch => twitch::verify(input, secrets),
        Provider::Typeform => typeform::verify(input, secrets),
        Provider::Calendly => calendly::verify(input, secrets),
        Provider::HubSpot => hubspot::verify(input, secrets),
    }
}

/// The providers in the order their events are tried: distinctive headers first, body shapes
/// last.
const RECOGNITION: [Provider; 19] = [
    Provider::GitHub,
    Provider::Shopify,
    Provider::Stripe,
    Provider::Twitch,
    Provider::Linear,
    Provider::GitLab,
    Provider::Paddle,
    Provider::Slack,
    Provider::Twilio,
    Provider::Zoom,
    Provider::Square,
    Provider::SendGrid,
    Provider::Typeform,
    Provider::Calendly,
    Provider::HubSpot,
    Provider::Discord,
    Provider::Intercom,
    Provider::StandardWebhooks,
    Provider::Mailgun,
];

/// Recognises the event in a webhook, if its provider is one hooks knows.
pub fn recognize(headers: &[Header], body: &[u8]) -> Option<Recognized> {
    let input = event::Input::new(headers, body);
    RECOGNITION
        .iter()
        .find_map(|provider| provider.event(&input))
}

impl Provider {
    /// Recognises this provider's event in `headers` and `body`, if the request is one.
    pub fn recognize(self, headers: &[Header], body: &[u8]) -> Option<Recognized> {
        self.event(&event::Input::new(headers, body))
    }

    /// This provider's event in `input`, if it is one (its file has the recognizer).
    fn event(self, input: &event::Input<'_>) -> Option<Recognized> {
        match self {
            Provider::Stripe => stripe::recognize(input),
            Provider::GitHub => github::recognize(input),
            Provider::StandardWebhooks => standard_webhooks::recognize(input),
            Provider::Slack => slack::recognize(input),
            Provider::Shopify => shopify::recognize(input),
            Provider::Twilio => twilio::recognize(input),
            Provider::Discord => discord::recognize(input),
            Provider::Paddle => paddle::recognize(input),
            Provider::Linear => linear::recognize(input),
            Provider::Zoom => zoom::recognize(input),
            Provider::Square => square::recognize(input),
            Provider::Mailgun => mailgun::recognize(input),
            Provider::Intercom => intercom::recognize(input),
            Provider::GitLab => gitlab::recognize(input),
            Provider::SendGrid => sendgrid::recognize(input),
            Provider::Twitch => twitch::recognize(input),
            Provider::Typeform => typeform::recognize(input),
            Provider::Calendly => calendly::recognize(input),
            Provider::HubSpot => hubspot::recognize(input),
        }
    }
}

/// What a provider would send for a request: headers to set (replacing any of the same name,
/// compared without regard to case) and, for Mailgun, whose signature lives in it, a new body.
#[derive(Clone, PartialEq, Eq)]
pub struct Signed {
    /// Header names as the provider spells them, and their values.
    pub headers: Vec<(String, String)>,
    /// The body to send instead of the original, when the signature lives in the body.
    pub body: Option<Vec<u8>>,
}

impl std::fmt::Debug for Signed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // GitLab's "signature" is the secret itself.
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Signed")
            .field("headers", &names)
            .field("body", &self.body.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

/// Why [`sign`] could not sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The secret cannot be a signing key for this scheme (e.g. Discord needs a private key).
    #[error("cannot sign for {provider}: {reason}")]
    UnusableSecret {
        /// The provider.
        provider: Provider,
        /// What the secret should look like.
        reason: String,
    },
    /// The request cannot carry this provider's signature (e.g. a Mailgun body that is not JSON).
    #[error("cannot sign for {provider}: {reason}")]
    Unsupported {
        /// The provider.
        provider: Provider,
        /// Why.
        reason: String,
    },
}

/// Signs `input` as `provider` would at time `at`, with `secret`.
///
/// HMAC schemes take the same secret as [`check`]. Schemes with public-key signatures take the
/// private key instead: Discord a 64-hex-character Ed25519 seed, Standard Webhooks `whsk_` plus
/// base64 (seed or keypair) for `v1a`, SendGrid a base64 PKCS#8 DER P-256 key. Ids the scheme signs
/// (`webhook-id`, Twitch's message id, Mailgun's token) are kept from `input` when present, else
/// made up. HubSpot signs v1/v2 when `input` has `X-HubSpot-Signature-Version: v1|v2`, else v3;
/// GitHub sends both its headers.
pub fn sign(
    provider: Provider,
    secret: &Secret,
    input: &VerifyInput<'_>,
    at: SystemTime,
) -> Result<Signed, SignError> {
    let at = Timestamp::from_system_time(at);
    let signed = match provider {
        Provider::Stripe => Ok(stripe::sign(secret, input, at)),
        Provider::GitHub => Ok(github::sign(secret, input)),
        Provider::StandardWebhooks => standard_webhooks::sign(secret, input, at),
        Provider::Slack => Ok(slack::sign(secret, input, at)),
        Provider::Shopify => Ok(shopify::sign(secret, input)),
        Provider::Twilio => Ok(twilio::sign(secret, input)),
        Provider::Discord => discord::sign(secret, input, at),
        Provider::Paddle => Ok(paddle::sign(secret, input, at)),
        Provider::Linear => Ok(linear::sign(secret, input, at)),
        Provider::Zoom => Ok(zoom::sign(secret, input, at)),
        Provider::Square => Ok(square::sign(secret, input)),
        Provider::Mailgun => mailgun::sign(secret, input, at),
        Provider::Intercom => Ok(intercom::sign(secret, input)),
        Provider::GitLab => Ok(gitlab::sign(secret)),
        Provider::SendGrid => sendgrid::sign(secret, input, at),
        Provider::Twitch => Ok(twitch::sign(secret, input, at)),
        Provider::Typeform => Ok(typeform::sign(secret, input)),
        Provider::Calendly => Ok(calendly::sign(secret, input, at)),
        Provider::HubSpot => Ok(hubspot::sign(secret, input, at)),
    };
    signed.map_err(|reason| match reason {
        SchemeSignError::Key(reason) => SignError::UnusableSecret { provider, reason },
        SchemeSignError::Request(reason) => SignError::Unsupported { provider, reason },
    })
}

/// A scheme's reason for not signing, before [`sign`] names the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SchemeSignError {
    /// The secret is not a key this scheme can sign with.
    Key(String),
    /// The request cannot carry the signature.
    Request(String),
}

/// One header of a [`Signed`].
fn header(name: &str, value: impl Into<String>) -> (String, String) {
    (name.to_owned(), value.into())
}

/// Random lowercase hex, for ids a provider makes up (message ids, tokens).
fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // Without an OS random source the ids are only less unique; they are not secrets.
    let _ = getrandom::fill(&mut buf);
    mac::to_hex(&buf)
}
