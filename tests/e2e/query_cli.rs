//! `--where` end to end (issue 19): a real `hooks listen` attached to a relay captures webhooks
//! a recording app answers with different statuses, then `hooks list --where … --json` and
//! `hooks replay --where …` select them with the filter language; a bad expression exits 2 and
//! points at the problem.

use std::time::SystemTime;

use hooks::verify::{self, Provider, Secret, VerifyInput};
use serde_json::Value;

use crate::support::{
    self, full, headers, hooks_command, start_relay, within, Answer, App, Sender,
};

const SECRET: &str = "whsec_test_secret_for_where";

/// The `Stripe-Signature` header Stripe would send for `body` now.
fn stripe_signature(body: &[u8]) -> String {
    let input = VerifyInput {
        method: "POST",
        url: "https://example.test/",
        headers: &[],
        body,
    };
    let signed = verify::sign(
        Provider::Stripe,
        &Secret::new(SECRET),
        &input,
        SystemTime::now(),
    )
    .expect("stripe signs with any secret");
    signed
        .headers
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("stripe-signature"))
        .map(|(_, value)| value)
        .expect("a Stripe-Signature header")
}

/// Method, path, headers and body of one webhook.
type Webhook<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);

fn invoice(customer: &str, amount: u64) -> String {
    format!(
        r#"{{"id":"evt_{customer}","type":"invoice.paid","data":{{"object":{{"customer":"{customer}","amount_paid":{amount}}}}}}}"#
    )
}

