//! What a relay sends is untrusted (issue 17): a fake relay, a small WebSocket server in this
//! file, answers `hooks listen` (the real binary) with escape sequences in its hello, its close
//! reasons and its refusals, and none of them may reach the terminal; a relay that accepts TCP
//! and never answers the handshake must not hold `--exit-after` past its limit. And what hooks
//! sends a relay is secret: the token never appears in trace-level logs, nor a relay URL's user
//! info in errors.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use relay_server::protocol;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

/// An OSC 52 clipboard write, a screen clear, a C1 "operating system command" (U+009D, which some
/// terminals obey like ESC ]), a right-to-left override and a zero-width space.
const EVIL: &str = "\x1b]52;c;cHduZWQ=\x07\x1b[2J\u{9d}0;title\u{9c}\u{202e}gnp.exe\u{200b}";

/// What the fake relay does with one connection.
#[derive(Clone)]
enum Step {
    /// Answers the hello with `url` (and a channel holding [`EVIL`]), then closes the session
    /// with `reason` as the close frame's reason.
    HelloThenClose { url: String, reason: String },
    /// Answers the hello with `url`, then ends the session with an error message.
    HelloThenError { url: String, message: String },
    /// Refuses the session with `message`.
    Refuse { message: String },
    /// Accepts the TCP connection and never says a word.
    Hang,
}

/// A fake relay on `127.0.0.1:0` that plays `steps` to successive connections, then hangs every
/// later one. `hung` counts the connections left hanging.
struct FakeRelay {
    url: String,
    hung: Arc<AtomicUsize>,
}

async fn fake_relay(steps: Vec<Step>) -> FakeRelay {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the fake relay");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let hung = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hung);
    tokio::spawn(async move {
        let mut steps = steps.into_iter();
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            match steps.next().unwrap_or(Step::Hang) {
                Step::Hang => {
                    held.push(stream);
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                step => {
                    tokio::spawn(play(stream, step));
                }
            }
        }
    });
    FakeRelay { url, hung }
}

/// The relay's hello, written by hand so this test does not depend on the fields a real relay
/// adds: `type` first, as the protocol requires.
fn hello(url: &str) -> Message {
    let meta = json!({
        "type": "hello",
        "version": protocol::PROTOCOL_VERSION,
        "channel": format!("ch{EVIL}"),
        "url": url,
        "respond": "app",
        "timeout_ms": 30_000,
    });
    Message::Binary(protocol::encode(&meta, &[]))
}

fn error(message: &str) -> Message {
    let meta = json!({"type": "error", "message": message});
    Message::Binary(protocol::encode(&meta, &[]))
}

async fn play(stream: tokio::net::TcpStream, step: Step) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    // The CLI's hello.
    let _ = ws.next().await;
    let _ = match step {
        Step::HelloThenClose { url, reason } => {
            let close = CloseFrame {
                code: CloseCode::Normal,
                reason: reason.into(),
            };
            let _ = ws.send(hello(&url)).await;
            ws.send(Message::Close(Some(close))).await
        }
        Step::HelloThenError { url, message } => {
            let _ = ws.send(hello(&url)).await;
            ws.send(error(&message)).await
        }
        Step::Refuse { message } => ws.send(error(&message)).await,
        Step::Hang => Ok(()),
    };
    // Read until the CLI goes, so close handshakes complete.
    while let Some(Ok(_)) = ws.next().await {}
}

/// Fails if `output` holds a character that would act on a terminal instead of being shown.
#[track_caller]
fn assert_inert(what: &str, output: &str) {
    let bad: Vec<char> = output
        .chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{061c}')
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{what} holds raw control characters {bad:?}:\n{output:?}"
    );
}

