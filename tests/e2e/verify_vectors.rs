//! Every vector in `shared/signatures/vectors.json` (beside the repository), run through the real
//! `hooks verify` binary as a raw HTTP/1.1 request file: once naming the provider, once letting
//! hooks recognise it. And `verify::sign` reproduces every valid vector's signature.

use std::path::PathBuf;

use base64::Engine as _;
use hooks::verify::{self, Provider, Secret, VerifyInput};
use serde_json::Value;

use crate::signing::{at, host_of, target_of};
use crate::support::cli::hooks;

fn vectors() -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/signatures/vectors.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("could not read {}: {e}", path.display()));
    let vectors: Vec<Value> = serde_json::from_str(&text).expect("vectors.json is a JSON array");
    assert_eq!(vectors.len(), 52, "vectors.json changed: update this test");
    vectors
}

fn name(vector: &Value) -> String {
    format!(
        "{}/{}",
        vector["provider"].as_str().unwrap(),
        vector["case"].as_str().unwrap()
    )
}

fn body(vector: &Value) -> Vec<u8> {
    match (&vector["body"], &vector["body_base64"]) {
        (Value::String(text), _) => text.as_bytes().to_vec(),
        (_, Value::String(encoded)) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("body_base64 is base64"),
        _ => Vec::new(),
    }
}

fn method(vector: &Value) -> &str {
    vector["method"].as_str().unwrap_or("POST")
}

/// The vector as a raw HTTP/1.1 request: request line, Host, its headers, Content-Length, body.
fn raw_request(vector: &Value) -> Vec<u8> {
    let url = vector["url"].as_str();
    let target = url.map_or_else(|| "/".to_owned(), target_of);
    let host = url.map_or_else(|| "hooks.example.com".to_owned(), host_of);
    let body = body(vector);
    let mut raw = format!("{} {target} HTTP/1.1\r\nHost: {host}\r\n", method(vector));
    for (name, value) in vector["headers"].as_object().expect("headers object") {
        raw.push_str(&format!(
            "{name}: {}\r\n",
            value.as_str().expect("header text")
        ));
    }
    raw.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(&body);
    raw
}

/// Runs `hooks verify --json` on the vector; returns the exit code and the JSON object.
fn run(vector: &Value, dir: &tempfile::TempDir, with_provider: bool) -> (i32, Value) {
    let file = dir
        .path()
        .join(format!("{}.http", name(vector).replace('/', "_")));
    std::fs::write(&file, raw_request(vector)).unwrap();
    let mut cmd = hooks();
    cmd.arg("verify")
        .arg("--json")
        .arg("--secret")
        .arg(vector["secret"].as_str().unwrap())
        .arg("--at")
        .arg(vector["now"].as_u64().unwrap().to_string());
    if with_provider {
        cmd.arg("--provider")
            .arg(vector["provider"].as_str().unwrap());
    }
    if let Some(url) = vector["url"].as_str() {
        cmd.arg("--url").arg(url);
    }
    if let Some(tolerance) = vector["tolerance_s"].as_u64() {
        cmd.arg("--tolerance").arg(tolerance.to_string());
    }
    let output = cmd.arg(&file).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{}: stdout is not one JSON object ({e}): {stdout:?}, stderr: {}",
            name(vector),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), report)
}

fn expected_code(vector: &Value) -> i32 {
    i32::from(vector["expect"] != "valid")
}

#[test]
fn every_vector_passes_with_its_provider_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for vector in vectors() {
        let (code, report) = run(&vector, &dir, true);
        if code != expected_code(&vector) || report["verdict"] != vector["expect"] {
            failures.push(format!(
                "{}: expected {} (exit {}), got exit {code}: {report}",
                name(&vector),
                vector["expect"],
                expected_code(&vector)
            ));
        }
        assert_eq!(report["assumed"], false, "{}", name(&vector));
    }
    assert!(
        failures.is_empty(),
        "{} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_vector_passes_with_its_provider_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for vector in vectors() {
        let (code, report) = run(&vector, &dir, false);
        let provider: Provider = vector["provider"].as_str().unwrap().parse().unwrap();
        if code != expected_code(&vector)
            || report["verdict"] != vector["expect"]
            || report["provider"] != provider.name()
            || report["assumed"] != true
        {
            failures.push(format!("{}: got exit {code}: {report}", name(&vector)));
        }
    }
    assert!(
        failures.is_empty(),
        "{} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn invalid_vectors_say_why() {
    let dir = tempfile::tempdir().unwrap();
    for vector in vectors().iter().filter(|v| v["expect"] != "valid") {
        let (_, report) = run(vector, &dir, true);
        let reason = report["reason"].as_str().unwrap_or_default();
        assert!(reason.len() > 10, "{}: reason {reason:?}", name(vector));
    }
}

