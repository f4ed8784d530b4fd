//! What is particular to each signature scheme, through `hooks::verify`: several signatures in
//! one header, legacy headers, key formats, secret mix-ups the reason names, URLs, timestamps in
//! other units. The cases every provider shares are in `verify_providers.rs`.

use std::time::Duration;

use hooks::verify::{Age, Outcome, Provider, Secret, Verdict, VerifyError};

use crate::signing::{at, fixture, json_body, v1a_keys, Request, NOW};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn body() -> Vec<u8> {
    json_body("hello ♥")
}

fn reason(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Invalid { reason } => reason,
        other => panic!("expected invalid, got {other:?}"),
    }
}

fn secret(text: &str) -> Secret {
    Secret::new(text)
}

#[test]
fn stripe_expired_reason_reads_as_documented() {
    let fx = fixture(Provider::Stripe);
    let request = fx.signed(&body(), at(NOW - 412));
    let report = fx.check(&request, at(NOW));
    assert_eq!(
        report.reason.as_deref(),
        Some("timestamp is 412 s old; stripe allows 300 s")
    );
}

#[test]
fn stripe_checks_every_v1_and_ignores_v0() {
    let fx = fixture(Provider::Stripe);
    let mut request = fx.signed(&body(), at(NOW));
    let good = request.header("Stripe-Signature").unwrap();
    let (t, v1) = good.split_once(",v1=").unwrap();
    let wrong = "0".repeat(64);
    request.set_header(
        "Stripe-Signature",
        format!("{t},v1={wrong},v0={v1},v1={v1}"),
    );
    assert_eq!(fx.check(&request, at(NOW)).outcome, Outcome::Valid);
    request.set_header("Stripe-Signature", format!("{t},v0={v1}"));
    assert_eq!(
        reason(&fx.check(&request, at(NOW)).outcome),
        "signature header is malformed: no v1= signature (v0= is not checked)"
    );
}

#[test]
fn stripe_names_whsec_mixups() {
    let body = body();
    let fx = fixture(Provider::Stripe);
    // Signed with the base64-decoded key, as a Standard Webhooks library would.
    let mut request = fx.signed(&body, at(NOW));
    let key_text = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let decoded = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    )
    .unwrap();
    let tag = hmac_sha256_hex(&decoded, &[format!("{NOW}.").as_bytes(), &body]);
    request.set_header("Stripe-Signature", format!("t={NOW},v1={tag}"));
    let report = request
        .check(Some(Provider::Stripe), &[secret(key_text)], None, at(NOW))
        .unwrap();
    assert!(
        reason(&report.outcome).starts_with(
            "secret looks like a Standard Webhooks key (whsec_ + base64) but stripe uses the string as is"
        ),
        "{report:?}"
    );
    // The prefix left out of --secret.
    let request = fx.signed(&body, at(NOW));
    let bare = fx.keys.verify.expose().strip_prefix("whsec_").unwrap();
    let report = request
        .check(Some(Provider::Stripe), &[secret(bare)], None, at(NOW))
        .unwrap();
    assert_eq!(
        reason(&report.outcome),
        "secret is missing its whsec_ prefix; stripe signs with the whole string"
    );
}

fn hmac_sha256_hex(key: &[u8], parts: &[&[u8]]) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

#[test]
fn github_falls_back_to_the_legacy_header_only_when_sha256_is_absent() {
    let fx = fixture(Provider::GitHub);
    let mut request = fx.signed(&body(), at(NOW));
    request.remove_header("X-Hub-Signature-256");
    assert_eq!(fx.check(&request, at(NOW)).outcome, Outcome::Valid);
    let mut request = fx.signed(&body(), at(NOW));
    request.set_header("X-Hub-Signature-256", format!("sha256={}", "0".repeat(64)));
    assert_eq!(fx.check(&request, at(NOW)).verdict(), Verdict::Invalid);
}

