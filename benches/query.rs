//! `cargo bench --bench query`: how long `hooks list --where` takes over a large capture store
//! (issue 19 aims for under a second with a JSON pointer over 100,000 captures). It fills a
//! store in a temp directory through the library's own writer (1 KiB Stripe-like JSON bodies,
//! eight headers, one capture in ten answered 500), then times the real `hooks` binary running
//! `hooks list --where EXPR --json` for several expressions, and, in this process, the two ways
//! of reading a JSON pointer from every body. It prints figures; it asserts nothing about them.
//!
//! Sizes: `HOOKS_BENCH_CAPTURES` (default 100000) captures, `HOOKS_BENCH_RUNS` (default 5) runs
//! per expression (the median is printed). `HOOKS_BENCH_BIN=PATH` runs another build of hooks
//! (see `support::hooks_bin`).

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hooks::exchange::{
    now_ms, Exchange, Outcome, Provider, Recognized, Request, Response, Signature, Verdict,
};
use hooks::store::{self, Retention, Writer};
use relay_server::protocol::Header;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Captures queued before waiting for their commits (the writer drops captures past its queue).
const BATCH: usize = 512;

/// What is timed: a name, and the expression.
const EXPRESSIONS: [(&str, &str); 8] = [
    ("no filter (newest 50)", ""),
    ("status, columns only", "status:500"),
    ("status, none match", "status:418"),
    ("header presence, none match", "header.x-missing:*"),
    (
        "JSON pointer, none match",
        "json./data/object/customer:cus_none",
    ),
    (
        "JSON pointer, 1 in 1000 match",
        "json./data/object/customer:cus_42",
    ),
    (
        "JSON pointer and status",
        "json./data/object/amount_paid:>9990 status:5xx",
    ),
    ("body regex, none match", r#"body~"cus_\d{5}""#),
];

fn main() -> Result<(), BoxError> {
    let count = env_number("HOOKS_BENCH_CAPTURES", 100_000);
    let runs = env_number("HOOKS_BENCH_RUNS", 5).max(1);
    let data = tempfile::tempdir()?;
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(fill(&data.path().join(store::FILE_NAME), count))?;
    println!(
        "filled {count} captures in {:.1} s ({} MiB)\n",
        started.elapsed().as_secs_f64(),
        std::fs::metadata(data.path().join(store::FILE_NAME))?.len() >> 20
    );
    println!("`hooks list --where EXPR --json` (default limit 50), median of {runs} runs:\n");
    println!("| expression | rows printed | median | min |");
    println!("|---|---:|---:|---:|");
    for (name, expression) in EXPRESSIONS {
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..runs {
            let (took, printed) = list(data.path(), expression)?;
            times.push(took);
            rows = printed;
        }
        times.sort();
        println!(
            "| {name}: `{expression}` | {rows} | {:.0} ms | {:.0} ms |",
            times[times.len() / 2].as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3
        );
    }
    compare_json_readers(count);
    Ok(())
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Writes `count` captures into a new store at `path`.
async fn fill(path: &std::path::Path, count: usize) -> Result<(), BoxError> {
    let (conn, _) = store::open_or_replace(path)?;
    let writer = Writer::spawn(conn, path.to_owned(), Retention::default())?;
    let mut pending = Vec::with_capacity(BATCH);
    for i in 0..count {
        pending.push(writer.record(record(i))?);
        if pending.len() == BATCH || i + 1 == count {
            for done in pending.drain(..) {
                done.await??;
            }
        }
    }
    Ok(())
}

fn header(name: &str, value: &str) -> Header {
    Header {
        name: name.into(),
        value: Bytes::copy_from_slice(value.as_bytes()),
    }
}

/// Capture `i`: customer `cus_{i % 1000}`, amount `i % 10000`, status 500 for one in ten.
fn record(i: usize) -> Exchange {
    let body = body(i);
    let status = if i.is_multiple_of(10) { 500 } else { 200 };
    let request = Request {
        method: "POST".into(),
        path: "/webhooks/stripe".into(),
        headers: vec![
            header("host", "relay.example.com"),
            header(
                "user-agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            ),
            header("content-type", "application/json; charset=utf-8"),
            header("content-length", &body.len().to_string()),
            header(
                "stripe-signature",
                "t=1718000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd",
            ),
            header("accept", "*/*; q=0.5, application/xml"),
            header("cache-control", "no-cache"),
            header("x-forwarded-for", "3.18.12.63"),
        ],
        body: Bytes::from(body),
    };
    let outcome = Outcome::Answered(Response {
        status,
        headers: vec![header("content-type", "application/json")],
        body: Bytes::from_static(br#"{"received":true}"#),
    });
    let duration = Duration::from_micros(1500 + (i % 100) as u64);
    let target = "http://127.0.0.1:3000".into();
    Exchange {
        channel: Some("bench".into()),
        channel_url: Some("http://127.0.0.1/bench".into()),
        relay_id: Some(i as u64),
        signature: Some(Signature {
            provider: Some(Provider::Stripe),
            assumed: false,
            verdict: Verdict::Valid,
            reason: None,
        }),
        event: Some(Recognized {
            provider: Provider::Stripe,
            event_type: Some(
                if i.is_multiple_of(3) {
                    "invoice.paid"
                } else {
                    "customer.updated"
                }
                .into(),
            ),
            event_id: Some(format!("evt_{i:024}")),
            occurred_at: None,
            object_id: None,
        }),
        ..Exchange::new(now_ms() - 1000, target, request, outcome, duration)
    }
}

/// A Stripe event of about 1 KiB.
fn body(i: usize) -> Vec<u8> {
    format!(
        r#"{{"id":"evt_{i:024}","object":"event","api_version":"2024-06-20","created":1718000000,"type":"invoice.paid","livemode":false,"pending_webhooks":1,"request":{{"id":null,"idempotency_key":null}},"data":{{"object":{{"id":"in_{i:024}","object":"invoice","account_country":"US","account_name":"Example, Inc.","amount_due":{a},"amount_paid":{a},"amount_remaining":0,"attempt_count":1,"attempted":true,"billing_reason":"subscription_cycle","collection_method":"charge_automatically","currency":"usd","customer":"cus_{c}","customer_email":"jenny.rosen@example.com","customer_name":"Jenny Rosen","description":null,"hosted_invoice_url":"https://invoice.stripe.com/i/acct_1/test_{i}","lines":{{"object":"list","data":[{{"id":"il_{i}","amount":{a},"currency":"usd","description":"1 × Pro plan (at $20.00 / month)","period":{{"end":1720592000,"start":1718000000}},"quantity":1}}],"has_more":false,"total_count":1}},"number":"ABCD-{i:06}","paid":true,"status":"paid","subtotal":{a},"total":{a}}}}}}}"#,
        a = i % 10_000,
        c = i % 1000,
    )
    .into_bytes()
}

/// Runs `hooks list --where EXPR --json` on the store in `data`: how long, and rows printed.
fn list(data: &std::path::Path, expression: &str) -> Result<(Duration, usize), BoxError> {
    let mut command = Command::new(support::hooks_bin());
    command.args(["list", "--json"]);
    if !expression.is_empty() {
        command.args(["--where", expression]);
    }
    let started = Instant::now();
    let output = command
        .env("HOOKS_DATA_DIR", data)
        .env("HOOKS_CONFIG", data.join("none.toml"))
        .stdin(Stdio::null())
        .output()?;
    let took = started.elapsed();
    if !output.status.success() {
        return Err(format!(
            "hooks list --where {expression:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok((took, output.stdout.iter().filter(|&&b| b == b'\n').count()))
}

/// Reading one pointer from `count` bodies: the one-pass reader `--where` uses, against
/// parsing each body into a `serde_json::Value` and looking the pointer up.
fn compare_json_readers(count: usize) {
    let bodies: Vec<Vec<u8>> = (0..count).map(body).collect();
    let query = hooks::query::Query::parse("json./data/object/customer:cus_none").expect("valid");
    let started = Instant::now();
    let found = bodies.iter().filter(|b| query.matches(&Body(b))).count();
    let one_pass = started.elapsed();
    let started = Instant::now();
    let parsed = bodies
        .iter()
        .filter(|b| {
            serde_json::from_slice::<serde_json::Value>(b)
                .ok()
                .and_then(|v| v.pointer("/data/object/customer").cloned())
                .is_some_and(|v| v == "cus_none")
        })
        .count();
    let whole = started.elapsed();
    println!(
        "\none JSON pointer over {count} bodies in this process: {:.0} ms with the one-pass \
         reader, {:.0} ms parsing each into a Value ({found} and {parsed} found)",
        one_pass.as_secs_f64() * 1e3,
        whole.as_secs_f64() * 1e3
    );
}

/// A subject that is only a body (the rest empty), for timing the JSON reader.
struct Body<'a>(&'a [u8]);

impl hooks::query::Subject for Body<'_> {
    fn id(&self) -> Option<i64> {
        None
    }
    fn received_at_ms(&self) -> i64 {
        0
    }
    fn method(&self) -> &str {
        "POST"
    }
    fn target(&self) -> &str {
        "/"
    }
    fn headers(&self) -> &[Header] {
        &[]
    }
    fn request_size(&self) -> u64 {
        self.0.len() as u64
    }
    fn request_body(&self) -> Option<std::borrow::Cow<'_, [u8]>> {
        Some(std::borrow::Cow::Borrowed(self.0))
    }
    fn status(&self) -> Option<u16> {
        None
    }
    fn duration(&self) -> Option<Duration> {
        None
    }
    fn provider(&self) -> Option<Provider> {
        None
    }
    fn event_type(&self) -> Option<&str> {
        None
    }
    fn verdict(&self) -> Option<Verdict> {
        None
    }
    fn replay_of(&self) -> Option<i64> {
        None
    }
}
