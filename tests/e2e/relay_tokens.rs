//! Tests of the relay's tokens and the lifetime of channels (issue 17): a token taken out of the
//! tokens file ends its sessions on SIGHUP and its `hooks listen` stops, a channel claimed while
//! the relay was open belongs to no token until the tokens file gives it to one, a `#` inside a
//! token is part of it, strangers cannot fill the session slots, and a channel no CLI attached
//! to for the retention is forgotten.
//!
//! Every relay, app and client is on `127.0.0.1:0`.

use std::time::Duration;

use relay_server::Config;

use crate::support::*;

/// `hooks listen` attached to `relay_url`, forwarding to `app`, with `extra` flags.
async fn attach(relay_url: &str, app: &App, extra: &[&str]) -> Listener {
    let target = format!("127.0.0.1:{}", app.port());
    let mut args = vec!["--relay", relay_url, "--forward-to", target.as_str()];
    args.extend_from_slice(extra);
    spawn_listen(&args).await
}

/// Runs `hooks listen --json --relay URL --forward-to 3000 <extra>`, expecting it to exit.
async fn listen_refused(relay_url: &str, extra: &[&str]) -> Finished {
    let mut args = vec![
        "listen",
        "--json",
        "--relay",
        relay_url,
        "--forward-to",
        "3000",
    ];
    args.extend_from_slice(extra);
    run_hooks(&args).await
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

/// Writes the tokens file at `path`.
fn write_tokens(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).expect("write the tokens file");
}