/// Runs `hooks <args>` on the capture store in `data`: exit code, stdout, stderr.
async fn hooks(args: &[&str], data: &std::path::Path) -> (Option<i32>, String, String) {
    let child = hooks_command(args, data).spawn().expect("spawn hooks");
    let output = within(&format!("hooks {args:?}"), child.wait_with_output())
        .await
        .expect("hooks output");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The ids `hooks list --json <args>` prints, newest first.
async fn ids(data: &std::path::Path, args: &[&str]) -> Vec<i64> {
    let mut full_args = vec!["list", "--json"];
    full_args.extend_from_slice(args);
    let (code, stdout, stderr) = hooks(&full_args, data).await;
    assert_eq!(code, Some(0), "hooks {full_args:?}: {stderr}");
    stdout
        .lines()
        .map(|line| {
            let row: Value = serde_json::from_str(line).expect("one JSON object per line");
            row["id"].as_i64().expect("an id")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_19_list_and_replay_select_with_where() {
    // cus_7's invoices fail; PUTs are not found; everything else is fine.
    let app = App::start(|request| {
        let body = String::from_utf8_lossy(&request.body);
        let status = if body.contains("cus_7") {
            500
        } else if request.method == "PUT" {
            404
        } else {
            200
        };
        Answer {
            status,
            ..Answer::ok("ok")
        }
    })
    .await;
    let relay = start_relay(relay_server::Config::default()).await;
    let target = format!("127.0.0.1:{}", app.port());
    let mut cli = support::spawn_listen(&[
        "--relay",
        &relay.url,
        "--forward-to",
        &target,
        "--secret",
        SECRET,
    ])
    .await;
    let (paid, failed) = (invoice("cus_42", 2000), invoice("cus_7", 500));
    let (paid_signature, failed_signature) = (
        stripe_signature(paid.as_bytes()),
        stripe_signature(failed.as_bytes()),
    );
    let json = ("content-type", "application/json");
    let form = ("content-type", "application/x-www-form-urlencoded");
    let stripe = "/webhooks/stripe";
    let sent: [Webhook; 4] = [
        (
            "POST",
            stripe,
            &[("stripe-signature", &paid_signature)],
            &paid,
        ),
        (
            "POST",
            stripe,
            &[("stripe-signature", &failed_signature)],
            &failed,
        ),
        (
            "POST",
            "/webhooks/github?delivery=1",
            &[("x-test", "1"), json],
            r#"{"ref":"main"}"#,
        ),
        ("PUT", "/other", &[form], "a=1"),
    ];
    for (i, (method, path, pairs, body)) in sent.into_iter().enumerate() {
        let url = format!("{}{path}", cli.url);
        Sender::default()
            .send(
                method,
                &url,
                &headers(pairs),
                full(body.as_bytes().to_vec()),
            )
            .await;
        // Its line comes once its capture is committed: the ids follow the sending order.
        let line = cli.next_requests(1).await.remove(0);
        assert_eq!(line["id"], i as i64 + 1, "{line}");
    }
    let data = cli.data_dir().to_owned();

    assert_eq!(
        ids(&data, &["--where", "json./data/object/customer:cus_42"]).await,
        [1]
    );
    assert_eq!(
        ids(
            &data,
            &[
                "--where",
                "json./data/object/amount_paid:>1000 OR method:put"
            ]
        )
        .await,
        [4, 1]
    );
    assert_eq!(ids(&data, &["--where", "header.x-test:*"]).await, [3]);
    assert_eq!(ids(&data, &["--where", "status:5xx"]).await, [2]);
    assert_eq!(
        ids(&data, &["--where", "status:4xx OR status:5xx"]).await,
        [4, 2]
    );
    assert_eq!(ids(&data, &["--where", "NOT path:/webhooks/*"]).await, [4]);
    assert_eq!(
        ids(
            &data,
            &["--where", "query.delivery:1 path:/webhooks/github"]
        )
        .await,
        [3]
    );
    assert_eq!(
        ids(
            &data,
            &[
                "--where",
                "event:invoice.* NOT json./data/object/customer:cus_42"
            ]
        )
        .await,
        [2]
    );
    assert_eq!(
        ids(&data, &["--where", "verdict:valid provider:stripe"]).await,
        [2, 1]
    );
    assert_eq!(
        ids(&data, &["--where", r#"body~"\"ref\":\s*\"main\"""#]).await,
        [3]
    );
    assert_eq!(ids(&data, &["--where", "since:1h size:<10"]).await, [4]);
    // The shorthand flags are terms of the same query.
    assert_eq!(
        ids(&data, &["--status", "5xx", "--where", "event:invoice.*"]).await,
        [2]
    );
    assert_eq!(
        ids(
            &data,
            &[
                "--path",
                "/webhooks",
                "--where",
                "NOT status:5xx",
                "-n",
                "1"
            ]
        )
        .await,
        [3]
    );

    let (code, stdout, stderr) =
        hooks(&["list", "--where", "status:5xx AND (json./a:1 OR"], &data).await;
    assert_eq!(code, Some(2));
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        "hooks: error: invalid --where expression\n  status:5xx AND (json./a:1 OR\n                              ^ expected a term such as status:500, NOT or (, found the end of the expression\n"
    );
    let (code, _, stderr) = hooks(&["list", "--where", "stauts:500"], &data).await;
    assert_eq!(code, Some(2));
    assert_eq!(
        stderr,
        "hooks: error: invalid --where expression\n  stauts:500\n  ^ expected a field: id, method, path, status, duration, size, provider, event, verdict, replay, sent, since, before, header.NAME, query.KEY, json.POINTER, body~REGEX, route, found \"stauts\"\n"
    );

    let (code, stdout, stderr) = hooks(
        &[
            "replay",
            "--where",
            "json./data/object/customer:cus_42",
            "--to",
            &target,
            "--json",
        ],
        &data,
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    let replayed: Value = serde_json::from_str(stdout.trim()).expect("one capture");
    assert_eq!(replayed["replay_of"], 1);
    assert_eq!(app.wait_for(5).await.len(), 5, "one replay reached the app");
    assert_eq!(ids(&data, &["--where", "replay:true"]).await, [5]);
    assert_eq!(
        ids(&data, &["--where", "json./data/object/customer:cus_42"]).await,
        [5, 1]
    );
    cli.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_19_diff_compares_two_captures() {
    // The second delivery of the same event fails.
    let app = App::start(|request| Answer {
        status: if request.body.ends_with(b"2}}") {
            500
        } else {
            200
        },
        ..Answer::ok("ok")
    })
    .await;
    let relay = start_relay(relay_server::Config::default()).await;
    let target = format!("127.0.0.1:{}", app.port());
    let mut cli = support::spawn_listen(&["--relay", &relay.url, "--forward-to", &target]).await;
    let bodies = [
        r#"{"id":"evt_1","created":1,"data":{"amount":2000,"try":1}}"#,
        r#"{"id":"evt_1","created":2,"data":{"amount":2100,"try":2}}"#,
    ];
    for (body, attempt) in bodies.iter().zip(["1", "2"]) {
        let pairs = [("content-type", "application/json"), ("x-attempt", attempt)];
        let url = format!("{}/webhooks", cli.url);
        Sender::default()
            .send(
                "POST",
                &url,
                &headers(&pairs),
                full(body.as_bytes().to_vec()),
            )
            .await;
        cli.next_requests(1).await;
    }
    let data = cli.data_dir().to_owned();

    let (code, stdout, stderr) = hooks(&["diff", "1", "2", "--color", "never"], &data).await;
    assert_eq!(code, Some(1), "different: {stderr}");
    // The app's Date header changes when the two answers straddle a second.
    let stdout: String = stdout
        .lines()
        .filter(|l| *l != "response headers" && !l.starts_with("  ~ date: "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        stdout,
        "--- #1\n+++ #2\nrequest headers\n  ~ x-attempt: 1 → 2\nrequest body (JSON)\n  ~ /created: 1 → 2\n  ~ /data/amount: 2000 → 2100\n  ~ /data/try: 1 → 2\nresponse status\n  - 200\n  + 500\n"
    );
    let (code, stdout, _) =
        hooks(&["diff", "1", "last", "--json", "--ignore", "/data"], &data).await;
    assert_eq!(code, Some(1));
    let found: Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert_eq!(
        (
            found["a"].as_i64(),
            found["b"].as_i64(),
            found["same"].as_bool()
        ),
        (Some(1), Some(2), Some(false))
    );
    let changes = found["request_body"]["changes"]
        .as_array()
        .expect("JSON changes");
    assert_eq!(
        changes.len(),
        1,
        "only /created outside the ignored /data: {found}"
    );
    assert_eq!(
        found["response"]["status"],
        serde_json::json!({"a": 200, "b": 500})
    );

    let (code, stdout, _) = hooks(&["diff", "1", "1"], &data).await;
    assert_eq!(
        (code, stdout.as_str()),
        (Some(0), "--- #1\n+++ #1\nno differences\n")
    );
    let (code, _, stderr) = hooks(&["diff", "1", "2", "--ignore", "data"], &data).await;
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("\"data\" is not a JSON pointer: use one such as /data/object/id"),
        "{stderr}"
    );
    let (code, _, stderr) = hooks(&["diff", "1", "9"], &data).await;
    assert_eq!(
        (code, stderr.as_str()),
        (Some(1), "hooks: error: no capture #9\n")
    );
    cli.kill().await;
}
