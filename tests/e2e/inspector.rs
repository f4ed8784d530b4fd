//! The inspector end to end, in a real terminal (tmux): `hooks listen --ui` with the real relay
//! and a recording app (send webhooks, filter, open one, replay it, edit and send it, copy it,
//! quit, and the terminal is restored); `hooks inspect` beside a running `hooks listen`; SIGTERM
//! and SIGHUP giving the terminal back; and both entry points without a terminal.

use std::time::Duration;

use relay_server::Config;

use crate::support::tmux::Pane;
use crate::support::{self, full, headers, start_relay, App, Sender, STEP_TIMEOUT};

/// Sends a JSON webhook to `path` of the channel at `url`.
async fn webhook(url: &str, path: &str, body: &str) {
    let reply = Sender::default()
        .send(
            "POST",
            &format!("{url}{path}"),
            &headers(&[("content-type", "application/json")]),
            full(body.to_owned()),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

/// A pane with an editor that rewrites `first` to `edited` in the file it is given, and the
/// store in `data`.
async fn pane(data: &std::path::Path) -> Pane {
    let data = data.display().to_string();
    Pane::start(
        120,
        40,
        &[
            ("HOOKS_DATA_DIR", &data),
            ("EDITOR", "sed -i s/first/edited/"),
        ],
    )
    .await
}

#[tokio::test]
async fn listen_ui_filters_opens_replays_edits_copies_and_gives_the_terminal_back() {
    let relay = start_relay(Config::default()).await;
    let app = App::ok().await;
    let data = tempfile::tempdir().unwrap();
    let pane = pane(data.path()).await;
    pane.run(&format!(
        "hooks listen --ui -f {} --relay {} --channel tui-e2e",
        app.target(),
        relay.url
    ));
    pane.wait_for_text("attached").await;
    let url = format!("{}/tui-e2e", relay.url);
    webhook(&url, "/invoices/1", r#"{"n":1,"note":"first"}"#).await;
    webhook(&url, "/orders/2", r#"{"n":2,"note":"first"}"#).await;
    webhook(&url, "/invoices/3", r#"{"n":3,"note":"first"}"#).await;
    let screen = pane.wait_for_text("#3").await;
    assert!(
        screen.contains("/orders/2") && screen.contains("2xx 3"),
        "{screen}"
    );

    pane.press(&["/"]);
    pane.type_text("path:/orders/*");
    pane.press(&["Enter"]);
    let screen = pane
        .wait_for("only /orders/2 listed", |s| {
            s.contains("filter: path:/orders/*") && s.contains("#2") && !s.contains("/invoices/3")
        })
        .await;
    assert!(!screen.contains("/invoices/1"), "{screen}");

    pane.press(&["Enter"]);
    pane.wait_for_text("1 Overview").await;
    pane.press(&["2"]);
    pane.wait_for_text("\"note\": \"first\"").await;

    pane.press(&["r"]);
    pane.wait_for_text("replayed #2 → #4").await;
    let received = app.wait_for(4).await;
    assert_eq!(received[3].target, "/orders/2");
    assert_eq!(&received[3].body[..], br#"{"n":2,"note":"first"}"#);

    pane.press(&["e"]);
    pane.wait_for_text("sent the edited #2 → #5").await;
    let received = app.wait_for(5).await;
    assert_eq!(&received[4].body[..], br#"{"n":2,"note":"edited"}"#);

    pane.press(&["c"]);
    pane.wait_for_text("copied #2 as curl").await;
    let copied = pane.clipboard().expect("OSC 52 made a tmux buffer");
    assert!(copied.contains("curl --path-as-is"), "{copied}");
    assert!(copied.contains("/orders/2"), "{copied}");

    pane.press(&["q"]);
    pane.assert_terminal_restored().await;
    let screen = pane.screen();
    assert!(
        !screen.contains("1 Overview"),
        "the inspector's screen is gone:\n{screen}"
    );
}

#[tokio::test]
async fn inspect_shows_what_a_running_listen_captures_live() {
    let relay = start_relay(Config::default()).await;
    let app = App::ok().await;
    let data = tempfile::tempdir().unwrap();
    let args = ["-f", &app.target(), "--relay", &relay.url];
    let mut listener = support::spawn_listen_in(data.path(), &args).await;
    webhook(&listener.url, "/before", r#"{"when":"before"}"#).await;
    listener.next_request().await;

    let pane = pane(data.path()).await;
    pane.run("hooks inspect");
    // The command line typed shows "hooks inspect" too: the header is the first line.
    pane.wait_for("the inspector's header", |s| {
        s.lines()
            .next()
            .is_some_and(|l| l.starts_with(" hooks inspect"))
    })
    .await;
    pane.wait_for_text("/before").await;
    webhook(&listener.url, "/after", r#"{"when":"after"}"#).await;
    listener.next_request().await;
    let screen = pane.wait_for_text("/after").await;
    assert!(screen.contains("2 captures"), "{screen}");

    pane.press(&["/"]);
    pane.type_text("json./when:after");
    pane.press(&["Enter"]);
    pane.wait_for("the JSON filter", |s| {
        s.contains("/after") && !s.contains("/before")
    })
    .await;
    pane.press(&["C-c"]);
    pane.assert_terminal_restored().await;
}

/// Starts `hooks listen --ui` in `pane` and returns its process id.
async fn start_listen_ui(pane: &Pane, app: &App, relay: &str) -> String {
    pane.run(&format!(
        "hooks listen --ui -f {} --relay {relay}; echo code=$?",
        app.target()
    ));
    pane.wait_for_text("attached").await;
    let shell = pane.shell_pid().to_string();
    let output = std::process::Command::new("ps")
        .args(["--ppid", &shell, "-o", "pid=,comm="])
        .output()
        .expect("ps");
    let children = String::from_utf8_lossy(&output.stdout).into_owned();
    children
        .lines()
        .find(|line| line.contains("hooks"))
        .and_then(|line| line.split_whitespace().next())
        .unwrap_or_else(|| panic!("no hooks process under the shell: {children}"))
        .to_owned()
}

#[tokio::test]
async fn sigterm_and_sighup_give_the_terminal_back() {
    let relay = start_relay(Config::default()).await;
    let app = App::ok().await;
    let data = tempfile::tempdir().unwrap();
    let pane = pane(data.path()).await;
    for signal in ["-TERM", "-HUP"] {
        let pid = start_listen_ui(&pane, &app, &relay.url).await;
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill");
        assert!(status.success());
        let screen = pane
            .wait_for("the exit status", |s| {
                s.lines().any(|l| l.starts_with("code="))
            })
            .await;
        assert!(screen.lines().any(|l| l == "code=0"), "{signal}:\n{screen}");
        pane.assert_terminal_restored().await;
        pane.fresh_prompt().await;
    }
}

#[tokio::test]
async fn without_a_terminal_inspect_exits_2_and_listen_ui_prints_lines() {
    let data = tempfile::tempdir().unwrap();
    let run = support::cli::run(&["inspect"], data.path()).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "hooks: error: hooks inspect needs a terminal (its stdin and stdout are not one); hooks list and hooks show print captures without one\n"
    );

    let relay = start_relay(Config::default()).await;
    let app = App::ok().await;
    let args = [
        "listen",
        "--ui",
        "-f",
        &app.target(),
        "--relay",
        &relay.url,
        "--channel",
        "no-tty",
    ];
    let mut command = support::hooks_command(&args, data.path());
    let mut child = command.spawn().expect("spawn hooks listen --ui");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut errors = BufReader::new(stderr).lines();
    let first = support::within("the note on stderr", errors.next_line())
        .await
        .unwrap();
    assert_eq!(
        first.as_deref(),
        Some("hooks: --ui needs a terminal (stdin and stdout); printing lines instead")
    );
    let ready = support::within("the ready line", errors.next_line())
        .await
        .unwrap();
    assert!(ready.is_some_and(|l| l.starts_with("Ready: forwarding")));
    webhook(&format!("{}/no-tty", relay.url), "/plain", "{}").await;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(STEP_TIMEOUT, lines.next_line())
        .await
        .expect("a request line on stdout")
        .unwrap()
        .unwrap_or_default();
    assert!(line.contains("POST /plain"), "{line}");
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
}
