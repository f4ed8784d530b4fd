//! What one node promises, kept across nodes: webhooks at any node reach the CLI at another byte
//! for byte with the app's answer back, queue while it is away and arrive in order, follow its
//! `--respond`, `--timeout` and `--offline`, keep a reserved channel to its token (also after
//! every node restarted) and carry a 10 MiB body both ways.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_carry_64_webhooks_at_once_from_two_nodes_to_the_cli_on_the_third() {
    let cluster = Cluster::start(3, &[]).await;
    let app = numbered_app().await;
    let _cli = listen(&cluster.relays(&[2]), "spread", &app, &[]).await;
    let sender = Sender::default();
    let mut sending = tokio::task::JoinSet::new();
    for seq in 0..64 {
        let url = cluster.channel_url(seq % 2, "spread");
        let sender = sender.clone();
        sending.spawn(async move {
            let reply = send_numbered(&sender, &url, seq, Duration::from_secs(30)).await;
            (seq, reply)
        });
    }
    while let Some(joined) = sending.join_next().await {
        let (seq, reply) = joined.expect("sender task");
        let reply = reply.unwrap_or_else(|e| panic!("request {seq}: {e}\n{}", cluster.logs()));
        assert_eq!(reply.status, 200, "request {seq}: {}", reply.text());
        assert_eq!(
            reply.text(),
            format!("answer {seq}"),
            "each sender gets its own answer"
        );
    }
    let seen = app.wait_for(64).await;
    let (count, corrupted) = tally(&seen);
    assert_eq!(count.len(), 64, "every request reached the app: {count:?}");
    assert!(count.values().all(|&n| n == 1), "once each: {count:?}");
    assert!(corrupted.is_empty(), "changed on the way: {corrupted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_away_gets_what_one_node_queued_in_order_when_it_attaches_to_another() {
    const QUEUED: usize = 20;
    // One request in flight at a time: the order the nodes deliver in is the order the app sees
    // (with more, the CLI forwards several at once).
    let cluster = Cluster::start(3, &["--max-in-flight", "1"]).await;
    let app = numbered_app().await;
    // Claims the channel through node 0, then goes.
    let mut cli = listen(&cluster.relays(&[0]), "away", &app, &[]).await;
    cli.terminate();
    assert_eq!(cli.wait_exit().await, Some(0), "{}", cli.stderr());
    wait_for_sessions(&cluster.nodes[0].url, 0).await;

    let sender = Sender::default();
    let url = cluster.channel_url(1, "away");
    for seq in 0..QUEUED {
        let reply = send_numbered(&sender, &url, seq, Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("request {seq}: {e}"));
        assert_eq!(reply.status, 202, "request {seq}: {}", reply.text());
        assert!(reply.text().starts_with("queued"), "{}", reply.text());
    }
    assert!(
        app.requests().is_empty(),
        "nothing reaches the app meanwhile"
    );

    let _cli = listen(&cluster.relays(&[2]), "away", &app, &[]).await;
    let seen = app.wait_for(QUEUED).await;
    let order: Vec<Option<usize>> = seen.iter().map(seq_of).collect();
    let want: Vec<Option<usize>> = (0..QUEUED).map(Some).collect();
    assert_eq!(order, want, "all of them, in the order they were sent");
    let (_, corrupted) = tally(&seen);
    assert!(corrupted.is_empty(), "changed on the way: {corrupted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_clis_settings_hold_at_every_node_respond_offline_and_timeout() {
    let cluster = Cluster::start(2, &[]).await;
    let app = App::start(|request| Answer {
        delay: Duration::from_millis(if request.target == "/slow" { 3000 } else { 0 }),
        ..Answer::ok("from the app")
    })
    .await;
    let sender = Sender::default();

    // --respond 202: the node without the session answers at once, and the app still gets it.
    let _fixed = listen(&cluster.relays(&[1]), "fixed", &app, &["--respond", "202"]).await;
    let reply = sender
        .post(&cluster.channel_url(0, "fixed"), "queued")
        .await;
    assert_eq!((reply.status, reply.text()), (202, String::new()));
    app.wait_for(1).await;

    // --timeout 1s: a sender at another node gets 504 from the app's slowness.
    let _slow = listen(&cluster.relays(&[1]), "slow", &app, &["--timeout", "1s"]).await;
    let url = format!("{}/slow", cluster.channel_url(0, "slow"));
    let reply = sender.post(&url, "wait").await;
    assert_eq!(reply.status, 504, "{}", reply.text());

    // --offline reject: once the CLI is gone, another node refuses with 503 and Retry-After.
    let mut strict = listen(
        &cluster.relays(&[1]),
        "strict",
        &app,
        &["--offline", "reject"],
    )
    .await;
    strict.terminate();
    assert_eq!(strict.wait_exit().await, Some(0), "{}", strict.stderr());
    wait_for_sessions(&cluster.nodes[1].url, 2).await;
    let reply = sender
        .post(&cluster.channel_url(0, "strict"), "refused")
        .await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_eq!(reply.header("retry-after"), [b"30".as_slice()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reserved_channel_is_refused_to_another_token_at_another_node_also_after_restarts() {
    let dir = tempfile::tempdir().expect("tokens folder");
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "token-a\ntoken-b\n").expect("write tokens");
    let tokens = tokens.to_string_lossy().into_owned();
    let mut cluster = Cluster::start(3, &["--tokens-file", &tokens]).await;
    let app = App::ok().await;
    let mut owner = listen(&cluster.relays(&[0]), "ours", &app, &["--token", "token-a"]).await;
    owner.terminate();
    assert_eq!(owner.wait_exit().await, Some(0), "{}", owner.stderr());
    wait_for_sessions(&cluster.nodes[0].url, 0).await;

    let refused_at = |cluster: &Cluster, node: usize| {
        let relays = cluster.relays(&[node]);
        let target = format!("127.0.0.1:{}", app.port());
        async move {
            let args = [
                "--relay",
                &relays,
                "--channel",
                "ours",
                "--token",
                "token-b",
                "--forward-to",
                &target,
            ];
            match try_spawn_listen(&args).await {
                Ok(_) => panic!("token-b got channel ours at node {node}"),
                Err(e) => assert!(e.contains("reserved by another token"), "{e}"),
            }
        }
    };
    refused_at(&cluster, 1).await;
    for node in &mut cluster.nodes {
        node.kill().await;
    }
    for node in &mut cluster.nodes {
        node.restart().await;
    }
    refused_at(&cluster, 2).await;
    let _owner = listen(&cluster.relays(&[2]), "ours", &app, &["--token", "token-a"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_10_mib_body_crosses_nodes_intact_both_ways() {
    let cluster = Cluster::start(2, &[]).await;
    // The app answers with the body it got: 10 MiB back through the nodes too.
    let app = App::start(|request| Answer::ok(request.body.clone())).await;
    let _cli = listen(&cluster.relays(&[1]), "large", &app, &[]).await;
    let body = pseudo_random_bytes(10 * 1024 * 1024, 0x10_0000);
    let url = format!("{}/upload", cluster.channel_url(0, "large"));
    let reply = Sender::default()
        .try_send(
            "POST",
            &url,
            &[],
            full(body.clone()),
            Duration::from_secs(60),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = app.wait_for(1).await;
    assert_same_bytes("the body at the app", &seen[0].body, &body);
    assert_same_bytes("the app's answer at the sender", &reply.body, &body);
}
