//! The relay as a cluster (issue 23): several `hooks relay --nats URL` nodes, each its own
//! process on 127.0.0.1:0 (so one can be killed with SIGKILL), over one real `nats-server -js`
//! on a free port with a temporary store; the real `hooks listen` with `--relay URL1,URL2,…`; a
//! recording app. A machine without `nats-server` fails these tests with the command that
//! installs it (`relay_server::testing::INSTALL`).
//!
//! Waits are on events (the relay's `listening on` line, the CLI's NDJSON lines, the app's
//! requests); where a state has no event (a node's health, its sessions) its endpoint is polled
//! with a deadline.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;
use relay_server::testing::NatsServer;

/// Nodes of a cluster over one NATS server, and the folders they were given.
struct Cluster {
    nats: NatsServer,
    nodes: Vec<RelayProcess>,
    _dirs: tempfile::TempDir,
}

impl Cluster {
    /// Starts NATS and `n` relay nodes over it, each with `extra` flags.
    async fn start(n: usize, extra: &[&str]) -> Cluster {
        let nats = NatsServer::start().await;
        let dirs = tempfile::tempdir().expect("node folders");
        let mut nodes = Vec::new();
        for i in 0..n {
            let mut args = vec!["--nats", nats.url.as_str()];
            args.extend_from_slice(extra);
            let dir = dirs.path().join(format!("node-{i}"));
            nodes.push(RelayProcess::start(&dir, &args).await);
        }
        Cluster {
            nats,
            nodes,
            _dirs: dirs,
        }
    }

    /// `--relay` naming `order`'s nodes, in that order.
    fn relays(&self, order: &[usize]) -> String {
        let urls: Vec<&str> = order.iter().map(|&i| self.nodes[i].url.as_str()).collect();
        urls.join(",")
    }

    /// Channel `name`'s URL on node `i`.
    fn channel_url(&self, i: usize, name: &str) -> String {
        format!("{}/{name}", self.nodes[i].url)
    }

    /// Every node's log, for a failure's message.
    fn logs(&self) -> String {
        let mut out = String::new();
        for (i, node) in self.nodes.iter().enumerate() {
            out.push_str(&format!("--- node {i} stderr ---\n{}\n", node.stderr()));
        }
        out
    }
}

/// `hooks listen --relay <relays> --channel <channel>` forwarding to `app`, with `extra` flags.
async fn listen(relays: &str, channel: &str, app: &App, extra: &[&str]) -> Listener {
    let target = format!("127.0.0.1:{}", app.port());
    let mut args = vec![
        "--relay",
        relays,
        "--channel",
        channel,
        "--forward-to",
        &target,
    ];
    args.extend_from_slice(extra);
    spawn_listen(&args).await
}

/// The body of numbered request `seq`: its number, then bytes that are not UTF-8, of a length
/// that differs per request, so a mix-up or a cut shows.
fn numbered_body(seq: usize) -> Vec<u8> {
    let mut body = format!("request {seq}\n").into_bytes();
    body.extend(pseudo_random_bytes(
        500 + seq % 64 * 41,
        0xc105_7e00 + seq as u64,
    ));
    body
}

/// The `x-seq` number of a request the app recorded.
fn seq_of(request: &Recorded) -> Option<usize> {
    let value = request.header("x-seq");
    std::str::from_utf8(value.first()?).ok()?.parse().ok()
}

/// An app that answers each numbered request with its own number.
async fn numbered_app() -> App {
    App::start(|request| Answer::ok(format!("answer {}", seq_of(request).unwrap_or(usize::MAX))))
        .await
}

/// Posts numbered request `seq` to `<channel_url>/n/<seq>`.
async fn send_numbered(
    sender: &Sender,
    channel_url: &str,
    seq: usize,
    limit: Duration,
) -> Result<Reply, String> {
    let url = format!("{channel_url}/n/{seq}?q={seq}");
    let seq_header = headers(&[
        ("x-seq", &seq.to_string()),
        ("x-twice", "a"),
        ("x-twice", "b"),
    ]);
    sender
        .try_send("POST", &url, &seq_header, full(numbered_body(seq)), limit)
        .await
}