const WRONG_TOKEN: &str = "this relay does not accept that token; check --token or HOOKS_TOKEN";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_a_token_taken_out_of_the_file_ends_its_sessions_on_sighup() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens = dir.path().join("tokens");
    // A `#` inside a token is part of it; one after a space starts a comment.
    write_tokens(&tokens, "# team tokens\nalpha#1 # team a\nbeta-token\n");
    let tokens_arg = tokens.to_string_lossy().into_owned();
    let relay =
        RelayProcess::start(&dir.path().join("data"), &["--tokens-file", &tokens_arg]).await;
    let app = App::ok().await;
    let mut alpha = attach(&relay.url, &app, &["--token", "alpha#1"]).await;
    let beta = attach(&relay.url, &app, &["--token", "beta-token"]).await;
    let shortened = listen_refused(&relay.url, &["--token", "alpha"]).await;
    assert_refused(&shortened, WRONG_TOKEN);

    write_tokens(&tokens, "beta-token\n");
    relay.hangup();
    let line = alpha.next_json().await;
    assert_eq!(line["type"], "disconnected", "{line}");
    assert_eq!(line["reason"], "the relay no longer accepts this token");
    // Reconnecting with a token the relay refuses cannot succeed later: hooks stops.
    assert_eq!(alpha.wait_exit().await, Some(1));
    let stderr = alpha.final_stderr().await;
    assert!(
        stderr.ends_with(&format!(
            "hooks: error: the relay refused the session: {WRONG_TOKEN}\n"
        )),
        "{stderr}"
    );

    // The token still in the file keeps its session.
    let reply = Sender::default().post(&beta.url, "still here").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_a_channel_claimed_on_an_open_relay_goes_to_no_token_until_the_file_names_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let tokens = dir.path().join("tokens");
    write_tokens(&tokens, "alpha-token\nbeta-token\n");
    let tokens_arg = tokens.to_string_lossy().into_owned();
    let app = App::ok().await;

    // Claimed while the relay is open, then left with webhooks waiting.
    let mut open = RelayProcess::start(&data, &[]).await;
    let mut legacy = attach(&open.url, &app, &["--channel", "legacy"]).await;
    legacy.terminate();
    assert_eq!(legacy.wait_exit().await, Some(0), "{}", legacy.stderr());
    wait_for_sessions(&open.url, 0).await;
    let sender = Sender::default();
    let queued = sender.post(&format!("{}/legacy/a", open.url), "one").await;
    assert_eq!(queued.status, 202, "{}", queued.text());
    open.kill().await;

    // The relay now requires tokens: no token gets the channel by asking first.
    let mut relay = RelayProcess::start(&data, &["--tokens-file", &tokens_arg]).await;
    let ownerless = "channel legacy was claimed before this relay required tokens; \
                     the relay's operator can give it to a token in the tokens file";
    for token in ["alpha-token", "beta-token"] {
        let run = listen_refused(&relay.url, &["--channel", "legacy", "--token", token]).await;
        assert_refused(&run, ownerless);
    }
    // Its webhooks still queue: nothing is lost while the operator decides.
    let queued = sender.post(&format!("{}/legacy/b", relay.url), "two").await;
    assert_eq!(queued.status, 202, "{}", queued.text());
    assert!(
        relay
            .stderr()
            .contains("claimed before this relay required tokens"),
        "the relay says at start which channels no token may take:\n{}",
        relay.stderr()
    );

    // The operator gives it to beta; beta gets what waited, alpha is refused.
    write_tokens(&tokens, "alpha-token\nbeta-token channels=legacy\n");
    relay.kill().await;
    relay.restart().await;
    let run = listen_refused(
        &relay.url,
        &["--channel", "legacy", "--token", "alpha-token"],
    )
    .await;
    assert_refused(
        &run,
        "channel legacy is reserved by another token; pick another --channel",
    );
    let _beta = attach(
        &relay.url,
        &app,
        &["--channel", "legacy", "--token", "beta-token"],
    )
    .await;
    let got = app.wait_for(2).await;
    // The CLI forwards them side by side, so either may reach the app first.
    let mut bodies: Vec<&[u8]> = got.iter().map(|r| r.body.as_ref()).collect();
    bodies.sort();
    assert_eq!(bodies, [&b"one"[..], &b"two"[..]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_strangers_without_a_hello_do_not_take_the_session_slots() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens = dir.path().join("tokens");
    write_tokens(&tokens, "alpha-token\n");
    let config = Config {
        tokens_file: Some(tokens),
        max_sessions: 1,
        ..Config::default()
    };
    let relay = start_relay(config).await;
    let app = App::ok().await;
    // WebSocket sessions that never say hello (they would wait out the hello timeout).
    let url = format!(
        "ws://{}{}",
        relay.addr,
        relay_server::protocol::CONNECT_PATH
    );
    let mut strangers = Vec::new();
    for _ in 0..20 {
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("a stranger's WebSocket opens");
        strangers.push(ws);
    }
    let listener = attach(&relay.url, &app, &["--token", "alpha-token"]).await;
    let reply = Sender::default().post(&listener.url, "through").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    // The limit still holds for sessions that show a token.
    let second = listen_refused(&relay.url, &["--token", "alpha-token"]).await;
    assert_refused(
        &second,
        "this relay is at its limit of 1 sessions (--max-sessions); try again later",
    );
    drop(strangers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_a_channel_no_cli_attached_to_for_the_retention_is_forgotten() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens = dir.path().join("tokens");
    write_tokens(&tokens, "alpha-token\nbeta-token\n");
    let config = Config {
        tokens_file: Some(tokens),
        data_dir: Some(dir.path().join("data")),
        retention: Duration::from_secs(1),
        ..Config::default()
    };
    let relay = start_relay(config).await;
    let app = App::ok().await;
    let claim = ["--channel", "team-y"];
    let mut alpha = attach(
        &relay.url,
        &app,
        &[&claim[..], &["--token", "alpha-token"]].concat(),
    )
    .await;
    let run = listen_refused(
        &relay.url,
        &[&claim[..], &["--token", "beta-token"]].concat(),
    )
    .await;
    assert_refused(
        &run,
        "channel team-y is reserved by another token; pick another --channel",
    );
    alpha.terminate();
    assert_eq!(alpha.wait_exit().await, Some(0), "{}", alpha.stderr());

    wait_for_gauge(&relay.url, "hooks_channels", 0).await;
    let sender = Sender::default();
    let gone = sender
        .post(&format!("{}/team-y/x", relay.url), "late")
        .await;
    assert_eq!(gone.status, 404, "{}", gone.text());
    assert!(
        gone.text().contains("unknown channel \"team-y\""),
        "{}",
        gone.text()
    );

    // The name is free again, for any token.
    let other_app = App::ok().await;
    let beta = attach(
        &relay.url,
        &other_app,
        &[&claim[..], &["--token", "beta-token"]].concat(),
    )
    .await;
    let reply = sender.post(&beta.url, "new owner").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let got = other_app.requests();
    assert_eq!(got.len(), 1, "only the new owner's webhook: {got:?}");
}
