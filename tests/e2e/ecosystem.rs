//! hooks among the tools around it (issue 25): shell completions that bash loads, man pages that
//! groff renders, `--version`, and `hooks mcp` driven as a coding agent's MCP client drives it,
//! over a store of real captures made by a real `hooks listen`, relay and app.

use std::process::Stdio;
use std::time::SystemTime;

use clap::CommandFactory as _;
use hooks::verify::{self, Provider, Secret, VerifyInput};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::support::*;

/// The signing secret of the Stripe webhook the MCP tests capture.
const STRIPE_SECRET: &str = "whsec_ecosystem_test_4f1c9a";

fn hooks_output(args: &[&str]) -> std::process::Output {
    let data = tempfile::tempdir().expect("temp data dir");
    hooks_std_command(args, data.path())
        .output()
        .expect("run hooks")
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `script` in bash (as a process of its own, with the harness's clean environment) and
/// returns its output.
fn bash(script: &str) -> std::process::Output {
    let mut command = std::process::Command::new("bash");
    hermetic(&mut command);
    command
        .args(["--noprofile", "--norc", "-c", script])
        .env("HOOKS_BIN", env!("CARGO_BIN_EXE_hooks"))
        .output()
        .expect("bash runs (it is on every machine this project builds on)")
}

#[test]
fn bash_loads_the_completion_scripts() {
    let loaded = bash(r#"source <("$HOOKS_BIN" completions bash) && complete -p hooks"#);
    assert!(
        loaded.status.success(),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    assert!(
        stdout(&loaded).starts_with("complete "),
        "{}",
        stdout(&loaded)
    );
    assert!(stdout(&loaded).trim_end().ends_with(" hooks"));

    // hooks-relay's script, written by the code its --completions flag runs.
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("hooks-relay.bash");
    let mut text = Vec::new();
    relay_server::cli::completions(clap_complete::Shell::Bash, &mut text).expect("in memory");
    std::fs::write(&script, text).expect("write the script");
    let loaded = bash(&format!(
        "source '{}' && complete -p hooks-relay",
        script.display()
    ));
    assert!(loaded.status.success(), "{loaded:?}");
    assert!(stdout(&loaded).trim_end().ends_with(" hooks-relay"));
}

#[test]
fn every_shell_gets_a_script_and_zsh_starts_with_compdef() {
    let zsh = hooks_output(&["completions", "zsh"]);
    assert!(zsh.status.success());
    assert!(
        stdout(&zsh).starts_with("#compdef hooks\n"),
        "{}",
        stdout(&zsh)
    );
    for shell in ["fish", "powershell", "elvish"] {
        let script = hooks_output(&["completions", shell]);
        assert!(script.status.success(), "{shell}");
        assert!(
            stdout(&script).contains("listen"),
            "{shell}: {}",
            stdout(&script)
        );
    }
    let unknown = hooks_output(&["completions", "tcsh"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("invalid value 'tcsh'"));
}

/// `page` rendered as text by groff (the formatter `man` runs), without bold or underlining.
fn render(page: &std::path::Path) -> String {
    let output = std::process::Command::new("groff")
        .args(["-k", "-man", "-Tutf8", "-P", "-cbou"])
        .arg(page)
        .output()
        .unwrap_or_else(|e| {
            panic!("groff could not run ({e}); install it: apt-get install groff-base")
        });
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).expect("UTF-8 text")
}

#[test]
fn man_writes_a_page_per_command_that_groff_renders() {
    let dir = tempfile::tempdir().expect("temp dir");
    let man = dir.path().join("share/man/man1");
    let written = hooks_output(&["man", "--dir", man.to_str().expect("UTF-8 path")]);
    assert!(written.status.success(), "{written:?}");
    let mut expected = vec!["hooks.1".to_owned(), "hooks-relay.1".to_owned()];
    // A page per subcommand, and per subcommand of those (hooks-routes-check.1).
    for command in hooks::cli::Cli::command().get_subcommands() {
        let name = format!("hooks-{}", command.get_name());
        expected.extend(
            command
                .get_subcommands()
                .map(|sub| format!("{name}-{}.1", sub.get_name())),
        );
        expected.push(format!("{name}.1"));
    }
    expected.sort();
    expected.dedup();
    let mut on_disk: Vec<String> = std::fs::read_dir(&man)
        .expect("the folder was made")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, expected);
    let listed: Vec<String> = expected
        .iter()
        .map(|name| man.join(name).display().to_string())
        .collect();
    assert_eq!(stdout(&written).lines().collect::<Vec<_>>(), listed);

    let listen = render(&man.join("hooks-listen.1"));
    assert!(listen.contains("--forward-to"), "{listen}");
    let words = listen.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("NAME hooks-listen - Get a webhook URL"),
        "{listen}"
    );
    assert!(
        words.contains("http://… or https://…"),
        "UTF-8 survives: {listen}"
    );
    let relay = render(&man.join("hooks-relay.1"));
    for flag in ["--data-dir", "--completions"] {
        assert!(relay.contains(flag), "{flag} in {relay}");
    }
    let mcp = render(&man.join("hooks-mcp.1"));
    assert!(mcp.contains("--allow-send"), "{mcp}");
}

#[test]
fn version_flags_print_the_version() {
    let version = env!("CARGO_PKG_VERSION");
    let hooks = hooks_output(&["--version"]);
    assert!(hooks.status.success());
    assert_eq!(stdout(&hooks), format!("hooks {version}\n"));
    let relay = relay_server::cli::command()
        .try_get_matches_from(["hooks-relay", "--version"])
        .expect_err("--version stops parsing");
    assert_eq!(relay.kind(), clap::error::ErrorKind::DisplayVersion);
    let printed = relay.to_string();
    let number = printed.strip_prefix("hooks-relay ").unwrap_or_default();
    assert!(
        number.ends_with('\n') && number.trim_end().split('.').count() == 3,
        "{printed:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// hooks mcp
// ---------------------------------------------------------------------------------------------

/// `hooks mcp` as a child process, spoken to as an MCP client speaks to it.
struct Mcp {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Mcp {
    fn start(data_dir: &std::path::Path, args: &[&str]) -> Mcp {
        let mut full = vec!["mcp"];
        full.extend_from_slice(args);
        let mut command = hooks_command(&full, data_dir);
        command
            .stdin(Stdio::piped())
            .env("HOOKS_SECRET", STRIPE_SECRET);
        let mut child = command.spawn().expect("spawn hooks mcp");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        Mcp {
            child,
            stdin,
            stdout,
        }
    }

    async fn send(&mut self, line: &str) {
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        within("hooks mcp to read", self.stdin.write_all(&bytes))
            .await
            .expect("write to hooks mcp");
    }

    /// The next line, which must be one JSON-RPC message.
    async fn next(&mut self) -> Value {
        let line = within("an answer from hooks mcp", self.stdout.next_line())
            .await
            .expect("read hooks mcp's stdout")
            .expect("hooks mcp closed its stdout");
        let message: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line:?}"));
        assert_eq!(message["jsonrpc"], "2.0", "{line}");
        message
    }

    async fn request(&mut self, id: u64, method: &str, params: Value) -> Value {
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send(&message.to_string()).await;
        let answer = self.next().await;
        assert_eq!(answer["id"], id, "{answer}");
        answer
    }

    /// `tools/call`: the result, which must not be a protocol error.
    async fn call(&mut self, id: u64, tool: &str, arguments: Value) -> Value {
        let params = json!({"name": tool, "arguments": arguments});
        let answer = self.request(id, "tools/call", params).await;
        assert!(answer.get("error").is_none(), "{answer}");
        answer["result"].clone()
    }

    async fn initialize(&mut self) -> Value {
        let params = json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "ecosystem-test", "version": "1.0.0"},
        });
        let answer = self.request(1, "initialize", params).await;
        self.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await;
        answer["result"].clone()
    }

    /// Closes stdin, as a client that quits does, and returns the exit code.
    async fn quit(mut self) -> Option<i32> {
        drop(self.stdin);
        let rest = within("hooks mcp to finish", async {
            let mut rest = Vec::new();
            while let Ok(Some(line)) = self.stdout.next_line().await {
                rest.push(line);
            }
            rest
        })
        .await;
        assert!(rest.is_empty(), "unexpected output: {rest:?}");
        within("hooks mcp to exit", self.child.wait())
            .await
            .expect("wait for hooks mcp")
            .code()
    }
}

/// The text of a tool result's first content block.
fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

/// A relay, an app answering 201, and `hooks listen` that captured two webhooks: `#1` a
/// Stripe-signed JSON POST to `/stripe` with an Authorization header, `#2` a PUT of bytes that
/// are not UTF-8 to `/bin`.
async fn two_captures() -> (Relay, App, Listener) {
    let app = App::start(|_| Answer {
        status: 201,
        headers: headers(&[("content-type", "application/json")]),
        ..Answer::ok(r#"{"received":true}"#)
    })
    .await;
    let relay = start_relay(relay_server::Config::default()).await;
    let target = format!("127.0.0.1:{}", app.port());
    let mut listener = spawn_listen(&["--relay", &relay.url, "--forward-to", &target]).await;
    let body = br#"{"id":"evt_1","type":"invoice.paid"}"#;
    let input = VerifyInput {
        method: "POST",
        url: "",
        headers: &[],
        body,
    };
    let signed = verify::sign(
        Provider::Stripe,
        &Secret::new(STRIPE_SECRET),
        &input,
        SystemTime::now(),
    )
    .expect("sign");
    let mut stripe = headers(&[
        ("content-type", "application/json"),
        ("authorization", "Bearer sk_live_abcdefghijklmnopqrstuvwxyz"),
    ]);
    for (name, value) in signed.headers {
        stripe.push((name.to_ascii_lowercase(), value.into_bytes()));
    }
    let sender = Sender::default();
    let url = format!("{}/stripe", listener.url);
    let reply = sender.send("POST", &url, &stripe, full(&body[..])).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    // A request line is printed once its capture is committed: this orders the two ids.
    listener.next_requests(1).await;
    let binary = headers(&[("content-type", "application/octet-stream")]);
    let url = format!("{}/bin", listener.url);
    let reply = sender
        .send("PUT", &url, &binary, full(&b"\xff\xfe\x00bytes"[..]))
        .await;
    assert_eq!(reply.status, 201);
    listener.next_requests(1).await;
    (relay, app, listener)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_reads_real_captures_over_mcp() {
    let (_relay, _app, listener) = two_captures().await;
    let mut mcp = Mcp::start(listener.data_dir(), &[]);

    let init = mcp.initialize().await;
    assert_eq!(init["protocolVersion"], "2025-11-25", "{init}");
    assert_eq!(init["serverInfo"]["name"], "hooks");
    assert!(init["capabilities"]["tools"].is_object(), "{init}");

    let tools = mcp.request(2, "tools/list", json!({})).await;
    let tools = tools["result"]["tools"]
        .as_array()
        .expect("a tool list")
        .clone();
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "list_captures",
            "show_capture",
            "verify_capture",
            "diff_captures"
        ]
    );
    for tool in &tools {
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
        assert!(tool["description"].as_str().is_some_and(|d| d.len() > 20));
    }

    let listed = mcp.call(3, "list_captures", json!({"limit": 10})).await;
    assert_eq!(listed["isError"], false, "{listed}");
    let captures = &listed["structuredContent"]["captures"];
    assert_eq!(captures[0]["id"], 2, "newest first: {listed}");
    assert_eq!(captures[0]["method"], "PUT");
    assert_eq!(captures[1]["path"], "/stripe");
    assert_eq!(captures[1]["status"], 201);
    assert_eq!(captures[1]["event_type"], "invoice.paid");
    let as_text: Value = serde_json::from_str(text(&listed)).expect("the text is the JSON");
    assert_eq!(as_text, listed["structuredContent"]);

    let shown = mcp.call(4, "show_capture", json!({"id": 1})).await;
    let capture = &shown["structuredContent"];
    assert_eq!(capture["request"]["method"], "POST", "{shown}");
    assert_eq!(
        capture["request"]["body"]["text"],
        r#"{"id":"evt_1","type":"invoice.paid"}"#
    );
    assert_eq!(capture["response"]["status"], 201);
    assert_eq!(capture["response"]["body"]["text"], r#"{"received":true}"#);
    let header = |name: &str| -> String {
        capture["request"]["headers"]
            .as_array()
            .and_then(|list| list.iter().find(|h| h[0] == name))
            .map(|h| h[1].as_str().unwrap_or_default().to_owned())
            .unwrap_or_else(|| panic!("no {name} header in {capture}"))
    };
    assert_eq!(header("authorization"), "Bearer s…(redacted, 41 chars)");
    assert!(header("stripe-signature").contains("…(redacted"));
    let binary = mcp.call(5, "show_capture", json!({"id": 2})).await;
    assert_eq!(
        binary["structuredContent"]["request"]["body"],
        json!({"bytes": 8, "base64": "//4AYnl0ZXM="})
    );

    let verified = mcp.call(6, "verify_capture", json!({"id": 1})).await;
    assert_eq!(
        verified["structuredContent"]["verdict"], "valid",
        "{verified}"
    );
    assert_eq!(verified["structuredContent"]["provider"], "stripe");

    let refused = mcp.call(7, "replay_capture", json!({"id": 1})).await;
    assert_eq!(refused["isError"], true, "{refused}");
    assert!(
        text(&refused).contains("restart it as `hooks mcp --allow-send`"),
        "{refused}"
    );

    let diffed = mcp
        .call(
            9,
            "diff_captures",
            json!({"a": 1, "b": 2, "ignore": ["/id"]}),
        )
        .await;
    let found = &diffed["structuredContent"];
    assert_eq!(
        (found["a"].as_i64(), found["same"].as_bool()),
        (Some(1), Some(false)),
        "{diffed}"
    );
    assert_eq!(
        found["request_line"],
        json!({"a": "POST /stripe", "b": "PUT /bin"})
    );
    assert_eq!(found["request_body"]["kind"], "bytes", "{found}");
    let removed = found["request_headers"]
        .as_array()
        .and_then(|list| list.iter().find(|c| c["name"] == "authorization"))
        .unwrap_or_else(|| panic!("authorization removed: {found}"));
    assert_eq!(removed["value"], "Bearer s…(redacted, 41 chars)");
    let send_refused = mcp
        .call(
            10,
            "send_event",
            json!({"provider": "stripe", "event": "invoice.paid", "to": "3000"}),
        )
        .await;
    assert_eq!(send_refused["isError"], true, "{send_refused}");
    assert!(
        text(&send_refused).contains("--allow-send"),
        "{send_refused}"
    );

    mcp.send("this is not JSON").await;
    let parse = mcp.next().await;
    assert_eq!(parse["error"]["code"], -32700, "{parse}");
    assert_eq!(parse["id"], Value::Null);
    let pong = mcp.request(8, "ping", json!({})).await;
    assert_eq!(pong["result"], json!({}), "the server kept going");

    for answer in [&listed, &shown, &verified, &refused, &diffed] {
        assert!(!answer.to_string().contains(STRIPE_SECRET), "{answer}");
    }
    assert_eq!(mcp.quit().await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_allow_send_an_agent_replays_a_capture() {
    let (_relay, app, listener) = two_captures().await;
    let mut mcp = Mcp::start(listener.data_dir(), &["--allow-send"]);
    mcp.initialize().await;
    let tools = mcp.request(2, "tools/list", json!({})).await;
    let names: Vec<Value> = tools["result"]["tools"]
        .as_array()
        .expect("a tool list")
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert!(names.contains(&json!("replay_capture")), "{tools}");
    assert!(names.contains(&json!("send_event")), "{tools}");

    let replayed = mcp.call(3, "replay_capture", json!({"id": 1})).await;
    assert_eq!(replayed["isError"], false, "{replayed}");
    let new = &replayed["structuredContent"]["replay"];
    assert_eq!(new["id"], 3, "{replayed}");
    assert_eq!(new["replay_of"], 1);
    assert_eq!(new["response"]["status"], 201);
    let seen = app.wait_for(3).await;
    assert_eq!(seen[2].method, "POST");
    assert_eq!(seen[2].target, "/stripe");
    assert_eq!(&seen[2].body[..], &seen[0].body[..], "the same bytes again");

    let listed = mcp.call(4, "list_captures", json!({})).await;
    assert_eq!(listed["structuredContent"]["captures"][0]["replay_of"], 1);
    let filtered = mcp
        .call(
            5,
            "list_captures",
            json!({"where": "status:201 replay:true"}),
        )
        .await;
    assert_eq!(filtered["isError"], false, "{filtered}");
    let captures = filtered["structuredContent"]["captures"]
        .as_array()
        .unwrap();
    let ids: Vec<&Value> = captures.iter().map(|c| &c["id"]).collect();
    assert_eq!(ids, [&json!(3)], "only the replay answered 201: {filtered}");
    let bad = mcp
        .call(6, "list_captures", json!({"where": "status = 201"}))
        .await;
    assert_eq!(bad["isError"], true, "{bad}");
    assert!(text(&bad).contains("invalid where expression"), "{bad}");

    // send_event: signed with the server's HOOKS_SECRET, as hooks send signs it.
    let to = format!("127.0.0.1:{}", app.port());
    let set = json!({"/data/object/customer": "cus_mcp"});
    let arguments = json!({"provider": "stripe", "event": "invoice.paid", "to": to, "set": set});
    let sent = mcp.call(7, "send_event", arguments).await;
    assert_eq!(sent["isError"], false, "{sent}");
    assert_eq!(sent["structuredContent"]["sent"]["id"], 4, "{sent}");
    assert_eq!(sent["structuredContent"]["sent"]["response"]["status"], 201);
    assert!(!sent.to_string().contains(STRIPE_SECRET), "{sent}");
    let event = app.wait_for(4).await.remove(3);
    let body: Value = serde_json::from_slice(&event.body).expect("a JSON event");
    assert_eq!(body["type"], "invoice.paid");
    assert_eq!(body["data"]["object"]["customer"], "cus_mcp");
    let signature = event.header("stripe-signature")[0].to_vec();
    let pairs = [("stripe-signature", &signature[..])];
    let input = VerifyInput {
        method: "POST",
        url: "",
        headers: &pairs,
        body: &event.body,
    };
    let secrets = [Secret::new(STRIPE_SECRET)];
    let checked = verify::check(
        &input,
        &secrets,
        Some(Provider::Stripe),
        None,
        SystemTime::now(),
    )
    .expect("checkable");
    assert_eq!(checked.to_json()["verdict"], "valid", "{checked:?}");
    let unknown = mcp
        .call(
            8,
            "send_event",
            json!({"provider": "stripe", "event": "nope", "to": to}),
        )
        .await;
    assert_eq!(unknown["isError"], true, "{unknown}");
    assert_eq!(mcp.quit().await, Some(0));
}
