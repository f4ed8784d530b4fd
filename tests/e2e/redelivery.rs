//! Issue 17: redelivery. A relay's request ids must never make `hooks listen` take a new webhook
//! for one it has handled (failure 1), and a request the CLI may have forwarded before it died
//! is forwarded again and flagged, never silently dropped nor silently repeated (the gap
//! "duplicates after the CLI is killed").
//!
//! The relay runs as `hooks relay` so it can be killed and restarted on the same address; the CLI
//! is the real `hooks listen`.

use crate::support::*;

/// Webhooks sent before and after the relay comes back.
const EACH: usize = 5;

/// Posts `<channel_url>/n/<seq>` with body `request <seq>`.
async fn send(sender: &Sender, channel_url: &str, seq: usize) -> Reply {
    sender
        .post(&format!("{channel_url}/n/{seq}"), format!("request {seq}"))
        .await
}

/// Issue 17, failure 1: a relay that comes back on the same address with an empty `--data-dir`
/// hands out request ids from 1 again. The CLI, still running, must take the new webhooks for
/// new ones and forward them, not acknowledge them as "already handled".
async fn relay_restarted_empty_while_the_cli_stays(respond: &str) {
    let app = App::ok().await;
    let data = tempfile::tempdir().expect("relay data dir");
    let mut relay = RelayProcess::start(data.path(), &[]).await;
    let target = format!("127.0.0.1:{}", app.port());
    let mut cli = spawn_listen(&[
        "--relay",
        &relay.url,
        "--forward-to",
        &target,
        "--channel",
        "restarted",
        "--respond",
        respond,
        "--timeout",
        "5s",
    ])
    .await;
    let sender = Sender::default();
    let expected = if respond == "app" { 200 } else { 202 };
    for seq in 0..EACH {
        let reply = send(&sender, &cli.url, seq).await;
        assert_eq!(reply.status, expected, "request {seq}: {}", reply.text());
    }
    // Handled, captured and acknowledged: the CLI remembers these ids.
    cli.next_requests(EACH).await;
    app.wait_for(EACH).await;

    relay.kill().await;
    let lost = cli.next_json().await;
    assert_eq!(lost["type"], "disconnected", "{lost}");
    // The same address, an empty queue: ids start again.
    std::fs::remove_dir_all(data.path()).expect("empty the data dir");
    std::fs::create_dir(data.path()).expect("recreate the data dir");
    relay.restart().await;
    let back = cli.next_json().await;
    assert_eq!(back["type"], "reconnected", "{back}");

    for seq in EACH..2 * EACH {
        let reply = send(&sender, &cli.url, seq).await;
        assert_eq!(reply.status, expected, "request {seq}: {}", reply.text());
    }
    let delivered = app
        .wait_until(STEP_TIMEOUT, |seen| seen.len() >= 2 * EACH)
        .await;
    let seen = match delivered {
        Ok(seen) => seen,
        Err(seen) => {
            let targets: Vec<&str> = seen.iter().map(|r| r.target.as_str()).collect();
            cli.fail(&format!(
                "after the relay came back empty, the app got only {targets:?}"
            ));
        }
    };
    // Forwarded concurrently, so in any order.
    let mut got: Vec<(String, String)> = seen
        .iter()
        .map(|r| {
            (
                r.target.clone(),
                String::from_utf8_lossy(&r.body).into_owned(),
            )
        })
        .collect();
    got.sort_by_key(|(target, _)| target["/n/".len()..].parse::<usize>().ok());
    let want: Vec<(String, String)> = (0..2 * EACH)
        .map(|seq| (format!("/n/{seq}"), format!("request {seq}")))
        .collect();
    assert_eq!(got, want, "each webhook once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_a_relay_back_with_an_empty_queue_gets_new_webhooks_through_in_202_mode() {
    relay_restarted_empty_while_the_cli_stays("202").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_a_relay_back_with_an_empty_queue_gets_new_webhooks_through_in_app_mode() {
    relay_restarted_empty_while_the_cli_stays("app").await;
}

/// `hooks listen --respond 202 --channel <channel>` forwarding to `app`, keeping its captures in
/// `data` (so a restart finds what the killed run committed).
async fn listen_in(relay_url: &str, app: &App, channel: &str, data: &std::path::Path) -> Listener {
    let target = format!("127.0.0.1:{}", app.port());
    let args = [
        "--relay",
        relay_url,
        "--forward-to",
        &target,
        "--channel",
        channel,
        "--respond",
        "202",
    ];
    let data = data.to_string_lossy();
    spawn_listen_env(&args, &[("HOOKS_DATA_DIR", &data)]).await
}

/// Issue 17, "duplicates after the CLI is killed": a request at the app when `hooks listen` is
/// killed (before it could record or acknowledge it) is delivered again to the next run, which
/// cannot rule out that the app saw it: it forwards it and says so, in its NDJSON line and in
/// the capture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_a_request_the_killed_cli_had_at_the_app_is_forwarded_again_and_flagged() {
    let (latch, hold) = latch();
    let app = App::start(move |_| Answer {
        hold: Some(hold.clone()),
        ..Answer::ok("ok")
    })
    .await;
    let relay = start_relay(relay_server::Config::default()).await;
    let data = tempfile::tempdir().expect("capture data dir");
    let mut cli = listen_in(&relay.url, &app, "flagged", data.path()).await;
    let sender = Sender::default();
    let reply = send(&sender, &cli.url, 0).await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    // At the app, its answer held: hooks has neither recorded nor acknowledged it.
    app.wait_for(1).await;
    cli.kill().await;
    wait_for_sessions(&relay.url, 0).await;
    latch.open();

    let mut cli = listen_in(&relay.url, &app, "flagged", data.path()).await;
    let seen = app.wait_for(2).await;
    assert_eq!(seen.len(), 2, "delivered again, once");
    assert_eq!(
        (seen[1].target.as_str(), &seen[1].body[..]),
        ("/n/0", &b"request 0"[..])
    );
    let line = cli.next_requests(1).await.remove(0);
    assert_eq!(line["path"], "/n/0", "{line}");
    assert_eq!(line["redelivered"], true, "{line}");
    let shown = run_hooks_env(
        &["show", "last", "--json"],
        &[("HOOKS_DATA_DIR", &data.path().to_string_lossy())],
    )
    .await;
    let shown: serde_json::Value = serde_json::from_str(&shown.stdout).expect("show --json");
    assert_eq!(
        shown["redelivered"], true,
        "the capture records it: {shown}"
    );

    // A new request is not flagged.
    let reply = send(&sender, &cli.url, 1).await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    let line = cli.next_requests(1).await.remove(0);
    assert_eq!(line["path"], "/n/1", "{line}");
    assert!(line.get("redelivered").is_none(), "{line}");
    assert_eq!(app.wait_for(3).await.len(), 3);
}

/// Issue 17: an answer the app gives after the relay came back with an empty queue belongs to a
/// request of the old epoch; the same id names a new webhook there, whose sender must get its
/// own answer, not that one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_an_answer_from_before_the_relay_came_back_empty_does_not_answer_a_new_webhook() {
    let (old_latch, old_hold) = latch();
    let (new_latch, new_hold) = latch();
    let app = App::start(move |request| Answer {
        hold: Some(if request.target == "/n/0" {
            old_hold.clone()
        } else {
            new_hold.clone()
        }),
        ..Answer::ok(request.target.clone())
    })
    .await;
    let data = tempfile::tempdir().expect("relay data dir");
    let mut relay = RelayProcess::start(data.path(), &[]).await;
    let target = format!("127.0.0.1:{}", app.port());
    let mut cli = spawn_listen(&[
        "--relay",
        &relay.url,
        "--forward-to",
        &target,
        "--channel",
        "epochs",
        "--timeout",
        "20s",
    ])
    .await;
    let sender = Sender::default();
    let old_url = format!("{}/n/0", cli.url);
    let old = tokio::spawn({
        let sender = sender.clone();
        async move {
            sender
                .try_send("POST", &old_url, &[], full("old"), STEP_TIMEOUT)
                .await
        }
    });
    app.wait_for(1).await;
    relay.kill().await;
    assert_eq!(cli.next_json().await["type"], "disconnected");
    std::fs::remove_dir_all(data.path()).expect("empty the data dir");
    std::fs::create_dir(data.path()).expect("recreate the data dir");
    relay.restart().await;
    assert_eq!(cli.next_json().await["type"], "reconnected");
    // Request 1 of the new epoch, at the app too.
    let new_url = format!("{}/n/5", cli.url);
    let new = tokio::spawn({
        let sender = sender.clone();
        async move { sender.post(&new_url, "new").await }
    });
    app.wait_for(2).await;
    // The old request's answer goes out first (its line is printed after it was sent).
    old_latch.open();
    let line = cli.next_requests(1).await.remove(0);
    assert_eq!(line["path"], "/n/0", "{line}");
    new_latch.open();
    let reply = new.await.expect("sender task");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "/n/5", "the new webhook's own answer");
    assert!(
        old.await.expect("sender task").is_err(),
        "the old sender's relay died"
    );
}