#[test]
fn reserialised_json_is_named_as_the_cause() {
    let fx = fixture(Provider::GitHub);
    let pretty = b"{\n  \"action\": \"opened\",\n  \"number\": 1\n}\n";
    let mut request = fx.signed(pretty, at(NOW));
    request.body = br#"{"action":"opened","number":1}"#.to_vec();
    assert_eq!(
        reason(&fx.check(&request, at(NOW)).outcome),
        "body differs from what was signed (was it parsed and re-serialised?)"
    );
    let mut request = fx.signed(b"a=1\nb=2\n", at(NOW));
    request.body = b"a=1\r\nb=2\r\n".to_vec();
    assert!(reason(&fx.check(&request, at(NOW)).outcome).contains("line endings"));
}

#[test]
fn standard_webhooks_accepts_svix_headers_lists_and_v1a() {
    let fx = fixture(Provider::StandardWebhooks);
    let mut request = fx.signed(&body(), at(NOW));
    let good = request.header("webhook-signature").unwrap();
    let good_b64 = good.strip_prefix("v1,").unwrap();
    request.set_header(
        "webhook-signature",
        format!(
            "v1,{} v2,{good_b64} v1a,{} {good}",
            "A".repeat(43) + "=",
            "A".repeat(86) + "=="
        ),
    );
    assert_eq!(fx.check(&request, at(NOW)).outcome, Outcome::Valid);

    // The same under svix-* names.
    let mut svix = fx.signed(&body(), at(NOW));
    for name in ["id", "timestamp", "signature"] {
        let value = svix.header(&format!("webhook-{name}")).unwrap();
        svix.remove_header(&format!("webhook-{name}"));
        svix.set_header(&format!("svix-{name}"), value);
    }
    let report = svix
        .check(None, std::slice::from_ref(&fx.keys.verify), None, at(NOW))
        .unwrap();
    assert_eq!(
        (report.provider, report.detected_from),
        (Some(Provider::StandardWebhooks), Some("svix-signature"))
    );
    assert_eq!(report.outcome, Outcome::Valid);

    // v1a: Ed25519 with whsk_ to sign and whpk_ to verify.
    let keys = v1a_keys(&[3; 32]);
    let asymmetric = fx.signed_with(&keys, &body(), at(NOW));
    assert!(asymmetric
        .header("webhook-signature")
        .unwrap()
        .starts_with("v1a,"));
    let check = |secrets: &[Secret]| {
        asymmetric.check(Some(Provider::StandardWebhooks), secrets, None, at(NOW))
    };
    assert_eq!(
        check(std::slice::from_ref(&keys.verify)).unwrap().outcome,
        Outcome::Valid
    );
    assert_eq!(
        check(&[fx.keys.verify.clone(), keys.verify.clone()])
            .unwrap()
            .outcome,
        Outcome::Valid
    );
    assert!(matches!(
        check(std::slice::from_ref(&fx.keys.verify)),
        Err(VerifyError::UnusableSecret { .. })
    ));
    let other = v1a_keys(&[4; 32]);
    assert_eq!(check(&[other.verify]).unwrap().verdict(), Verdict::Invalid);
}

#[test]
fn standard_webhooks_names_a_raw_string_key() {
    let fx = fixture(Provider::StandardWebhooks);
    let mut request = fx.signed(&body(), at(NOW));
    let id = request.header("webhook-id").unwrap();
    let tag = hmac_sha256_hex(
        fx.keys.verify.expose().as_bytes(),
        &[format!("{id}.{NOW}.").as_bytes(), &body()],
    );
    let b64 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        hex::decode(tag).unwrap(),
    );
    request.set_header("webhook-signature", format!("v1,{b64}"));
    let reason_text = reason(&fx.check(&request, at(NOW)).outcome).to_owned();
    assert!(
        reason_text.contains("base64-decodes what follows whsec_"),
        "{reason_text}"
    );
}

#[test]
fn standard_webhooks_rejects_a_malformed_timestamp() {
    let fx = fixture(Provider::StandardWebhooks);
    let mut request = fx.signed(&body(), at(NOW));
    request.set_header("webhook-timestamp", "soon");
    assert_eq!(
        reason(&fx.check(&request, at(NOW)).outcome),
        "webhook-timestamp header is malformed: timestamp \"soon\" is not a number of seconds"
    );
}

