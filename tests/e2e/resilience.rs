//! Resilience tests: the "nothing lost" invariant of DESIGN.md and the promises of the README's
//! "What happens when…" section, checked against real processes. The relay runs as `hooks relay`
//! so it can be killed with SIGKILL and restarted on the same port and data directory; the CLI is
//! the real `hooks listen`; the app records what it receives.
//!
//! Waits are on observable events (the relay's `listening on` line, the CLI's NDJSON lines, the
//! app's request count); where a state has no event (the relay noticing a dead CLI) its metrics
//! gauge is polled with a deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use relay_server::Config;

use crate::support::*;

/// Requests sent while the CLI or the relay is down, in the queue tests.
const QUEUED: usize = 20;

/// The body of numbered request `seq`: its number as text, then bytes that are not UTF-8, of a
/// length that differs per request, so a mix-up or a cut shows.
fn numbered_body(seq: usize) -> Vec<u8> {
    let mut body = format!("request {seq}\n").into_bytes();
    body.extend(pseudo_random_bytes(
        700 + seq % 50 * 37,
        0x7e57_0000 + seq as u64,
    ));
    body
}

/// Posts numbered request `seq` to `<channel_url>/n/<seq>` with an `x-seq` header.
async fn send_numbered(sender: &Sender, channel_url: &str, seq: usize) -> Reply {
    let url = format!("{channel_url}/n/{seq}");
    let seq_header = headers(&[("x-seq", &seq.to_string())]);
    sender
        .send("POST", &url, &seq_header, full(numbered_body(seq)))
        .await
}

/// Sends numbered requests `seqs` to `channel_url` while no CLI is attached: each is queued
/// (`202`, "queued: …").
async fn queue_numbered(sender: &Sender, channel_url: &str, seqs: std::ops::Range<usize>) {
    for seq in seqs {
        let reply = send_numbered(sender, channel_url, seq).await;
        assert_eq!(reply.status, 202, "request {seq}: {}", reply.text());
        assert!(reply.text().starts_with("queued"), "{}", reply.text());
    }
}

/// Attaches `hooks listen` to `channel` of the relay at `relay_url`, then ends it (SIGTERM, a
/// clean exit) and waits until the relay has no session: the channel exists, nobody listens.
/// Its URL.
async fn channel_left_alone(relay_url: &str, app: &App, channel: &str) -> String {
    let mut cli = listen(relay_url, app, &["--channel", channel]).await;
    let channel_url = cli.url.clone();
    cli.terminate();
    assert_eq!(cli.wait_exit().await, Some(0), "{}", cli.stderr());
    wait_for_sessions(relay_url, 0).await;
    channel_url
}

/// The `x-seq` number of a request the app recorded, if it is a numbered one.
fn seq_of(request: &Recorded) -> Option<usize> {
    let value = request.header("x-seq");
    std::str::from_utf8(value.first()?).ok()?.parse().ok()
}

/// `hooks listen` on `relay_url`, forwarding to `app`, with `extra` flags.
async fn listen(relay_url: &str, app: &App, extra: &[&str]) -> Listener {
    let target = format!("127.0.0.1:{}", app.port());
    let mut args = vec!["--relay", relay_url, "--forward-to", &target];
    args.extend_from_slice(extra);
    spawn_listen(&args).await
}

