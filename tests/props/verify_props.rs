//! Properties of every scheme, over random bodies, secrets and times: what `sign` produces
//! verifies; flipping any byte of the body (where the scheme covers it) or of the signature
//! makes it fail; and no header bytes, body or secret can make `check` (or the raw request
//! parser) panic. The last is the stable-toolchain twin of `fuzz/fuzz_targets/verify_headers.rs`.

use std::time::Duration;

use hooks::raw_request::{self, RawRequest};
use hooks::verify::{Outcome, Provider, Secret, Verdict};
use proptest::prelude::*;

use crate::signing::{at, fixture, json_body, keys, Fixture, Keys, Request};

fn provider() -> impl Strategy<Value = Provider> {
    (0..Provider::ALL.len()).prop_map(|i| Provider::ALL[i])
}

/// A fixture with keys from `seed`, or for raw-key HMAC schemes the arbitrary `text` as secret.
fn random_fixture(provider: Provider, seed: [u8; 32], text: &str) -> Fixture {
    let mut fx = fixture(provider);
    let raw_key = !matches!(
        provider,
        Provider::StandardWebhooks | Provider::Discord | Provider::SendGrid
    );
    fx.keys = if raw_key && !text.is_empty() {
        Keys {
            sign: Secret::new(text),
            verify: Secret::new(text),
        }
    } else {
        keys(provider, &seed)
    };
    fx
}

/// Mailgun signs into a JSON object; every other scheme takes any bytes.
fn body_for(provider: Provider, bytes: &[u8]) -> Vec<u8> {
    if provider == Provider::Mailgun {
        json_body(&String::from_utf8_lossy(bytes))
    } else {
        bytes.to_vec()
    }
}

fn check(fx: &Fixture, request: &Request, now: u64) -> Outcome {
    fx.check(request, at(now)).outcome
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn sign_then_verify_holds(
        provider in provider(),
        seed in any::<[u8; 32]>(),
        text in "\\PC{0,40}",
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        now in 1_000_000_000u64..4_000_000_000,
    ) {
        let fx = random_fixture(provider, seed, &text);
        let request = fx.signed(&body_for(provider, &bytes), at(now));
        prop_assert_eq!(check(&fx, &request, now), Outcome::Valid);
    }

    #[test]
    fn flipping_a_body_byte_fails(
        provider in provider(),
        seed in any::<[u8; 32]>(),
        text in "\\PC{0,40}",
        bytes in proptest::collection::vec(any::<u8>(), 1..400),
        index in any::<usize>(),
        mask in 1u8..=255,
    ) {
        let fx = random_fixture(provider, seed, &text);
        prop_assume!(fx.covers_body);
        let mut request = fx.signed(&bytes, at(1_735_689_600));
        let at_byte = index % request.body.len();
        request.body[at_byte] ^= mask;
        prop_assert_ne!(check(&fx, &request, 1_735_689_600), Outcome::Valid);
    }

    #[test]
    fn flipping_a_signature_byte_fails(
        provider in provider(),
        seed in any::<[u8; 32]>(),
        text in "\\PC{1,40}",
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        index in any::<usize>(),
        mask in 1u8..=255,
    ) {
        let fx = random_fixture(provider, seed, &text);
        let request = fx.signed(&body_for(provider, &bytes), at(1_735_689_600));
        let tampered = fx.tamper_signature(&request, index, mask);
        prop_assert_ne!(&tampered, &request);
        let report = tampered.check(Some(provider), std::slice::from_ref(&fx.keys.verify), None, at(1_735_689_600));
        // A flipped byte may make the signature unparseable or mismatched: never valid.
        prop_assert!(report.is_ok_and(|r| r.verdict() == Verdict::Invalid));
    }
}