#[test]
fn paddle_checks_every_h1_and_ignores_unknown_keys() {
    let fx = fixture(Provider::Paddle);
    let mut request = fx.signed(&body(), at(NOW));
    let good = request.header("Paddle-Signature").unwrap();
    let (ts, h1) = good.split_once(";h1=").unwrap();
    request.set_header(
        "Paddle-Signature",
        format!("{ts};h1={};h2=whatever;h1={h1}", "1".repeat(64)),
    );
    assert_eq!(fx.check(&request, at(NOW)).outcome, Outcome::Valid);
    assert_eq!(
        fx.check(&request, at(NOW + 6)).reason.as_deref(),
        Some("timestamp is 6 s old; paddle allows 5 s")
    );
}

#[test]
fn shopify_events_deliveries_use_the_unprefixed_header() {
    let fx = fixture(Provider::Shopify);
    let mut request = fx.signed(&body(), at(NOW));
    let value = request.header("X-Shopify-Hmac-Sha256").unwrap();
    request.remove_header("X-Shopify-Hmac-Sha256");
    request.set_header("shopify-hmac-sha256", value);
    assert_eq!(fx.check(&request, at(NOW)).outcome, Outcome::Valid);
}

#[test]
fn twilio_form_parameters_and_urls() {
    let token = secret("12345");
    let form = b"To=%2B1800&From=%2B1415&Body=hi+there&Digits=2&Digits=1".to_vec();
    let url = "https://example.com:443/sms?x=1";
    let signed = |url: &str, body: &[u8]| {
        let mut request = Request {
            method: "POST".into(),
            url: url.into(),
            headers: vec![(
                "Content-Type".into(),
                b"application/x-www-form-urlencoded; charset=utf-8".to_vec(),
            )],
            body: body.to_vec(),
        };
        let headers: Vec<(&str, &[u8])> = request
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let input = hooks::verify::VerifyInput {
            method: "POST",
            url,
            headers: &headers,
            body,
        };
        let sig = hooks::verify::sign(Provider::Twilio, &token, &input, at(NOW)).unwrap();
        request.set_header("X-Twilio-Signature", sig.headers[0].1.clone());
        request
    };
    let check = |request: &Request| {
        request
            .check(
                Some(Provider::Twilio),
                std::slice::from_ref(&token),
                None,
                at(NOW),
            )
            .unwrap()
    };
    let request = signed(url, &form);
    assert_eq!(check(&request).outcome, Outcome::Valid);
    // Parameters are signed sorted and decoded: the same form in another order and encoding.
    let mut reordered = request.clone();
    reordered.body = b"Digits=1&Body=hi%20there&From=%2B1415&Digits=2&To=%2b1800".to_vec();
    assert_eq!(check(&reordered).outcome, Outcome::Valid);
    let mut changed = request.clone();
    changed.body = b"To=%2B1800&From=%2B1415&Body=hi+therE&Digits=2&Digits=1".to_vec();
    assert_eq!(check(&changed).verdict(), Verdict::Invalid);
    // The default port may be left out of the URL it is checked against.
    let mut without_port = request.clone();
    without_port.url = "https://example.com/sms?x=1".into();
    assert_eq!(check(&without_port).outcome, Outcome::Valid);
    let mut other_path = request;
    other_path.url = "https://example.com/other?x=1".into();
    assert!(reason(&check(&other_path).outcome).contains("give it with --url"));
}

#[test]
fn discord_needs_its_public_key() {
    let fx = fixture(Provider::Discord);
    let request = fx.signed(&body(), at(NOW));
    let err = request
        .check(
            Some(Provider::Discord),
            &[secret("whsec_abc")],
            None,
            at(NOW),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot check the discord signature: the secret is not a Discord public key: expected the application's 64 hex characters"
    );
    // The private seed is not the public key: never valid (usually not even a curve point).
    let result = request.check(
        Some(Provider::Discord),
        std::slice::from_ref(&fx.keys.sign),
        None,
        at(NOW),
    );
    assert!(
        !matches!(&result, Ok(report) if report.outcome == Outcome::Valid),
        "{result:?}"
    );
}

