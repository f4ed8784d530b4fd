//! Negative cases for every provider, through `hooks::verify`: a tampered body, a wrong secret,
//! rotated secrets, missing and malformed headers, old and future timestamps, window edges, and
//! no secret at all; then what is particular to each scheme.

mod verify_support;

use std::time::Duration;

use hooks::verify::{Age, Outcome, Provider, Secret, Verdict, VerifyError};
use verify_support::{at, fixture, json_body, v1a_keys, Fixture, Request, NOW};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn body() -> Vec<u8> {
    json_body("hello ♥")
}

/// Runs `case` for every provider, naming the provider when it fails.
fn for_every_provider(case: impl Fn(&Fixture)) {
    for provider in Provider::ALL {
        let fx = fixture(provider);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(&fx)));
        if let Err(panic) = result {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            panic!("{provider}: {message}");
        }
    }
}

fn reason(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Invalid { reason } => reason,
        other => panic!("expected invalid, got {other:?}"),
    }
}

/// A body changed after signing (for Mailgun, outside its signature object).
fn tamper_body(fx: &Fixture, request: &Request) -> Request {
    let mut tampered = request.clone();
    let mut value: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    value["text"] = "hello ♡".into();
    tampered.body = serde_json::to_vec(&value).unwrap();
    if fx.provider == Provider::Twilio {
        // The URL keeps the original body's SHA-256, as a proxy that re-wrote the body would.
        tampered.url = request.url.clone();
    }
    tampered
}

#[test]
fn signed_requests_are_valid() {
    for_every_provider(|fx| {
        let request = fx.signed(&body(), at(NOW));
        let report = fx.check(&request, at(NOW));
        assert_eq!(report.outcome, Outcome::Valid, "{report:?}");
        assert_eq!(report.provider, Some(fx.provider));
        assert!(!report.assumed);
        assert_eq!(report.reason, None);
    });
}

#[test]
fn signed_requests_are_recognised_without_a_provider() {
    for_every_provider(|fx| {
        let request = fx.signed(&body(), at(NOW));
        let report = request
            .check(None, &[fx.keys.verify.clone()], None, at(NOW))
            .unwrap();
        assert_eq!(report.provider, Some(fx.provider));
        assert!(report.assumed);
        assert!(report.detected_from.is_some());
        assert_eq!(report.outcome, Outcome::Valid);
    });
}

#[test]
fn tampered_bodies_are_invalid_where_the_body_is_signed() {
    for_every_provider(|fx| {
        let request = tamper_body(fx, &fx.signed(&body(), at(NOW)));
        let report = fx.check(&request, at(NOW));
        if fx.covers_body {
            assert!(reason(&report.outcome).contains("body"), "{report:?}");
        } else {
            // Mailgun and GitLab do not sign the body: the report says so.
            assert_eq!(report.outcome, Outcome::Valid);
            assert!(report.note.is_some_and(|n| n.contains("not")), "{report:?}");
        }
    });
}

#[test]
fn wrong_secrets_are_invalid() {
    for_every_provider(|fx| {
        let request = fx.signed(&body(), at(NOW));
        let report = request
            .check(Some(fx.provider), &[fx.other.verify.clone()], None, at(NOW))
            .unwrap();
        assert_eq!(report.verdict(), Verdict::Invalid, "{report:?}");
        assert!(!reason(&report.outcome).is_empty());
    });
}

#[test]
fn any_of_several_secrets_may_match() {
    for_every_provider(|fx| {
        let request = fx.signed(&body(), at(NOW));
        for secrets in [
            [fx.other.verify.clone(), fx.keys.verify.clone()],
            [fx.keys.verify.clone(), fx.other.verify.clone()],
        ] {
            let report = request
                .check(Some(fx.provider), &secrets, None, at(NOW))
                .unwrap();
            assert_eq!(report.outcome, Outcome::Valid);
        }
        let signed_with_other = fx.signed_with(&fx.other, &body(), at(NOW));
        let report = signed_with_other
            .check(
                Some(fx.provider),
                &[fx.keys.verify.clone(), fx.other.verify.clone()],
                None,
                at(NOW),
            )
            .unwrap();
        assert_eq!(report.outcome, Outcome::Valid);
    });
}

