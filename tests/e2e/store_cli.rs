//! The capture store end to end: `hooks listen` records what it forwards, and `list` and `show`
//! read it, while `listen` runs; retention, a damaged store and the error messages.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use relay_server::Config;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::store::*;
use crate::support::*;

/// The body of the first capture.
const JSON_BODY: &[u8] = br#"{"type":"invoice.paid","n":1}"#;

/// A running `hooks listen` (data in `data`) that captured two requests: `#1` a JSON POST to
/// `/hooks/stripe?live=1&x=%20` with repeated headers, `#2` a binary PUT to `/bin`.
async fn two_captures(data: &std::path::Path) -> (Relay, App, Listener) {
    let (relay, app) = (start_relay(Config::default()).await, App::created().await);
    let mut listen = listen(&relay, &app.target(), data, &[]).await;
    let headers: [(&str, &[u8]); 3] = [
        ("content-type", b"application/json"),
        ("x-dup", b"one"),
        ("x-dup", b"two"),
    ];
    let url = format!("{}/hooks/stripe?live=1&x=%20", listen.url);
    assert_eq!(send("POST", &url, &headers, JSON_BODY).await, 201);
    // A request line is printed once its capture is committed; waiting for it orders the ids.
    let first = listen.next_request().await;
    let binary_headers: [(&str, &[u8]); 1] = [("content-type", b"application/octet-stream")];
    let url = format!("{}/bin", listen.url);
    assert_eq!(send("PUT", &url, &binary_headers, &all_bytes(2)).await, 201);
    let second = listen.next_request().await;
    assert_eq!(
        (first["id"].as_i64(), second["id"].as_i64()),
        (Some(1), Some(2))
    );
    assert!(first["relay_id"].is_u64(), "{first}");
    (relay, app, listen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_reads_captures_while_listen_runs() {
    let data = data_dir();
    let (_relay, _app, mut listen) = two_captures(data.path()).await;
    let list = run(&["list", "--json"], data.path()).await.success();
    let rows = list.json_lines();
    assert_eq!(rows.len(), 2, "{}", list.text());
    assert_eq!(rows[0]["id"], 2, "newest first");
    assert_eq!(rows[0]["method"], "PUT");
    assert_eq!(rows[1]["path"], "/hooks/stripe?live=1&x=%20");
    assert_eq!(rows[1]["status"], 201);
    let received_at = rows[1]["received_at"].as_str().unwrap_or_default();
    assert!(
        received_at.len() == 24 && received_at.ends_with('Z') && received_at.as_bytes()[10] == b'T',
        "RFC 3339 UTC: {received_at}"
    );
    for field in [
        "event_type",
        "event_id",
        "verdict",
        "duration_ms",
        "replay_of",
    ] {
        assert!(rows[1].get(field).is_some(), "{field} in {}", rows[1]);
    }

    let table = run(&["list"], data.path()).await.success().text();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ID "), "{table}");
    assert!(
        lines[1].starts_with("#2 ") && lines[1].contains("PUT"),
        "{table}"
    );
    assert!(lines[2].contains("/hooks/stripe?live=1&x=%20") && lines[2].contains("201"));

    let filtered = run(
        &["list", "--json", "--path", "/bin", "--status", "2xx"],
        data.path(),
    )
    .await
    .success();
    assert_eq!(ids(&filtered.json_lines()), [2]);
    let none = run(&["list", "--json", "--status", "5xx"], data.path())
        .await
        .success();
    assert_eq!(none.stdout, b"");

    listen.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_reads_captures_while_listen_runs() {
    let data = data_dir();
    let (_relay, app, mut listen) = two_captures(data.path()).await;
    let shown = run(&["show", "1", "--json"], data.path()).await.success();
    let shown: Value = serde_json::from_slice(&shown.stdout).expect("one JSON object");
    assert_eq!(shown["id"], 1);
    assert_eq!(shown["request"]["method"], "POST");
    assert_eq!(shown["request"]["path"], "/hooks/stripe?live=1&x=%20");
    let sent = shown["request"]["headers"].as_array().expect("header list");
    let sent: Vec<&Value> = sent.iter().filter(|h| h[0] != "host").collect();
    assert_eq!(
        sent,
        [
            &json!(["content-type", "application/json"]),
            &json!(["x-dup", "one"]),
            &json!(["x-dup", "two"]),
            &json!(["content-length", "29"]),
        ]
    );
    assert_eq!(shown["request"]["body_base64"], BASE64.encode(JSON_BODY));
    assert_eq!(shown["response"]["status"], 201);
    let cookies: Vec<&Value> = shown["response"]["headers"]
        .as_array()
        .expect("response headers")
        .iter()
        .filter(|h| h[0] == "set-cookie")
        .collect();
    assert_eq!(
        cookies,
        [&json!(["set-cookie", "a=1"]), &json!(["set-cookie", "b=2"])]
    );
    assert_eq!(
        shown["response"]["body_base64"],
        BASE64.encode(br#"{"received":true}"#)
    );
    assert!(shown["response"]["duration_ms"].as_f64().is_some());
    assert_eq!(shown["error"], Value::Null);
    assert_eq!(shown["replay_of"], Value::Null);

    let binary_json = run(&["show", "last", "--json"], data.path())
        .await
        .success();
    let binary_json: Value = serde_json::from_slice(&binary_json.stdout).expect("JSON");
    assert_eq!(
        binary_json["request"]["body_base64"],
        BASE64.encode(all_bytes(2))
    );

    let human = run(&["show", "last"], data.path()).await.success().text();
    let lines: Vec<&str> = human.lines().collect();
    assert!(
        lines[0].starts_with("#2  ") && lines[0].ends_with(&format!("→ http://{}", app.target()))
    );
    assert!(
        lines[1].contains(" PUT /bin ") && lines[1].ends_with(" #2"),
        "{human}"
    );
    assert_eq!(lines[2], "  > PUT /bin HTTP/1.1", "{human}");
    assert!(
        human.contains("\n  (binary body, 512 bytes, application/octet-stream)\n"),
        "{human}"
    );
    assert!(
        human.contains("\n  < 201 Created\n  < content-type: application/json\n"),
        "{human}"
    );
    assert!(
        human.contains("\n  {\n    \"received\": true\n  }\n"),
        "{human}"
    );
    assert!(!human.contains('\u{1b}'), "no colors into a pipe: {human}");

    let body_only = run(&["show", "#1", "--print", "B"], data.path())
        .await
        .success();
    let text = body_only.text();
    assert!(
        text.contains("\n  {\n    \"type\": \"invoice.paid\",\n    \"n\": 1\n  }\n"),
        "{text}"
    );
    assert!(
        !text.contains("  > ") && !text.contains("  < "),
        "only the request body: {text}"
    );
    let colored = run(&["show", "1", "--color", "always"], data.path())
        .await
        .success();
    assert!(colored.text().contains('\u{1b}'), "{}", colored.text());

    let unknown = run(&["show", "42"], data.path()).await;
    assert_eq!(unknown.code, Some(1));
    assert_eq!(unknown.stderr, "hooks: error: no capture #42\n");
    assert_eq!(unknown.stdout, b"");
    listen.kill().await;
}

fn ids(rows: &[Value]) -> Vec<i64> {
    rows.iter().filter_map(|r| r["id"].as_i64()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_prunes_to_the_newest_captures() {
    let (relay, app, data) = (
        start_relay(Config::default()).await,
        App::created().await,
        data_dir(),
    );
    let mut listen = listen(&relay, &app.target(), data.path(), &["--keep", "3"]).await;
    for i in 0..5 {
        let url = format!("{}/n/{i}", listen.url);
        assert_eq!(send("POST", &url, &[], b"x").await, 201);
        listen.next_request().await;
    }
    let rows = run(&["list", "--json"], data.path())
        .await
        .success()
        .json_lines();
    assert_eq!(ids(&rows), [5, 4, 3]);
    assert_eq!(rows[0]["path"], "/n/4");
    listen.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_capture_records_nothing() {
    let (relay, app, data) = (
        start_relay(Config::default()).await,
        App::created().await,
        data_dir(),
    );
    let mut listen = listen(&relay, &app.target(), data.path(), &["--no-capture"]).await;
    assert_eq!(
        send("POST", &format!("{}/x", listen.url), &[], b"x").await,
        201
    );
    let line = listen.next_request().await;
    assert!(line["relay_id"].is_u64(), "{line}");
    assert_eq!(
        line["id"], line["relay_id"],
        "without a capture, #N is the relay's id"
    );
    let list = run(&["list"], data.path()).await;
    assert_eq!(list.code, Some(1));
    assert_eq!(
        list.stderr,
        "hooks: error: no captures yet: run hooks listen first\n"
    );
    listen.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reader_fails_clearly_without_a_store() {
    let data = data_dir();
    for args in [
        &["list"][..],
        &["show", "last"],
        &["replay", "last"],
        &["export", "1", "--format", "raw"],
    ] {
        let run = run(args, data.path()).await;
        assert_eq!(run.code, Some(1), "{args:?}");
        assert_eq!(
            run.stderr, "hooks: error: no captures yet: run hooks listen first\n",
            "{args:?}"
        );
        assert_eq!(run.stdout, b"", "{args:?}");
    }
    assert!(
        !data.path().join("captures.db").exists(),
        "readers create nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_store_is_moved_aside_and_a_new_one_started() {
    let (relay, app, data) = (
        start_relay(Config::default()).await,
        App::created().await,
        data_dir(),
    );
    let garbage =
        b"SQLite format 2\0 but not really; these bytes are no database at all".repeat(64);
    std::fs::write(data.path().join("captures.db"), &garbage).expect("write garbage");
    let show = run(&["show", "last"], data.path()).await;
    assert_eq!(show.code, Some(1));
    assert!(
        show.stderr.contains("is damaged")
            && show.stderr.contains("the next hooks listen moves it aside"),
        "{}",
        show.stderr
    );

    let mut listen = listen(&relay, &app.target(), data.path(), &[]).await;
    let moved = files_starting(data.path(), "captures.db.corrupt-");
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(std::fs::read(&moved[0]).expect("moved file"), garbage);
    let stderr = listen.stderr();
    assert!(
        stderr.contains("hooks: warning: the capture store ")
            && stderr.contains(" was damaged; moved it to ")
            && stderr.contains("and started a new one"),
        "{stderr}"
    );
    assert_eq!(
        send("POST", &format!("{}/after", listen.url), &[], b"x").await,
        201
    );
    assert_eq!(listen.next_request().await["id"], 1);
    let rows = run(&["list", "--json"], data.path())
        .await
        .success()
        .json_lines();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["path"], "/after");
    listen.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_data_dir_stops_listen_with_exit_1() {
    let data = data_dir();
    let file = data.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write file");
    let relay = start_relay(Config::default()).await;
    let run = run(
        &["listen", "--relay", &relay.url, "--forward-to", "3000"],
        &file,
    )
    .await;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.starts_with(
            "hooks: error: could not open the capture store: could not create the data directory"
        ),
        "{}",
        run.stderr
    );
}

/// A capture of delivery `relay_id` of relay epoch `epoch` on `channel_url`, as an earlier
/// `hooks listen` that died before acknowledging it would have left.
async fn earlier_capture(data: &std::path::Path, channel_url: &str, epoch: u64, relay_id: u64) {
    use hooks::exchange::{now_ms, Exchange, Outcome, Request, Response};
    use hooks::store::{self, Retention, Writer};
    let path = data.join(store::FILE_NAME);
    let (conn, _) = store::open_or_replace(&path).expect("open store");
    let writer = Writer::spawn(conn, path, Retention::default()).expect("writer");
    let request = Request {
        method: "POST".into(),
        path: "/first".into(),
        headers: Vec::new(),
        body: bytes::Bytes::from_static(b"first"),
    };
    let outcome = Outcome::Answered(Response {
        status: 200,
        headers: Vec::new(),
        body: bytes::Bytes::new(),
    });
    let duration = std::time::Duration::from_millis(1);
    let record = Exchange {
        channel: Some("dedup".into()),
        channel_url: Some(channel_url.to_owned()),
        relay_id: Some(relay_id),
        relay_epoch: Some(epoch),
        ..Exchange::new(
            now_ms(),
            "http://127.0.0.1:9".into(),
            request,
            outcome,
            duration,
        )
    };
    let pending = writer.record(record).expect("queued");
    pending.await.expect("writer alive").expect("committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_an_earlier_run_captured_is_acknowledged_not_forwarded() {
    // One request in flight at a time: the relay sends the second only after the first's ack.
    let config = relay_server::Config {
        max_in_flight: 1,
        ..relay_server::Config::default()
    };
    let (relay, app, data) = (start_relay(config).await, App::created().await, data_dir());
    let args = ["--channel", "dedup", "--respond", "202"];
    // A first run handles relay id 1; its capture says which epoch the relay's ids are of.
    let mut first = listen(&relay, &app.target(), data.path(), &args).await;
    assert_eq!(
        send("POST", &format!("{}/zero", first.url), &[], b"zero").await,
        202
    );
    first.next_request().await;
    let shown = run(&["show", "last", "--json"], data.path())
        .await
        .success();
    let shown: Value = serde_json::from_slice(&shown.stdout).expect("one JSON object");
    assert_eq!(shown["relay_id"], 1, "{shown}");
    let epoch = shown["relay_epoch"].as_u64().expect("the relay's epoch");
    first.kill().await;
    wait_for_sessions(&relay.url, 0).await;
    // Relay id 2 was captured by a run that died before acknowledging it.
    earlier_capture(data.path(), &format!("{}/dedup", relay.url), epoch, 2).await;
    let mut listen = listen(&relay, &app.target(), data.path(), &args).await;
    assert_eq!(
        send("POST", &format!("{}/first", listen.url), &[], b"first").await,
        202
    );
    assert_eq!(
        send("POST", &format!("{}/second", listen.url), &[], b"second").await,
        202
    );
    let line = listen.next_request().await;
    assert_eq!(
        (line["relay_id"].as_u64(), line["id"].as_i64()),
        (Some(3), Some(3))
    );
    let seen: Vec<String> = app.requests().into_iter().map(|s| s.target).collect();
    assert_eq!(seen, ["/zero", "/second"], "relay id 2 was captured before");
    listen.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_lines_come_in_capture_order() {
    // Captures committed together wake their handlers at once; the lines still come in order.
    let (relay, app, data) = (
        start_relay(Config::default()).await,
        App::created().await,
        data_dir(),
    );
    let mut listen = listen(&relay, &app.target(), data.path(), &[]).await;
    const N: usize = 20;
    for i in 0..N {
        assert_eq!(
            send("POST", &format!("{}/o/{i}", listen.url), &[], b"x").await,
            201
        );
    }
    for i in 0..N {
        let line = listen.next_request().await;
        assert_eq!(line["path"], format!("/o/{i}"), "{line}");
        assert_eq!(line["id"].as_u64(), Some(i as u64 + 1), "{line}");
    }
    listen.kill().await;
}

/// The request's headers and body, and the app's, are handed to the capture store rather than
/// copied, and come back for the printer once committed: `--print HBhb` still shows them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_prints_whole_exchanges_while_recording_them() {
    let data = data_dir();
    let (relay, app) = (start_relay(Config::default()).await, App::created().await);
    let target = app.target();
    let args = [
        "listen",
        "--relay",
        &relay.url,
        "--forward-to",
        &target,
        "--channel",
        "printed",
        "--print",
        "HBhb",
        "--color",
        "never",
    ];
    let mut child = hooks_command(&args, data.path())
        .spawn()
        .expect("spawn hooks listen");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    // People's mode: the ready sentence is on stderr.
    within("the ready line", async {
        while let Some(line) = stderr.next_line().await.expect("stderr") {
            if line.starts_with("Ready:") {
                return;
            }
        }
        panic!("hooks listen ended before it was ready");
    })
    .await;
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
    let url = format!("{}/printed/orders?n=1", relay.url);
    let headers: [(&str, &[u8]); 1] = [("x-print-check", b"header-value-7")];
    assert_eq!(send("POST", &url, &headers, b"request-body-7").await, 201);
    let mut printed = String::new();
    within("the whole exchange on stdout", async {
        while let Some(line) = stdout.next_line().await.expect("stdout") {
            printed.push_str(&line);
            printed.push('\n');
            if line.contains(r#""received""#) {
                return;
            }
        }
    })
    .await;
    let _ = child.kill().await;
    for part in [
        "POST /orders?n=1",
        "#1",
        "x-print-check: header-value-7",
        "request-body-7",
        "< 201 Created",
        "< content-type: application/json",
    ] {
        assert!(printed.contains(part), "{part:?} missing from:\n{printed}");
    }
    // Both of the app's repeated headers (cookies, so shortened on screen).
    assert_eq!(printed.matches("< set-cookie: ").count(), 2, "{printed}");
    let shown = run(&["show", "1", "--json"], data.path()).await.success();
    let shown: Value = serde_json::from_str(&shown.text()).expect("show --json");
    assert_eq!(
        BASE64.decode(shown["request"]["body_base64"].as_str().unwrap_or_default()),
        Ok(b"request-body-7".to_vec())
    );
}

/// Issue 17: C1 controls (U+0080–009F, which some terminals obey like ESC sequences),
/// bidirectional overrides and zero-width characters are escaped in every output meant for a
/// terminal, `hooks show --json` included, and one very long line is cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_show_escapes_c1_bidi_and_zero_width_and_cuts_long_lines() {
    let data = data_dir();
    let (relay, app) = (start_relay(Config::default()).await, App::created().await);
    let mut listen = listen(&relay, &app.target(), data.path(), &[]).await;
    let value = "a\u{9d}52;c;eA==\u{9c}b\u{202e}cba\u{2066}d\u{200b}e\u{61c}";
    let headers: [(&str, &[u8]); 2] = [
        ("content-type", b"text/plain"),
        ("x-evil", value.as_bytes()),
    ];
    let mut body = "\u{202e}".to_owned();
    body.push_str(&"z".repeat(20_000));
    let url = format!("{}/evil", listen.url);
    assert_eq!(send("POST", &url, &headers, body.as_bytes()).await, 201);
    listen.next_request().await;

    let json = run(&["show", "1", "--json"], data.path()).await.success();
    let text = json.text();
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "no raw control character: {text:?}"
    );
    assert!(!text.contains(['\u{202e}', '\u{2066}', '\u{200b}', '\u{61c}']));
    assert!(
        text.contains(r#"["x-evil","a\u009d52;c;eA==\u009cb\u202ecba\u2066d\u200be\u061c"]"#),
        "{text}"
    );
    let shown: Value = serde_json::from_str(&text).expect("JSON");
    let sent = shown["request"]["headers"].as_array().expect("headers");
    assert!(sent.contains(&json!(["x-evil", value])), "the same text");

    let human = run(&["show", "1"], data.path()).await.success().text();
    assert!(
        !human
            .chars()
            .any(|c| (c.is_control() && c != '\n') || "\u{202e}\u{2066}\u{200b}\u{61c}".contains(c)),
        "{human:?}"
    );
    assert!(
        human.contains(r"x-evil: a\u{9d}52;c;eA==\u{9c}b\u{202e}cba\u{2066}d\u{200b}e\u{61c}"),
        "{human}"
    );
    let long = human
        .lines()
        .find(|l| l.contains("zzz"))
        .expect("the body line");
    assert_eq!(
        long,
        format!(
            "  \\u{{202e}}{}… (15,914 more characters)",
            "z".repeat(4096 - 10)
        )
    );
    listen.kill().await;
}

/// Issue 17: `hooks show` masks the `--secret`/`HOOKS_SECRET` values as `listen` does, wherever
/// they appear in what it prints (GitLab, for one, sends its secret as a header).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_show_masks_the_secrets_it_is_given() {
    let data = data_dir();
    let (relay, app) = (start_relay(Config::default()).await, App::created().await);
    let mut listen = listen(&relay, &app.target(), data.path(), &[]).await;
    let secret = "whsec_issue17_mask_me";
    let headers: [(&str, &[u8]); 2] = [
        ("content-type", b"application/json"),
        ("x-echo", secret.as_bytes()),
    ];
    let body = format!(r#"{{"note":"the secret is {secret}"}}"#);
    let url = format!("{}/masked", listen.url);
    assert_eq!(send("POST", &url, &headers, body.as_bytes()).await, 201);
    listen.next_request().await;

    let by_flag = run(&["show", "1", "--secret", secret], data.path())
        .await
        .success()
        .text();
    let by_env = hooks_command(&["show", "1"], data.path())
        .env("HOOKS_SECRET", secret)
        .output();
    let by_env = within("hooks show", by_env).await.expect("hooks show");
    assert_eq!(by_env.status.code(), Some(0));
    let by_env = String::from_utf8_lossy(&by_env.stdout).into_owned();
    for shown in [&by_flag, &by_env] {
        assert!(!shown.contains(secret), "{shown}");
        assert!(shown.contains("> x-echo: (secret)"), "{shown}");
        assert!(shown.contains(r#""the secret is (secret)""#), "{shown}");
    }
    let help = run(&["show", "--help"], data.path()).await.success().text();
    assert!(help.contains("--secret <SECRET>"), "{help}");
    listen.kill().await;
}