#[test]
fn square_legacy_sha1_header_and_url() {
    let fx = fixture(Provider::Square);
    let mut request = fx.signed(&body(), at(NOW));
    request.set_header("x-square-signature", "placeholder");
    let request = {
        let headers: Vec<(&str, &[u8])> = request
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let input = hooks::verify::VerifyInput {
            method: "POST",
            url: &request.url,
            headers: &headers,
            body: &request.body,
        };
        let signed = hooks::verify::sign(Provider::Square, &fx.keys.sign, &input, at(NOW)).unwrap();
        let mut request = request.clone();
        for (name, value) in signed.headers {
            request.set_header(&name, value);
        }
        request
    };
    let mut legacy = request.clone();
    legacy.remove_header("x-square-hmacsha256-signature");
    assert_eq!(fx.check(&legacy, at(NOW)).outcome, Outcome::Valid);
    let mut moved = request;
    moved.url = "https://hooks.example.com/elsewhere".into();
    assert!(reason(&fx.check(&moved, at(NOW)).outcome).contains("--url"));
}

#[test]
fn mailgun_parent_signature_and_form_bodies() {
    let fx = fixture(Provider::Mailgun);
    let request = fx.signed(&body(), at(NOW));
    // A subaccount delivery: the parent account's key matches parent-signature only.
    let mut value: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    let other = fx.signed_with(&fx.other, &body(), at(NOW));
    let other_value: serde_json::Value = serde_json::from_slice(&other.body).unwrap();
    value["parent-signature"] = other_value["signature"].clone();
    let mut with_parent = request.clone();
    with_parent.body = serde_json::to_vec(&value).unwrap();
    for key in [&fx.keys.verify, &fx.other.verify] {
        let report = with_parent
            .check(
                Some(Provider::Mailgun),
                std::slice::from_ref(key),
                None,
                at(NOW),
            )
            .unwrap();
        assert_eq!(report.outcome, Outcome::Valid);
    }
    // Legacy form posts carry the same three fields.
    let signature = &value["signature"];
    let form = format!(
        "event=delivered&timestamp={}&token={}&signature={}",
        signature["timestamp"].as_str().unwrap(),
        signature["token"].as_str().unwrap(),
        signature["signature"].as_str().unwrap()
    );
    let form_request = Request {
        method: "POST".into(),
        url: "https://hooks.example.com/mailgun".into(),
        headers: vec![(
            "Content-Type".into(),
            b"application/x-www-form-urlencoded".to_vec(),
        )],
        body: form.into_bytes(),
    };
    let report = form_request
        .check(None, std::slice::from_ref(&fx.keys.verify), None, at(NOW))
        .unwrap();
    assert_eq!(
        (report.provider, report.detected_from),
        (Some(Provider::Mailgun), Some("body"))
    );
    assert_eq!(report.outcome, Outcome::Valid);
}

#[test]
fn hubspot_v1_and_v2_are_plain_sha256() {
    let fx = fixture(Provider::HubSpot);
    for version in ["v1", "v2"] {
        let mut request = Request {
            method: "POST".into(),
            url: fx.url(&body()),
            headers: vec![(
                "X-HubSpot-Signature-Version".into(),
                version.as_bytes().to_vec(),
            )],
            body: body(),
        };
        let headers: Vec<(&str, &[u8])> = request
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let input = hooks::verify::VerifyInput {
            method: "POST",
            url: &request.url,
            headers: &headers,
            body: &request.body,
        };
        let signed =
            hooks::verify::sign(Provider::HubSpot, &fx.keys.sign, &input, at(NOW)).unwrap();
        for (name, value) in signed.headers {
            request.set_header(&name, value);
        }
        assert!(request.header("X-HubSpot-Signature-v3").is_none());
        assert_eq!(
            fx.check(&request, at(NOW)).outcome,
            Outcome::Valid,
            "{version}"
        );
        // v2 signs the method and URL too; v1 does not.
        let mut get = request.clone();
        get.method = "GET".into();
        let expected = if version == "v2" {
            Verdict::Invalid
        } else {
            Verdict::Valid
        };
        assert_eq!(fx.check(&get, at(NOW)).verdict(), expected, "{version}");
    }
}