#[test]
fn a_missing_signature_is_unsigned_and_names_the_header() {
    for_every_provider(|fx| {
        let mut request = fx.signed(&body(), at(NOW));
        match fx.signature_header {
            Some(name) => request.remove_header(name),
            None => {
                let mut value: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
                value.as_object_mut().unwrap().remove("signature");
                request.body = serde_json::to_vec(&value).unwrap();
            }
        }
        if fx.provider == Provider::GitHub {
            // The legacy header would be checked in its place.
            request.remove_header("X-Hub-Signature");
        }
        let report = fx.check(&request, at(NOW));
        assert_eq!(report.outcome, Outcome::Unsigned, "{report:?}");
        let expected = match fx.signature_header {
            Some(name) => format!("no {name} header"),
            None => "no signature object in the body".to_owned(),
        };
        assert_eq!(report.reason.as_deref(), Some(expected.as_str()));
    });
}

#[test]
fn missing_companion_headers_are_invalid() {
    for_every_provider(|fx| {
        for companion in fx.companions {
            let mut request = fx.signed(&body(), at(NOW));
            request.remove_header(companion);
            let report = fx.check(&request, at(NOW));
            assert_eq!(reason(&report.outcome), format!("no {companion} header"));
        }
    });
}

#[test]
fn malformed_signatures_are_invalid_and_say_so() {
    for_every_provider(|fx| {
        let mut request = fx.signed(&body(), at(NOW));
        fx.set_signature_text(&mut request, "not a signature!");
        let report = fx.check(&request, at(NOW));
        let reason = reason(&report.outcome);
        if fx.provider == Provider::GitLab {
            assert_eq!(reason, "X-Gitlab-Token is not the secret token");
        } else {
            assert!(
                reason.starts_with("signature header is malformed: "),
                "{reason}"
            );
        }
    });
}

#[test]
fn non_utf8_signature_headers_are_invalid_not_a_panic() {
    for_every_provider(|fx| {
        let Some(name) = fx.signature_header else {
            return;
        };
        let mut request = fx.signed(&body(), at(NOW));
        request.set_header(name, vec![0xff, 0xfe, b'a']);
        let report = fx.check(&request, at(NOW));
        assert_eq!(report.verdict(), Verdict::Invalid, "{report:?}");
    });
}

#[test]
fn old_timestamps_expire_after_the_sdk_window() {
    for_every_provider(|fx| {
        let window = fx.provider.default_window();
        let Some(window) = window else {
            // No SDK window: valid however old, unless --tolerance asks.
            let request = fx.signed(&body(), at(NOW - 86_400));
            assert_eq!(fx.check(&request, at(NOW)).outcome, Outcome::Valid);
            let report = request
                .check(
                    Some(fx.provider),
                    &[fx.keys.verify.clone()],
                    Some(secs(60)),
                    at(NOW),
                )
                .unwrap();
            let expected = if fx.provider.signs_timestamp() {
                Outcome::Expired {
                    age: Age::Past(secs(86_400)),
                    tolerance: secs(60),
                }
            } else {
                Outcome::Valid
            };
            assert_eq!(report.outcome, expected);
            return;
        };
        let tolerance = window.tolerance.as_secs();
        let too_old = fx.signed(&body(), at(NOW - tolerance - 1));
        let report = fx.check(&too_old, at(NOW));
        assert_eq!(
            report.outcome,
            Outcome::Expired {
                age: Age::Past(secs(tolerance + 1)),
                tolerance: window.tolerance,
            }
        );
        let reason = report.reason.unwrap();
        assert!(
            reason.starts_with(&format!(
                "timestamp is {} s old; {} allows ",
                tolerance + 1,
                fx.provider
            )),
            "{reason}"
        );
        // --tolerance widens it; 0 turns the check off.
        for tolerance in [secs(86_400), Duration::ZERO] {
            let report = too_old
                .check(
                    Some(fx.provider),
                    &[fx.keys.verify.clone()],
                    Some(tolerance),
                    at(NOW),
                )
                .unwrap();
            assert_eq!(report.outcome, Outcome::Valid);
        }
    });
}

