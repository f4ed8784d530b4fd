//! Negative cases for every provider, through `hooks::verify`: a tampered body, a wrong secret,
//! rotated secrets, missing and malformed headers, old and future timestamps, window edges, and
//! no secret at all. What is particular to one scheme is in `verify_schemes.rs`.

use std::time::Duration;

use hooks::verify::{Age, Outcome, Provider, Verdict, VerifyError};

use crate::signing::{at, fixture, json_body, Fixture, Request, NOW};

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
            .check(None, std::slice::from_ref(&fx.keys.verify), None, at(NOW))
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
            .check(
                Some(fx.provider),
                std::slice::from_ref(&fx.other.verify),
                None,
                at(NOW),
            )
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
                    std::slice::from_ref(&fx.keys.verify),
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
                    std::slice::from_ref(&fx.keys.verify),
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
            .check(
                Some(fx.provider),
                std::slice::from_ref(&fx.other.verify),
                None,
                at(NOW),
            )
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
