//! The signature tests' fixtures: a signed request for every provider (keys, URL, which header
//! holds the signature), built with `hooks::verify::sign` so each test states only what it
//! changes. In-process only (no sockets, no processes), so every test target can include it:
//! `#[path = "../support/signing.rs"] mod signing;`.

#![allow(dead_code)] // Each test target uses a different subset of these helpers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hooks::verify::{self, Provider, Report, Secret, VerifyInput};
use p256::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
use sha2::Digest as _;

/// Unix seconds as a `SystemTime`.
pub fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// A fixed "now" for the tests: 2025-01-01T00:00:00Z.
pub const NOW: u64 = 1_735_689_600;

/// How a provider encodes its signature bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Lowercase hex.
    Hex,
    /// Standard base64, padded.
    Base64,
    /// GitLab: the token itself.
    Token,
}

/// A secret to sign with and the secret (or public key) that verifies it.
#[derive(Debug, Clone)]
pub struct Keys {
    /// What `verify::sign` takes.
    pub sign: Secret,
    /// What `verify::check` takes.
    pub verify: Secret,
}

/// Everything needed to make and alter a signed request for one provider.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The provider.
    pub provider: Provider,
    /// Keys that sign the fixture's requests.
    pub keys: Keys,
    /// A second, unrelated pair.
    pub other: Keys,
    /// Headers the request carries before signing.
    pub base_headers: Vec<(String, Vec<u8>)>,
    /// The header holding the signature (`None`: Mailgun, in the body).
    pub signature_header: Option<&'static str>,
    /// Headers besides the signature that the check needs.
    pub companions: &'static [&'static str],
    /// How the signature is encoded.
    pub encoding: Encoding,
    /// Whether the body's bytes are covered by the signature.
    pub covers_body: bool,
}

/// A request: what `check` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method.
    pub method: String,
    /// Public URL.
    pub url: String,
    /// Headers.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Request {
    /// Runs `verify::check` on this request.
    pub fn check(
        &self,
        provider: Option<Provider>,
        secrets: &[Secret],
        tolerance: Option<Duration>,
        now: SystemTime,
    ) -> Result<Report, verify::VerifyError> {
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let input = VerifyInput {
            method: &self.method,
            url: &self.url,
            headers: &headers,
            body: &self.body,
        };
        verify::check(&input, secrets, provider, tolerance, now)
    }

    /// The value of header `name` as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// Sets header `name`, replacing every header of that name.
    pub fn set_header(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.remove_header(name);
        self.headers.push((name.to_owned(), value.into()));
    }

    /// Removes every header called `name`.
    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// As a raw HTTP/1.1 request file.
    pub fn to_raw(&self) -> Vec<u8> {
        let target = target_of(&self.url);
        let host = host_of(&self.url);
        let mut raw = format!("{} {target} HTTP/1.1\r\nHost: {host}\r\n", self.method).into_bytes();
        for (name, value) in &self.headers {
            raw.extend_from_slice(name.as_bytes());
            raw.extend_from_slice(b": ");
            raw.extend_from_slice(value);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes());
        raw.extend_from_slice(&self.body);
        raw
    }
}

/// `/path?query` of an absolute URL, `/` when it has none.
pub fn target_of(url: &str) -> String {
    let after = url.split_once("://").map_or(url, |(_, rest)| rest);
    match after.find('/') {
        Some(at) => after[at..].to_owned(),
        None => match after.find('?') {
            Some(at) => format!("/{}", &after[at..]),
            None => "/".to_owned(),
        },
    }
}

/// `host[:port]` of an absolute URL.
pub fn host_of(url: &str) -> String {
    let after = url.split_once("://").map_or(url, |(_, rest)| rest);
    let end = after.find(['/', '?']).unwrap_or(after.len());
    after[..end].to_owned()
}

/// HMAC keys derived from `seed` (any text works for these schemes).
fn hmac_keys(text: String) -> Keys {
    Keys {
        sign: Secret::new(text.clone()),
        verify: Secret::new(text),
    }
}

/// Keys for `provider` made from `seed`: HMAC secrets, or key pairs for public-key schemes.
pub fn keys(provider: Provider, seed: &[u8; 32]) -> Keys {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    match provider {
        Provider::StandardWebhooks => hmac_keys(format!("whsec_{}", b64(seed))),
        Provider::Discord => {
            let key = ed25519_dalek::SigningKey::from_bytes(seed);
            Keys {
                sign: Secret::new(hex::encode(seed)),
                verify: Secret::new(hex::encode(key.verifying_key().to_bytes())),
            }
        }
        Provider::SendGrid => {
            let key = p256_key(seed);
            Keys {
                sign: Secret::new(b64(key.to_pkcs8_der().expect("encodes").as_bytes())),
                verify: Secret::new(b64(key
                    .verifying_key()
                    .to_public_key_der()
                    .expect("encodes")
                    .as_bytes())),
            }
        }
        Provider::Stripe => hmac_keys(format!("whsec_{}", hex::encode(&seed[..12]))),
        _ => hmac_keys(format!("secret-{}", hex::encode(&seed[..10]))),
    }
}

