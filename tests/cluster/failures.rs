//! Failures: a node killed with SIGKILL (the one holding the session, or one receiving
//! webhooks) while a numbered stream goes on, and NATS stopped and restarted. Nothing answered
//! 2xx (or 504: stored, the app's answer late) may be lost.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::*;

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
async fn nats_stopped_answers_503_and_is_not_ready_and_nothing_is_lost_once_it_is_back() {
    const BEFORE: usize = 5;
    const AFTER: usize = 5;
    // Numbers of the requests queued for a CLI that is away while NATS stops.
    const PARKED: std::ops::Range<usize> = 100..105;
    // One request in flight at a time, so the app sees the parked ones in the order delivered.
    let mut cluster = Cluster::start(2, &["--timeout", "3s", "--max-in-flight", "1"]).await;
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
    // Stored in JetStream and not yet delivered when NATS stops: they must outlive its restart.
    let mut away = listen(&cluster.relays(&[0]), "parked", &app, &[]).await;
    away.terminate();
    assert_eq!(away.wait_exit().await, Some(0), "{}", away.stderr());
    wait_for_sessions(&cluster.nodes[0].url, 0).await;
    let parked_url = cluster.channel_url(1, "parked");
    for seq in PARKED {
        let reply = send_numbered(&sender, &parked_url, seq, Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("request {seq}: {e}"));
        assert_eq!(reply.status, 202, "request {seq}: {}", reply.text());
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
    let _back = listen(&cluster.relays(&[0]), "parked", &app, &[]).await;
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
    let parked: Vec<usize> = seen
        .iter()
        .filter_map(seq_of)
        .filter(|seq| PARKED.contains(seq))
        .collect();
    assert_eq!(parked, Vec::from_iter(PARKED), "the queued ones, in order");
    assert!(
        !count.contains_key(&999),
        "the refused request was not stored"
    );
    assert!(corrupted.is_empty(), "changed on the way: {corrupted:?}");
}

/// NATS back without its store (issue 23): first with nowhere to store (no JetStream), then
/// with an empty one. Meanwhile every node says not ready and answers 503; after, the nodes
/// have made their layout again by themselves and webhooks sent to either reach the CLI, which
/// re-attached. The stream made again numbers requests from 1 again: only a new epoch keeps
/// the CLI from dropping them as requests it handled before the wipe.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issue_23_nats_back_without_its_store_is_not_ready_then_serves_under_a_new_epoch() {
    const BEFORE: std::ops::Range<usize> = 0..4;
    const AFTER: std::ops::Range<usize> = 10..14;
    let mut cluster = Cluster::start(2, &["--timeout", "5s"]).await;
    let app = numbered_app().await;
    let mut cli = listen(&cluster.relays(&[1, 0]), "wiped", &app, &[]).await;
    let sender = Sender::default();
    let urls = [
        cluster.channel_url(0, "wiped"),
        cluster.channel_url(1, "wiped"),
    ];
    let send_answered = |seq: usize| {
        let (sender, url) = (&sender, &urls[seq % 2]);
        async move {
            let reply = send_numbered(sender, url, seq, Duration::from_secs(10))
                .await
                .unwrap_or_else(|e| panic!("request {seq}: {e}"));
            (reply.status, reply.text())
        }
    };
    for seq in BEFORE {
        let answered = send_answered(seq).await;
        assert_eq!(answered, (200, format!("answer {seq}")), "request {seq}");
    }
    let ids_before = relay_ids(&mut cli, BEFORE.len()).await;

    cluster.nats.restart_wiped(false).await;
    // Not the "cannot reach NATS" of the moments before the node reconnects: reachable, and
    // without its store.
    for node in &cluster.nodes {
        wait_for_health_saying(&node.url, 503, "could not be made again").await;
    }
    let refused = send_numbered(&sender, &urls[0], 999, Duration::from_secs(10))
        .await
        .expect("an answer while NATS has no store");
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(
        !refused.header("retry-after").is_empty(),
        "503 says when to retry"
    );

    cluster.nats.restart_wiped(true).await;
    for node in &cluster.nodes {
        wait_for_health(&node.url, 200).await;
    }
    loop {
        let line = cli.next_json().await;
        if line["type"] == "reconnected" {
            break;
        }
        assert_eq!(line["type"], "disconnected", "{line}");
    }
    for seq in AFTER {
        let answered = send_answered(seq).await;
        assert_eq!(
            answered,
            (200, format!("answer {seq}")),
            "request {seq} after the wipe\n{}--- cli stderr ---\n{}",
            cluster.logs(),
            cli.stderr()
        );
    }
    let ids_after = relay_ids(&mut cli, AFTER.len()).await;
    assert!(
        ids_after.iter().any(|id| ids_before.contains(id)),
        "the stream made again numbers from 1 again: {ids_before:?} then {ids_after:?}"
    );
    let (count, corrupted) = tally(&app.requests());
    let expected: BTreeMap<usize, usize> = BEFORE.chain(AFTER).map(|seq| (seq, 1)).collect();
    assert_eq!(count, expected, "each once at the app; 999 never");
    assert!(corrupted.is_empty(), "changed on the way: {corrupted:?}");
}

/// The relay ids of the CLI's next `n` request lines.
async fn relay_ids(cli: &mut Listener, n: usize) -> Vec<u64> {
    let lines = cli.next_requests(n).await;
    lines
        .iter()
        .map(|line| {
            line["relay_id"]
                .as_u64()
                .expect("a request line has its relay id")
        })
        .collect()
}
