//! `hooks send PROVIDER EVENT` (issue 21): every built-in template prints a request that
//! `hooks verify` finds valid and fresh; the main schemes checked with HMACs computed here (not
//! through hooks' code); end to end through the relay and `hooks listen` (recognised, valid,
//! duplicates and events out of order flagged); the list, the errors, project templates,
//! changes, private keys, and the captures a send records.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::Value;

use crate::support::send::*;
use crate::support::{self, App};

// ---------------------------------------------------------------------------------------------
// Every built-in template
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// The main schemes, checked here
// ---------------------------------------------------------------------------------------------

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_listen_events_are_recognised_valid_duplicated_and_out_of_order() {
    let app = App::ok().await;
    let data = tempfile::tempdir().expect("data dir");
    let target = format!("127.0.0.1:{}", app.port());
    let mut listen = support::spawn_listen(&[
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

    let port = support::closed_port();
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
    let url = format!("→ http://127.0.0.1:{}/hooks 200 ", app.port());
    assert!(
        sent.stdout.starts_with("#1 stripe invoice.paid evt_") && sent.stdout.contains(&url),
        "{}",
        sent.stdout
    );
    let list = ok(&["list", "--json"], data.path()).await;
    let row: Value = serde_json::from_str(list.stdout.trim()).expect("one capture");
    assert_eq!(row["sent"], true);
    assert_eq!(row["event_type"], "invoice.paid");
    assert_eq!(row["verdict"], "valid");
    assert_eq!(row["status"], 200);
    // Split as a forwarded webhook's capture is (issue 21): the path there, and where it went.
    assert_eq!(row["path"], "/hooks");
    let where_sent = ok(&["list", "--where", "sent:true", "--json"], data.path()).await;
    assert_eq!(
        where_sent.stdout.lines().count(),
        1,
        "{}",
        where_sent.stdout
    );
    let not_sent = ok(&["list", "--where", "sent:false", "--json"], data.path()).await;
    assert_eq!(not_sent.stdout, "");
    let table = ok(&["list"], data.path()).await;
    assert!(table
        .stdout
        .lines()
        .nth(1)
        .is_some_and(|l| l.contains(" /hooks ")
            && l.ends_with(&format!("(sent to http://127.0.0.1:{})", app.port()))));

    let shown = ok(&["show", "last", "--json"], data.path()).await;
    let shown: Value = serde_json::from_str(&shown.stdout).expect("JSON");
    assert_eq!(shown["sent"], true);
    assert_eq!(shown["target"], format!("http://127.0.0.1:{}", app.port()));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_that_does_not_answer_in_time_fails_the_send() {
    let (latch, hold) = support::latch();
    let app = App::start(move |_| support::Answer {
        hold: Some(hold.clone()),
        ..support::Answer::ok("late")
    })
    .await;
    let data = tempfile::tempdir().expect("data dir");
    let to = format!("127.0.0.1:{}", app.port());
    let args = [
        "send",
        "github",
        "ping",
        "--unsigned",
        "--to",
        &to,
        "--timeout",
        "300ms",
    ];
    let done = hooks(&args, data.path()).await;
    assert_eq!(done.code, Some(1), "{}", done.stderr);
    assert_eq!(
        done.stderr,
        format!(
            "hooks: error: 127.0.0.1:{} did not answer within 300ms\n",
            app.port()
        )
    );
    assert_eq!(app.wait_for(1).await.len(), 1, "the app got it");
    latch.open();
}