/// `sign` given a valid vector's inputs (secret, body, URL, ids, timestamp) produces exactly the
/// vector's signature header, for every HMAC and Ed25519 scheme whose inputs the vector holds.
#[test]
fn sign_reproduces_every_valid_hmac_vector() {
    let mut checked = 0;
    for vector in vectors().iter().filter(|v| v["expect"] == "valid") {
        let provider: Provider = vector["provider"].as_str().unwrap().parse().unwrap();
        let headers: Vec<(String, Vec<u8>)> = vector["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(n, v)| (n.clone(), v.as_str().unwrap().as_bytes().to_vec()))
            .collect();
        let Some((signature_header, timestamp)) = signed_parts(provider, vector, &headers) else {
            continue;
        };
        let refs: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let body = body(vector);
        let url = vector["url"]
            .as_str()
            .unwrap_or("https://hooks.example.com/");
        let input = VerifyInput {
            method: method(vector),
            url,
            headers: &refs,
            body: &body,
        };
        let secret = Secret::new(vector["secret"].as_str().unwrap());
        let signed = verify::sign(provider, &secret, &input, timestamp).unwrap();
        let produced = signed
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&signature_header))
            .map(|(_, v)| v.clone());
        let expected = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&signature_header))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
        assert_eq!(produced, expected, "{}", name(vector));
        checked += 1;
    }
    assert_eq!(checked, 29, "number of vectors sign was held against");
}

/// The header `sign` must reproduce for a vector, and the time it was signed at; `None` for
/// vectors `sign` cannot reproduce: public-key schemes (the vector has the public key),
/// several signatures in one header, Twilio's port variants, Mailgun (signed in the body).
fn signed_parts(
    provider: Provider,
    vector: &Value,
    headers: &[(String, Vec<u8>)],
) -> Option<(String, std::time::SystemTime)> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let secs = |text: &str| at(text.parse().unwrap());
    let case = vector["case"].as_str().unwrap();
    match provider {
        Provider::Stripe | Provider::Calendly => {
            let name = if provider == Provider::Stripe {
                "Stripe-Signature"
            } else {
                "Calendly-Webhook-Signature"
            };
            let value = header(name)?;
            let t = value
                .split(',')
                .find_map(|i| i.strip_prefix("t="))?
                .to_owned();
            Some((name.into(), secs(&t)))
        }
        Provider::GitHub => Some(("X-Hub-Signature-256".into(), at(0))),
        Provider::StandardWebhooks => {
            if case.contains("rotation") || case.contains("v1a") {
                return None;
            }
            let svix = header("svix-signature").is_some();
            let (sig, ts) = if svix {
                ("svix-signature", "svix-timestamp")
            } else {
                ("webhook-signature", "webhook-timestamp")
            };
            Some((sig.into(), secs(&header(ts)?)))
        }
        Provider::Slack => Some((
            "X-Slack-Signature".into(),
            secs(&header("X-Slack-Request-Timestamp")?),
        )),
        Provider::Zoom => Some((
            "x-zm-signature".into(),
            secs(&header("x-zm-request-timestamp")?),
        )),
        Provider::Shopify => Some(("X-Shopify-Hmac-Sha256".into(), at(0))),
        Provider::Twilio => {
            // The port cases were signed over another spelling of the URL than the one given.
            matches!(
                case,
                "sdk_vector"
                    | "sdk_vector_http_custom_port"
                    | "sdk_vector_duplicate_params"
                    | "sdk_vector_json_body_sha256"
            )
            .then(|| ("X-Twilio-Signature".into(), at(0)))
        }
        Provider::Paddle => {
            if case.contains("multiple") {
                return None;
            }
            let value = header("Paddle-Signature")?;
            let ts = value
                .split(';')
                .find_map(|i| i.strip_prefix("ts="))?
                .to_owned();
            Some(("Paddle-Signature".into(), secs(&ts)))
        }
        Provider::Linear => Some(("Linear-Signature".into(), at(1_735_689_595))),
        Provider::Square => Some(("x-square-hmacsha256-signature".into(), at(0))),
        Provider::Intercom => Some(("X-Hub-Signature".into(), at(0))),
        Provider::GitLab => Some(("X-Gitlab-Token".into(), at(0))),
        Provider::Twitch => {
            let ts = header("Twitch-Eventsub-Message-Timestamp")?;
            let stamp =
                std::time::UNIX_EPOCH + std::time::Duration::new(1_735_689_570, 123_456_789);
            assert_eq!(ts, "2024-12-31T23:59:30.123456789Z");
            Some(("Twitch-Eventsub-Message-Signature".into(), stamp))
        }
        Provider::Typeform => Some(("Typeform-Signature".into(), at(0))),
        Provider::HubSpot => {
            if let Some(ts) = header("X-HubSpot-Request-Timestamp") {
                let millis: u64 = ts.parse().unwrap();
                let stamp = std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis);
                Some(("X-HubSpot-Signature-v3".into(), stamp))
            } else {
                Some(("X-HubSpot-Signature".into(), at(0)))
            }
        }
        Provider::Discord | Provider::SendGrid | Provider::Mailgun => None,
    }
}