/// A P-256 key from `seed`, nudged into the valid scalar range.
fn p256_key(seed: &[u8; 32]) -> p256::ecdsa::SigningKey {
    let mut bytes = *seed;
    loop {
        if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&bytes) {
            return key;
        }
        bytes = sha2::Sha256::digest(bytes).into();
    }
}

/// Ed25519 keys for Standard Webhooks `v1a`: `whsk_` to sign, `whpk_` to verify.
pub fn v1a_keys(seed: &[u8; 32]) -> Keys {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let key = ed25519_dalek::SigningKey::from_bytes(seed);
    Keys {
        sign: Secret::new(format!("whsk_{}", b64(seed))),
        verify: Secret::new(format!("whpk_{}", b64(&key.verifying_key().to_bytes()))),
    }
}

/// The fixture for `provider`.
pub fn fixture(provider: Provider) -> Fixture {
    let (signature_header, companions, encoding): (
        Option<&'static str>,
        &'static [&'static str],
        Encoding,
    ) = match provider {
        Provider::Stripe => (Some("Stripe-Signature"), &[], Encoding::Hex),
        Provider::GitHub => (Some("X-Hub-Signature-256"), &[], Encoding::Hex),
        Provider::StandardWebhooks => (
            Some("webhook-signature"),
            &["webhook-id", "webhook-timestamp"],
            Encoding::Base64,
        ),
        Provider::Slack => (
            Some("X-Slack-Signature"),
            &["X-Slack-Request-Timestamp"],
            Encoding::Hex,
        ),
        Provider::Shopify => (Some("X-Shopify-Hmac-Sha256"), &[], Encoding::Base64),
        Provider::Twilio => (Some("X-Twilio-Signature"), &[], Encoding::Base64),
        Provider::Discord => (
            Some("X-Signature-Ed25519"),
            &["X-Signature-Timestamp"],
            Encoding::Hex,
        ),
        Provider::Paddle => (Some("Paddle-Signature"), &[], Encoding::Hex),
        Provider::Linear => (Some("Linear-Signature"), &[], Encoding::Hex),
        Provider::Zoom => (
            Some("x-zm-signature"),
            &["x-zm-request-timestamp"],
            Encoding::Hex,
        ),
        Provider::Square => (Some("x-square-hmacsha256-signature"), &[], Encoding::Base64),
        Provider::Mailgun => (None, &[], Encoding::Hex),
        Provider::Intercom => (Some("X-Hub-Signature"), &[], Encoding::Hex),
        Provider::GitLab => (Some("X-Gitlab-Token"), &[], Encoding::Token),
        Provider::SendGrid => (
            Some("X-Twilio-Email-Event-Webhook-Signature"),
            &["X-Twilio-Email-Event-Webhook-Timestamp"],
            Encoding::Base64,
        ),
        Provider::Twitch => (
            Some("Twitch-Eventsub-Message-Signature"),
            &[
                "Twitch-Eventsub-Message-Id",
                "Twitch-Eventsub-Message-Timestamp",
            ],
            Encoding::Hex,
        ),
        Provider::Typeform => (Some("Typeform-Signature"), &[], Encoding::Base64),
        Provider::Calendly => (Some("Calendly-Webhook-Signature"), &[], Encoding::Hex),
        Provider::HubSpot => (
            Some("X-HubSpot-Signature-v3"),
            &["X-HubSpot-Request-Timestamp"],
            Encoding::Base64,
        ),
    };
    let mut base_headers = vec![("Content-Type".to_owned(), b"application/json".to_vec())];
    if provider == Provider::Twitch {
        base_headers.push((
            "Twitch-Eventsub-Message-Type".into(),
            b"notification".to_vec(),
        ));
    }
    Fixture {
        provider,
        keys: keys(provider, &[7; 32]),
        other: keys(provider, &[9; 32]),
        base_headers,
        signature_header,
        companions,
        encoding,
        covers_body: !matches!(provider, Provider::Mailgun | Provider::GitLab),
    }
}

/// A JSON body every provider accepts: an object (Mailgun signs into it) with Linear's
/// `webhookTimestamp` (which `sign` moves to the signing time).
pub fn json_body(text: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"event": "test", "text": text, "webhookTimestamp": 0}))
        .expect("serializes")
}

impl Fixture {
    /// The public URL of this fixture's requests; Twilio's carries the body's SHA-256, as Twilio
    /// sends it for JSON bodies.
    pub fn url(&self, body: &[u8]) -> String {
        let base = format!("https://hooks.example.com/{}?x=1", self.provider);
        if self.provider == Provider::Twilio {
            format!(
                "{base}&bodySHA256={}",
                hex::encode(sha2::Sha256::digest(body))
            )
        } else {
            base
        }
    }