#[test]
fn zoom_reads_millisecond_timestamps_for_tolerance() {
    let fx = fixture(Provider::Zoom);
    let mut request = fx.signed(&body(), at(NOW));
    let millis = format!("{}", (NOW - 120) * 1000);
    request.set_header("x-zm-request-timestamp", millis.clone());
    let tag = hmac_sha256_hex(
        fx.keys.verify.expose().as_bytes(),
        &[format!("v0:{millis}:").as_bytes(), &body()],
    );
    request.set_header("x-zm-signature", format!("v0={tag}"));
    let report = request
        .check(
            Some(Provider::Zoom),
            std::slice::from_ref(&fx.keys.verify),
            Some(secs(60)),
            at(NOW),
        )
        .unwrap();
    assert_eq!(
        report.outcome,
        Outcome::Expired {
            age: Age::Past(secs(120)),
            tolerance: secs(60)
        }
    );
    assert_eq!(
        report.reason.as_deref(),
        Some("timestamp is 120 s old; --tolerance allows 60 s")
    );
}

#[test]
fn twitch_timestamps_must_be_rfc3339() {
    let fx = fixture(Provider::Twitch);
    let mut request = fx.signed(&body(), at(NOW));
    request.set_header("Twitch-Eventsub-Message-Timestamp", "1735689600");
    assert!(reason(&fx.check(&request, at(NOW)).outcome)
        .starts_with("Twitch-Eventsub-Message-Timestamp header is malformed"));
}

#[test]
fn sendgrid_accepts_either_s_of_a_signature() {
    use p256::ecdsa::Signature;
    let fx = fixture(Provider::SendGrid);
    let mut request = fx.signed(&body(), at(NOW));
    let der = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        request
            .header("X-Twilio-Email-Event-Webhook-Signature")
            .unwrap(),
    )
    .unwrap();
    let sig = Signature::from_der(&der).unwrap();
    let (r, s) = sig.split_scalars();
    let flipped = Signature::from_scalars(r, -*s).unwrap();
    assert_ne!(flipped, sig);
    request.set_header(
        "X-Twilio-Email-Event-Webhook-Signature",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            flipped.to_der().as_bytes(),
        ),
    );
    assert_eq!(fx.check(&request, at(NOW)).outcome, Outcome::Valid);
}

#[test]
fn gitlab_tokens_with_stray_whitespace_are_named() {
    let fx = fixture(Provider::GitLab);
    let request = fx.signed(&body(), at(NOW));
    let padded = secret(&format!("{}\n", fx.keys.verify.expose()));
    let report = request
        .check(Some(Provider::GitLab), &[padded], None, at(NOW))
        .unwrap();
    assert!(reason(&report.outcome).contains("spaces or line breaks"));
}

#[test]
fn unsigned_requests_name_what_they_do_carry() {
    let github = fixture(Provider::GitHub).signed(&body(), at(NOW));
    let report = github
        .check(Some(Provider::Stripe), &[secret("whsec_x")], None, at(NOW))
        .unwrap();
    assert_eq!(report.outcome, Outcome::Unsigned);
    assert_eq!(
        report.reason.as_deref(),
        Some("no Stripe-Signature header (the request carries X-Hub-Signature-256: is it from github?)")
    );
    // A provider's own headers without its signature: that provider, unsigned.
    let hook = Request {
        method: "POST".into(),
        url: "https://hooks.example.com/".into(),
        headers: vec![("X-GitHub-Event".into(), b"push".to_vec())],
        body: body(),
    };
    let report = hook.check(None, &[secret("s")], None, at(NOW)).unwrap();
    assert_eq!(
        (report.provider, report.assumed, report.outcome),
        (Some(Provider::GitHub), true, Outcome::Unsigned)
    );
    assert_eq!(
        report.reason.as_deref(),
        Some("no X-Hub-Signature-256 header")
    );
    // Nothing recognisable at all.
    let plain = Request {
        headers: Vec::new(),
        ..hook
    };
    let report = plain.check(None, &[secret("s")], None, at(NOW)).unwrap();
    assert_eq!((report.provider, report.outcome), (None, Outcome::Unsigned));
}