/// The close reason a WebSocket allows (123 bytes), hostile.
fn close_reason() -> String {
    let reason = format!("bye{EVIL}");
    assert!(reason.len() <= 123);
    reason
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_a_hostile_relays_hello_close_and_error_never_reach_the_terminal_raw() {
    for json in [false, true] {
        let relay = fake_relay(vec![
            Step::HelloThenClose {
                url: format!("http://first{EVIL}"),
                reason: close_reason(),
            },
            Step::HelloThenError {
                url: format!("http://second{EVIL}"),
                message: format!("kicked{EVIL}"),
            },
            Step::Refuse {
                message: format!("refused{EVIL}"),
            },
        ])
        .await;
        let mut args = vec![
            "listen",
            "--relay",
            &relay.url,
            "--forward-to",
            "127.0.0.1:9",
            "--exit-after",
            "1",
        ];
        if json {
            args.push("--json");
        }
        let run = run_hooks(&args).await;
        assert_eq!(run.code, Some(1), "{run:?}");
        assert_inert("stdout", &run.stdout);
        assert_inert("stderr", &run.stderr);
        // Shown, escaped, rather than dropped.
        if json {
            let lines: Vec<serde_json::Value> = run
                .stdout
                .lines()
                .map(|l| serde_json::from_str(l).expect("NDJSON"))
                .collect();
            assert_eq!(lines[0]["type"], "ready", "{}", run.stdout);
            assert_eq!(lines[0]["url"], format!("http://first{EVIL}"), "same text");
            assert!(run.stdout.contains(r"\u001b]52;c;"), "{}", run.stdout);
            assert!(
                run.stdout.contains(r"\u009d0;title\u009c\u202e"),
                "{}",
                run.stdout
            );
            let types: Vec<&str> = lines.iter().filter_map(|l| l["type"].as_str()).collect();
            assert_eq!(
                types,
                ["ready", "disconnected", "reconnected", "disconnected"]
            );
            assert_eq!(lines[1]["reason"], close_reason());
            assert_eq!(lines[3]["reason"], format!("kicked{EVIL}"));
        } else {
            let escaped =
                r"\u{1b}]52;c;cHduZWQ=\u{7}\u{1b}[2J\u{9d}0;title\u{9c}\u{202e}gnp.exe\u{200b}";
            for line in [
                format!("Ready: forwarding http://first{escaped} → http://127.0.0.1:9"),
                format!("Disconnected from the relay (bye{escaped}); reconnecting…"),
                format!("Reconnected: forwarding http://second{escaped} again"),
                format!("Disconnected from the relay (kicked{escaped}); reconnecting…"),
            ] {
                assert!(
                    run.stderr.lines().any(|l| l == line),
                    "{line}\n{}",
                    run.stderr
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_a_hostile_refusal_ends_listen_without_raw_escapes() {
    let relay = fake_relay(vec![Step::Refuse {
        message: format!("go away{EVIL}\nhooks: captures are being saved again"),
    }])
    .await;
    let run = run_hooks(&["listen", "--relay", &relay.url, "--forward-to", "9"]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_inert("stderr", &run.stderr);
    assert_eq!(
        run.stderr,
        "hooks: error: the relay refused the session: go away\\u{1b}]52;c;cHduZWQ=\\u{7}\
         \\u{1b}[2J\\u{9d}0;title\\u{9c}\\u{202e}gnp.exe\\u{200b}\\u{a}hooks: captures are being \
         saved again\n",
        "one line: the relay cannot forge another"
    );
}

/// The token, as the relay's tokens file and `--token` have it.
const TOKEN: &str = "SECRETTOKEN-issue17-7f3a";

/// Every form a log could write the token in: as text, as the hex of a frame dump, in base64.
fn token_forms() -> Vec<String> {
    use base64::Engine as _;
    let hex: String = TOKEN.bytes().map(|b| format!("{b:02x}")).collect();
    let base64 = base64::engine::general_purpose::STANDARD.encode(TOKEN);
    vec![TOKEN.to_owned(), hex, base64]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_trace_logging_never_writes_the_token() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("{TOKEN}\n")).expect("write the tokens file");
    let relay = start_relay(relay_server::Config {
        tokens_file: Some(tokens),
        ..relay_server::Config::default()
    })
    .await;
    let app = App::ok().await;
    let target = format!("127.0.0.1:{}", app.port());
    let args = [
        "--relay",
        &relay.url,
        "--forward-to",
        &target,
        "--token",
        TOKEN,
    ];
    let mut cli = spawn_listen_env(&args, &[("RUST_LOG", "trace")]).await;
    let reply = Sender::default().post(&cli.url, "traced").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    cli.next_requests(1).await;
    cli.terminate();
    cli.wait_exit().await;
    let stderr = cli.final_stderr().await;
    assert!(
        stderr.contains(" TRACE "),
        "trace logging was on: {}",
        &stderr[..stderr.len().min(2000)]
    );
    for form in token_forms() {
        let at = stderr.find(&form);
        assert!(
            at.is_none(),
            "the token ({form}) is in the log: {}",
            &stderr[at.unwrap_or(0).saturating_sub(300)..][..600.min(stderr.len())]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_a_relay_urls_user_info_is_masked_in_errors() {
    let port = closed_port();
    let unreachable = format!("http://alice:hunter2@127.0.0.1:{port}");
    let run = run_hooks_env(
        &["listen", "--relay", &unreachable, "--forward-to", "9"],
        &[("RUST_LOG", "trace")],
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    assert!(
        run.stderr.ends_with(&format!(
            "hooks: error: could not reach the relay at http://(redacted)@127.0.0.1:{port}: \
             connection refused\n"
        )),
        "{}",
        run.stderr
    );
    let no_scheme = run_hooks(&[
        "listen",
        "--relay",
        "alice:hunter2@relay.example.com/x",
        "--forward-to",
        "9",
    ])
    .await;
    assert_eq!(no_scheme.code, Some(1), "{no_scheme:?}");
    assert_eq!(
        no_scheme.stderr,
        "hooks: error: relay URL \"(redacted)@relay.example.com/x\" needs a scheme: \
         http:// or https://\n"
    );
}

/// Issue 17: `--exit-after 1s` took 10.2 s when the relay's port accepted TCP and never answered
/// the WebSocket handshake: the attempt ran to its 10 s connect timeout. It is cut at the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_exit_after_cuts_a_connect_that_hangs() {
    let relay = fake_relay(vec![Step::HelloThenClose {
        url: "http://fake/ch".to_owned(),
        reason: "restarting".to_owned(),
    }])
    .await;
    let started = std::time::Instant::now();
    let run = run_hooks(&[
        "listen",
        "--relay",
        &relay.url,
        "--forward-to",
        "9",
        "--exit-after",
        "1",
        "--json",
    ])
    .await;
    println!("hooks listen --exit-after 1 ran {:?}", started.elapsed());
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        relay.hung.load(Ordering::SeqCst) >= 1,
        "a reconnect attempt met the silent port"
    );
    let last = run.stderr.lines().last().unwrap_or_default();
    let prefix = format!(
        "hooks: error: disconnected from the relay at {} for ",
        relay.url
    );
    let seconds: f64 = last
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(" s (--exit-after 1 s)"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the last line says why: {}", run.stderr));
    // Not a timing measurement: the figure hooks reports itself. Before the fix it was the
    // 10 s connect timeout, whatever --exit-after said.
    assert!(
        seconds < 10.0,
        "--exit-after 1 waited out the connect timeout: {last}"
    );
}
