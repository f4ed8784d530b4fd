//! Tests of the self-hosted relay as an operator runs it: TLS (HTTPS webhooks and WSS sessions)
//! with a private CA, tokens and reserved channels (also across a restart), channel names, the
//! limit statuses (413, 431, 429, 408, 404), health and Prometheus metrics (abuse at the HTTP
//! level is in `slow_peers.rs`), `--subdomains`, and `hooks relay --config FILE`.
//!
//! Every relay, app and raw client is on `127.0.0.1:0`; certificates are generated per test with
//! rcgen. Timings are printed for the record and only bounded generously, as liveness checks.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use relay_server::Config;

use crate::support::*;

/// `hooks listen` attached to `relay_url`, forwarding to `app`, with `extra` flags.
pub(crate) async fn attach(relay_url: &str, app: &App, extra: &[&str]) -> Listener {
    attach_env(relay_url, app, extra, &[]).await
}

/// [`attach`] with extra environment variables.
async fn attach_env(relay_url: &str, app: &App, extra: &[&str], env: &[(&str, &str)]) -> Listener {
    let target = format!("127.0.0.1:{}", app.port());
    let mut args = vec!["--relay", relay_url, "--forward-to", target.as_str()];
    args.extend_from_slice(extra);
    spawn_listen_env(&args, env).await
}

/// Runs `hooks listen --json --relay URL --forward-to 3000 <extra>`, expecting it to exit.
async fn listen_refused(relay_url: &str, extra: &[&str], env: &[(&str, &str)]) -> Finished {
    let mut args = vec![
        "listen",
        "--json",
        "--relay",
        relay_url,
        "--forward-to",
        "3000",
    ];
    args.extend_from_slice(extra);
    run_hooks_env(&args, env).await
}

/// Asserts `hooks listen` exited 1, printing nothing on stdout and exactly the relay's refusal
/// `reason` on stderr.
#[track_caller]
fn assert_refused(run: &Finished, reason: &str) {
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(
        run.stderr,
        format!("hooks: error: the relay refused the session: {reason}\n")
    );
    assert_eq!(run.stdout, "", "no ready line for a refused session");
}

/// The value of the sample `name` (with its labels, e.g. `hooks_requests_total{code="200"}`).
pub(crate) fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