/// Sequence numbers the app received, with how many times each arrived, and those not exactly
/// as sent.
fn tally(seen: &[Recorded]) -> (BTreeMap<usize, usize>, Vec<usize>) {
    let mut count = BTreeMap::new();
    let mut corrupted = Vec::new();
    for request in seen {
        let Some(seq) = seq_of(request) else {
            continue;
        };
        *count.entry(seq).or_insert(0) += 1;
        let target = format!("/n/{seq}?q={seq}");
        if request.body != numbered_body(seq)
            || request.target != target
            || request.header("x-twice") != [b"a".as_slice(), b"b".as_slice()]
        {
            corrupted.push(seq);
        }
    }
    (count, corrupted)
}

/// Polls `GET <node>/_hooks/health` until it answers `status`.
async fn wait_for_health(node: &str, status: u16) -> Reply {
    let sender = Sender::default();
    let url = format!("{node}/_hooks/health");
    let polling = async {
        loop {
            if let Ok(reply) = sender
                .try_send(
                    "GET",
                    &url,
                    &[],
                    full(bytes::Bytes::new()),
                    Duration::from_secs(2),
                )
                .await
            {
                if reply.status == status {
                    return reply;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    within(&format!("{url} to answer {status}"), polling).await
}

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
    let reply = sender.post(&cluster.channel_url(0, "fixed"), "queued").await;
    assert_eq!((reply.status, reply.text()), (202, String::new()));
    app.wait_for(1).await;

    // --timeout 1s: a sender at another node gets 504 from the app's slowness.
    let _slow = listen(&cluster.relays(&[1]), "slow", &app, &["--timeout", "1s"]).await;
    let url = format!("{}/slow", cluster.channel_url(0, "slow"));
    let reply = sender.post(&url, "wait").await;
    assert_eq!(reply.status, 504, "{}", reply.text());

    // --offline reject: once the CLI is gone, another node refuses with 503 and Retry-After.
    let mut strict = listen(&cluster.relays(&[1]), "strict", &app, &["--offline", "reject"]).await;
    strict.terminate();
    assert_eq!(strict.wait_exit().await, Some(0), "{}", strict.stderr());
    wait_for_sessions(&cluster.nodes[1].url, 2).await;
    let reply = sender.post(&cluster.channel_url(0, "strict"), "refused").await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_eq!(reply.header("retry-after"), [b"30".as_slice()]);
}

/// Which node a chaos test kills.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Victim {
    /// The node holding the CLI's session (node 2).
    Session,
    /// A node receiving webhooks (node 0).
    Receiver,
}

/// A numbered stream to nodes 0 and 1 while `victim` is killed with SIGKILL; every request
/// answered 2xx (or 504: stored, its app's answer late) must reach the app. Prints sent,
/// answered, delivered, duplicated and lost.
async fn chaos(victim: Victim) {
    const TOTAL: usize = 150;
    const PACE: Duration = Duration::from_millis(40);
    const KILL_AT: Duration = Duration::from_millis(1500);
    // Past a dead node's session lease (10 s) and the CLI's backoff.
    const DRAIN: Duration = Duration::from_secs(60);
    let mut cluster = Cluster::start(3, &["--timeout", "2s"]).await;
    let app = numbered_app().await;
    // The session goes to node 2 first; node 0, then node 1, when it is gone.
    let cli = listen(&cluster.relays(&[2, 0, 1]), "chaos", &app, &[]).await;
    let started = Instant::now();
    let urls = [
        cluster.channel_url(0, "chaos"),
        cluster.channel_url(1, "chaos"),
    ];
    let sending = tokio::spawn(async move {
        let sender = Sender::default();
        let mut tick = tokio::time::interval(PACE);
        let mut tasks = tokio::task::JoinSet::new();
        for seq in 0..TOTAL {
            tick.tick().await;
            let (sender, url) = (sender.clone(), urls[seq % 2].clone());
            tasks.spawn(async move {
                let sent = send_numbered(&sender, &url, seq, Duration::from_secs(10)).await;
                (seq, sent.map(|reply| reply.status))
            });
        }
        let mut outcomes = vec![Err("never sent".to_owned()); TOTAL];
        while let Some(joined) = tasks.join_next().await {
            let (seq, outcome) = joined.expect("sender task");
            outcomes[seq] = outcome;
        }
        outcomes
    });
    tokio::time::sleep(KILL_AT).await;
    let killed = match victim {
        Victim::Session => 2,
        Victim::Receiver => 0,
    };
    cluster.nodes[killed].kill().await;
    let killed_at = started.elapsed();
    let outcomes = sending.await.expect("sender");

    let stored: BTreeSet<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o, Ok(200..=299 | 504)))
        .map(|(seq, _)| seq)
        .collect();
    let drained = app
        .wait_until(DRAIN, |seen| {
            let (count, _) = tally(seen);
            stored.iter().all(|seq| count.contains_key(seq))
        })
        .await;
    let seen = match drained {
        Ok(seen) | Err(seen) => seen,
    };
    let (count, corrupted) = tally(&seen);
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for outcome in &outcomes {
        let key = match outcome {
            Ok(status) => status.to_string(),
            Err(_) => "not answered".to_owned(),
        };
        *statuses.entry(key).or_insert(0) += 1;
    }
    let duplicated = count.values().filter(|&&n| n > 1).count();
    let lost: Vec<usize> = stored
        .iter()
        .filter(|seq| !count.contains_key(seq))
        .copied()
        .collect();
    println!(
        "cluster chaos ({victim:?} node killed at {killed_at:.1?}): sent {TOTAL}, answered {statuses:?}, \
         stored (2xx or 504) {}, delivered {}, duplicated {duplicated}, lost {} ({:.1?})",
        stored.len(),
        count.len(),
        lost.len(),
        started.elapsed(),
    );
    assert!(
        lost.is_empty(),
        "answered 2xx or 504 but never delivered: {lost:?}\n{}--- cli stderr ---\n{}",
        cluster.logs(),
        cli.stderr(),
    );
    assert!(corrupted.is_empty(), "changed on the way: {corrupted:?}");
    // Some requests were sent after the kill and delivered: the cluster went on without it.
    let after_kill = (KILL_AT.as_millis() / PACE.as_millis()) as usize + 5;
    assert!(
        (after_kill..TOTAL).any(|seq| count.contains_key(&seq)),
        "nothing sent after the kill was delivered: {statuses:?}\n{}",
        cluster.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_kill_9_of_the_node_holding_the_session_loses_nothing() {
    chaos(Victim::Session).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_kill_9_of_a_node_receiving_webhooks_loses_nothing() {
    chaos(Victim::Receiver).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_stopped_answers_503_and_is_not_ready_and_nothing_is_lost_once_it_is_back() {
    const BEFORE: usize = 5;
    const AFTER: usize = 5;
    let mut cluster = Cluster::start(2, &["--timeout", "3s"]).await;
    let app = numbered_app().await;
    let _cli = listen(&cluster.relays(&[1, 0]), "steady", &app, &[]).await;
    let sender = Sender::default();
    let url = cluster.channel_url(0, "steady");
    let mut stored = BTreeSet::new();
    for seq in 0..BEFORE {
        let reply = send_numbered(&sender, &url, seq, Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("request {seq}: {e}"));
        assert_eq!(reply.status, 200, "request {seq}: {}", reply.text());
        stored.insert(seq);
    }

    cluster.nats.stop().await;
    let health = wait_for_health(&cluster.nodes[0].url, 503).await;
    assert!(health.text().starts_with("not ready"), "{}", health.text());
    let refused = send_numbered(&sender, &url, 999, Duration::from_secs(10))
        .await
        .expect("an answer while NATS is down");
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(
        !refused.header("retry-after").is_empty(),
        "503 says when to retry"
    );

    cluster.nats.restart().await;
    for node in &cluster.nodes {
        wait_for_health(&node.url, 200).await;
    }
    for seq in BEFORE..BEFORE + AFTER {
        let reply = send_numbered(&sender, &url, seq, Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("request {seq}: {e}"));
        assert!(
            matches!(reply.status, 200..=299 | 504),
            "request {seq} once NATS is back: {} {}",
            reply.status,
            reply.text()
        );
        stored.insert(seq);
    }
    let drained = app
        .wait_until(Duration::from_secs(60), |seen| {
            let (count, _) = tally(seen);
            stored.iter().all(|seq| count.contains_key(seq))
        })
        .await;
    let seen = drained.unwrap_or_else(|seen| {
        let (count, _) = tally(&seen);
        panic!(
            "lost after NATS came back: {:?}\n{}",
            stored
                .iter()
                .filter(|s| !count.contains_key(s))
                .collect::<Vec<_>>(),
            cluster.logs()
        )
    });
    let (count, corrupted) = tally(&seen);
    assert!(
        !count.contains_key(&999),
        "the refused request was not stored"
    );
    assert!(corrupted.is_empty(), "changed on the way: {corrupted:?}");
}
