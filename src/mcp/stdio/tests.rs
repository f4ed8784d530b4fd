//! The server over in-memory pipes: the lifecycle, malformed input, the tools over a real store
//! in a temp folder, and cancellation.

use std::path::Path;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use relay_server::protocol::Header;
use serde_json::json;
use tokio::io::{DuplexStream, ReadHalf, WriteHalf};

use super::*;
use crate::exchange::{now_ms, Exchange, Outcome, Recognized, Request, Response};
use crate::mcp::tools::Tools;
use crate::store::{self, Retention, Writer};
use crate::verify::{self, Provider, Secret, VerifyInput};

/// How long a test waits for one answer before failing.
const WAIT: Duration = Duration::from_secs(10);

struct Client {
    input: WriteHalf<DuplexStream>,
    output: tokio::io::Lines<BufReader<ReadHalf<DuplexStream>>>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Client {
    fn start(tools: Tools) -> Client {
        let (client, server) = tokio::io::duplex(1 << 16);
        let (server_in, server_out) = tokio::io::split(server);
        let session = Arc::new(Session::new(tools));
        let shutdown = CancellationToken::new();
        let done = tokio::spawn(run(session, server_in, server_out, shutdown));
        let (client_out, client_in) = tokio::io::split(client);
        Client {
            input: client_in,
            output: BufReader::new(client_out).lines(),
            done,
        }
    }

    async fn send(&mut self, line: &str) {
        self.input.write_all(line.as_bytes()).await.unwrap();
        self.input.write_all(b"\n").await.unwrap();
    }

    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(WAIT, self.output.next_line())
            .await
            .expect("an answer in time")
            .unwrap()
            .expect("an answer, not the end");
        serde_json::from_str(&line).unwrap()
    }

    async fn request(&mut self, id: u64, method: &str, params: Value) -> Value {
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send(&message.to_string()).await;
        let answer = self.next().await;
        assert_eq!(answer["id"], id, "{answer}");
        answer
    }

    async fn initialize(&mut self) {
        let params = json!({"protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"}});
        let answer = self.request(1, "initialize", params).await;
        assert_eq!(answer["result"]["protocolVersion"], "2025-11-25");
        self.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await;
    }

    /// Closes the input and returns every line written after that.
    async fn finish(mut self) -> Vec<Value> {
        self.input.shutdown().await.unwrap();
        let mut rest = Vec::new();
        while let Ok(Some(line)) = tokio::time::timeout(WAIT, self.output.next_line())
            .await
            .expect("the server to end")
        {
            rest.push(serde_json::from_str(&line).unwrap());
        }
        tokio::time::timeout(WAIT, self.done)
            .await
            .expect("run to return")
            .unwrap()
            .unwrap();
        rest
    }
}

fn tools(store: &Path, allow_send: bool, secrets: &[&str]) -> Tools {
    let secrets = secrets.iter().map(|s| Secret::new(*s)).collect();
    Tools::new(allow_send, secrets, store.to_owned())
}

fn header(name: &str, value: &[u8]) -> Header {
    Header {
        name: name.into(),
        value: Bytes::copy_from_slice(value),
    }
}

/// A capture of a Stripe webhook signed with `secret`, forwarded to `target`.
fn stripe_record(secret: &str, target: &str) -> Exchange {
    let body = format!(r#"{{"type":"invoice.paid","note":"{secret}"}}"#);
    let unsigned = [
        ("content-type", &b"application/json"[..]),
        ("stripe-signature", b"t=1,v1=00"),
    ];
    let input = VerifyInput {
        method: "POST",
        url: "http://relay/ch/hook",
        headers: &unsigned,
        body: body.as_bytes(),
    };
    let signed = verify::sign(
        Provider::Stripe,
        &Secret::new(secret),
        &input,
        SystemTime::now(),
    )
    .unwrap();
    let mut headers = vec![header("content-type", b"application/json")];
    for (name, value) in signed.headers {
        headers.push(header(&name.to_ascii_lowercase(), value.as_bytes()));
    }
    let request = Request {
        method: "POST".into(),
        path: "/hook".into(),
        headers,
        body: Bytes::from(body),
    };
    let outcome = Outcome::Answered(Response {
        status: 200,
        headers: vec![header("set-cookie", b"session=abcdefghijklmnop")],
        body: Bytes::from_static(b"\xff\x00ok"),
    });
    let duration = Duration::from_millis(3);
    Exchange {
        channel: Some("ch".into()),
        channel_url: Some("http://relay/ch".into()),
        relay_id: Some(1),
        event: Some(Recognized {
            provider: Provider::Stripe,
            event_type: Some("invoice.paid".into()),
            event_id: None,
            occurred_at: None,
            object_id: None,
        }),
        ..Exchange::new(now_ms(), target.into(), request, outcome, duration)
    }
}

/// A store in `dir` holding `record` as capture #1.
async fn store_with(dir: &Path, record: Exchange) -> std::path::PathBuf {
    let path = dir.join(store::FILE_NAME);
    let (conn, _) = store::open_or_replace(&path).unwrap();
    let writer = Writer::spawn(conn, path.clone(), Retention::default()).unwrap();
    let id = writer.record(record).unwrap().await.unwrap().unwrap();
    assert_eq!(id, 1);
    path
}

#[tokio::test]
async fn the_lifecycle_goes_on_past_malformed_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut client = Client::start(tools(&dir.path().join("none.db"), false, &[]));
    let early = client.request(9, "tools/list", json!({})).await;
    assert_eq!(early["error"]["code"], jsonrpc::INVALID_REQUEST, "{early}");
    client.initialize().await;
    client.send("{not json").await;
    let parse = client.next().await;
    assert_eq!(parse["error"]["code"], jsonrpc::PARSE_ERROR);
    assert_eq!(parse["id"], Value::Null);
    client.send(&"x".repeat(MAX_MESSAGE + 1)).await;
    let long = client.next().await;
    assert_eq!(long["error"]["code"], jsonrpc::INVALID_REQUEST, "{long}");
    client.send("").await;
    let pong = client.request(2, "ping", json!({})).await;
    assert_eq!(pong["result"], json!({}));
    let names: Vec<Value> = client.request(3, "tools/list", json!({})).await["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert_eq!(
        names,
        [
            "list_captures",
            "show_capture",
            "verify_capture",
            "diff_captures"
        ]
    );
    let unknown = client.request(4, "resources/list", json!({})).await;
    assert_eq!(unknown["error"]["code"], jsonrpc::METHOD_NOT_FOUND);
    let no_tool = client
        .request(5, "tools/call", json!({"name": "rm_rf", "arguments": {}}))
        .await;
    assert_eq!(no_tool["error"]["code"], jsonrpc::INVALID_PARAMS);
    assert_eq!(client.finish().await, Vec::<Value>::new());
}