#[test]
fn the_window_edge_is_inside_except_for_hubspot() {
    for_every_provider(|fx| {
        let Some(window) = fx.provider.default_window() else {
            return;
        };
        let tolerance = window.tolerance.as_secs();
        let request = fx.signed(&body(), at(NOW - tolerance));
        let outcome = fx.check(&request, at(NOW)).outcome;
        if fx.provider == Provider::HubSpot {
            assert!(matches!(outcome, Outcome::Expired { .. }), "{outcome:?}");
            let request = fx.signed(&body(), at(NOW - tolerance + 1));
            assert_eq!(fx.check(&request, at(NOW)).outcome, Outcome::Valid);
        } else {
            assert_eq!(outcome, Outcome::Valid);
        }
    });
}

#[test]
fn future_timestamps_expire_only_where_the_sdk_rejects_them() {
    for_every_provider(|fx| {
        let Some(window) = fx.provider.default_window() else {
            return;
        };
        let tolerance = window.tolerance.as_secs();
        let ahead = fx.signed(&body(), at(NOW + tolerance + 1));
        let report = fx.check(&ahead, at(NOW));
        if window.future {
            assert_eq!(
                report.outcome,
                Outcome::Expired {
                    age: Age::Future(secs(tolerance + 1)),
                    tolerance: window.tolerance
                }
            );
            assert!(report.reason.unwrap().contains("in the future"));
        } else {
            assert_eq!(report.outcome, Outcome::Valid);
        }
    });
    let symmetric: Vec<_> = Provider::ALL
        .into_iter()
        .filter(|p| p.default_window().is_some_and(|w| w.future))
        .collect();
    assert_eq!(
        symmetric,
        [
            Provider::StandardWebhooks,
            Provider::Slack,
            Provider::Linear
        ]
    );
}

#[test]
fn an_expired_signature_must_match_first() {
    for_every_provider(|fx| {
        if fx.provider.default_window().is_none() {
            return;
        }
        let request = fx.signed(&body(), at(NOW - 86_400));
        let report = request
            .check(Some(fx.provider), &[fx.other.verify.clone()], None, at(NOW))
            .unwrap();
        assert_eq!(report.verdict(), Verdict::Invalid);
    });
}

#[test]
fn without_a_secret_signed_and_unsigned_are_told_apart() {
    for_every_provider(|fx| {
        let request = fx.signed(&body(), at(NOW));
        assert_eq!(
            request.check(None, &[], None, at(NOW)),
            Err(VerifyError::NoSecret {
                provider: fx.provider
            })
        );
        let plain = Request {
            method: "POST".into(),
            url: fx.url(&body()),
            headers: fx.base_headers.clone(),
            body: body(),
        };
        let report = plain.check(Some(fx.provider), &[], None, at(NOW)).unwrap();
        assert_eq!(report.outcome, Outcome::Unsigned);
    });
}

// What is particular to each scheme.

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
        .check(None, &[fx.keys.verify.clone()], None, at(NOW))
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
        check(&[keys.verify.clone()]).unwrap().outcome,
        Outcome::Valid
    );
    assert_eq!(
        check(&[fx.keys.verify.clone(), keys.verify.clone()])
            .unwrap()
            .outcome,
        Outcome::Valid
    );
    assert!(matches!(
        check(&[fx.keys.verify.clone()]),
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
            .check(Some(Provider::Twilio), &[token.clone()], None, at(NOW))
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
        &[fx.keys.sign.clone()],
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
            .check(Some(Provider::Mailgun), &[key.clone()], None, at(NOW))
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
        .check(None, &[fx.keys.verify.clone()], None, at(NOW))
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
            &[fx.keys.verify.clone()],
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
