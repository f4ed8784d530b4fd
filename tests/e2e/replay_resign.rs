//! `hooks replay --resign`: an hour-old signed webhook, captured by the real `hooks listen`, is
//! sent again with a fresh signature that the provider's own scheme accepts now, for Stripe,
//! Standard Webhooks and Slack; without --resign the same replay fails the replay window.

use std::time::{Duration, SystemTime};

use hooks::verify::{self, Outcome, Provider, Secret, VerifyInput};
use relay_server::Config;

use crate::support::store::*;
use crate::support::*;

const BODY: &[u8] = br#"{"id":"evt_resign","object":"event","type":"invoice.paid"}"#;

/// Headers `provider` would have sent an hour ago for `BODY`.
fn signed_an_hour_ago(provider: Provider, secret: &str) -> Vec<(String, String)> {
    let input = VerifyInput {
        method: "POST",
        url: "https://relay.example.test/ch/hook",
        headers: &[("webhook-id", b"msg_resign_1")],
        body: BODY,
    };
    let at = SystemTime::now() - Duration::from_secs(3600);
    let signed =
        verify::sign(provider, &Secret::new(secret), &input, at).expect("HMAC schemes sign");
    let mut headers = signed.headers;
    if provider == Provider::StandardWebhooks
        && !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("webhook-id"))
    {
        headers.push(("webhook-id".into(), "msg_resign_1".into()));
    }
    headers
}

/// The verdict `provider`'s scheme gives the request `seen` now, with `secret`.
fn verdict_now(provider: Provider, secret: &str, seen: &Recorded) -> Outcome {
    let pairs: Vec<(&str, &[u8])> = seen
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_slice()))
        .collect();
    let input = VerifyInput {
        method: "POST",
        url: "https://relay.example.test/ch/hook",
        headers: &pairs,
        body: &seen.body,
    };
    let secrets = [Secret::new(secret)];
    verify::check(&input, &secrets, Some(provider), None, SystemTime::now())
        .expect("a secret was given")
        .outcome
}

async fn check_resign(provider: Provider, secret: &str) {
    let app = App::created().await;
    let data = data_dir();
    let relay = start_relay(Config::default()).await;
    let mut listen = listen(&relay, &app.target(), data.path(), &[]).await;
    let headers = signed_an_hour_ago(provider, secret);
    let pairs: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    assert_eq!(
        send("POST", &format!("{}/hook", listen.url), &pairs, BODY).await,
        201
    );
    listen.next_request().await;
    let original = app.wait_for(1).await.remove(0);
    assert!(
        matches!(
            verdict_now(provider, secret, &original),
            Outcome::Expired { .. }
        ),
        "{provider:?}: an hour-old signature is expired now"
    );

    run(&["replay", "last"], data.path()).await.success();
    let plain = app.wait_for(2).await.remove(1);
    assert!(
        matches!(
            verdict_now(provider, secret, &plain),
            Outcome::Expired { .. }
        ),
        "{provider:?}: a byte-for-byte replay keeps the old signature"
    );

    run(
        &["replay", "last", "--resign", "--secret", secret],
        data.path(),
    )
    .await
    .success();
    let fresh = app.wait_for(3).await.remove(2);
    assert_eq!(
        verdict_now(provider, secret, &fresh),
        Outcome::Valid,
        "{provider:?}: the re-signed replay verifies now"
    );
    assert_eq!(
        fresh.body, original.body,
        "{provider:?}: the body is the same bytes"
    );
    listen.kill().await;
}

#[tokio::test]
async fn resign_makes_an_hour_old_stripe_event_valid() {
    check_resign(Provider::Stripe, "whsec_resign_test").await;
}

#[tokio::test]
async fn resign_makes_an_hour_old_standard_webhook_valid() {
    check_resign(
        Provider::StandardWebhooks,
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    )
    .await;
}

#[tokio::test]
async fn resign_makes_an_hour_old_slack_request_valid() {
    check_resign(Provider::Slack, "8f742231b10e8888abcd99yyyzzz85a5").await;
}

#[tokio::test]
async fn resign_without_a_secret_is_a_usage_error() {
    let data = data_dir();
    let out = run(&["replay", "last", "--resign"], data.path()).await;
    assert_eq!(out.code, Some(2), "{}", out.text());
}
