//! `hooks send PROVIDER EVENT` (issue 21): every built-in template prints a request that
//! `hooks verify` finds valid and fresh; the main schemes checked with HMACs computed here (not
//! through hooks' code); end to end through the relay and `hooks listen` (recognised, valid,
//! duplicates and events out of order flagged); the list, the errors, project templates,
//! changes, private keys, and the captures a send records.

mod common;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use common::{App, Finished, Recorded};
use hmac::{Hmac, Mac};
use serde_json::Value;

/// An HMAC secret for every provider but Standard Webhooks.
const SECRET: &str = "whsec_hooks_send_test_secret";
/// A Standard Webhooks secret: `whsec_` and base64.
const SW_SECRET: &str = "whsec_aG9va3Mgc2VuZCB0ZXN0IGtleSBmb3Igc3RkIHdlYmhvb2tz";

/// `hooks <args>` with data in `data`, run in `cwd` (default: a fresh folder) with `env` set.
async fn hooks_at(
    args: &[&str],
    data: &Path,
    cwd: Option<&Path>,
    env: &[(&str, &str)],
) -> Finished {
    let here = tempfile::tempdir().expect("temp folder");
    let mut command = common::hooks_command(args, data);
    command.current_dir(cwd.unwrap_or(here.path()));
    for (name, value) in env {
        command.env(name, value);
    }
    let output = common::within(&format!("hooks {args:?}"), command.output())
        .await
        .expect("run hooks");
    Finished {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn hooks(args: &[&str], data: &Path) -> Finished {
    hooks_at(args, data, None, &[]).await
}

/// Runs `hooks <args>` and fails the test unless it exits 0.
async fn ok(args: &[&str], data: &Path) -> Finished {
    let done = hooks(args, data).await;
    assert_eq!(done.code, Some(0), "hooks {args:?}: {}", done.stderr);
    done
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).expect("any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// The one value of header `name` (lowercase) as text.
fn one(request: &Recorded, name: &str) -> String {
    let values = request.header(name);
    assert_eq!(
        values.len(),
        1,
        "one {name} header in {:?}",
        request.headers
    );
    String::from_utf8(values[0].to_vec()).expect("text header")
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

/// Asserts `secs` is within a minute of now.
#[track_caller]
fn assert_fresh(secs: i64, what: &str) {
    let off = (now_secs() - secs).abs();
    assert!(off <= 60, "{what}: {secs} is {off} s from now");
}

/// A raw HTTP/1.1 request as `--print` writes it: headers and body.
struct Raw {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn parse_raw(text: &str) -> Raw {
    let (head, body) = text
        .split_once("\r\n\r\n")
        .expect("a blank line after the headers");
    let headers = head
        .lines()
        .skip(1)
        .map(|line| {
            let (name, value) = line.split_once(": ").expect("Name: value");
            (name.to_ascii_lowercase(), value.to_owned())
        })
        .collect();
    Raw {
        headers,
        body: body.as_bytes().to_vec(),
    }
}

// ---------------------------------------------------------------------------------------------
// Every built-in template
// ---------------------------------------------------------------------------------------------

/// The scheme `hooks verify` should report for a template folder, and the secret to send with
/// (`None`: a private key, the data directory's key pair).
fn scheme_of(provider: &str) -> (&str, Option<&'static str>) {
    match provider {
        "standard-webhooks" | "clerk" | "resend" => ("standard-webhooks", Some(SW_SECRET)),
        "discord" | "sendgrid" => (provider, None),
        other => (other, Some(SECRET)),
    }
}

/// The templates `--list --json` names: (provider, event).
async fn listed(data: &Path) -> Vec<(String, String)> {
    let list = ok(&["send", "--list", "--json"], data).await;
    list.stdout
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).expect("one JSON object per line");
            let field = |name: &str| value[name].as_str().expect("a string").to_owned();
            (field("provider"), field("event"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_built_in_template_prints_a_request_that_verifies_valid_and_fresh() {
    let data = tempfile::tempdir().expect("data dir");
    let dir = tempfile::tempdir().expect("request files");
    let templates = listed(data.path()).await;
    assert!(templates.len() >= 37, "{templates:?}");
    for (provider, event) in &templates {
        let (scheme, secret) = scheme_of(provider);
        let mut args = vec!["send", provider.as_str(), event.as_str(), "--print"];
        args.extend(secret.iter().flat_map(|s| ["--secret", *s]));
        let printed = ok(&args, data.path()).await;
        let checking = match secret {
            Some(secret) => secret.to_owned(),
            None => public_key(&printed.stderr),
        };
        let file = dir.path().join("request.http");
        std::fs::write(&file, &printed.stdout).expect("write the request");
        let file = file.to_string_lossy().into_owned();
        let verified = hooks(
            &[
                "verify",
                "--secret",
                &checking,
                "--tolerance",
                "60",
                "--json",
                &file,
            ],
            data.path(),
        )
        .await;
        assert_eq!(
            verified.code,
            Some(0),
            "{provider}/{event}: {}{}",
            verified.stdout,
            verified.stderr
        );
        let report: Value = serde_json::from_str(&verified.stdout).expect("a JSON report");
        assert_eq!(report["verdict"], "valid", "{provider}/{event}: {report}");
        assert_eq!(report["provider"], scheme, "{provider}/{event}");
        check_times(&format!("{provider}/{event}"), &parse_raw(&printed.stdout));
    }
}

/// The public key `hooks send` printed for its key pair.
fn public_key(stderr: &str) -> String {
    stderr
        .split("your app's public key: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no public key in {stderr:?}"))
        .to_owned()
}

/// The event's times are now: the time `hooks listen` recognises and every timestamp header
/// within a minute; every time in the body (RFC 3339 anywhere, numbers under time-like keys)
/// within the last month (a subscription began then) or the next year (one renews then).
fn check_times(what: &str, raw: &Raw) {
    let headers: Vec<relay_server::protocol::Header> = raw
        .headers
        .iter()
        .map(|(n, v)| relay_server::protocol::Header {
            name: n.clone(),
            value: bytes::Bytes::from(v.clone()),
        })
        .collect();
    let event = hooks::inspect::recognize(&headers, &raw.body)
        .unwrap_or_else(|| panic!("{what}: hooks listen recognises no event"));
    if let Some(at) = event.occurred_at {
        assert_fresh(at, &format!("{what}: the event's time"));
    }
    for (name, value) in &raw.headers {
        if name.contains("timestamp") || name.contains("triggered-at") {
            let secs = time_of(&Value::String(value.clone()))
                .unwrap_or_else(|| panic!("{what}: {name}: {value} is no time"));
            assert_fresh(secs, &format!("{what}: {name}"));
        }
    }
    let Ok(body) = serde_json::from_slice::<Value>(&raw.body) else {
        return;
    };
    let (earliest, latest) = (now_secs() - 31 * 86_400 - 60, now_secs() + 366 * 86_400);
    let mut times = Vec::new();
    collect_times(&body, "", &mut times);
    for (key, secs) in times {
        assert!(
            (earliest..=latest).contains(&secs),
            "{what}: {key} = {secs} is not a fresh time"
        );
    }
}

/// Every time in `value`: strings that are RFC 3339, and numbers (or numeric strings) under
/// keys that name a time.
fn collect_times(value: &Value, key: &str, out: &mut Vec<(String, i64)>) {
    match value {
        Value::Object(map) => map.iter().for_each(|(k, v)| collect_times(v, k, out)),
        Value::Array(items) => items.iter().for_each(|v| collect_times(v, key, out)),
        Value::String(s) if s.parse::<jiff::Timestamp>().is_ok() => {
            out.push((key.to_owned(), time_of(value).expect("RFC 3339")));
        }
        Value::Number(_) | Value::String(_) if time_key(key) => {
            if let Some(secs) = time_of(value).filter(|&secs| secs != 0) {
                out.push((key.to_owned(), secs));
            }
        }
        _ => {}
    }
}

fn time_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    key.ends_with("_at")
        || key.ends_with("At")
        || lower.contains("time")
        || lower.contains("created")
        || lower.contains("period")
        || lower.starts_with("trial_")
        || lower == "ts"
        || lower.ends_with("_ts")
}

/// Unix seconds of an RFC 3339 string or a number of seconds or milliseconds.
fn time_of(value: &Value) -> Option<i64> {
    let number = match value {
        Value::String(s) => {
            if let Ok(at) = s.parse::<jiff::Timestamp>() {
                return Some(at.as_second());
            }
            s.parse::<f64>().ok()?
        }
        Value::Number(n) => n.as_f64()?,
        _ => return None,
    };
    let secs = if number > 1e12 {
        number / 1000.0
    } else {
        number
    };
    Some(secs as i64)
}

// ---------------------------------------------------------------------------------------------
// The main schemes, checked here
// ---------------------------------------------------------------------------------------------

/// Sends one event to a fresh app and returns what the app received.
async fn received(args: &[&str], path: &str) -> (Recorded, Finished) {
    let app = App::ok().await;
    let data = tempfile::tempdir().expect("data dir");
    let to = format!("127.0.0.1:{}{path}", app.port());
    let mut full = vec!["send"];
    full.extend_from_slice(args);
    full.extend(["--to", to.as_str()]);
    let done = ok(&full, data.path()).await;
    let requests = app.wait_for(1).await;
    assert_eq!(requests.len(), 1, "one request");
    (requests[0].clone(), done)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_signs_t_and_created_alike_over_the_body_sent() {
    let args = ["stripe", "payment_intent.succeeded", "--secret", SECRET];
    let (request, _) = received(&args, "/webhooks/stripe").await;
    assert_eq!(request.target, "/webhooks/stripe");
    assert_eq!(
        one(&request, "user-agent"),
        "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
    );
    assert_eq!(
        one(&request, "content-type"),
        "application/json; charset=utf-8"
    );
    let header = one(&request, "stripe-signature");
    let (t, v1) = header
        .split_once(',')
        .and_then(|(t, v1)| Some((t.strip_prefix("t=")?, v1.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("t=…,v1=…: {header}"));
    let expected = hmac_sha256(SECRET.as_bytes(), &[t.as_bytes(), b".", &request.body]);
    assert_eq!(v1, hex::encode(expected));
    let body: Value = serde_json::from_slice(&request.body).expect("JSON");
    assert_eq!(body["created"].to_string(), t, "created is the signed t");
    assert_fresh(t.parse().expect("seconds"), "t");
    assert_eq!(body["type"], "payment_intent.succeeded");
    assert!(body["id"].as_str().is_some_and(|id| id.starts_with("evt_")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_and_shopify_sign_the_body() {
    let (request, _) = received(&["github", "push", "--secret", SECRET], "").await;
    assert_eq!(request.target, "/");
    let sha256 = hmac_sha256(SECRET.as_bytes(), &[&request.body]);
    assert_eq!(
        one(&request, "x-hub-signature-256"),
        format!("sha256={}", hex::encode(sha256))
    );
    let sha1 = hmac_sha1(SECRET.as_bytes(), &[&request.body]);
    assert_eq!(
        one(&request, "x-hub-signature"),
        format!("sha1={}", hex::encode(sha1))
    );
    assert_eq!(one(&request, "x-github-event"), "push");
    assert_eq!(one(&request, "x-github-delivery").len(), 36, "a GUID");
    assert!(one(&request, "user-agent").starts_with("GitHub-Hookshot/"));

    let (request, _) = received(&["shopify", "orders/create", "--secret", SECRET], "").await;
    let hmac = hmac_sha256(SECRET.as_bytes(), &[&request.body]);
    assert_eq!(one(&request, "x-shopify-hmac-sha256"), BASE64.encode(hmac));
    assert_eq!(one(&request, "x-shopify-topic"), "orders/create");
    let triggered = one(&request, "x-shopify-triggered-at");
    let at: jiff::Timestamp = triggered.parse().expect("RFC 3339");
    assert_fresh(at.as_second(), "X-Shopify-Triggered-At");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_signs_its_timestamp_and_event_time_alike_in_json_and_forms() {
    let (request, _) = received(&["slack", "message", "--secret", SECRET], "").await;
    let ts = one(&request, "x-slack-request-timestamp");
    let expected = hmac_sha256(
        SECRET.as_bytes(),
        &[b"v0:", ts.as_bytes(), b":", &request.body],
    );
    assert_eq!(
        one(&request, "x-slack-signature"),
        format!("v0={}", hex::encode(expected))
    );
    let body: Value = serde_json::from_slice(&request.body).expect("JSON");
    assert_eq!(body["event_time"].to_string(), ts);
    assert_eq!(body["type"], "event_callback");
    assert_fresh(ts.parse().expect("seconds"), "X-Slack-Request-Timestamp");

    let (form, _) = received(&["slack", "slash_command", "--secret", SECRET], "").await;
    assert_eq!(
        one(&form, "content-type"),
        "application/x-www-form-urlencoded"
    );
    let ts = one(&form, "x-slack-request-timestamp");
    let expected = hmac_sha256(
        SECRET.as_bytes(),
        &[b"v0:", ts.as_bytes(), b":", &form.body],
    );
    assert_eq!(
        one(&form, "x-slack-signature"),
        format!("v0={}", hex::encode(expected))
    );
    let fields: Vec<(String, String)> = form_urlencoded::parse(&form.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert!(fields.contains(&("command".into(), "/hooks-test".into())));
}

/// Twilio's signature: base64 HMAC-SHA1 of the URL and the sorted form parameters.
fn twilio_signature(token: &str, url: &str, body: &[u8]) -> String {
    let mut params: Vec<(String, String)> = form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    params.sort();
    let mut signed = url.to_owned();
    for (name, value) in params {
        signed.push_str(&name);
        signed.push_str(&value);
    }
    BASE64.encode(hmac_sha1(token.as_bytes(), &[signed.as_bytes()]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_signs_the_url_and_the_form() {
    let token = "twilio_auth_token_for_tests";
    let public = "https://sms.example.test/twilio/sms?tenant=7";
    let args = [
        "twilio",
        "message.received",
        "--secret",
        token,
        "--signed-url",
        public,
    ];
    let (request, _) = received(&args, "/twilio/sms").await;
    assert_eq!(
        one(&request, "x-twilio-signature"),
        twilio_signature(token, public, &request.body)
    );
    assert!(request.body.starts_with(b"ToCountry=US&"), "a form");
    assert_eq!(one(&request, "i-twilio-idempotency-token").len(), 36);

    // Without --signed-url, the URL sent to is the one signed.
    let app = App::ok().await;
    let data = tempfile::tempdir().expect("data dir");
    let to = format!("http://127.0.0.1:{}/calls", app.port());
    let args = [
        "send",
        "twilio",
        "call.completed",
        "--secret",
        token,
        "--to",
        &to,
    ];
    ok(&args, data.path()).await;
    let request = app.wait_for(1).await.remove(0);
    assert_eq!(
        one(&request, "x-twilio-signature"),
        twilio_signature(token, &to, &request.body)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_webhooks_sign_id_timestamp_and_body_with_the_decoded_secret() {
    let key = BASE64
        .decode(SW_SECRET.strip_prefix("whsec_").expect("prefix"))
        .expect("base64");
    for (provider, prefix) in [("standard-webhooks", "webhook"), ("clerk", "svix")] {
        let (request, _) = received(&[provider, "user.created", "--secret", SW_SECRET], "").await;
        let id = one(&request, &format!("{prefix}-id"));
        let ts = one(&request, &format!("{prefix}-timestamp"));
        let expected = hmac_sha256(
            &key,
            &[id.as_bytes(), b".", ts.as_bytes(), b".", &request.body],
        );
        assert_eq!(
            one(&request, &format!("{prefix}-signature")),
            format!("v1,{}", BASE64.encode(expected)),
            "{provider}"
        );
        assert!(id.starts_with("msg_"), "{id}");
        assert_fresh(ts.parse().expect("seconds"), "webhook-timestamp");
        let body: Value = serde_json::from_slice(&request.body).expect("JSON");
        assert_eq!(body["type"], "user.created");
    }
}

// ---------------------------------------------------------------------------------------------
// End to end through the relay and hooks listen
// ---------------------------------------------------------------------------------------------

/// Sends through `listen` and returns its next `n` request lines.
async fn through(
    listen: &mut common::Listener,
    data: &Path,
    args: &[&str],
    n: usize,
) -> Vec<Value> {
    let mut full = vec!["send"];
    full.extend_from_slice(args);
    full.extend(["--to", listen.url.as_str()]);
    ok(&full, data).await;
    listen.next_requests(n).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_listen_events_are_recognised_valid_duplicated_and_out_of_order() {
    let app = App::ok().await;
    let data = tempfile::tempdir().expect("data dir");
    let target = format!("127.0.0.1:{}", app.port());
    let mut listen = common::spawn_listen(&[
        "--forward-to",
        &target,
        "--secret",
        SECRET,
        "--secret",
        SW_SECRET,
    ])
    .await;
    let stripe = [
        "stripe",
        "customer.subscription.updated",
        "--secret",
        SECRET,
    ];
    let line = through(&mut listen, data.path(), &stripe, 1)
        .await
        .remove(0);
    assert_eq!(line["provider"], "stripe", "{line}");
    assert_eq!(line["event_type"], "customer.subscription.updated");
    assert!(line["event_id"]
        .as_str()
        .is_some_and(|id| id.starts_with("evt_")));
    assert_eq!(line["signature"]["verdict"], "valid", "{line}");
    assert_eq!(line.get("duplicate_of"), None);

    let mut duplicate = stripe.to_vec();
    duplicate.push("--duplicate");
    let lines = through(&mut listen, data.path(), &duplicate, 2).await;
    assert_eq!(lines[0]["event_id"], lines[1]["event_id"]);
    assert_eq!(lines[1]["duplicate_of"], lines[0]["id"], "{}", lines[1]);
    assert!(lines.iter().all(|l| l["signature"]["verdict"] == "valid"));

    let mut reordered = stripe.to_vec();
    reordered.push("--out-of-order");
    let lines = through(&mut listen, data.path(), &reordered, 2).await;
    assert_ne!(lines[0]["event_id"], lines[1]["event_id"]);
    assert_eq!(
        lines[1]["out_of_order_after"], lines[0]["id"],
        "{}",
        lines[1]
    );
    assert_eq!(lines[1].get("duplicate_of"), None);
    assert!(lines.iter().all(|l| l["signature"]["verdict"] == "valid"));

    // Other shapes: ids in headers (GitHub), the signature's time as the event's (Standard
    // Webhooks), a URL-signed form (Twilio, signed for the channel URL it was sent to).
    let github = [
        "github",
        "pull_request.opened",
        "--secret",
        SECRET,
        "--duplicate",
    ];
    let lines = through(&mut listen, data.path(), &github, 2).await;
    assert_eq!(lines[0]["event_type"], "pull_request.opened");
    assert_eq!(lines[1]["duplicate_of"], lines[0]["id"], "{}", lines[1]);
    let sw = [
        "standard-webhooks",
        "user.created",
        "--secret",
        SW_SECRET,
        "--out-of-order",
    ];
    let lines = through(&mut listen, data.path(), &sw, 2).await;
    assert_eq!(
        lines[1]["out_of_order_after"], lines[0]["id"],
        "{}",
        lines[1]
    );
    assert!(
        lines.iter().all(|l| l["signature"]["verdict"] == "valid"),
        "{lines:?}"
    );
    let twilio = ["twilio", "message.received", "--secret", SECRET];
    let line = through(&mut listen, data.path(), &twilio, 1)
        .await
        .remove(0);
    assert_eq!(line["provider"], "twilio");
    assert_eq!(line["signature"]["verdict"], "valid", "{line}");
    assert_eq!(app.wait_for(10).await.len(), 10);
}

// ---------------------------------------------------------------------------------------------
// The list, errors, captures, project templates, changes, keys
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_has_one_object_per_template() {
    let data = tempfile::tempdir().expect("data dir");
    let list = ok(&["send", "--list", "--json"], data.path()).await;
    let mut seen = Vec::new();
    for line in list.stdout.lines() {
        let value: Value = serde_json::from_str(line).expect("JSON");
        let keys: Vec<&str> = value
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["provider", "event", "description", "source"],
            "{value}"
        );
        assert!(value["description"].as_str().is_some_and(|d| !d.is_empty()));
        assert_eq!(value["source"], "built-in");
        seen.push(format!(
            "{}/{}",
            value["provider"].as_str().unwrap_or_default(),
            value["event"].as_str().unwrap_or_default()
        ));
    }
    for wanted in [
        "stripe/payment_intent.succeeded",
        "stripe/invoice.paid",
        "stripe/customer.subscription.updated",
        "stripe/checkout.session.completed",
        "stripe/charge.refunded",
        "github/ping",
        "github/push",
        "github/pull_request.opened",
        "github/issues.opened",
        "github/release.published",
        "github/workflow_run.completed",
        "shopify/orders/create",
        "shopify/orders/paid",
        "shopify/products/update",
        "shopify/app/uninstalled",
        "slack/url_verification",
        "slack/message",
        "slack/slash_command",
        "twilio/message.received",
        "twilio/call.completed",
        "standard-webhooks/user.created",
        "clerk/user.created",
    ] {
        assert!(seen.iter().any(|s| s == wanted), "{wanted} in {seen:?}");
    }
    let stripe = ok(&["send", "--list", "stripe"], data.path()).await;
    let lines: Vec<&str> = stripe.stdout.lines().collect();
    assert!(lines[0].starts_with("PROVIDER  EVENT"), "{}", stripe.stdout);
    assert_eq!(
        lines.len(),
        6,
        "a heading and Stripe's five: {}",
        stripe.stdout
    );
    assert!(lines[1..].iter().all(|l| l.starts_with("stripe  ")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2_naming_the_closest_and_an_unreachable_app_exits_1() {
    let data = tempfile::tempdir().expect("data dir");
    let dir = data.path();
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "send",
                "strpe",
                "invoice.paid",
                "--to",
                "3000",
                "--secret",
                SECRET,
            ],
            "hooks: error: unknown provider \"strpe\"; did you mean stripe? (hooks send --list)\n",
        ),
        (
            &[
                "send",
                "stripe",
                "invoice.payed",
                "--to",
                "3000",
                "--secret",
                SECRET,
            ],
            "hooks: error: no stripe event \"invoice.payed\"; did you mean invoice.paid? \
             (hooks send --list stripe)\n",
        ),
        (
            &[
                "send",
                "github",
                "pull_request.open",
                "--to",
                "3000",
                "--secret",
                SECRET,
            ],
            "hooks: error: no github event \"pull_request.open\"; did you mean \
             pull_request.opened? (hooks send --list github)\n",
        ),
        (
            &["send", "stripe", "invoice.paid", "--to", "3000"],
            "hooks: error: no --secret: pass the stripe signing secret your app verifies with \
             (or set HOOKS_SECRET), or --unsigned to send the event without a signature\n",
        ),
        (
            &["send", "discord", "ping", "--to", "3000", "--secret", "abc"],
            "hooks: error: discord signs with a private key, not a secret: pass \
             --private-key=KEY, or nothing to use the key pair hooks keeps (hooks verify takes \
             the public key)\n",
        ),
        (
            &["send", "--list", "githib"],
            "hooks: error: unknown provider \"githib\"; did you mean github? (hooks send --list)\n",
        ),
    ];
    for (args, message) in cases {
        let done = hooks(args, dir).await;
        assert_eq!(done.code, Some(2), "{args:?}: {}", done.stderr);
        assert_eq!(done.stderr, message, "{args:?}");
        assert_eq!(done.stdout, "", "{args:?}");
    }
    let missing = hooks(&["send", "stripe"], dir).await;
    assert_eq!(missing.code, Some(2), "clap's own: {}", missing.stderr);

    let port = common::closed_port();
    let to = format!("127.0.0.1:{port}");
    let args = ["send", "stripe", "invoice.paid", "--to", &to, "--unsigned"];
    let down = hooks(&args, dir).await;
    assert_eq!(down.code, Some(1), "{}", down.stderr);
    assert_eq!(
        down.stderr,
        format!(
            "hooks: error: could not connect to 127.0.0.1:{port}: connection refused \
             (is your app listening on {port}?)\n"
        )
    );
    // The attempt is recorded, as a capture without an answer.
    let list = ok(&["list", "--json"], dir).await;
    let row: Value = serde_json::from_str(list.stdout.trim()).expect("one capture");
    assert_eq!(
        (row["status"].clone(), row["sent"].clone()),
        (Value::Null, Value::Bool(true))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_send_is_a_capture_marked_sent_that_list_show_and_replay_use() {
    let app = App::ok().await;
    let data = tempfile::tempdir().expect("data dir");
    let to = format!("127.0.0.1:{}/hooks", app.port());
    let args = [
        "send",
        "stripe",
        "invoice.paid",
        "--secret",
        SECRET,
        "--to",
        &to,
    ];
    let sent = ok(&args, data.path()).await;
    assert!(
        sent.stdout.starts_with("#1 stripe invoice.paid evt_") && sent.stdout.contains(" 200 "),
        "{}",
        sent.stdout
    );
    let list = ok(&["list", "--json"], data.path()).await;
    let row: Value = serde_json::from_str(list.stdout.trim()).expect("one capture");
    assert_eq!(row["sent"], true);
    assert_eq!(row["event_type"], "invoice.paid");
    assert_eq!(row["verdict"], "valid");
    assert_eq!(row["status"], 200);
    let table = ok(&["list"], data.path()).await;
    assert!(table
        .stdout
        .lines()
        .nth(1)
        .is_some_and(|l| l.ends_with("(sent)")));

    let shown = ok(&["show", "last", "--json"], data.path()).await;
    let shown: Value = serde_json::from_str(&shown.stdout).expect("JSON");
    assert_eq!(shown["sent"], true);
    let first = app.wait_for(1).await.remove(0);
    let body = BASE64
        .decode(shown["request"]["body_base64"].as_str().expect("body"))
        .expect("base64");
    assert_eq!(body, first.body, "the capture holds the bytes sent");

    let replayed = ok(&["replay", "last", "--json"], data.path()).await;
    let replayed: Value = serde_json::from_str(&replayed.stdout).expect("JSON");
    assert_eq!(
        (replayed["replay_of"].clone(), replayed["sent"].clone()),
        (Value::from(1), Value::Bool(false))
    );
    let again = app.wait_for(2).await.remove(1);
    assert_eq!(again.target, "/hooks");
    assert_eq!(again.body, first.body);
    assert_eq!(
        again.header("stripe-signature"),
        first.header("stripe-signature")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_templates_add_events_and_replace_built_in_ones() {
    let project = tempfile::tempdir().expect("project");
    let events = project.path().join(".hooks/events");
    std::fs::create_dir_all(events.join("acme")).expect("acme folder");
    std::fs::create_dir_all(events.join("stripe")).expect("stripe folder");
    std::fs::write(
        events.join("acme/order.shipped.toml"),
        r#"
description = "An order left the warehouse"
scheme = "github"
headers = ["X-Acme-Event: order.shipped", "X-Acme-Delivery: {{event_uuid}}"]
body = '{"id": "{{event_id:ship_}}", "order": "{{id:ord_}}", "at": {{now}}}'
"#,
    )
    .expect("write acme template");
    std::fs::write(
        events.join("stripe/invoice.paid.json"),
        r#"{"description": "Our own invoice.paid",
            "headers": ["Content-Type: application/json"],
            "body": {"id": "{{event_id:evt_}}", "object": "event", "type": "invoice.paid",
                     "created": "{{now}}", "ours": true}}"#,
    )
    .expect("write stripe override");
    let inside = project.path().join("src/deep");
    std::fs::create_dir_all(&inside).expect("a folder inside the project");
    let data = tempfile::tempdir().expect("data dir");

    let list = hooks_at(
        &["send", "--list", "--json"],
        data.path(),
        Some(&inside),
        &[],
    )
    .await;
    assert_eq!(list.code, Some(0), "{}", list.stderr);
    let acme: Value = list
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON"))
        .find(|v| v["provider"] == "acme")
        .expect("the project's event is listed");
    assert_eq!(acme["event"], "order.shipped");
    assert!(acme["source"]
        .as_str()
        .is_some_and(|s| s.ends_with("acme/order.shipped.toml")));

    let app = App::ok().await;
    let to = format!("127.0.0.1:{}", app.port());
    for args in [
        [
            "send",
            "acme",
            "order.shipped",
            "--secret",
            SECRET,
            "--to",
            &to,
        ],
        [
            "send",
            "stripe",
            "invoice.paid",
            "--secret",
            SECRET,
            "--to",
            &to,
        ],
    ] {
        let done = hooks_at(&args, data.path(), Some(&inside), &[]).await;
        assert_eq!(done.code, Some(0), "{args:?}: {}", done.stderr);
    }
    let requests = app.wait_for(2).await;
    let acme = &requests[0];
    assert_eq!(one(acme, "x-acme-event"), "order.shipped");
    let signed = hmac_sha256(SECRET.as_bytes(), &[&acme.body]);
    assert_eq!(
        one(acme, "x-hub-signature-256"),
        format!("sha256={}", hex::encode(signed))
    );
    let body: Value = serde_json::from_slice(&acme.body).expect("JSON");
    assert!(body["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("ship_")));
    assert_fresh(body["at"].as_i64().expect("seconds"), "at");
    let ours: Value = serde_json::from_slice(&requests[1].body).expect("JSON");
    assert_eq!(
        ours["ours"], true,
        "the project's template replaces the built-in one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_made_before_signing() {
    let app = App::ok().await;
    let data = tempfile::tempdir().expect("data dir");
    let to = format!("127.0.0.1:{}", app.port());
    let editor = "sed -i s/hooks-test-1001/edited-order/";
    let args = [
        "send",
        "stripe",
        "payment_intent.succeeded",
        "--secret",
        SECRET,
        "--to",
        &to,
        "--set",
        "/data/object/amount=9900",
        "--set",
        "/data/object/currency=eur",
        "-H",
        "X-Debug: 1",
        "--edit",
    ];
    let done = hooks_at(&args, data.path(), None, &[("EDITOR", editor)]).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let request = app.wait_for(1).await.remove(0);
    let body: Value = serde_json::from_slice(&request.body).expect("JSON");
    assert_eq!(body["data"]["object"]["amount"], 9900);
    assert_eq!(body["data"]["object"]["currency"], "eur");
    assert_eq!(
        body["data"]["object"]["metadata"]["order_id"],
        "edited-order"
    );
    assert_eq!(one(&request, "x-debug"), "1");
    let header = one(&request, "stripe-signature");
    let (t, v1) = header.split_once(",v1=").expect("t=…,v1=…");
    let t = t.strip_prefix("t=").expect("t=");
    let expected = hmac_sha256(SECRET.as_bytes(), &[t.as_bytes(), b".", &request.body]);
    assert_eq!(
        v1,
        hex::encode(expected),
        "the signature covers the changed body"
    );

    // A header the signature sets, given with -H, replaces the signature.
    let bad = "t=1,v1=00";
    let args = [
        "send", "github", "ping", "--secret", SECRET, "--to", &to, "-H",
    ];
    let header = format!("X-Hub-Signature-256: {bad}");
    let mut with_bad = args.to_vec();
    with_bad.push(&header);
    ok(&with_bad, data.path()).await;
    let request = app.wait_for(2).await.remove(1);
    assert_eq!(one(&request, "x-hub-signature-256"), bad);

    // --data sends the bytes given; --count sends distinct events.
    let file = data.path().join("body.json");
    std::fs::write(&file, br#"{"type":"invoice.paid","id":"evt_from_file"}"#).expect("write");
    let at_file = format!("@{}", file.display());
    let args = [
        "send",
        "stripe",
        "invoice.paid",
        "--secret",
        SECRET,
        "--to",
        &to,
        "--data",
        &at_file,
    ];
    ok(&args, data.path()).await;
    let request = app.wait_for(3).await.remove(2);
    assert_eq!(
        &request.body[..],
        br#"{"type":"invoice.paid","id":"evt_from_file"}"#
    );
    let args = [
        "send",
        "stripe",
        "invoice.paid",
        "--secret",
        SECRET,
        "--to",
        &to,
        "--count",
        "3",
    ];
    ok(&args, data.path()).await;
    let requests = app.wait_for(6).await;
    let mut ids: Vec<String> = requests[3..]
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).expect("JSON");
            body["id"].as_str().expect("id").to_owned()
        })
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 3, "three distinct events: {ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_keys_are_given_or_kept_in_the_data_directory() {
    let data = tempfile::tempdir().expect("data dir");
    let first = ok(&["send", "discord", "ping", "--print"], data.path()).await;
    let second = ok(&["send", "discord", "ping", "--print"], data.path()).await;
    let public = public_key(&first.stderr);
    assert_eq!(
        public,
        public_key(&second.stderr),
        "the same key pair is kept"
    );
    assert_eq!(public.len(), 64, "hex Ed25519 public key");

    let seed = [7u8; 32];
    let given = ed25519_dalek::SigningKey::from_bytes(&seed);
    let given_public = hex::encode(given.verifying_key().as_bytes());
    let key = format!("--private-key={}", hex::encode(seed));
    let printed = ok(
        &["send", "discord", "application_command", "--print", &key],
        data.path(),
    )
    .await;
    assert!(!printed.stderr.contains("public key"), "{}", printed.stderr);
    let file = data.path().join("request.http");
    std::fs::write(&file, &printed.stdout).expect("write");
    let file = file.to_string_lossy().into_owned();
    ok(&["verify", "--secret", &given_public, &file], data.path()).await;
    let other = hooks(&["verify", "--secret", &public, &file], data.path()).await;
    assert_eq!(other.code, Some(1), "not signed with the kept key");

    // Standard Webhooks signs v1a with a private key only when asked.
    let printed = ok(
        &[
            "send",
            "standard-webhooks",
            "user.created",
            "--print",
            "--private-key",
        ],
        data.path(),
    )
    .await;
    let public = public_key(&printed.stderr);
    assert!(public.starts_with("whpk_"), "{public}");
    assert!(
        printed.stdout.contains("webhook-signature: v1a,"),
        "{}",
        printed.stdout
    );
    std::fs::write(data.path().join("sw.http"), &printed.stdout).expect("write");
    let sw = data.path().join("sw.http").to_string_lossy().into_owned();
    ok(&["verify", "--secret", &public, &sw], data.path()).await;
}
