//! Criterion micro-benchmarks for the hot pieces that run once per webhook: the relay ⇄ CLI frame
//! codec, signature verification for the common schemes, and event recognition
//! (`cargo bench --bench micro`).

use std::hint::black_box;
use std::time::SystemTime;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hooks::verify::{self, Provider, Secret, VerifyInput};
use relay_server::protocol::{self, Header, RelayMessage, RequestId};

/// A webhook's headers, roughly what Stripe sends.
fn headers() -> Vec<Header> {
    [
        ("host", "relay.example.com"),
        (
            "user-agent",
            "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        ),
        ("content-type", "application/json; charset=utf-8"),
        ("cache-control", "no-cache"),
        ("accept", "*/*; q=0.5, application/xml"),
        ("content-length", "1024"),
        (
            "stripe-signature",
            "t=1764182862,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd",
        ),
    ]
    .into_iter()
    .map(|(name, value)| Header {
        name: name.to_owned(),
        value: Bytes::from(value),
    })
    .collect()
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame");
    for size in [1024usize, 64 * 1024, 1024 * 1024] {
        let body = vec![b'x'; size];
        let message = RelayMessage::Request(protocol::Request {
            id: RequestId(42),
            received_at_ms: 1_764_182_862_000,
            method: "POST".into(),
            target: "/webhooks/stripe?live=1".into(),
            headers: headers(),
            body_len: None,
            redelivered: false,
        });
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("encode", size), &body, |b, body| {
            b.iter(|| protocol::encode(black_box(&message), black_box(body)))
        });
        let frame = protocol::encode(&message, &body);
        group.bench_with_input(BenchmarkId::new("decode", size), &frame, |b, frame| {
            b.iter(|| {
                protocol::decode::<RelayMessage>(black_box(frame.clone())).expect("valid frame")
            })
        });
    }
    group.finish();
}

fn signatures(c: &mut Criterion) {
    let body = vec![b'{'; 1024];
    let now = SystemTime::now();
    let mut group = c.benchmark_group("verify");
    for (provider, secret) in [
        (Provider::Stripe, "whsec_test_secret"),
        (Provider::GitHub, "It's a Secret to Everybody"),
        (
            Provider::StandardWebhooks,
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ),
        (Provider::Slack, "8f742231b10e8888abcd99yyyzzz85a5"),
        (Provider::Shopify, "test_secret_key"),
    ] {
        let secret = Secret::new(secret);
        let bare = VerifyInput {
            method: "POST",
            url: "https://relay.example.com/ch/hook",
            headers: &[],
            body: &body,
        };
        let signed = verify::sign(provider, &secret, &bare, now).expect("HMAC schemes sign");
        let pairs: Vec<(&str, &[u8])> = signed
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes()))
            .collect();
        let input = VerifyInput {
            headers: &pairs,
            ..bare
        };
        let secrets = [secret];
        group.bench_function(provider.name(), |b| {
            b.iter(|| {
                let report =
                    verify::check(black_box(&input), &secrets, None, None, now).expect("checked");
                assert_eq!(report.verdict().as_str(), "valid");
            })
        });
    }
    group.finish();
}

/// A Stripe event of about 1 KiB, shaped like the real ones (nested objects, arrays, nulls).
fn stripe_event() -> Vec<u8> {
    let lines: Vec<String> = (0..4)
        .map(|n| {
            format!(
                r#"{{"id":"il_{n:024}","object":"line_item","amount":{},"currency":"usd","description":"1 × Pro plan (at $20.00 / month)","period":{{"end":1767000000,"start":1764300000}},"proration":false}}"#,
                2000 + n
            )
        })
        .collect();
    format!(
        r#"{{"id":"evt_1QxYzAbCdEfGhIjKlMnOpQr","object":"event","api_version":"2024-06-20","created":1764182862,"data":{{"object":{{"id":"in_1QxYzAbCdEfGhIjK","object":"invoice","amount_due":2000,"amount_paid":2000,"customer":"cus_R2d2C3po","lines":{{"object":"list","data":[{}],"has_more":false}},"metadata":{{}},"status":"paid"}}}},"livemode":false,"pending_webhooks":1,"request":{{"id":null,"idempotency_key":null}},"type":"invoice.paid"}}"#,
        lines.join(",")
    )
    .into_bytes()
}

fn recognition(c: &mut Criterion) {
    let body = stripe_event();
    let headers = headers();
    let mut group = c.benchmark_group("recognize");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("stripe event", |b| {
        b.iter(|| {
            let event = hooks::verify::recognize(black_box(&headers), black_box(&body));
            assert_eq!(
                event.map(|e| e.provider),
                Some(hooks::verify::Provider::Stripe)
            );
        })
    });
    // What recognition did before it parsed only what it reads: the whole body into a tree.
    group.bench_function("whole parse (before)", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&body)).expect("JSON"))
    });
    group.finish();
}

criterion_group!(benches, codec, signatures, recognition);
criterion_main!(benches);