/// After `n` numbered requests reached the app, sends one more (the marker) through the attached
/// CLI and checks that when it arrives the app has seen each numbered request exactly once,
/// byte for byte, and nothing else.
async fn assert_each_arrived_once_then_marker(app: &App, channel_url: &str, n: usize) {
    app.wait_for(n).await;
    let marker = Sender::default()
        .post(&format!("{channel_url}/marker"), "marker")
        .await;
    assert_eq!(
        marker.status,
        200,
        "the marker goes through the attached CLI: {}",
        marker.text()
    );
    let seen = app.requests();
    let summary: Vec<&str> = seen.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(
        seen.len(),
        n + 1,
        "when the marker arrives the app has seen {n} numbered requests and the marker, once each: {summary:?}"
    );
    assert_eq!(seen[n].target, "/marker", "{summary:?}");
    let mut count = BTreeMap::new();
    for request in &seen[..n] {
        let seq =
            seq_of(request).unwrap_or_else(|| panic!("not a numbered request: {}", request.target));
        *count.entry(seq).or_insert(0) += 1;
        assert_eq!(request.target, format!("/n/{seq}"));
        assert_same_bytes(
            &format!("body of request {seq} at the app"),
            &request.body,
            &numbered_body(seq),
        );
    }
    let want: BTreeMap<usize, i32> = (0..n).map(|seq| (seq, 1)).collect();
    assert_eq!(count, want, "each numbered request exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_killed_with_sigkill_gets_every_queued_request_once_on_restart() {
    let app = App::ok().await;
    let data = tempfile::tempdir().expect("relay data dir");
    let relay = RelayProcess::start(data.path(), &[]).await;
    let mut cli = listen(&relay.url, &app, &["--channel", "crashy"]).await;
    let channel_url = cli.url.clone();

    cli.kill().await;
    wait_for_sessions(&relay.url, 0).await;
    let sender = Sender::default();
    queue_numbered(&sender, &channel_url, 0..QUEUED).await;
    assert!(
        app.requests().is_empty(),
        "nothing reaches the app meanwhile"
    );

    let cli = listen(&relay.url, &app, &["--channel", "crashy"]).await;
    assert_eq!(cli.url, channel_url, "the same channel, the same URL");

    assert_each_arrived_once_then_marker(&app, &channel_url, QUEUED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_killed_with_sigkill_keeps_its_queue_across_the_restart() {
    let app = App::ok().await;
    let data = tempfile::tempdir().expect("relay data dir");
    let mut relay = RelayProcess::start(data.path(), &[]).await;
    let channel_url = channel_left_alone(&relay.url, &app, "durable").await;
    let sender = Sender::default();
    queue_numbered(&sender, &channel_url, 0..QUEUED).await;
    relay.kill().await;
    relay.restart().await;
    // The restarted relay remembers the channel, and its new request ids do not collide with
    // the queued ones.
    queue_numbered(&sender, &channel_url, QUEUED..2 * QUEUED).await;
    assert!(
        app.requests().is_empty(),
        "nothing reaches the app meanwhile"
    );

    let cli = listen(&relay.url, &app, &["--channel", "durable"]).await;
    assert_eq!(cli.url, channel_url, "the same channel, the same URL");

    assert_each_arrived_once_then_marker(&app, &channel_url, 2 * QUEUED).await;
}

/// The relay's journal of requests ends in a record cut short (the relay killed while writing
/// one it had not answered for yet): the restarted relay drops that record, keeps every request
/// before it, and writes on after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_24_a_torn_record_at_the_end_of_the_journal_loses_nothing_answered() {
    use std::io::Write as _;
    let app = App::ok().await;
    let data = tempfile::tempdir().expect("relay data dir");
    let mut relay = RelayProcess::start(data.path(), &[]).await;
    let channel_url = channel_left_alone(&relay.url, &app, "torn").await;
    let sender = Sender::default();
    queue_numbered(&sender, &channel_url, 0..QUEUED).await;
    relay.kill().await;
    let segments = data.path().join("journal");
    let mut last: Vec<_> = std::fs::read_dir(&segments)
        .expect("the relay keeps its requests in a journal")
        .map(|entry| entry.expect("journal entry").path())
        .collect();
    last.sort();
    let last = last.pop().expect("a segment");
    let written = std::fs::metadata(&last).expect("segment").len();
    // A record that promises 1,000 bytes and has 10 of them.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .expect("open segment");
    file.write_all(&1000u32.to_be_bytes()).expect("torn prefix");
    file.write_all(&[1; 10]).expect("torn record");
    drop(file);

    relay.restart().await;
    assert_eq!(
        std::fs::metadata(&last).expect("segment").len(),
        written,
        "the torn record is cut off"
    );
    queue_numbered(&sender, &channel_url, QUEUED..2 * QUEUED).await;
    let cli = listen(&relay.url, &app, &["--channel", "torn"]).await;
    assert_eq!(cli.url, channel_url, "the same channel, the same URL");
    assert_each_arrived_once_then_marker(&app, &channel_url, 2 * QUEUED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_reconnects_by_itself_after_the_relay_is_killed_and_restarted() {
    let app = App::ok().await;
    let data = tempfile::tempdir().expect("relay data dir");
    let mut relay = RelayProcess::start(data.path(), &[]).await;
    let mut cli = listen(&relay.url, &app, &[]).await;
    let sender = Sender::default();
    let before = sender
        .post(&format!("{}/before-restart", cli.url), "before")
        .await;
    assert_eq!(before.status, 200, "{}", before.text());
    let line = cli.next_requests(1).await.remove(0);
    assert_eq!(line["status"], 200, "{line}");

    relay.kill().await;
    let lost = cli.next_json().await;
    assert_eq!(lost["type"], "disconnected", "{lost}");
    let reason = lost["reason"].as_str().unwrap_or_default();
    assert!(!reason.is_empty(), "the disconnection says why: {lost}");
    relay.restart().await;
    let back = cli.next_json().await;

    assert_eq!(back["type"], "reconnected", "{back}");
    assert_eq!(
        back["url"],
        cli.url.as_str(),
        "same channel, same URL: {back}"
    );
    // The restarted relay's request ids must not repeat the one the CLI already handled, or
    // the CLI would drop this request as a redelivery.
    let reply = sender
        .post(&format!("{}/after-restart", cli.url), "after")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.body, "ok");
    let seen = app.wait_for(2).await;
    assert_eq!(seen.len(), 2, "each request once");
    assert_eq!(seen[1].target, "/after-restart");
    assert_eq!(seen[1].body, "after");
    let line = cli.next_requests(1).await.remove(0);
    assert_eq!(line["status"], 200, "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_app_past_timeout_gives_the_sender_504_and_the_cli_shows_the_real_status() {
    let app = App::start(|_| Answer {
        status: 201,
        delay: Duration::from_secs(3),
        ..Answer::ok("finally")
    })
    .await;
    let relay = start_relay(Config::default()).await;
    let mut cli = listen(&relay.url, &app, &["--timeout", "1"]).await;

    let started = Instant::now();
    let reply = Sender::default()
        .post(&format!("{}/slow", cli.url), "wait for me")
        .await;
    println!("504 after {:?} (--timeout 1)", started.elapsed());

    assert_eq!(reply.status, 504, "{}", reply.text());
    assert!(reply.text().contains("did not answer"), "{}", reply.text());
    let line = cli.next_requests(1).await.remove(0);
    assert_eq!(line["status"], 201, "the app's real status: {line}");
    assert_eq!(line["sender_status"], 504, "{line}");
    assert_eq!(app.requests().len(), 1, "delivered once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn respond_202_answers_the_sender_before_the_app_finishes() {
    let (latch, hold) = latch();
    let app = App::start(move |_| Answer {
        hold: Some(hold.clone()),
        ..Answer::ok("done")
    })
    .await;
    let relay = start_relay(Config::default()).await;
    let mut cli = listen(&relay.url, &app, &["--respond", "202"]).await;

    // The app cannot finish until the latch opens, and the latch opens only after the sender
    // has its answer: a relay that waited for the app would leave the sender without one.
    let reply = Sender::default()
        .try_send(
            "POST",
            &format!("{}/async", cli.url),
            &[],
            full("fire and forget"),
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|e| panic!("--respond 202 waited for the app: {e}"));

    assert_eq!(reply.status, 202, "{}", reply.text());
    let seen = app.wait_for(1).await;
    assert_eq!(seen[0].target, "/async");
    assert_eq!(seen[0].body, "fire and forget");
    latch.open();
    let line = cli.next_requests(1).await.remove(0);
    assert_eq!(
        line["status"], 200,
        "the app's answer, once it came: {line}"
    );
    assert!(
        line.get("sender_status").is_none(),
        "the sender was answered at once: {line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_reject_answers_503_with_retry_after_once_the_cli_is_gone() {
    let app = App::ok().await;
    let data = tempfile::tempdir().expect("relay data dir");
    let mut relay = RelayProcess::start(data.path(), &[]).await;
    let reject = ["--offline", "reject", "--channel", "picky"];
    let mut cli = listen(&relay.url, &app, &reject).await;
    let channel_url = cli.url.clone();
    cli.terminate();
    assert_eq!(cli.wait_exit().await, Some(0), "{}", cli.stderr());
    wait_for_sessions(&relay.url, 0).await;
    let sender = Sender::default();

    let reply = sender.post(&format!("{channel_url}/while-away"), "x").await;

    assert_rejected(&reply);
    // The channel's policy is remembered across a relay restart.
    relay.kill().await;
    relay.restart().await;
    let reply = sender
        .post(&format!("{channel_url}/after-restart"), "y")
        .await;
    assert_rejected(&reply);
    // Rejected requests were not queued: a returning CLI gets nothing but what comes next.
    let _cli = listen(&relay.url, &app, &reject).await;
    let marker = sender.post(&format!("{channel_url}/marker"), "m").await;
    assert_eq!(marker.status, 200, "{}", marker.text());
    let targets: Vec<String> = app.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/marker"]);
}

/// A `503` for a channel whose CLI is away and which rejects meanwhile.
#[track_caller]
fn assert_rejected(reply: &Reply) {
    assert_eq!(reply.status, 503, "{}", reply.text());
    let retry_after = reply.header("retry-after");
    assert_eq!(retry_after.len(), 1, "{:?}", reply.headers);
    let seconds = std::str::from_utf8(retry_after[0])
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    assert!(
        seconds.is_some_and(|s| s > 0),
        "Retry-After is a number of seconds: {:?}",
        reply.headers
    );
    assert_eq!(
        reply.text(),
        "no hooks session is attached to channel picky; retry later\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_after_ends_listen_with_status_1_when_the_relay_stays_away() {
    let app = App::ok().await;
    let data = tempfile::tempdir().expect("relay data dir");
    let mut relay = RelayProcess::start(data.path(), &[]).await;
    let mut cli = listen(&relay.url, &app, &["--exit-after", "2"]).await;

    let killed = Instant::now();
    relay.kill().await;
    let lost = cli.next_json().await;
    assert_eq!(lost["type"], "disconnected", "{lost}");
    let code = cli.wait_exit().await;
    println!(
        "listen --exit-after 2 exited {:?} after the relay was killed",
        killed.elapsed()
    );

    let stderr = cli.final_stderr().await;
    assert_eq!(code, Some(1), "{stderr}");
    let why = format!("hooks: error: disconnected from the relay at {}", relay.url);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&why) && last.ends_with(" s (--exit-after 2 s)"),
        "the last line says why: {stderr:?}"
    );
}

/// `--exit-after DURATION`: "exit with status 1 after being disconnected this long". The CLI
/// must not give up before the whole duration has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_after_waits_the_whole_duration_before_giving_up() {
    let app = App::ok().await;
    let data = tempfile::tempdir().expect("relay data dir");
    let mut relay = RelayProcess::start(data.path(), &[]).await;
    let mut cli = listen(&relay.url, &app, &["--exit-after", "2"]).await;

    // The CLI's disconnection starts no earlier than this instant, so a CLI that waits the
    // whole 2 s exits at least 2 s after it.
    let killed = Instant::now();
    relay.kill().await;
    let code = cli.wait_exit().await;
    let waited = killed.elapsed();

    let stderr = cli.final_stderr().await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        waited >= Duration::from_secs(2),
        "--exit-after 2 gave up {waited:?} after the relay died: {stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// Fault injection
// ---------------------------------------------------------------------------------------------

/// xorshift64*: a seeded pseudo-random sequence, so a chaos run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }

    fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(self.between(low, high))
    }
}

/// The seed of the chaos test: `CHAOS_SEED` if set, so a failing run can be replayed.
fn chaos_seed() -> u64 {
    std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00c0_ffee_d00d_f00d)
}

/// What one chaos event kills.
#[derive(Debug, Clone, Copy)]
enum Victim {
    Relay,
    Cli,
    Both,
}

/// The relay and the CLI of the chaos test, killed and restarted by [`chaos`].
struct Tunnel {
    relay: RelayProcess,
    cli: Listener,
    cli_args: Vec<String>,
}

impl Tunnel {
    async fn start_cli(&mut self) {
        // The relay must have dropped the dead CLI's session before the channel is free again;
        // a session the dying CLI had just opened can still be attached for a moment, so a
        // refusal because the channel is in use is retried.
        let args: Vec<&str> = self.cli_args.iter().map(String::as_str).collect();
        for attempt in 1.. {
            wait_for_sessions(&self.relay.url, 0).await;
            match try_spawn_listen(&args).await {
                Ok(cli) => {
                    self.cli = cli;
                    return;
                }
                Err(e) if e.contains("in use") && attempt < 5 => continue,
                Err(e) => panic!("hooks listen did not restart: {e}"),
            }
        }
    }

    async fn hit(&mut self, victim: Victim, down: Duration) {
        match victim {
            Victim::Relay => {
                self.relay.kill().await;
                tokio::time::sleep(down).await;
                self.relay.restart().await;
            }
            Victim::Cli => {
                self.cli.kill().await;
                tokio::time::sleep(down).await;
                self.start_cli().await;
            }
            Victim::Both => {
                self.cli.kill().await;
                self.relay.kill().await;
                tokio::time::sleep(down).await;
                self.relay.restart().await;
                self.start_cli().await;
            }
        }
    }
}

/// Kills and restarts the relay and the CLI `events` times at pseudo-random moments.
async fn chaos(mut tunnel: Tunnel, mut rng: Rng, events: usize) -> (Tunnel, Vec<String>) {
    let started = Instant::now();
    let mut log = Vec::new();
    for _ in 0..events {
        tokio::time::sleep(rng.millis(500, 1300)).await;
        let victim = match rng.between(0, 4) {
            0 | 1 => Victim::Relay,
            2 | 3 => Victim::Cli,
            _ => Victim::Both,
        };
        let down = rng.millis(0, 400);
        let at = started.elapsed();
        tunnel.hit(victim, down).await;
        log.push(format!("{at:.1?} {victim:?} down {down:?}"));
    }
    (tunnel, log)
}

/// How the sender saw one request.
#[derive(Debug, Clone)]
enum Outcome {
    Answered(u16),
    NotAnswered(String),
}

/// Posts `total` numbered requests, one every `pace`, each on its own task; returns how each
/// was answered.
async fn send_steadily(channel_url: String, total: usize, pace: Duration) -> Vec<Outcome> {
    let sender = Sender::default();
    let mut tick = tokio::time::interval(pace);
    let mut tasks = tokio::task::JoinSet::new();
    for seq in 0..total {
        tick.tick().await;
        let sender = sender.clone();
        let url = format!("{channel_url}/n/{seq}");
        tasks.spawn(async move {
            let seq_header = headers(&[("x-seq", &seq.to_string())]);
            let body = full(numbered_body(seq));
            let sent = sender
                .try_send("POST", &url, &seq_header, body, Duration::from_secs(10))
                .await;
            let outcome = match sent {
                Ok(reply) => Outcome::Answered(reply.status),
                Err(e) => Outcome::NotAnswered(e),
            };
            (seq, outcome)
        });
    }
    let mut outcomes = vec![Outcome::NotAnswered("never sent".into()); total];
    while let Some(joined) = tasks.join_next().await {
        let (seq, outcome) = joined.expect("sender task");
        outcomes[seq] = outcome;
    }
    outcomes
}

/// A short name for why a request was not answered, for the report.
fn not_answered_kind(error: &str) -> &'static str {
    let error = error.to_ascii_lowercase();
    if error.contains("refused") {
        "connection refused"
    } else if error.contains("reset") {
        "connection reset"
    } else if error.contains("within") {
        "no answer in time"
    } else if error.contains("closed") || error.contains("incomplete") {
        "connection closed"
    } else {
        "other"
    }
}

/// Sequence numbers the app received, with how many times each arrived, and those whose body
/// was not exactly what was sent.
fn tally(seen: &[Recorded]) -> (BTreeMap<usize, usize>, Vec<usize>) {
    let mut count = BTreeMap::new();
    let mut corrupted = Vec::new();
    for request in seen {
        let Some(seq) = seq_of(request) else {
            continue;
        };
        *count.entry(seq).or_insert(0) += 1;
        if request.body != numbered_body(seq) || request.target != format!("/n/{seq}") {
            corrupted.push(seq);
        }
    }
    (count, corrupted)
}

/// A sender posts numbered requests at a steady pace while the relay (`kill -9`, restarted on
/// the same port and data directory) and the CLI (SIGKILL, restarted on the same channel) are
/// killed at pseudo-random moments. Every request the relay answered with a 2xx must reach the
/// app, byte for byte. Duplicates are allowed (delivery is at least once) and reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_kills_lose_no_request_that_was_answered_2xx() {
    const TOTAL: usize = 300;
    const PACE: Duration = Duration::from_millis(40);
    const EVENTS: usize = 8;
    const DRAIN: Duration = Duration::from_secs(30);
    let seed = chaos_seed();
    // Up to 80 ms at the app, so kills also catch requests in the middle of being answered.
    let app = App::start(|request| Answer {
        delay: Duration::from_millis(seq_of(request).unwrap_or(0) as u64 % 5 * 20),
        ..Answer::ok("ok")
    })
    .await;
    let data = tempfile::tempdir().expect("relay data dir");
    // A short timeout, so a sender whose CLI was killed mid-request hears 504 soon.
    let relay = RelayProcess::start(data.path(), &["--timeout", "2s"]).await;
    let target = format!("127.0.0.1:{}", app.port());
    let cli_args: Vec<String> = ["--relay", &relay.url, "--channel", "chaos"]
        .into_iter()
        .chain(["--forward-to", &target])
        .map(str::to_owned)
        .collect();
    let args: Vec<&str> = cli_args.iter().map(String::as_str).collect();
    let cli = spawn_listen(&args).await;
    let channel_url = cli.url.clone();
    let tunnel = Tunnel {
        relay,
        cli,
        cli_args,
    };
    let started = Instant::now();

    let sending = tokio::spawn(send_steadily(channel_url, TOTAL, PACE));
    let chaos = tokio::spawn(chaos(tunnel, Rng(seed | 1), EVENTS));
    let outcomes = sending.await.expect("sender");
    let (tunnel, log) = chaos.await.expect("chaos");
    let answered_2xx: BTreeSet<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o, Outcome::Answered(200..=299)))
        .map(|(seq, _)| seq)
        .collect();
    let drained = app
        .wait_until(DRAIN, |seen| {
            let (count, _) = tally(seen);
            answered_2xx.iter().all(|seq| count.contains_key(seq))
        })
        .await;
    let elapsed = started.elapsed();

    let seen = match drained {
        Ok(seen) | Err(seen) => seen,
    };
    let (count, corrupted) = tally(&seen);
    let mut statuses = BTreeMap::new();
    let mut errors = Vec::new();
    for outcome in &outcomes {
        match outcome {
            Outcome::Answered(status) => *statuses.entry(*status).or_insert(0) += 1,
            Outcome::NotAnswered(e) => errors.push(e.as_str()),
        }
    }
    let non_2xx: usize = statuses
        .iter()
        .filter(|(s, _)| !(200..300).contains(*s))
        .map(|(_, n)| n)
        .sum();
    let duplicated: Vec<usize> = count
        .iter()
        .filter(|(_, &n)| n > 1)
        .map(|(&seq, _)| seq)
        .collect();
    let lost: Vec<usize> = answered_2xx
        .iter()
        .filter(|seq| !count.contains_key(seq))
        .copied()
        .collect();
    println!("chaos seed {seed:#x}, {} events: {log:?}", log.len());
    println!("sender statuses {statuses:?}");
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &errors {
        *kinds.entry(not_answered_kind(e)).or_insert(0) += 1;
    }
    println!("not answered: {kinds:?}");
    println!(
        "chaos report: sent {TOTAL}, answered 2xx {}, answered non-2xx {non_2xx}, \
         not answered {}, delivered {}, duplicated {}, lost {} ({elapsed:.1?})",
        answered_2xx.len(),
        errors.len(),
        count.len(),
        duplicated.len(),
        lost.len(),
    );

    assert!(
        lost.is_empty(),
        "answered 2xx but never delivered: {lost:?}\n--- relay stderr ---\n{}\n--- cli stderr ---\n{}",
        tunnel.relay.stderr(),
        tunnel.cli.stderr(),
    );
    assert!(
        corrupted.is_empty(),
        "delivered with a different target or body: {corrupted:?}"
    );
    assert!(
        !answered_2xx.is_empty(),
        "no request was answered 2xx, so nothing was tested; first errors: {:?}",
        &errors[..errors.len().min(3)]
    );
}

