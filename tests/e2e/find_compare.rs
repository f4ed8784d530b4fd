//! Find and compare, end to end (issue 19): a real relay, a recording app and `hooks listen`
//! capture webhooks; then `hooks export --where` writes them in each format, `hooks replay
//! --check` compares the app's new answers with the captured ones, and a fixture folder exported
//! from the captures is replayed with `--dir` into a fresh data directory, as CI would.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use hooks::verify::{self, Provider, Secret, VerifyInput};
use serde_json::{json, Value};

use crate::support::cli::run;
use crate::support::{
    closed_port, full, headers, hermetic, spawn_listen, start_relay, within, Answer, App, Finished,
    Listener, Relay, Sender,
};

const SECRET: &str = "whsec_find_and_compare_7d2e";

/// Runs `hooks <args>` with the capture store in `data`.
async fn hooks(args: &[&str], data: &Path) -> Finished {
    run(args, data).await.into()
}

/// The `Stripe-Signature` header Stripe would send for `body` now.
fn stripe_signature(body: &str) -> String {
    let input = VerifyInput {
        method: "POST",
        url: "",
        headers: &[],
        body: body.as_bytes(),
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

/// Whether `stripe-signature` is valid for `body` with [`SECRET`] now.
fn valid_stripe(signature: &[u8], body: &[u8]) -> bool {
    let headers = [("stripe-signature", signature)];
    let input = VerifyInput {
        method: "POST",
        url: "",
        headers: &headers,
        body,
    };
    let report = verify::check(
        &input,
        &[Secret::new(SECRET)],
        Some(Provider::Stripe),
        None,
        SystemTime::now(),
    )
    .expect("a Stripe signature can be checked");
    report.to_json()["verdict"] == "valid"
}

fn invoice(customer: &str) -> String {
    format!(
        r#"{{"id":"evt_{customer}","type":"invoice.paid","data":{{"object":{{"customer":"{customer}","amount_paid":2000}}}}}}"#
    )
}

/// An app whose answer to `POST /pay` carries the current `amount` and the invoice's customer,
/// with a fresh `x-request-id` each time (a header that always changes); anything else gets a
/// fixed `pong`.
async fn ledger(amount: Arc<AtomicU64>) -> App {
    let served = Arc::new(AtomicU64::new(0));
    App::start(move |request| {
        let n = served.fetch_add(1, Ordering::SeqCst);
        if request.target != "/pay" {
            return Answer::ok("pong");
        }
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let customer = body.pointer("/data/object/customer").cloned();
        let answer = json!({
            "data": {"amount": amount.load(Ordering::SeqCst), "customer": customer},
        });
        Answer {
            headers: headers(&[
                ("content-type", "application/json"),
                ("x-request-id", &format!("req_{n}")),
            ]),
            ..Answer::ok(answer.to_string())
        }
    })
    .await
}

/// A webhook: method, path, headers, body.
type Webhook = (&'static str, &'static str, Vec<(String, String)>, String);

fn webhook(
    method: &'static str,
    path: &'static str,
    pairs: &[(&str, &str)],
    body: &str,
) -> Webhook {
    let pairs = pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    (method, path, pairs, body.to_owned())
}

/// A relay and `hooks listen` forwarding to `app`, which captured `webhooks` as #1, #2, … in
/// that order.
async fn captured(app: &App, webhooks: &[Webhook]) -> (Relay, Listener) {
    let relay = start_relay(relay_server::Config::default()).await;
    let target = format!("127.0.0.1:{}", app.port());
    let mut cli = spawn_listen(&["--relay", &relay.url, "--forward-to", &target]).await;
    for (i, (method, path, pairs, body)) in webhooks.iter().enumerate() {
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (&n[..], &v[..])).collect();
        let url = format!("{}{path}", cli.url);
        Sender::default()
            .send(
                method,
                &url,
                &headers(&pairs),
                full(body.clone().into_bytes()),
            )
            .await;
        // Its line comes once its capture is committed: the ids follow the sending order.
        let line = cli.next_requests(1).await.remove(0);
        assert_eq!(line["id"], i as i64 + 1, "{line}");
    }
    (relay, cli)
}

/// Two Stripe invoices (#1 for cus_42, #2 for cus_7, signed) to `/pay`, and a GitHub push (#3)
/// to `/ping`.
fn three_webhooks() -> Vec<Webhook> {
    let (paid, failed) = (invoice("cus_42"), invoice("cus_7"));
    let json_type = ("content-type", "application/json");
    vec![
        webhook(
            "POST",
            "/pay",
            &[json_type, ("stripe-signature", &stripe_signature(&paid))],
            &paid,
        ),
        webhook(
            "POST",
            "/pay",
            &[json_type, ("stripe-signature", &stripe_signature(&failed))],
            &failed,
        ),
        webhook(
            "POST",
            "/ping",
            &[json_type, ("x-github-event", "push")],
            r#"{"ref":"main"}"#,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_19_export_where_in_every_format() {
    let app = ledger(Arc::new(AtomicU64::new(2000))).await;
    let (_relay, mut cli) = captured(&app, &three_webhooks()).await;
    let data = cli.data_dir().to_owned();
    // A replay of #1 (#4): --where leaves replays out, as replay --where does.
    let replayed = hooks(&["replay", "1"], &data).await;
    assert_eq!(replayed.code, Some(0), "{}", replayed.stderr);
    let invoices = ["export", "--where", "event:invoice.*"];
    let with = |format: &'static str| [&invoices[..], &["--format", format]].concat();

    // curl: one script, a command per capture, oldest first, that sh runs.
    let other = App::ok().await;
    let to = format!("127.0.0.1:{}", other.port());
    let mut args = with("curl");
    args.extend(["--to", &to]);
    let script = hooks(&args, &data).await;
    assert_eq!(script.code, Some(0), "{}", script.stderr);
    let comments: Vec<&str> = script
        .stdout
        .lines()
        .filter(|l| l.starts_with('#'))
        .collect();
    assert_eq!(
        comments,
        ["# capture #1", "# capture #2"],
        "{}",
        script.stdout
    );
    let mut sh = std::process::Command::new("sh");
    hermetic(&mut sh);
    let ran = tokio::process::Command::from(sh)
        .args(["-c", &script.stdout])
        .stdin(std::process::Stdio::null())
        .output();
    let ran = within("sh running the script", ran).await.expect("run sh");
    assert!(ran.status.success(), "{ran:?}");
    let seen = other.wait_for(2).await;
    assert_eq!(seen[0].body, invoice("cus_42"));
    assert_eq!(seen[1].body, invoice("cus_7"));

    // har: one log, an entry per capture.
    let har = hooks(&with("har"), &data).await;
    assert_eq!(har.code, Some(0), "{}", har.stderr);
    let log: Value = serde_json::from_str(&har.stdout).expect("one HAR document");
    let entries = log["log"]["entries"].as_array().expect("entries");
    let comments: Vec<&Value> = entries.iter().map(|e| &e["comment"]).collect();
    assert_eq!(
        comments,
        [&json!("hooks capture #1"), &json!("hooks capture #2")]
    );
    assert_eq!(entries[1]["request"]["postData"]["text"], invoice("cus_7"));
    assert_eq!(entries[1]["response"]["status"], 200);

    // Replays are there when the expression asks for them.
    let replays = hooks(
        &["export", "--where", "replay:true", "--format", "har"],
        &data,
    )
    .await;
    assert_eq!(replays.code, Some(0), "{}", replays.stderr);
    let log: Value = serde_json::from_str(&replays.stdout).expect("one HAR document");
    assert_eq!(log["log"]["entries"][0]["comment"], "hooks capture #4");

    // raw: one request, or a refusal that says what to use instead.
    let refused = hooks(&with("raw"), &data).await;
    assert_eq!(refused.code, Some(2));
    assert_eq!(refused.stdout, "");
    assert_eq!(
        refused.stderr,
        "hooks: error: --format raw holds one request and 2 captures match: use --format har \
         (one file, an entry each) or --format fixture --dir DIR (a file each)\n"
    );
    let one = hooks(
        &["export", "--where", "event:push", "--format", "raw"],
        &data,
    )
    .await;
    assert_eq!(one.code, Some(0), "{}", one.stderr);
    let request = hooks::raw_request::parse(one.stdout.as_bytes()).expect("a request");
    assert_eq!(request.body, br#"{"ref":"main"}"#);

    // fixture: a file per capture.
    let dir = tempfile::tempdir().expect("temp dir");
    let folder = dir.path().join("fixtures");
    let folder_text = folder.to_str().expect("UTF-8 path");
    let mut args = with("fixture");
    args.extend(["--dir", folder_text]);
    let written = hooks(&args, &data).await;
    assert_eq!(written.code, Some(0), "{}", written.stderr);
    let names = file_names(&folder);
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names.iter().all(|n| n.contains("-stripe-invoice.paid-")),
        "{names:?}"
    );
    let listed: Vec<String> = names
        .iter()
        .map(|n| folder.join(n).display().to_string())
        .collect();
    assert_eq!(written.stdout.lines().collect::<Vec<_>>(), listed);

    // Usage errors exit 2; nothing matching is a failure.
    let bad = hooks(
        &["export", "--where", "status:5xx OR", "--format", "har"],
        &data,
    )
    .await;
    assert_eq!(bad.code, Some(2));
    assert_eq!(
        bad.stderr,
        "hooks: error: invalid --where expression\n  status:5xx OR\n               ^ expected a term such as status:500, NOT or (, found the end of the expression\n"
    );
    let no_dir = hooks(&["export", "1", "--format", "fixture"], &data).await;
    assert_eq!(no_dir.code, Some(2), "{}", no_dir.stderr);
    let stray = hooks(
        &["export", "1", "--format", "har", "--dir", folder_text],
        &data,
    )
    .await;
    assert_eq!(
        (stray.code, stray.stderr.as_str()),
        (Some(2), "hooks: error: --dir is for --format fixture\n")
    );
    let none = hooks(
        &["export", "--where", "status:5xx", "--format", "har"],
        &data,
    )
    .await;
    assert_eq!(
        (none.code, none.stderr.as_str()),
        (Some(1), "hooks: error: no captures match\n")
    );
    cli.kill().await;
}

/// The names of the files in `folder`, sorted.
fn file_names(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .expect("the folder exists")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_19_replay_check_names_what_changed() {
    let amount = Arc::new(AtomicU64::new(2000));
    let app = ledger(Arc::clone(&amount)).await;
    let webhooks = three_webhooks();
    let (_relay, mut cli) = captured(&app, &[webhooks[0].clone(), webhooks[2].clone()]).await;
    let data = cli.data_dir().to_owned();
    let all = ["replay", "--where", "method:POST", "--check"];

    // Unchanged app: the date and x-request-id headers differ, and do not count.
    let same = hooks(&all, &data).await;
    assert_eq!(
        (same.code, same.stdout.as_str()),
        (Some(0), "#1 same\n#2 same\n2 same, 0 changed\n"),
        "{}",
        same.stderr
    );

    // The fix changed one field of one answer: #5 and #6 are the replays of this run.
    amount.store(2100, Ordering::SeqCst);
    let changed = hooks(&all, &data).await;
    assert_eq!(
        (changed.code, changed.stdout.as_str()),
        (
            Some(1),
            "#1 changed: /data/amount 2000 → 2100  (hooks diff 1 5)\n#2 same\n1 same, 1 changed\n"
        ),
        "{}",
        changed.stderr
    );
    let mut ignoring = all.to_vec();
    ignoring.extend(["--ignore", "/data/amount"]);
    let ignored = hooks(&ignoring, &data).await;
    assert_eq!(
        (ignored.code, ignored.stdout.as_str()),
        (Some(0), "#1 same\n#2 same\n2 same, 0 changed\n"),
        "{}",
        ignored.stderr
    );

    // --json: one object per capture on stdout, the summary on stderr.
    let json = hooks(&["replay", "1", "--check", "--json"], &data).await;
    assert_eq!(json.code, Some(1), "{}", json.stderr);
    let line: Value = serde_json::from_str(json.stdout.trim()).expect("one JSON object");
    assert_eq!(
        line,
        json!({"id": 1, "replay": 9, "same": false, "changes": [
            {"part": "body", "path": "/data/amount", "before": 2000, "after": 2100}
        ]})
    );
    assert_eq!(json.stderr, "0 same, 1 changed\n");
    let listed = hooks(
        &["list", "--json", "--where", "replay:true", "-n", "1"],
        &data,
    )
    .await;
    assert!(
        listed.stdout.contains(r#""id":9,"#),
        "replays are recorded: {}",
        listed.stdout
    );

    // No answer is a change too.
    let port = closed_port().to_string();
    let to = format!("127.0.0.1:{port}");
    let gone = hooks(&["replay", "2", "--check", "--to", &to], &data).await;
    assert_eq!(gone.code, Some(1));
    assert_eq!(
        gone.stdout,
        format!(
            "#2 changed: no answer (could not connect to {to}: connection refused (is your app \
             listening on {port}?))  (hooks diff 2 10)\n0 same, 1 changed\n"
        )
    );

    let bad = hooks(&["replay", "1", "--check", "--ignore", "data"], &data).await;
    assert_eq!(bad.code, Some(2));
    assert!(
        bad.stderr.contains("is neither a JSON pointer"),
        "{}",
        bad.stderr
    );
    let unchecked = hooks(&["replay", "1", "--ignore", "/data"], &data).await;
    assert_eq!(unchecked.code, Some(2), "--ignore needs --check");
    cli.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_19_fixtures_replay_in_ci_without_a_store() {
    let app = ledger(Arc::new(AtomicU64::new(2000))).await;
    let (_relay, mut cli) = captured(&app, &three_webhooks()).await;
    let data = cli.data_dir().to_owned();
    let dir = tempfile::tempdir().expect("temp dir");
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    for folder in [&first, &second] {
        let folder = folder.to_str().expect("UTF-8 path");
        let args = [
            "export", "--where", "since:1h", "--format", "fixture", "--dir", folder,
        ];
        let written = hooks(&args, &data).await;
        assert_eq!(written.code, Some(0), "{}", written.stderr);
    }
    let names = file_names(&first);
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(file_names(&second), names, "the same names every time");
    for name in &names {
        let (a, b) = (first.join(name), second.join(name));
        assert_eq!(
            std::fs::read(a).unwrap(),
            std::fs::read(b).unwrap(),
            "{name}"
        );
    }
    // The request in a fixture is what hooks verify reads.
    let invoice_name = names
        .iter()
        .find(|n| {
            std::fs::read_to_string(first.join(n))
                .unwrap()
                .contains("cus_42")
        })
        .expect("the fixture of #1")
        .clone();
    let invoice_fixture = first.join(&invoice_name);
    let verified = hooks(
        &[
            "verify",
            "--secret",
            SECRET,
            invoice_fixture.to_str().unwrap(),
        ],
        &data,
    )
    .await;
    assert_eq!(
        verified.code,
        Some(0),
        "{}{}",
        verified.stdout,
        verified.stderr
    );

    // CI: a fresh data directory, no store in it before or after.
    let fresh = tempfile::tempdir().expect("fresh data dir");
    let to = format!("127.0.0.1:{}", app.port());
    let folder = first.to_str().expect("UTF-8 path");
    let ci = ["replay", "--dir", folder, "--to", &to, "--check"];
    let passed = hooks(&ci, fresh.path()).await;
    let expected: String = names.iter().map(|n| format!("{n} same\n")).collect();
    assert_eq!(
        (passed.code, passed.stdout.as_str()),
        (Some(0), format!("{expected}3 same, 0 changed\n").as_str()),
        "{}",
        passed.stderr
    );
    assert_eq!(
        file_names(fresh.path()),
        Vec::<String>::new(),
        "no store created"
    );

    // A fixture edited so that the app answers otherwise (same length: Content-Length holds).
    let text = std::fs::read_to_string(&invoice_fixture).unwrap();
    std::fs::write(&invoice_fixture, text.replacen("cus_42", "cus_43", 2)).unwrap();
    let failed = hooks(&ci, fresh.path()).await;
    assert_eq!(failed.code, Some(1), "{}", failed.stderr);
    let line = format!(r#"{invoice_name} changed: /data/customer "cus_42" → "cus_43""#);
    assert!(
        failed.stdout.lines().any(|l| l == line),
        "{}",
        failed.stdout
    );
    assert!(
        failed.stdout.ends_with("2 same, 1 changed\n"),
        "{}",
        failed.stdout
    );

    // --resign signs each fixture afresh, as the app's check wants it.
    let resigned = hooks(
        &[
            "replay", "--dir", folder, "--to", &to, "--resign", "--secret", SECRET, "--json",
        ],
        fresh.path(),
    )
    .await;
    assert_eq!(resigned.code, Some(0), "{}", resigned.stderr);
    let lines: Vec<Value> = resigned
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    let fixtures: Vec<&str> = lines.iter().filter_map(|l| l["fixture"].as_str()).collect();
    assert_eq!(fixtures, names, "in name order");
    assert!(
        lines.iter().all(|l| l["status"] == 200),
        "{}",
        resigned.stdout
    );
    let seen = app.wait_for(3 + 3 + 3 + 3).await;
    let sent = seen
        .iter()
        .rev()
        .find(|r| r.body.windows(6).any(|w| w == b"cus_43"));
    let sent = sent.expect("the edited invoice was sent");
    let signature = sent.header("stripe-signature")[0];
    assert!(
        valid_stripe(signature, &sent.body),
        "re-signed over the edited body"
    );
    assert_eq!(
        file_names(fresh.path()),
        Vec::<String>::new(),
        "still no store"
    );

    let empty = tempfile::tempdir().expect("empty folder");
    let none = hooks(
        &[
            "replay",
            "--dir",
            empty.path().to_str().unwrap(),
            "--to",
            &to,
        ],
        fresh.path(),
    )
    .await;
    assert_eq!(none.code, Some(2));
    assert!(
        none.stderr.contains("no fixtures (*.http) in"),
        "{}",
        none.stderr
    );
    cli.kill().await;
}
