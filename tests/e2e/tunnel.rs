//! End-to-end tests of the tunnel: a provider (an HTTP client) sends to an in-process relay, the
//! real `hooks listen` binary forwards to a recording app, and the answer travels back.
//!
//! These check the fidelity invariant of DESIGN.md (method, path, query, headers and body bytes
//! arrive exactly; only hop-by-hop headers and `Host` change), the NDJSON contract of `--json`, and
//! the one-line errors of the relay and the CLI.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use relay_server::Config;
use serde_json::Value;

use crate::support::*;

/// A relay with `config`, and `hooks listen` attached to it forwarding to `target`.
async fn tunnel_to(config: Config, target: &str, extra: &[&str]) -> (Relay, Listener) {
    let relay = start_relay(config).await;
    let mut args = vec!["--relay", relay.url.as_str(), "--forward-to", target];
    args.extend_from_slice(extra);
    let listener = spawn_listen(&args).await;
    (relay, listener)
}

/// A default relay and `hooks listen --forward-to 127.0.0.1:<app port>`.
async fn tunnel(app: &App) -> (Relay, Listener) {
    tunnel_to(Config::default(), &format!("127.0.0.1:{}", app.port()), &[]).await
}

/// Whether `body` is exactly one line of text ending in a newline.
fn is_one_line(body: &[u8]) -> bool {
    body.ends_with(b"\n") && body.iter().filter(|&&b| b == b'\n').count() == 1
}