/// Header values: arbitrary bytes, or text shaped like a signature header with odd parts.
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..120),
        "(t|ts|v1|v0|h1|sha1|sha256|v1a)[=,][0-9a-fA-F+/=]{0,130}([,; ](t|v1|h1)=[0-9a-z]{0,70}){0,3}"
            .prop_map(String::into_bytes),
        "-?[0-9]{0,25}".prop_map(String::into_bytes),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}(\\.[0-9]{0,12})?(Z|[+-][0-9]{2}:[0-9]{2})?"
            .prop_map(String::into_bytes),
        "(application/x-www-form-urlencoded|application/json|v1|v2|v3)".prop_map(String::into_bytes),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        "\\{\"signature\":\\{\"timestamp\":\"[0-9a-z]{0,12}\",\"token\":\"[0-9a-f]{0,50}\",\"signature\":\"[0-9a-fA-F]{0,70}\"\\}(,\"webhookTimestamp\":-?[0-9.e]{0,22})?\\}"
            .prop_map(String::into_bytes),
        "(timestamp|token|signature|x)=[0-9a-f%+]{0,70}(&(timestamp|token|signature)=[0-9a-f%]{0,70}){0,3}"
            .prop_map(String::into_bytes),
    ]
}

fn secrets() -> impl Strategy<Value = Vec<Secret>> {
    proptest::collection::vec(
        prop_oneof![
            "\\PC{1,40}",
            "whsec_[A-Za-z0-9+/=]{0,60}",
            "whpk_[A-Za-z0-9+/=]{0,60}",
            "whsk_[A-Za-z0-9+/=]{0,90}",
            "[0-9a-f]{64}",
            "MFkw[A-Za-z0-9+/=]{0,100}",
        ]
        .prop_map(Secret::new),
        0..3,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// No request can make a scheme panic, named or recognised, with or without secrets.
    #[test]
    fn arbitrary_headers_never_panic(
        headers in proptest::collection::vec(
            (prop_oneof![
                // Header names every scheme reads, so random values land where parsers look.
                prop::sample::select(Provider::header_names()).prop_map(str::to_owned),
                "[A-Za-z-]{1,20}",
            ], header_value()),
            0..8,
        ),
        body in body(),
        secrets in secrets(),
        url in "(https?://[a-z.]{0,12}(:[0-9]{0,6})?)?(/[a-z?&=#:\\[\\]]{0,20}){0,2}",
        method in "(POST|GET|)",
        tolerance in proptest::option::of(0u64..u64::MAX),
        now in any::<u64>(),
    ) {
        let request = Request { method, url, headers, body };
        let tolerance = tolerance.map(Duration::from_secs);
        let now = std::time::UNIX_EPOCH.checked_add(Duration::from_secs(now)).unwrap_or(std::time::UNIX_EPOCH);
        let _ = request.check(None, &secrets, tolerance, now);
        for provider in Provider::ALL {
            let _ = request.check(Some(provider), &secrets, tolerance, now);
        }
    }

    #[test]
    fn raw_request_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = raw_request::parse(&bytes);
    }

    #[test]
    fn raw_requests_survive_write_then_parse(
        method in "[A-Z]{1,8}",
        target in "/[!-~]{0,40}",
        headers in proptest::collection::vec(
            ("[A-Za-z0-9-]{1,20}", proptest::collection::vec(any::<u8>(), 0..40)
                .prop_map(|v| v.into_iter().filter(|b| *b != b'\r' && *b != b'\n').collect::<Vec<u8>>())
                .prop_map(|v| v.trim_ascii().to_vec())),
            0..6,
        ),
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut headers: Vec<(String, Vec<u8>)> = headers
            .into_iter()
            .filter(|(name, _)| {
                !name.eq_ignore_ascii_case("content-length")
                    && !name.eq_ignore_ascii_case("transfer-encoding")
            })
            .collect();
        headers.push(("Content-Length".into(), body.len().to_string().into_bytes()));
        let request = RawRequest {
            method,
            target,
            version: "HTTP/1.1".into(),
            headers,
            body,
        };
        prop_assert_eq!(raw_request::parse(&raw_request::write(&request)), Ok(request));
    }
}
