//! The relay as a cluster (issue 23): several `hooks relay --nats URL` nodes, each its own
//! process on 127.0.0.1:0 (so one can be killed with SIGKILL), over one real `nats-server -js`
//! on a free port with a temporary store; the real `hooks listen` with `--relay URL1,URL2,…`; a
//! recording app. A machine without `nats-server` fails these tests with the command that
//! installs it (`relay_server::testing::INSTALL`).
//!
//! Waits are on events (the relay's `listening on` line, the CLI's NDJSON lines, the app's
//! requests); where a state has no event (a node's health, its sessions) its endpoint is polled
//! with a deadline.
//!
//! A target of its own (`cargo test --test cluster`): every test here needs `nats-server`, and
//! its modules share this file's cluster harness. `delivery` is what one node promises, kept
//! across nodes; `failures` kills nodes and stops NATS.

// The support module re-exports helpers for every target; this one uses a few.
#[allow(unused_imports)]
#[path = "../support/mod.rs"]
mod support;

mod delivery;
mod failures;

use std::collections::BTreeMap;
use std::time::Duration;

use relay_server::testing::NatsServer;
use support::*;

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
    wait_for_health_saying(node, status, "").await
}

/// Polls `GET <node>/_hooks/health` until it answers `status` with a text holding `needle`.
async fn wait_for_health_saying(node: &str, status: u16, needle: &str) -> Reply {
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
                if reply.status == status && reply.text().contains(needle) {
                    return reply;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    within(&format!("{url} to answer {status} {needle:?}"), polling).await
}
