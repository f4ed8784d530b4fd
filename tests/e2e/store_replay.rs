//! `hooks replay` and `hooks export` end to end: a webhook captured by the real `hooks listen`
//! is sent again (to its target or another one), and exported as a curl command that `sh` runs,
//! as raw HTTP that a real HTTP parser reads back, and as HAR.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use relay_server::Config;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::support::store::*;
use crate::support::*;

/// The awkward request every test captures: odd method, encoded query with a repeated name,
/// repeated headers around another one, a header value that is not UTF-8, and every byte value
/// in the body.
const PATH: &str = "/a/b?x=1&y=%2F%20&x=2";

fn awkward_headers() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("content-type", b"application/octet-stream"),
        ("x-dup", b"one"),
        ("x-other", b"it's \"quoted\" $HOME `x` %s \\"),
        ("x-dup", b"two"),
        ("x-latin", b"caf\xe9"),
    ]
}

/// Starts a relay and `hooks listen` to `app`, sends the awkward request, and returns the
/// listener and what the app received.
async fn capture_one(app: &App, data: &Path) -> (Relay, Listener, Recorded) {
    let relay = start_relay(Config::default()).await;
    let mut listen = listen(&relay, &app.target(), data, &[]).await;
    let url = format!("{}{PATH}", listen.url);
    assert_eq!(
        send("PATCH", &url, &awkward_headers(), &all_bytes(4)).await,
        201
    );
    assert_eq!(listen.next_request().await["id"], 1);
    let seen = app.wait_for(1).await.remove(0);
    assert_eq!(seen.target, PATH);
    (relay, listen, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_sends_the_same_bytes_to_the_original_and_to_another_target() {
    let (app, other, data) = (App::created().await, App::created().await, data_dir());
    let (_relay, listen, original) = capture_one(&app, data.path()).await;

    let again = run(&["replay", "1"], data.path()).await.success();
    let line = again.text();
    assert!(
        line.starts_with(&format!("#2 PATCH {PATH} → 201 "))
            && line.ends_with(" ms (replay of #1)\n"),
        "{line:?}"
    );
    let seen = app.wait_for(2).await;
    assert_eq!(seen[1], original, "the app gets the very same request");

    let to = other.target();
    let args = [
        "replay",
        "#1",
        "--to",
        &to,
        "--header",
        "X-Extra: yes",
        "-H",
        "x-dup: replaced",
        "--json",
    ];
    let moved = run(&args, data.path()).await.success();
    let seen = other.wait_for(1).await.remove(0);
    assert_eq!(
        (&seen.method, &seen.target, &seen.body),
        (&original.method, &original.target, &original.body)
    );
    let mut expected = Vec::new();
    for (name, value) in original.headers_but_host() {
        match name.as_str() {
            "x-dup" if expected.iter().any(|(n, _)| n == "x-dup") => {}
            "x-dup" => expected.push((name, b"replaced".to_vec())),
            _ => expected.push((name, value)),
        }
    }
    expected.push(("x-extra".to_owned(), b"yes".to_vec()));
    assert_eq!(seen.headers_but_host(), expected);
    assert_eq!(
        seen.headers[0],
        ("host".to_owned(), to.clone().into_bytes())
    );

    let printed = moved.json_lines();
    assert_eq!(printed.len(), 1, "{}", moved.text());
    assert_eq!(printed[0]["id"], 3);
    assert_eq!(printed[0]["replay_of"], 1);
    assert_eq!(printed[0]["target"], format!("http://{to}"));
    assert_eq!(printed[0]["response"]["status"], 201);
    assert_eq!(
        printed[0]["request"]["body_base64"],
        BASE64.encode(all_bytes(4))
    );

    let rows = run(&["list", "--json"], data.path())
        .await
        .success()
        .json_lines();
    let replays: Vec<(i64, Value)> = rows
        .iter()
        .map(|r| (r["id"].as_i64().unwrap_or(0), r["replay_of"].clone()))
        .collect();
    assert_eq!(replays, [(3, json!(1)), (2, json!(1)), (1, Value::Null)]);

    // Listen's request lines carry the capture id, which no longer equals the relay's id.
    let mut listen = listen;
    assert_eq!(
        send("POST", &format!("{}/later", listen.url), &[], b"x").await,
        201
    );
    let line = listen.next_request().await;
    assert_eq!(
        (line["id"].as_i64(), line["relay_id"].as_i64()),
        (Some(4), Some(2))
    );
    let shown = run(&["show", "4", "--json"], data.path()).await.success();
    let shown: Value = serde_json::from_slice(&shown.stdout).expect("JSON");
    assert_eq!(shown["request"]["path"], "/later");
    listen.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_nobody_answers_exits_1_and_is_still_recorded() {
    let (app, data) = (App::created().await, data_dir());
    let (_relay, mut listen, _) = capture_one(&app, data.path()).await;
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe port");
        probe.local_addr().expect("probe address").port()
    };
    let to = format!("127.0.0.1:{port}");
    let failed = run(&["replay", "last", "--to", &to], data.path()).await;
    assert_eq!(failed.code, Some(1), "{}", failed.stderr);
    assert_eq!(
        failed.stderr,
        format!(
            "hooks: error: could not connect to 127.0.0.1:{port}: connection refused \
             (is your app listening on {port}?)\n"
        )
    );
    assert!(failed.text().contains(" → no answer "), "{}", failed.text());
    let rows = run(&["list", "--json", "--status", "error"], data.path())
        .await
        .success()
        .json_lines();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["replay_of"], 1);
    assert_eq!(rows[0]["status"], Value::Null);
    assert!(rows[0]["error"]
        .as_str()
        .unwrap_or("")
        .contains("connection refused"));
    listen.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_by_filter_goes_oldest_first_and_leaves_replays_out() {
    let (relay, app, data) = (
        start_relay(Config::default()).await,
        App::created().await,
        data_dir(),
    );
    let mut listen = listen(&relay, &app.target(), data.path(), &[]).await;
    for i in 0..3 {
        assert_eq!(
            send("POST", &format!("{}/f/{i}", listen.url), &[], b"x").await,
            201
        );
        listen.next_request().await;
    }
    let all = run(&["replay", "--since", "1h"], data.path())
        .await
        .success();
    assert_eq!(all.text().lines().count(), 3, "{}", all.text());
    let seen = app.wait_for(6).await;
    let targets: Vec<&str> = seen[3..].iter().map(|s| s.target.as_str()).collect();
    assert_eq!(targets, ["/f/0", "/f/1", "/f/2"]);

    let one = run(&["replay", "--since", "1h", "--path", "/f/1"], data.path())
        .await
        .success();
    assert_eq!(one.text().lines().count(), 1, "{}", one.text());
    let seen = app.requests();
    assert_eq!(
        seen.len(),
        7,
        "the earlier replay of /f/1 is not replayed again"
    );
    assert_eq!(seen[6].target, "/f/1");

    let nothing = run(&["replay", "--event", "nope"], data.path()).await;
    assert_eq!(nothing.code, Some(1));
    assert_eq!(nothing.stderr, "hooks: error: no captures match\n");
    listen.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_curl_export_run_by_sh_reproduces_the_request() {
    let (app, other, data) = (App::created().await, App::created().await, data_dir());
    let (_relay, mut listen, original) = capture_one(&app, data.path()).await;
    let to = other.target();
    let export = run(
        &["export", "1", "--format", "curl", "--to", &to],
        data.path(),
    )
    .await
    .success();
    let command = String::from_utf8(export.stdout.clone()).expect("the command is text");
    assert!(!command.contains('\u{1b}') && !command.contains('\0'));
    let mut sh = std::process::Command::new("sh");
    hermetic(&mut sh);
    let ran = tokio::process::Command::from(sh)
        .args(["-c", &command])
        .stdin(std::process::Stdio::null())
        .output();
    let ran = within("sh running the curl command", ran)
        .await
        .expect("run sh");
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(ran.status.success(), "{command}\n{stderr}");
    let seen = other.wait_for(1).await.remove(0);
    assert_eq!(seen.method, original.method);
    assert_eq!(seen.target, original.target);
    assert_eq!(seen.body, original.body, "every body byte");
    assert_eq!(
        seen.headers_but_host(),
        original.headers_but_host(),
        "{command}"
    );
    listen.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_raw_export_parses_back_to_the_same_request() {
    let (app, data) = (App::created().await, data_dir());
    let (_relay, mut listen, original) = capture_one(&app, data.path()).await;
    let raw = run(&["export", "last", "--format", "raw"], data.path())
        .await
        .success();
    let head_end = raw
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("blank line");
    assert!(raw
        .stdout
        .starts_with(format!("PATCH {PATH} HTTP/1.1\r\nHost: ").as_bytes()));
    assert_eq!(
        raw.stdout[head_end + 4..],
        all_bytes(4)[..],
        "the body follows the blank line"
    );
    // The app's own HTTP parser (hyper) reads the bytes back.
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect to app");
    stream
        .write_all(&raw.stdout)
        .await
        .expect("send raw request");
    let seen = app.wait_for(2).await;
    assert_eq!(seen[1], original);
    drop(stream);
    listen.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_har_export_holds_the_request_and_the_response() {
    let (app, data) = (App::created().await, data_dir());
    let (_relay, mut listen, _) = capture_one(&app, data.path()).await;
    let har = run(&["export", "1", "--format", "har"], data.path())
        .await
        .success();
    let har: Value = serde_json::from_slice(&har.stdout).expect("HAR is JSON");
    assert_eq!(har["log"]["version"], "1.2");
    assert_eq!(har["log"]["creator"]["name"], "hooks");
    let entry = &har["log"]["entries"][0];
    assert!(entry["startedDateTime"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    let request = &entry["request"];
    assert_eq!(request["method"], "PATCH");
    assert_eq!(request["url"], format!("http://{}{PATH}", app.target()));
    assert_eq!(request["httpVersion"], "HTTP/1.1");
    assert_eq!(
        request["queryString"],
        json!([
            {"name": "x", "value": "1"},
            {"name": "y", "value": "/ "},
            {"name": "x", "value": "2"},
        ])
    );
    let post = &request["postData"];
    assert_eq!(post["mimeType"], "application/octet-stream");
    assert_eq!(post["_encoding"], "base64");
    let body = BASE64
        .decode(post["text"].as_str().unwrap_or(""))
        .expect("base64");
    assert_eq!(body, all_bytes(4));
    assert_eq!(request["bodySize"], 1024);
    let response = &entry["response"];
    assert_eq!(response["status"], 201);
    assert_eq!(response["statusText"], "Created");
    assert_eq!(response["content"]["text"], r#"{"received":true}"#);
    assert_eq!(response["content"]["mimeType"], "application/json");
    let cookies: Vec<&Value> = response["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .filter(|h| h["name"] == "set-cookie")
        .map(|h| &h["value"])
        .collect();
    assert_eq!(cookies, [&json!("a=1"), &json!("b=2")]);
    listen.kill().await;
}

/// Issue 17, failure 4: the body was `printf`'s first argument, so a body starting with `-` (every
/// multipart/form-data body: `--boundary…`) was read as an option; curl sent nothing and the
/// script still exited 0. Each body here is captured, exported as curl, and run by `sh` against
/// a recording app, which must get every byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_curl_exports_keep_bodies_that_start_with_a_dash() {
    let (app, other, data) = (App::created().await, App::created().await, data_dir());
    let relay = start_relay(Config::default()).await;
    let mut listen = listen(&relay, &app.target(), data.path(), &[]).await;
    let multipart =
        b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\
        Content-Type: application/octet-stream\r\n\r\n\x00\xff\x1b-\r\n--XyZ--\r\n"
            .to_vec();
    let mut long_dash = b"-".repeat(5000);
    long_dash.extend_from_slice(b"-v x");
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("multipart/form-data; boundary=XyZ", multipart),
        ("text/plain", b"-n no newline".to_vec()),
        ("text/plain", b"--help".to_vec()),
        ("text/plain", b"-v".to_vec()),
        // Past the first printf chunk, the next chunk starts with a dash too.
        ("text/plain", long_dash),
        (
            "text/plain",
            b"it's \"q\" %s %% %b \\ \\n \\0101 $HOME `x` $(id)\nline 2\r\n\n\n".to_vec(),
        ),
    ];
    for (i, (content_type, body)) in bodies.iter().enumerate() {
        let headers: [(&str, &[u8]); 1] = [("content-type", content_type.as_bytes())];
        let url = format!("{}/form/{i}", listen.url);
        assert_eq!(send("POST", &url, &headers, body).await, 201);
        assert_eq!(listen.next_request().await["id"], i + 1);
    }
    let to = other.target();
    for (i, (_, body)) in bodies.iter().enumerate() {
        let id = (i + 1).to_string();
        let export = run(
            &["export", &id, "--format", "curl", "--to", &to],
            data.path(),
        )
        .await
        .success();
        let command = String::from_utf8(export.stdout).expect("the command is text");
        let mut sh = std::process::Command::new("sh");
        hermetic(&mut sh);
        let ran = tokio::process::Command::from(sh)
            .args(["-c", &command])
            .stdin(std::process::Stdio::null())
            .output();
        let ran = within("sh running the curl command", ran)
            .await
            .expect("run sh");
        let stderr = String::from_utf8_lossy(&ran.stderr);
        assert!(ran.status.success(), "{command}\n{stderr}");
        assert!(!stderr.contains("printf"), "{command}\n{stderr}");
        let seen = other.wait_for(i + 1).await.remove(i);
        assert_eq!(seen.target, format!("/form/{i}"));
        assert_eq!(
            seen.body,
            body[..],
            "body {i} arrives byte for byte\n{command}"
        );
    }
    listen.kill().await;
}