    /// A request with `body`, signed with `keys` at `at`.
    pub fn signed_with(&self, keys: &Keys, body: &[u8], at: SystemTime) -> Request {
        let mut request = Request {
            method: "POST".into(),
            url: self.url(body),
            headers: self.base_headers.clone(),
            body: body.to_vec(),
        };
        let headers: Vec<(&str, &[u8])> = request
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let input = VerifyInput {
            method: &request.method,
            url: &request.url,
            headers: &headers,
            body: &request.body,
        };
        let signed =
            verify::sign(self.provider, &keys.sign, &input, at).expect("the fixture signs");
        for (name, value) in signed.headers {
            request.set_header(&name, value);
        }
        if let Some(body) = signed.body {
            request.body = body;
        }
        request
    }

    /// A request with `body`, signed with the fixture's keys at `at`.
    pub fn signed(&self, body: &[u8], at: SystemTime) -> Request {
        self.signed_with(&self.keys, body, at)
    }

    /// Checks `request` for this provider with the fixture's verification key.
    pub fn check(&self, request: &Request, now: SystemTime) -> Report {
        request
            .check(
                Some(self.provider),
                std::slice::from_ref(&self.keys.verify),
                None,
                now,
            )
            .expect("the fixture's key is usable")
    }

    /// The signature's text: the header value, or Mailgun's `signature.signature`.
    pub fn signature_text(&self, request: &Request) -> String {
        match self.signature_header {
            Some(name) => request
                .header(name)
                .expect("signed requests carry the header"),
            None => {
                let body: serde_json::Value =
                    serde_json::from_slice(&request.body).expect("mailgun bodies are JSON");
                body["signature"]["signature"]
                    .as_str()
                    .expect("signed")
                    .to_owned()
            }
        }
    }

    /// Replaces the signature's text.
    pub fn set_signature_text(&self, request: &mut Request, text: &str) {
        match self.signature_header {
            Some(name) => request.set_header(name, text),
            None => {
                let mut body: serde_json::Value =
                    serde_json::from_slice(&request.body).expect("mailgun bodies are JSON");
                body["signature"]["signature"] = serde_json::Value::String(text.to_owned());
                request.body = serde_json::to_vec(&body).expect("serializes");
            }
        }
    }

    /// `request` with byte `index` of its decoded signature XORed with `mask` (non-zero) and
    /// re-encoded, so the change is real whatever the encoding's case or padding rules.
    pub fn tamper_signature(&self, request: &Request, index: usize, mask: u8) -> Request {
        let text = self.signature_text(request);
        let (start, end) = signature_token(&text, self.encoding);
        let token = &text[start..end];
        if self.encoding == Encoding::Token {
            // A token is text: one character changes to another printable one. A flipped byte
            // may not be UTF-8, and its lossy text can be the original again (a U+FFFD in the
            // secret flipped into an invalid byte reads back as U+FFFD).
            let mut chars: Vec<char> = token.chars().collect();
            let at = index % chars.len();
            let mut other = char::from(b'!' + mask % 94);
            if other == chars[at] {
                other = if other == '!' { '"' } else { '!' };
            }
            chars[at] = other;
            let encoded: String = chars.into_iter().collect();
            let mut tampered = request.clone();
            self.set_signature_text(
                &mut tampered,
                &format!("{}{encoded}{}", &text[..start], &text[end..]),
            );
            return tampered;
        }
        let mut bytes = match self.encoding {
            Encoding::Hex => hex::decode(token).expect("hex token"),
            Encoding::Base64 => base64::engine::general_purpose::STANDARD
                .decode(token)
                .expect("base64 token"),
            Encoding::Token => unreachable!("a token is changed as text above"),
        };
        let at = index % bytes.len();
        bytes[at] ^= mask;
        let encoded = match self.encoding {
            Encoding::Hex => hex::encode(&bytes),
            Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(&bytes),
            Encoding::Token => unreachable!("a token is changed as text above"),
        };
        let mut tampered = request.clone();
        self.set_signature_text(
            &mut tampered,
            &format!("{}{encoded}{}", &text[..start], &text[end..]),
        );
        tampered
    }
}

/// Where the signature sits in a header value: the last run of hex or base64 characters long
/// enough to be a digest (timestamps and labels are shorter).
fn signature_token(text: &str, encoding: Encoding) -> (usize, usize) {
    if encoding == Encoding::Token {
        return (0, text.len());
    }
    let in_token = |c: u8| match encoding {
        Encoding::Hex => c.is_ascii_hexdigit(),
        _ => c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'=',
    };
    let bytes = text.as_bytes();
    let mut best = None;
    let mut i = 0;
    while i < bytes.len() {
        if in_token(bytes[i]) {
            let start = i;
            while i < bytes.len() && in_token(bytes[i]) {
                i += 1;
            }
            // A label such as Typeform's `sha256=` runs into a base64 digest: skip past it.
            let run = &text[start..i];
            let start = match run.trim_end_matches('=').rfind('=') {
                Some(at) => start + at + 1,
                None => start,
            };
            if i - start >= 27 {
                best = Some((start, i));
            }
        } else {
            i += 1;
        }
    }
    best.expect("a signature token")
}