fn all_byte_values(repeat: usize) -> Vec<u8> {
    (0..=255u8).cycle().take(256 * repeat).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_bodies_arrive_byte_exact_both_ways() {
    let request_body = all_byte_values(16);
    let response_body: Vec<u8> = all_byte_values(16).into_iter().rev().collect();
    assert!(std::str::from_utf8(&request_body).is_err(), "not UTF-8");
    let answer = Bytes::from(response_body.clone());
    let app = App::start(move |_| Answer {
        headers: headers(&[("content-type", "application/octet-stream")]),
        ..Answer::ok(answer.clone())
    })
    .await;
    let (_relay, mut listener) = tunnel(&app).await;

    let reply = Sender::default()
        .send(
            "POST",
            &format!("{}/bin", listener.url),
            &headers(&[("content-type", "application/octet-stream")]),
            full(request_body.clone()),
        )
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_same_bytes("response body at the sender", &reply.body, &response_body);
    let seen = app.wait_for(1).await;
    assert_eq!(seen.len(), 1);
    assert_same_bytes("request body at the app", &seen[0].body, &request_body);
    let length = request_body.len().to_string();
    assert_eq!(seen[0].header("content-length"), [length.as_bytes()]);
    let line = listener.next_requests(1).await.remove(0);
    assert_eq!(line["status"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_keep_repeats_and_order_and_drop_hop_by_hop() {
    let app = App::start(|_| Answer {
        headers: vec![
            ("set-cookie".into(), b"a=1; Path=/".to_vec()),
            ("x-between".into(), b"z".to_vec()),
            ("set-cookie".into(), b"b=2; HttpOnly".to_vec()),
            ("x-app-bin".into(), b"\xfe\xff raw".to_vec()),
        ],
        ..Answer::ok("ok")
    })
    .await;
    let (_relay, listener) = tunnel(&app).await;

    let sent = vec![
        ("x-dup".to_owned(), b"1".to_vec()),
        ("x-dup".to_owned(), b"2".to_vec()),
        ("x-dup".to_owned(), b"3".to_vec()),
        ("connection".to_owned(), b"x-private".to_vec()),
        ("x-private".to_owned(), b"secret".to_vec()),
        ("x-latin1".to_owned(), b"caf\xe9".to_vec()),
        ("x-spaces".to_owned(), b"a  b\tc".to_vec()),
    ];
    let reply = Sender::default()
        .send(
            "POST",
            &format!("{}/h", listener.url),
            &sent,
            full("payload"),
        )
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.header("set-cookie"),
        [b"a=1; Path=/".as_slice(), b"b=2; HttpOnly".as_slice()],
        "both Set-Cookie headers, in order: {:?}",
        reply.headers
    );
    assert_eq!(reply.header("x-between"), [b"z".as_slice()]);
    assert_eq!(reply.header("x-app-bin"), [b"\xfe\xff raw".as_slice()]);

    let seen = app.wait_for(1).await.remove(0);
    assert_eq!(
        seen.header("x-dup"),
        [b"1".as_slice(), b"2", b"3"],
        "{:?}",
        seen.headers
    );
    let host = format!("127.0.0.1:{}", app.port());
    assert_eq!(seen.header("host"), [host.as_bytes()], "{:?}", seen.headers);
    assert_eq!(seen.header("x-latin1"), [b"caf\xe9".as_slice()]);
    assert_eq!(seen.header("x-spaces"), [b"a  b\tc".as_slice()]);
    assert!(
        seen.header("x-private").is_empty(),
        "a header named by Connection is hop-by-hop: {:?}",
        seen.headers
    );
    assert!(
        !seen
            .header("connection")
            .iter()
            .any(|v| v.eq_ignore_ascii_case(b"x-private")),
        "the sender's Connection header is hop-by-hop: {:?}",
        seen.headers
    );
    assert_eq!(seen.body, "payload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_and_query_arrive_exactly_under_the_base_path() {
    let app = App::ok().await;
    let target = format!("127.0.0.1:{}/base", app.port());
    let (_relay, mut listener) = tunnel_to(Config::default(), &target, &[]).await;
    let sender = Sender::default();
    let cases = [
        ("/a/b%20c/?x=1&y=%2F&x=2", "/base/a/b%20c/?x=1&y=%2F&x=2"),
        ("", "/base"),
        ("?q=1", "/base?q=1"),
        ("/", "/base/"),
        // Percent-encoded dots stay encoded; a whole segment of them is refused (issue 17,
        // hostile_peers.rs).
        (
            "/%E2%9C%93/%2e%2Ex?a=%00&b",
            "/base/%E2%9C%93/%2e%2Ex?a=%00&b",
        ),
    ];

    for (i, (suffix, _)) in cases.iter().enumerate() {
        let reply = sender.post(&format!("{}{suffix}", listener.url), "x").await;
        assert_eq!(reply.status, 200, "{suffix:?}: {}", reply.text());
        app.wait_for(i + 1).await;
    }

    let seen: Vec<String> = app.requests().into_iter().map(|r| r.target).collect();
    let want: Vec<&str> = cases.iter().map(|(_, want)| *want).collect();
    assert_eq!(seen, want);
    let first = listener.next_requests(1).await.remove(0);
    assert_eq!(first["path"], "/a/b%20c/?x=1&y=%2F&x=2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_root_maps_to_the_target_root() {
    let app = App::ok().await;
    let (_relay, listener) = tunnel(&app).await;
    let sender = Sender::default();

    for suffix in ["", "?q=1"] {
        let reply = sender.get(&format!("{}{suffix}", listener.url)).await;
        assert_eq!(reply.status, 200, "{suffix:?}: {}", reply.text());
    }

    let seen: Vec<String> = app
        .wait_for(2)
        .await
        .into_iter()
        .map(|r| r.target)
        .collect();
    assert_eq!(seen, ["/", "/?q=1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_status_headers_and_body_reach_the_sender() {
    let app = App::start(|_| Answer {
        status: 418,
        headers: headers(&[
            ("x-teapot", "short and stout"),
            ("content-type", "text/plain"),
        ]),
        ..Answer::ok("I'm a teapot")
    })
    .await;
    let (_relay, mut listener) = tunnel(&app).await;

    let reply = Sender::default()
        .post(&format!("{}/brew", listener.url), "coffee")
        .await;

    assert_eq!(reply.status, 418, "{}", reply.text());
    assert_eq!(reply.header("x-teapot"), [b"short and stout".as_slice()]);
    assert_eq!(reply.header("content-type"), [b"text/plain".as_slice()]);
    assert_eq!(reply.body, "I'm a teapot");
    let line = listener.next_requests(1).await.remove(0);
    assert_eq!(line["status"], 418, "{line}");
    assert!(line.get("error").is_none(), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_reaches_the_app_with_its_body() {
    let app = App::start(|r| Answer {
        headers: vec![("x-method".into(), r.method.clone().into_bytes())],
        ..Answer::ok(format!("answer to {}", r.method))
    })
    .await;
    let (_relay, mut listener) = tunnel(&app).await;
    let sender = Sender::default();
    let with_body = ["POST", "PUT", "PATCH", "DELETE", "GET", "OPTIONS"];

    for (i, method) in with_body.iter().enumerate() {
        let body = format!("{method} body");
        let reply = sender
            .send(
                method,
                &format!("{}/m", listener.url),
                &[],
                full(body.clone()),
            )
            .await;
        assert_eq!(reply.status, 200, "{method}: {}", reply.text());
        assert_eq!(reply.header("x-method"), [method.as_bytes()]);
        assert_eq!(reply.text(), format!("answer to {method}"));
        let seen = app.wait_for(i + 1).await.remove(i);
        assert_eq!(seen.method, *method);
        assert_eq!(seen.body, body, "{method}");
        let line = listener.next_requests(1).await.remove(0);
        assert_eq!(line["method"], *method, "{line}");
    }

    let reply = sender
        .send(
            "HEAD",
            &format!("{}/m", listener.url),
            &[],
            full(Bytes::new()),
        )
        .await;
    assert_eq!(reply.status, 200, "HEAD: {}", reply.text());
    assert_eq!(reply.header("x-method"), [b"HEAD".as_slice()]);
    assert!(reply.body.is_empty(), "a HEAD answer has no body");
    let length = "answer to HEAD".len().to_string();
    assert_eq!(
        reply.header("content-length"),
        [length.as_bytes()],
        "the app's Content-Length for HEAD comes back unchanged"
    );
    let seen = app.wait_for(with_body.len() + 1).await.pop().unwrap();
    assert_eq!(seen.method, "HEAD");
    assert!(seen.body.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_mebibyte_bodies_arrive_intact_both_ways() {
    const SIZE: usize = 10 * 1024 * 1024;
    let request_body = pseudo_random_bytes(SIZE, 0x5eed_0001);
    let response_body = Bytes::from(pseudo_random_bytes(SIZE, 0x5eed_0002));
    let answer = response_body.clone();
    let app = App::start(move |_| Answer::ok(answer.clone())).await;
    let (_relay, listener) = tunnel(&app).await;

    let reply = Sender::default()
        .post(&format!("{}/big", listener.url), request_body.clone())
        .await;

    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body[..reply.body.len().min(200)])
    );
    assert_same_bytes("response body at the sender", &reply.body, &response_body);
    let seen = app.wait_for(1).await;
    assert_same_bytes("request body at the app", &seen[0].body, &request_body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_on_one_session_each_get_their_own_answer() {
    const N: usize = 64;
    let app = App::start(|r| {
        // Later requests answer sooner, so answers come back out of order.
        let i: u64 = r.target.trim_start_matches("/c/").parse().unwrap_or(0);
        Answer {
            delay: Duration::from_millis((N as u64 - i) % 16 * 3),
            headers: vec![("x-echo-path".into(), r.target.clone().into_bytes())],
            ..Answer::ok(r.body.clone())
        }
    })
    .await;
    // A short --timeout turns a request the tunnel loses into a prompt 504 naming it, rather
    // than a hang until the test's own deadline.
    let target = format!("127.0.0.1:{}", app.port());
    let (_relay, mut listener) = tunnel_to(Config::default(), &target, &["--timeout", "5"]).await;
    let sender = Sender::default();

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..N {
        let sender = sender.clone();
        let url = format!("{}/c/{i}", listener.url);
        tasks.spawn(async move {
            let body = pseudo_random_bytes(1000 + i * 37, i as u64 + 1);
            let reply = sender.post(&url, body.clone()).await;
            (i, body, reply)
        });
    }
    let mut failed = Vec::new();
    let mut answered = 0;
    while let Some(joined) = tasks.join_next().await {
        let (i, body, reply) = joined.expect("sender task");
        if reply.status != 200 {
            failed.push((i, reply.status, reply.text()));
            continue;
        }
        assert_eq!(reply.header("x-echo-path"), [format!("/c/{i}").as_bytes()]);
        assert_same_bytes(&format!("answer to request {i}"), &reply.body, &body);
        answered += 1;
    }
    failed.sort();
    assert!(
        failed.is_empty(),
        "{} of {N} concurrent requests were not answered by the app (the app saw {}): {failed:?}",
        failed.len(),
        app.requests().len(),
    );
    assert_eq!(answered, N);

    let seen = app.wait_for(N).await;
    assert_eq!(seen.len(), N);
    let distinct: HashSet<&Bytes> = seen.iter().map(|r| &r.body).collect();
    assert_eq!(distinct.len(), N, "the app saw {N} distinct bodies");
    let lines = listener.next_requests(N).await;
    let ids: HashSet<u64> = lines.iter().filter_map(|l| l["id"].as_u64()).collect();
    assert_eq!(ids.len(), N, "one request line with a distinct id each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_relay_listen_embeds_one_on_loopback() {
    let app = App::start(|r| Answer::ok(r.body.clone())).await;
    let port = app.port().to_string();
    let mut listener = spawn_listen(&["--forward-to", &port]).await;

    assert_eq!(listener.ready["embedded_relay"], true, "{}", listener.ready);
    let url = listener.url.clone();
    assert!(
        ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"]
            .iter()
            .any(|prefix| url.starts_with(prefix)),
        "embedded relay URL is on loopback: {url}"
    );
    let reply = Sender::default().post(&format!("{url}/e"), "hello").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.body, "hello");
    let seen = app.wait_for(1).await.remove(0);
    assert_eq!(seen.body, "hello");
    assert_eq!(seen.target, "/e");
    assert_eq!(
        seen.header("host"),
        [format!("localhost:{port}").as_bytes()]
    );
    let line = listener.next_requests(1).await.remove(0);
    assert_eq!(line["status"], 200, "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_down_gives_502_with_a_one_line_reason() {
    let port = closed_port();
    let target = format!("127.0.0.1:{port}");
    let (_relay, mut listener) = tunnel_to(Config::default(), &target, &[]).await;

    let reply = Sender::default()
        .post(&format!("{}/down", listener.url), "x")
        .await;

    assert_eq!(reply.status, 502, "{}", reply.text());
    let text = reply.text();
    assert!(is_one_line(&reply.body), "one line: {text:?}");
    assert!(text.contains(&target), "mentions the target: {text:?}");
    assert!(
        text.contains("is your app listening on"),
        "has the hint: {text:?}"
    );
    let line = listener.next_requests(1).await.remove(0);
    assert_eq!(line["status"], 502, "{line}");
    assert_eq!(line["path"], "/down", "{line}");
    let error = line["error"].as_str().unwrap_or_default();
    assert!(error.contains(&target), "error names the target: {line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_is_one_object_per_line() {
    let app = App::ok().await;
    let (relay, mut listener) = tunnel(&app).await;

    let ready = listener.ready.clone();
    assert_eq!(ready["type"], "ready");
    assert_eq!(ready["embedded_relay"], false, "{ready}");
    let channel = listener.channel.clone();
    assert!(
        channel.len() >= 16
            && channel
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
        "a random channel is 16+ URL-safe characters: {channel:?}"
    );
    assert!(listener.url.ends_with(&format!("/{channel}")), "{ready}");
    assert!(listener.url.starts_with(&relay.url), "{ready}");
    let forward_to = ready["forward_to"].as_str().unwrap_or_default();
    assert!(forward_to.contains(&app.port().to_string()), "{ready}");

    let sender = Sender::default();
    let sent = [
        ("POST", "/a/b?x=1&y=2"),
        ("PUT", "/z"),
        ("DELETE", "/a%20b?c"),
    ];
    for (method, path) in sent {
        let url = format!("{}{path}", listener.url);
        let reply = sender.send(method, &url, &[], full("body")).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let lines = listener.next_requests(sent.len()).await;

    let mut ids = HashSet::new();
    for (line, (method, path)) in lines.iter().zip(sent) {
        assert_eq!(line["method"], method, "{line}");
        assert_eq!(line["path"], path, "{line}");
        assert_eq!(line["status"], 200, "{line}");
        assert!(line["id"].is_u64() || line["id"].is_string(), "{line}");
        assert!(
            ids.insert(line["id"].to_string()),
            "ids are distinct: {line}"
        );
        let ms = line["duration_ms"].as_f64();
        assert!(ms.is_some_and(|ms| ms >= 0.0), "{line}");
        assert!(line.get("error").is_none(), "{line}");
    }

    // SIGTERM ends listen cleanly; whatever it prints on the way out is JSON too.
    listener.terminate();
    while let Some(line) = listener.next_line_or_eof().await {
        let parsed: Result<Value, _> = serde_json::from_str(&line);
        assert!(
            parsed.is_ok_and(|v| v.is_object()),
            "stdout line is JSON: {line:?}"
        );
    }
    assert_eq!(listener.wait_exit().await, Some(0), "{}", listener.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requested_channel_is_honoured_and_exclusive() {
    let app = App::ok().await;
    let target = format!("127.0.0.1:{}", app.port());
    let (relay, listener) = tunnel_to(Config::default(), &target, &["--channel", "my-name"]).await;

    assert_eq!(listener.channel, "my-name");
    assert_eq!(listener.url, format!("{}/my-name", relay.url));

    let second = run_hooks(&[
        "listen",
        "--json",
        "--relay",
        &relay.url,
        "--forward-to",
        &target,
        "--channel",
        "my-name",
    ])
    .await;
    assert_eq!(second.code, Some(1), "{second:?}");
    assert!(second.stderr.contains("in use"), "{second:?}");
    assert!(second.stderr.starts_with("hooks: error: "), "{second:?}");
    assert_eq!(second.stdout, "", "no ready line for a refused session");

    // The first session still holds the channel.
    let reply = Sender::default().post(&listener.url, "still mine").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(app.wait_for(1).await[0].body, "still mine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_channel_is_404_with_one_line() {
    let relay = start_relay(Config::default()).await;

    let reply = Sender::default()
        .post(&format!("{}/nobody-here/x", relay.url), "x")
        .await;

    assert_eq!(reply.status, 404, "{}", reply.text());
    assert!(is_one_line(&reply.body), "{:?}", reply.text());
    assert!(reply.text().contains("nobody-here"), "{:?}", reply.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_max_body_are_413_with_the_limit() {
    let app = App::start(|r| Answer::ok(r.body.clone())).await;
    let config = Config {
        max_body: 1024,
        ..Config::default()
    };
    let target = format!("127.0.0.1:{}", app.port());
    let (_relay, listener) = tunnel_to(config, &target, &[]).await;
    let sender = Sender::default();
    let url = format!("{}/limit", listener.url);

    let at_limit = pseudo_random_bytes(1024, 7);
    let reply = sender.post(&url, at_limit.clone()).await;
    assert_eq!(
        reply.status,
        200,
        "exactly max_body is allowed: {}",
        reply.text()
    );
    assert_same_bytes("echo of a max_body request", &reply.body, &at_limit);

    let declared = sender.post(&url, pseudo_random_bytes(1025, 8)).await;
    let streamed = sender
        .send(
            "POST",
            &url,
            &[],
            chunked(vec![
                Bytes::from(pseudo_random_bytes(700, 9)),
                Bytes::from(pseudo_random_bytes(700, 10)),
            ]),
        )
        .await;

    for (how, reply) in [("content-length", declared), ("chunked", streamed)] {
        assert_eq!(reply.status, 413, "{how}: {}", reply.text());
        assert!(is_one_line(&reply.body), "{how}: {:?}", reply.text());
        assert!(reply.text().contains("1024"), "{how}: {:?}", reply.text());
    }
    assert_eq!(
        app.requests().len(),
        1,
        "oversized requests never reach the app"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_health_endpoint_answers_200() {
    let relay = start_relay(Config::default()).await;

    let reply = Sender::default()
        .get(&format!("{}/_hooks/health", relay.url))
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[test]
fn unreachable_relay_exits_1_with_a_clear_error() {
    let port = closed_port();
    let relay = format!("http://127.0.0.1:{port}");
    let data = tempfile::tempdir().expect("temp dir");

    let output = assert_cmd::Command::from_std(hooks_std_command(
        &["listen", "--relay", &relay, "--forward-to", "3000"],
        data.path(),
    ))
    .timeout(STEP_TIMEOUT)
    .output()
    .expect("run hooks");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "hooks: error: could not reach the relay at {relay}"
        )),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn bad_forward_to_is_a_usage_error() {
    let data = tempfile::tempdir().expect("temp dir");

    let output = assert_cmd::Command::from_std(hooks_std_command(
        &["listen", "--forward-to", "abc:xyz"],
        data.path(),
    ))
    .timeout(STEP_TIMEOUT)
    .output()
    .expect("run hooks");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("abc:xyz"), "{stderr}");
    assert!(stderr.contains("--forward-to"), "{stderr}");
}

/// Issue 18: with stdout a pipe nobody reads (`hooks listen -v | less`, paused), every webhook
/// is still forwarded and answered, and what waits for the terminal is bounded: the requests it
/// could not hold are counted, and once the pipe is drained hooks says how many it did not show.
/// (Before, every exchange, bodies included, waited in memory for the terminal.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issue_18_a_terminal_not_read_costs_bounded_memory_and_says_what_it_skipped() {
    use tokio::io::{AsyncBufReadExt as _, BufReader};
    const WEBHOOKS: usize = 320;
    const BODY: usize = 256 * 1024;
    let app = App::ok().await;
    let relay = start_relay(Config::default()).await;
    let data = tempfile::tempdir().expect("temp data dir");
    let forward_to = format!("127.0.0.1:{}", app.port());
    let args = [
        "listen",
        "-v",
        "--relay",
        &relay.url,
        "--forward-to",
        &forward_to,
    ];
    let mut child = hooks_command(&args, data.path())
        .spawn()
        .expect("spawn hooks listen");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
    // Human output says where to send on stderr; stdout is left unread for now.
    let url = within("the ready line on stderr", async {
        loop {
            let line = stderr.next_line().await.expect("stderr").expect("a line");
            if let Some(rest) = line.strip_prefix("Ready: forwarding ") {
                break rest.split(' ').next().expect("a URL").to_owned();
            }
        }
    })
    .await;
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });

    let sender = Sender::default();
    // Text, so that each is 40 lines on the terminal (`--max-body-lines`): the pipe fills soon.
    let text: String = (0..)
        .map(|i| format!("line {i:08}\n"))
        .take(BODY / 14)
        .collect();
    let body = Bytes::from(text);
    let mut statuses = Vec::new();
    // Eight at a time.
    for batch in 0..WEBHOOKS / 8 {
        let sends = (0..8).map(|i| {
            let (sender, body) = (sender.clone(), body.clone());
            let url = format!("{url}/big/{}", batch * 8 + i);
            let text = headers(&[("content-type", "text/plain")]);
            tokio::spawn(async move { sender.send("POST", &url, &text, full(body)).await.status })
        });
        for send in sends {
            statuses.push(send.await.expect("send task"));
        }
    }
    assert_eq!(statuses, [200; WEBHOOKS]);
    assert_eq!(app.requests().len(), WEBHOOKS);

    // Drained at last: the lines it kept, then how many it did not show, add up to all of them.
    let mut lines = BufReader::new(stdout).lines();
    let (mut shown, mut skipped) = (0, 0);
    while shown + skipped < WEBHOOKS {
        let line = within("the next line on stdout", lines.next_line())
            .await
            .expect("stdout")
            .unwrap_or_else(|| panic!("stdout closed after {shown} shown, {skipped} skipped"));
        // The summary line (`12:00:00 POST /big/7  → 200 OK …`), not the `  > POST` detail.
        if line
            .get(8..)
            .is_some_and(|rest| rest.starts_with(" POST /big/"))
        {
            shown += 1;
        } else if let Some(rest) = line.strip_prefix("… ") {
            assert!(
                rest.ends_with(" not shown (the terminal fell behind); hooks list has them"),
                "{line}"
            );
            skipped += rest
                .split(' ')
                .next()
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or_else(|| panic!("no count in {line:?}"));
        }
    }
    assert!(
        skipped > 0,
        "the terminal fell behind, yet nothing was skipped"
    );
    assert!(shown > 0, "what the terminal could hold is shown");
    if let Some(pid) = child.id() {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let peak = status.lines().find(|l| l.starts_with("VmHWM"));
        eprintln!("{shown} shown, {skipped} skipped; hooks listen {peak:?}");
    }
}
