//! Fuzz target: signature header parsing for every provider. Any headers, body, URL, secrets,
//! tolerance and time go through `hooks::verify::check` for each provider and for detection, and
//! the body through the raw request parser; the only failure is a panic (or a sanitizer report).

#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use arbitrary::Arbitrary;
use hooks::verify::{check, Provider, Secret, VerifyInput};
use libfuzzer_sys::fuzz_target;

/// Header names the schemes read, so fuzzed values land where the parsers look.
const NAMES: &[&str] = &[
    "Stripe-Signature",
    "X-Hub-Signature-256",
    "X-Hub-Signature",
    "X-GitHub-Event",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "X-Slack-Signature",
    "X-Slack-Request-Timestamp",
    "X-Shopify-Hmac-Sha256",
    "shopify-hmac-sha256",
    "X-Twilio-Signature",
    "Content-Type",
    "X-Signature-Ed25519",
    "X-Signature-Timestamp",
    "Paddle-Signature",
    "Linear-Signature",
    "x-zm-signature",
    "x-zm-request-timestamp",
    "x-square-hmacsha256-signature",
    "x-square-signature",
    "X-Gitlab-Token",
    "X-Twilio-Email-Event-Webhook-Signature",
    "X-Twilio-Email-Event-Webhook-Timestamp",
    "Twitch-Eventsub-Message-Signature",
    "Twitch-Eventsub-Message-Id",
    "Twitch-Eventsub-Message-Timestamp",
    "Typeform-Signature",
    "Calendly-Webhook-Signature",
    "X-HubSpot-Signature-v3",
    "X-HubSpot-Request-Timestamp",
    "X-HubSpot-Signature",
    "X-HubSpot-Signature-Version",
];

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    headers: Vec<(u8, &'a [u8])>,
    body: &'a [u8],
    url: &'a str,
    method: &'a str,
    secrets: Vec<&'a str>,
    tolerance: Option<u64>,
    now: u64,
}

fuzz_target!(|input: Input<'_>| {
    let headers: Vec<(&str, &[u8])> = input
        .headers
        .iter()
        .map(|(name, value)| (NAMES[usize::from(*name) % NAMES.len()], *value))
        .collect();
    let request = VerifyInput {
        method: input.method,
        url: input.url,
        headers: &headers,
        body: input.body,
    };
    let secrets: Vec<Secret> = input.secrets.iter().take(3).map(|s| Secret::new(*s)).collect();
    let tolerance = input.tolerance.map(Duration::from_secs);
    let now = UNIX_EPOCH
        .checked_add(Duration::from_secs(input.now))
        .unwrap_or(UNIX_EPOCH);
    let _ = check(&request, &secrets, None, tolerance, now);
    for provider in Provider::ALL {
        let _ = check(&request, &secrets, Some(provider), tolerance, now);
    }
    let _ = hooks::raw_request::parse(input.body);
});
