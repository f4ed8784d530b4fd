//! `hooks listen --secret`: every webhook's signature is checked as it passes, and the verdict
//! (valid, invalid with a reason, expired, unsigned, or signed but not checked) is on its line.

use std::time::{Duration, SystemTime};

use hooks::verify::{self, Provider, Secret, VerifyInput};

use crate::support::{self, full, headers, App, Sender};

const SECRET: &str = "whsec_test_secret_for_listen";
const BODY: &str =
    r#"{"id":"evt_sig_1","object":"event","type":"invoice.paid","created":1764182800}"#;

/// The `Stripe-Signature` header Stripe would send for `body` at `at`.
fn stripe_signature(body: &[u8], at: SystemTime) -> String {
    let input = VerifyInput {
        method: "POST",
        url: "https://example.test/",
        headers: &[],
        body,
    };
    let signed = verify::sign(Provider::Stripe, &Secret::new(SECRET), &input, at)
        .expect("stripe signs with any secret");
    signed
        .headers
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("stripe-signature"))
        .map(|(_, value)| value)
        .expect("a Stripe-Signature header")
}

async fn post(url: &str, pairs: &[(&str, &str)], body: &[u8]) -> u16 {
    let sent = Sender::default()
        .send(
            "POST",
            &format!("{url}/stripe"),
            &headers(pairs),
            full(body.to_vec()),
        )
        .await;
    sent.status
}

#[tokio::test]
async fn verdicts_are_on_each_request_line() {
    let app = App::ok().await;
    let target = format!("127.0.0.1:{}", app.port());
    let mut cli = support::spawn_listen(&["--forward-to", &target, "--secret", SECRET]).await;
    let now = SystemTime::now();
    let good = stripe_signature(BODY.as_bytes(), now);
    let old = stripe_signature(BODY.as_bytes(), now - Duration::from_secs(3600));

    assert_eq!(
        post(&cli.url, &[("stripe-signature", &good)], BODY.as_bytes()).await,
        200
    );
    let tampered = BODY.replace("invoice.paid", "invoice.void");
    assert_eq!(
        post(
            &cli.url,
            &[("stripe-signature", &good)],
            tampered.as_bytes()
        )
        .await,
        200
    );
    assert_eq!(
        post(&cli.url, &[("stripe-signature", &old)], BODY.as_bytes()).await,
        200
    );
    assert_eq!(
        post(&cli.url, &[("content-type", "application/json")], b"{}").await,
        200
    );

    let lines = cli.next_requests(4).await;
    let verdict = |i: usize| {
        lines[i]["signature"]["verdict"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(verdict(0), "valid", "{}", lines[0]);
    assert_eq!(lines[0]["signature"]["provider"], "stripe", "{}", lines[0]);
    assert_eq!(lines[0]["signature"]["assumed"], true, "{}", lines[0]);
    assert_eq!(verdict(1), "invalid", "{}", lines[1]);
    let reason = lines[1]["signature"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("body"),
        "the reason names the body: {reason}"
    );
    assert_eq!(verdict(2), "expired", "{}", lines[2]);
    let reason = lines[2]["signature"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("300"),
        "the reason names stripe's window: {reason}"
    );
    assert_eq!(verdict(3), "unsigned", "{}", lines[3]);
    assert_eq!(
        app.wait_for(4).await.len(),
        4,
        "the app gets every request, whatever the verdict"
    );
    let stderr = cli.stderr();
    assert!(!stderr.contains(SECRET), "the secret never shows: {stderr}");
}

#[tokio::test]
async fn without_a_secret_a_signature_is_noticed_but_not_checked() {
    let app = App::ok().await;
    let target = format!("127.0.0.1:{}", app.port());
    let mut cli = support::spawn_listen(&["--forward-to", &target]).await;
    let good = stripe_signature(BODY.as_bytes(), SystemTime::now());
    assert_eq!(
        post(&cli.url, &[("stripe-signature", &good)], BODY.as_bytes()).await,
        200
    );
    assert_eq!(post(&cli.url, &[], b"plain").await, 200);
    let lines = cli.next_requests(2).await;
    assert_eq!(
        lines[0]["signature"]["verdict"], "unchecked",
        "{}",
        lines[0]
    );
    assert_eq!(lines[0]["signature"]["provider"], "stripe", "{}", lines[0]);
    let reason = lines[0]["signature"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("--secret"), "{reason}");
    assert_eq!(lines[1]["signature"]["verdict"], "unsigned", "{}", lines[1]);
    assert!(lines[1]["signature"]["reason"].is_null(), "{}", lines[1]);
}

#[tokio::test]
async fn rotated_secrets_any_one_may_match() {
    let app = App::ok().await;
    let target = format!("127.0.0.1:{}", app.port());
    let mut cli = support::spawn_listen(&[
        "--forward-to",
        &target,
        "--provider",
        "stripe",
        "--secret",
        "whsec_the_old_one",
        "--secret",
        SECRET,
    ])
    .await;
    let good = stripe_signature(BODY.as_bytes(), SystemTime::now());
    assert_eq!(
        post(&cli.url, &[("stripe-signature", &good)], BODY.as_bytes()).await,
        200
    );
    let line = cli.next_json().await;
    assert_eq!(line["signature"]["verdict"], "valid", "{line}");
    assert_eq!(line["signature"]["assumed"], false, "{line}");
}