/// A terminal that stops reading (a paused pipe, a suspended pager) holds up only the printed
/// lines: the relay still gets every acknowledgement, so its window never fills and delivery
/// goes on. With a window of 8 and thousands of lines unread, a stall would show at once.
#[tokio::test]
async fn a_stdout_nobody_reads_does_not_stall_delivery() {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _};
    let app = App::ok().await;
    let relay = start_relay(Config {
        max_in_flight: 8,
        ..Config::default()
    })
    .await;
    let data = tempfile::tempdir().expect("temp data dir");
    let target = format!("127.0.0.1:{}", app.port());
    let args = [
        "listen",
        "--json",
        "--relay",
        &relay.url,
        "--forward-to",
        &target,
    ];
    let mut child = hooks_command(&args, data.path())
        .spawn()
        .expect("spawn hooks listen");
    let mut stderr = child.stderr.take().expect("piped stderr");
    tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = stderr.read_to_end(&mut sink).await;
    });
    // The ready line, then stdout is never read again.
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut ready = String::new();
    within("the ready line", stdout.read_line(&mut ready))
        .await
        .expect("read the ready line");
    let ready: serde_json::Value = serde_json::from_str(&ready).expect("ready line is JSON");
    let url = ready["url"]
        .as_str()
        .expect("ready line has a url")
        .to_owned();
    // Far more request lines than the pipe (64 KiB) and the printer's queue (1,024) hold.
    const REQUESTS: usize = 3000;
    const CONCURRENCY: usize = 8;
    let sender = Sender::default();
    let sending = async {
        for round in 0..REQUESTS / CONCURRENCY {
            let posts = (0..CONCURRENCY).map(|i| {
                let seq = round * CONCURRENCY + i;
                let sender = &sender;
                let url = &url;
                async move {
                    sender
                        .post(&format!("{url}/n/{seq}"), format!("request {seq}"))
                        .await
                }
            });
            for reply in futures_util::future::join_all(posts).await {
                assert_eq!(reply.status, 200, "{}", reply.text());
            }
        }
    };
    within("3,000 requests with stdout unread", sending).await;
    assert_eq!(app.requests().len(), REQUESTS);
    drop(stdout);
}