#[tokio::test]
async fn modern_clients_need_no_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let mut client = Client::start(tools(&dir.path().join("none.db"), false, &[]));
    let meta = json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}}});
    let found = client.request(1, "server/discover", meta.clone()).await;
    assert_eq!(found["result"]["resultType"], "complete", "{found}");
    assert_eq!(found["result"]["supportedVersions"][0], "2026-07-28");
    let mut call = meta.clone();
    call["name"] = json!("list_captures");
    let listed = client.request(2, "tools/call", call).await;
    assert_eq!(listed["result"]["resultType"], "complete", "{listed}");
    assert_eq!(listed["result"]["structuredContent"]["count"], 0);
    let old = json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2020-01-01",
        "io.modelcontextprotocol/clientCapabilities": {}}});
    let refused = client.request(3, "tools/list", old).await;
    assert_eq!(
        refused["error"]["code"],
        jsonrpc::UNSUPPORTED_PROTOCOL_VERSION
    );
    client.finish().await;
}

#[tokio::test]
async fn tools_read_the_store_and_never_return_a_secret() {
    let secret = "whsec_test_0123456789";
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), stripe_record(secret, "http://127.0.0.1:9")).await;
    let mut client = Client::start(tools(&store, false, &[secret]));
    client.initialize().await;
    let call = |name: &str, arguments: Value| json!({"name": name, "arguments": arguments});

    let listed = client
        .request(2, "tools/call", call("list_captures", json!({})))
        .await;
    let rows = &listed["result"]["structuredContent"]["captures"];
    assert_eq!(rows[0]["id"], 1, "{listed}");
    assert_eq!(rows[0]["event_type"], "invoice.paid");

    let shown = client
        .request(3, "tools/call", call("show_capture", json!({"id": 1})))
        .await;
    let capture = &shown["result"]["structuredContent"];
    assert_eq!(capture["request"]["path"], "/hook", "{shown}");
    assert_eq!(
        capture["request"]["body"]["text"],
        r#"{"type":"invoice.paid","note":"(secret)"}"#
    );
    assert_eq!(capture["response"]["body"]["base64"], "/wBvaw==");
    let signature = &capture["request"]["headers"][1];
    assert_eq!(signature[0], "stripe-signature");
    assert!(
        signature[1].as_str().unwrap().contains("…(redacted"),
        "{signature}"
    );
    assert!(
        capture.get("channel_url").is_none(),
        "the channel URL stays out"
    );

    let arguments = json!({"secret": "whsec_given_by_agent", "id": "last"});
    let wrong = client
        .request(4, "tools/call", call("verify_capture", arguments))
        .await;
    let report = &wrong["result"]["structuredContent"];
    assert_eq!(report["verdict"], "invalid", "{wrong}");
    assert_eq!(report["secret_from"], "argument");
    let right = client
        .request(5, "tools/call", call("verify_capture", json!({})))
        .await;
    assert_eq!(
        right["result"]["structuredContent"]["verdict"], "valid",
        "{right}"
    );
    assert_eq!(right["result"]["structuredContent"]["provider"], "stripe");

    let refused = client
        .request(6, "tools/call", call("replay_capture", json!({"id": 1})))
        .await;
    assert_eq!(refused["result"]["isError"], true);
    let text = refused["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("restart it as `hooks mcp --allow-send`"),
        "{text}"
    );

    let missing = client
        .request(7, "tools/call", call("show_capture", json!({"id": 99})))
        .await;
    assert_eq!(missing["result"]["content"][0]["text"], "no capture #99");
    let bad = client
        .request(8, "tools/call", call("show_capture", json!({"id": "x"})))
        .await;
    assert_eq!(bad["result"]["isError"], true, "{bad}");
    client.finish().await;
    for answer in [&listed, &shown, &wrong, &right] {
        let text = answer.to_string();
        assert!(
            !text.contains(secret) && !text.contains("whsec_given"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_cancelled_call_sends_nothing() {
    // An app that accepts and never answers: the replay waits until it is cancelled.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), stripe_record("whsec_x", &target)).await;
    let mut client = Client::start(tools(&store, true, &[]));
    client.initialize().await;
    let replay = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "replay_capture", "arguments": {"id": 1}}});
    client.send(&replay.to_string()).await;
    client
        .send(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}}"#)
        .await;
    let pong = client.request(8, "ping", json!({})).await;
    assert_eq!(pong["result"], json!({}));
    assert_eq!(
        client.finish().await,
        Vec::<Value>::new(),
        "no answer to #7"
    );
    held.abort();
}