/// `GET /_hooks/metrics` as text, checking status and content type.
pub(crate) async fn scrape(sender: &Sender, relay_url: &str) -> String {
    let reply = sender.get(&format!("{relay_url}/_hooks/metrics")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let content_type = reply.header("content-type");
    assert!(
        content_type
            .first()
            .is_some_and(|v| v.starts_with(b"text/plain")),
        "Prometheus text format: {:?}",
        reply.headers
    );
    reply.text()
}

/// The status code of a raw HTTP/1.1 response (`HTTP/1.1 431 …`).
pub(crate) fn raw_status(response: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(response.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.parse().ok()
}

fn is_url_safe(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

// ---------------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_webhook_and_wss_session_work_end_to_end() {
    let ca = TestCa::new();
    let app = App::start(|r| Answer {
        status: 201,
        headers: headers(&[("x-app", "tls")]),
        ..Answer::ok(format!("app got {} bytes", r.body.len()))
    })
    .await;
    let config = Config {
        tls: Some(ca.tls_files()),
        ..Config::default()
    };
    let relay = start_relay_on(bind_loopback().await, config).await;
    let base = format!("https://{}", relay.addr);
    let ca_pem = ca.ca_pem.to_str().expect("UTF-8 temp path");

    let mut listener = attach(&base, &app, &["--ca-cert", ca_pem]).await;

    assert_eq!(
        listener.url,
        format!("{base}/{}", listener.channel),
        "{}",
        listener.ready
    );
    let sender = TlsSender::new(&ca);
    let reply = sender
        .post(&format!("{}/stripe?x=1", listener.url), "secure payload")
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(reply.header("x-app"), [b"tls".as_slice()]);
    assert_eq!(reply.body, "app got 14 bytes");
    let seen = app.wait_for(1).await.remove(0);
    assert_eq!(seen.target, "/stripe?x=1");
    assert_eq!(seen.body, "secure payload");
    let line = listener.next_requests(1).await.remove(0);
    assert_eq!(line["status"], 201, "{line}");
    let health = sender.get(&format!("{base}/_hooks/health")).await;
    assert_eq!(health.status, 200, "{}", health.text());

    // Plain HTTP on the TLS port gets no HTTP answer, and the relay carries on.
    let (answer, closed) = raw_exchange(
        relay.addr,
        b"GET /_hooks/health HTTP/1.1\r\nHost: a\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(closed, "plain HTTP on the TLS port is dropped");
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    let again = sender.post(&listener.url, "after plain").await;
    assert_eq!(again.status, 201, "{}", again.text());
}

/// `hooks listen --relay https://…` against a relay whose CA it does not trust.
async fn listen_without_ca_cert() -> Finished {
    let ca = TestCa::new();
    let config = Config {
        tls: Some(ca.tls_files()),
        ..Config::default()
    };
    let relay = start_relay_on(bind_loopback().await, config).await;
    listen_refused(relay.url(), &[], &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_relay_with_an_untrusted_certificate_is_refused() {
    let run = listen_without_ca_cert().await;

    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.starts_with("hooks: error: "), "{run:?}");
    assert!(run.stderr.contains("certificate"), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert_eq!(run.stdout, "");
}

/// PRODUCT BUG (fails today): the `--ca-cert` hint never appears. `listen::describe` adds it only
/// for `tungstenite::Error::Tls`, but tokio-tungstenite reports a rustls handshake failure as
/// `Error::Io` (its `tls.rs`: `Err(e) => Err(Error::Io(e))`), so the user sees
/// "could not reach the relay at https://…: invalid peer certificate: unknownissuer" (the rustls
/// name lowercased too) and no hint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_relay_certificate_error_hints_at_ca_cert() {
    let run = listen_without_ca_cert().await;

    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("--ca-cert"), "{run:?}");
}

// ---------------------------------------------------------------------------------------------
// Tokens and channels
// ---------------------------------------------------------------------------------------------

/// A tokens file (with comments and blank lines) accepting `alpha-token` and `beta-token`.
fn tokens_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("tokens");
    std::fs::write(
        &path,
        "# CLI tokens of this relay\n\nalpha-token   # team a\n  beta-token\n# old-token\n",
    )
    .expect("write the tokens file");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_required_and_checked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        tokens_file: Some(tokens_file(dir.path())),
        ..Config::default()
    };
    let relay = start_relay(config).await;
    let app = App::ok().await;

    let missing = listen_refused(&relay.url, &[], &[]).await;
    assert_refused(
        &missing,
        "this relay requires a token: pass --token or set HOOKS_TOKEN",
    );
    // A wrong token is refused without being echoed, whether flag or variable, and a token
    // commented out in the file is not a token.
    let wrong = "this relay does not accept that token; check --token or HOOKS_TOKEN";
    let by_flag = listen_refused(&relay.url, &["--token", "gamma-token"], &[]).await;
    assert_refused(&by_flag, wrong);
    let commented = listen_refused(&relay.url, &["--token", "old-token"], &[]).await;
    assert_refused(&commented, wrong);
    let by_env = listen_refused(&relay.url, &[], &[("HOOKS_TOKEN", "nope")]).await;
    assert_refused(&by_env, wrong);

    let by_flag = attach(&relay.url, &app, &["--token", "alpha-token"]).await;
    let by_env = attach_env(&relay.url, &app, &[], &[("HOOKS_TOKEN", "beta-token")]).await;
    for listener in [&by_flag, &by_env] {
        let reply = Sender::default().post(&listener.url, "authorized").await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    assert_eq!(app.wait_for(2).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_channel_stays_with_its_token_while_attached_after_and_across_restarts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        tokens_file: Some(tokens_file(dir.path())),
        data_dir: Some(dir.path().join("data")),
        ..Config::default()
    };
    let app = App::ok().await;
    let relay = start_relay_on(bind_loopback().await, config.clone()).await;
    let claim = ["--channel", "team-x"];
    let as_b = ["--channel", "team-x", "--token", "beta-token"];

    let mut owner = attach(
        relay.url(),
        &app,
        &[&claim[..], &["--token", "alpha-token"]].concat(),
    )
    .await;
    assert_eq!(owner.channel, "team-x");
    let reserved = "channel team-x is reserved by another token; pick another --channel";
    let while_attached = listen_refused(relay.url(), &as_b, &[]).await;
    assert_refused(&while_attached, reserved);

    owner.terminate();
    assert_eq!(owner.wait_exit().await, Some(0), "{}", owner.stderr());
    wait_for_sessions(relay.url(), 0).await;
    let after_detach = listen_refused(relay.url(), &as_b, &[]).await;
    assert_refused(&after_detach, reserved);

    relay.stop().await;
    let relay = start_relay_on(bind_loopback().await, config).await;
    let after_restart = listen_refused(relay.url(), &as_b, &[]).await;
    assert_refused(&after_restart, reserved);
    let by_env = listen_refused(relay.url(), &claim, &[("HOOKS_TOKEN", "beta-token")]).await;
    assert_refused(&by_env, reserved);

    // The owner gets its channel back on the restarted relay.
    let back = attach_env(relay.url(), &app, &claim, &[("HOOKS_TOKEN", "alpha-token")]).await;
    assert_eq!(back.url, format!("{}/team-x", relay.url()));
    let reply = Sender::default().post(&back.url, "mine again").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_channels_are_long_url_safe_and_distinct() {
    let relay = start_relay(Config::default()).await;
    let app = App::ok().await;

    let one = attach(&relay.url, &app, &[]).await;
    let two = attach(&relay.url, &app, &[]).await;

    for channel in [&one.channel, &two.channel] {
        assert!(channel.len() >= 16, "16+ characters: {channel:?}");
        assert!(is_url_safe(channel), "[A-Za-z0-9_-]: {channel:?}");
        assert!(!channel.starts_with('_'), "'_' is the relay's: {channel:?}");
    }
    assert_ne!(one.channel, two.channel);
    assert_eq!(one.url, format!("{}/{}", relay.url, one.channel));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_channel_names_are_refused_with_the_rule() {
    let relay = start_relay(Config::default()).await;
    let long = "a".repeat(65);
    let cases = [
        (
            "_hooks",
            "channel names starting with '_' are reserved for the relay: \"_hooks\"",
        ),
        (
            "a/b",
            "channel name may only use letters, digits, '_' and '-', not '/': \"a/b\"",
        ),
        // A name of the wrong length is not quoted: it might be very long (issue 17).
        (
            long.as_str(),
            "channel name must be 1 to 64 characters long (got 65 bytes)",
        ),
    ];

    for (name, refusal) in cases {
        let run = listen_refused(&relay.url, &["--channel", name], &[]).await;
        // The CLI does not check names itself: the relay refuses the session (exit 1).
        assert_refused(&run, refusal);
    }
}

// ---------------------------------------------------------------------------------------------
// Statuses
// ---------------------------------------------------------------------------------------------

/// A request whose `X-Big` header value is `kib` KiB long, for channel `heads`.
fn request_with_header_of(kib: usize) -> String {
    let value = "v".repeat(kib * 1024);
    format!("POST /heads/x HTTP/1.1\r\nHost: a\r\nX-Big: {value}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

/// Sends `request` raw and returns the relay's status.
async fn raw_status_of(addr: SocketAddr, request: &[u8]) -> Option<u16> {
    let (answer, closed) = raw_exchange(addr, request, Duration::from_secs(10)).await;
    assert!(closed, "the relay closes the connection");
    raw_status(&answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_header_blocks_and_too_many_headers_are_431() {
    let app = App::ok().await;
    let relay = start_relay(Config::default()).await;
    let listener = attach(&relay.url, &app, &["--channel", "heads"]).await;

    let huge = request_with_header_of(200);
    assert_eq!(raw_status_of(relay.addr, huge.as_bytes()).await, Some(431));
    let mut many = String::from("POST /heads/x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n");
    for i in 0..150 {
        many.push_str(&format!("X-H{i}: {i}\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(raw_status_of(relay.addr, many.as_bytes()).await, Some(431));

    // A head just under the limit goes through, whole.
    let fits = "v".repeat(60 * 1024);
    let reply = Sender::default()
        .send(
            "POST",
            &format!("{}/x", listener.url),
            &headers(&[("x-big", &fits)]),
            full("fits"),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = app.wait_for(1).await;
    assert_eq!(seen.len(), 1, "oversized heads never reach the app");
    assert_eq!(seen[0].header("x-big"), [fits.as_bytes()]);
}

/// PRODUCT BUG (fails today): `max_header_bytes` (64 KiB by default) is not enforced as
/// documented; heads up to about twice that size are accepted and forwarded. `accept.rs` passes
/// the limit to hyper only as `max_buf_size`, which hyper checks only while a head is still
/// incomplete, so a head that completes in the read that crosses the limit is accepted (70 and
/// 100 KiB heads get 200; from about 128 KiB on, 431). hyper's `http1::Builder::max_header_size`
/// checks the parsed length exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_just_over_max_header_bytes_is_431() {
    let app = App::ok().await;
    let relay = start_relay(Config::default()).await;
    let _listener = attach(&relay.url, &app, &["--channel", "heads"]).await;

    let over = request_with_header_of(70);
    let status = raw_status_of(relay.addr, over.as_bytes()).await;

    assert_eq!(status, Some(431), "a 70 KiB head with the 64 KiB default");
    assert!(
        app.requests().is_empty(),
        "an oversized head reached the app"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_rate_is_429_with_retry_after() {
    let app = App::ok().await;
    let config = Config {
        rate: Some(2),
        ..Config::default()
    };
    let relay = start_relay(config).await;
    let listener = attach(&relay.url, &app, &[]).await;
    let sender = Sender::default();

    let mut statuses = Vec::new();
    let mut limited = Vec::new();
    for i in 0..5 {
        let reply = sender.post(&format!("{}/r/{i}", listener.url), "x").await;
        statuses.push(reply.status);
        if reply.status == 429 {
            limited.push(reply);
        }
    }

    assert!(!limited.is_empty(), "at least one 429 among {statuses:?}");
    assert!(
        statuses.iter().all(|s| [200, 429].contains(s)),
        "{statuses:?}"
    );
    assert_eq!(statuses[0], 200, "the first webhook is within the rate");
    for reply in &limited {
        let retry = reply.header("retry-after");
        let seconds = retry
            .first()
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<u64>().ok());
        assert!(
            seconds.is_some_and(|s| s >= 1),
            "Retry-After in seconds: {:?}",
            reply.headers
        );
        assert!(reply.text().contains("--rate"), "{:?}", reply.text());
    }
    let passed = statuses.iter().filter(|&&s| s == 200).count();
    assert_eq!(app.requests().len(), passed, "429s never reach the app");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_channels_and_relay_paths_are_404() {
    let relay = start_relay(Config::default()).await;
    let sender = Sender::default();

    for path in [
        "/nobody/x",
        "/nobody",
        "/_hooks/nope",
        "/_hooks",
        "/_hooks/v2/connect",
        "/",
    ] {
        let reply = sender.post(&format!("{}{path}", relay.url), "x").await;
        assert_eq!(reply.status, 404, "{path}: {}", reply.text());
        assert!(
            reply.text().ends_with('\n') && reply.text().lines().count() == 1,
            "{path}: {:?}",
            reply.text()
        );
    }
    let unknown = sender.post(&format!("{}/nobody/x", relay.url), "x").await;
    assert!(unknown.text().contains("nobody"), "{:?}", unknown.text());
}

// ---------------------------------------------------------------------------------------------
// Health and metrics
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_report_the_relay() {
    let app = App::ok().await;
    let relay = start_relay(Config::default()).await;
    let sender = Sender::default();

    let health = sender.get(&format!("{}/_hooks/health", relay.url)).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.text().trim_end(), "ok");

    let idle = scrape(&sender, &relay.url).await;
    assert_eq!(sample(&idle, "hooks_sessions"), Some(0.0), "{idle}");
    assert_eq!(
        sample(&idle, "hooks_request_bytes_total"),
        Some(0.0),
        "{idle}"
    );
    assert_eq!(
        sample(&idle, "hooks_requests_total{code=\"200\"}"),
        None,
        "{idle}"
    );

    let listener = attach(&relay.url, &app, &[]).await;
    let attached = scrape(&sender, &relay.url).await;
    assert_eq!(sample(&attached, "hooks_sessions"), Some(1.0), "{attached}");
    assert_eq!(sample(&attached, "hooks_channels"), Some(1.0), "{attached}");

    for body in ["first body", "second"] {
        let reply = sender.post(&format!("{}/m", listener.url), body).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let missing = sender.post(&format!("{}/nobody/m", relay.url), "x").await;
    assert_eq!(missing.status, 404);
    app.wait_for(2).await;

    let after = scrape(&sender, &relay.url).await;
    let count = |name: &str| sample(&after, name).unwrap_or_else(|| panic!("no {name}:\n{after}"));
    assert_eq!(count("hooks_requests_total{code=\"200\"}"), 2.0, "{after}");
    assert_eq!(count("hooks_requests_total{code=\"404\"}"), 1.0, "{after}");
    assert_eq!(
        count("hooks_request_bytes_total"),
        16.0,
        "body bytes of the two webhooks"
    );
    assert!(count("hooks_response_bytes_total") > 0.0, "{after}");
    assert_eq!(
        count("hooks_request_duration_seconds_bucket{le=\"+Inf\"}"),
        3.0,
        "{after}"
    );
    assert_eq!(
        count("hooks_request_duration_seconds_count"),
        3.0,
        "{after}"
    );
    assert!(
        count("hooks_request_duration_seconds_bucket{le=\"30\"}") <= 3.0,
        "{after}"
    );
    assert_eq!(count("hooks_sessions"), 1.0, "{after}");
    for kind in [
        "# TYPE hooks_requests_total counter",
        "# TYPE hooks_request_duration_seconds histogram",
        "# TYPE hooks_sessions gauge",
        "# TYPE hooks_queue_depth gauge",
    ] {
        assert!(after.contains(kind), "{kind}:\n{after}");
    }

    // The queue drains once the CLI acknowledges; with no CLI attached, webhooks wait in it.
    wait_for_sample(&sender, &relay.url, "hooks_queue_depth", 0.0).await;
    let mut listener = listener;
    listener.terminate();
    assert_eq!(listener.wait_exit().await, Some(0), "{}", listener.stderr());
    wait_for_sessions(&relay.url, 0).await;
    let queued = sender
        .post(&format!("{}/later", listener.url), "later")
        .await;
    assert_eq!(queued.status, 202, "{}", queued.text());
    let offline = scrape(&sender, &relay.url).await;
    assert_eq!(
        sample(&offline, "hooks_queue_depth"),
        Some(1.0),
        "{offline}"
    );
    assert_eq!(
        sample(&offline, "hooks_request_bytes_total"),
        Some(21.0),
        "{offline}"
    );
}

/// Scrapes until the sample `name` reads `want` (at most [`STEP_TIMEOUT`]).
async fn wait_for_sample(sender: &Sender, relay_url: &str, name: &str, want: f64) {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let metrics = scrape(sender, relay_url).await;
        if sample(&metrics, name) == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not reach {want} within {STEP_TIMEOUT:?}:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// --subdomains
// ---------------------------------------------------------------------------------------------

/// A relay with `--subdomains` and public URL `http://relay.test:PORT` on its own port.
async fn subdomain_relay() -> (Relay, u16) {
    let listener = bind_loopback().await;
    let port = listener.local_addr().expect("address").port();
    let config = Config {
        subdomains: true,
        public_url: Some(format!("http://relay.test:{port}")),
        ..Config::default()
    };
    (start_relay_on(listener, config).await, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subdomains_route_by_host() {
    let app = App::ok().await;
    let (relay, port) = subdomain_relay().await;
    let listener = attach(relay.url(), &app, &["--channel", "team-sub"]).await;
    let host = format!("team-sub.relay.test:{port}");

    assert_eq!(listener.url, format!("http://{host}"), "{}", listener.ready);
    let sender = Sender::default();
    let reply = sender
        .send(
            "POST",
            &format!("{}/hook?x=1", relay.url()),
            &headers(&[("host", &host)]),
            full("by host"),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = app.wait_for(1).await.remove(0);
    assert_eq!(seen.target, "/hook?x=1");
    assert_eq!(seen.body, "by host");

    // Path-style URLs keep working, and other hosts' subdomains are not channels.
    let by_path = sender
        .post(&format!("{}/team-sub/p", relay.url()), "by path")
        .await;
    assert_eq!(by_path.status, 200, "{}", by_path.text());
    assert_eq!(app.wait_for(2).await[1].target, "/p");
    let other = sender
        .send(
            "POST",
            &format!("{}/hook", relay.url()),
            &headers(&[("host", &format!("nobody.relay.test:{port}"))]),
            full("x"),
        )
        .await;
    assert_eq!(other.status, 404, "{}", other.text());
}

/// PRODUCT BUG (fails today): with `--subdomains`, the URL printed for a random channel does
/// not reach it. Random channels mix upper and lower case (base64url), the printed URL keeps
/// that case, but `route::subdomain_channel` lowercases the `Host` label before looking the
/// channel up, so the lookup misses and the sender gets 404. (DNS is case-insensitive, so
/// providers may lowercase the host anyway: names used as subdomains need to be lowercase.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subdomain_url_of_a_random_channel_reaches_it() {
    let app = App::ok().await;
    let (relay, port) = subdomain_relay().await;
    let listener = attach(relay.url(), &app, &[]).await;
    let host = listener
        .url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("printed URL: {}", listener.url))
        .to_owned();
    assert_eq!(host, format!("{}.relay.test:{port}", listener.channel));

    let reply = Sender::default()
        .send(
            "POST",
            &format!("{}/hook", relay.url()),
            &headers(&[("host", &host)]),
            full("random"),
        )
        .await;

    assert_eq!(
        reply.status,
        200,
        "the printed URL {} must reach channel {:?}: {}",
        listener.url,
        listener.channel,
        reply.text()
    );
}

// ---------------------------------------------------------------------------------------------
// hooks relay --config FILE
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_command_reads_its_config_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("relay.toml");
    std::fs::write(
        &file,
        "# relay settings\nlisten = \"127.0.0.1:0\"\nmax-body = 100\ndata-dir = \"data\"\n",
    )
    .expect("write the config file");
    let app = App::start(|r| Answer::ok(r.body.clone())).await;

    let relay = RelayProcess::command(&["--config", file.to_str().expect("UTF-8 path")]).await;

    let port = relay
        .url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|p| p.parse::<u16>().ok());
    assert!(
        port.is_some_and(|p| p != 0),
        "first line is `listening on http://127.0.0.1:PORT`: {:?}",
        relay.first_line
    );
    let listener = attach(&relay.url, &app, &[]).await;
    let sender = Sender::default();
    let small = sender
        .post(&format!("{}/ok", listener.url), vec![b'a'; 100])
        .await;
    assert_eq!(small.status, 200, "{}", small.text());
    let big = sender
        .post(&format!("{}/big", listener.url), vec![b'b'; 200])
        .await;
    assert_eq!(big.status, 413, "{}", big.text());
    assert!(big.text().contains("100"), "{:?}", big.text());
    assert!(
        dir.path().join("data").is_dir(),
        "data-dir is relative to the file; relay log:\n{}",
        relay.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_command_rejects_unknown_config_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("relay.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nmax-bodyy = 100\n").expect("write");

    let run = run_hooks(&["relay", "--config", file.to_str().expect("UTF-8 path")]).await;

    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.starts_with("hooks: error: "), "{run:?}");
    assert!(run.stderr.contains("max-bodyy"), "names the key: {run:?}");
    assert!(run.stderr.contains("relay.toml"), "names the file: {run:?}");
    assert_eq!(run.stdout, "", "no listening line");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_relay_on_the_same_data_dir_is_refused_before_it_announces_itself() {
    let data = tempfile::tempdir().unwrap();
    let first = RelayProcess::start(data.path(), &[]).await;
    let dir = data.path().to_string_lossy().into_owned();
    let second = run_hooks(&["relay", "--listen", "127.0.0.1:0", "--data-dir", &dir]).await;
    assert_eq!(second.code, Some(1), "{second:?}");
    assert!(
        second.stderr.contains("another relay is using it"),
        "{}",
        second.stderr
    );
    assert!(
        !second.stdout.contains("listening on"),
        "a relay that did not start announced itself: {}",
        second.stdout
    );
    // The first relay keeps its queue and goes on serving.
    let health = Sender::default()
        .get(&format!("{}/_hooks/health", first.url))
        .await;
    assert_eq!(health.status, 200, "{}", health.text());
}
