//! Paddle Billing: `Paddle-Signature: ts=<unix>;h1=<hex>[;h1=…]`, HMAC-SHA256 over
//! `"<ts>:" + body` keyed with the endpoint secret as is. Several `h1` may be sent (rotation);
//! unknown keys such as `h2` are ignored, as paddle-node-sdk does. The SDK's window is 5 s, old
//! timestamps only.

use super::event::{self, Input, Recognized};
use super::mac::{self, Alg, HmacScheme, KeyRule};
use super::provider::Provider;
use super::secret::Secret;
use super::window::Timestamp;
use super::{header, NoMatch, Signed, Stamp, VerifyInput};

const HEADER: &str = "Paddle-Signature";

fn parse(value: &str) -> Result<(i64, Vec<Vec<u8>>), String> {
    let mut ts = None;
    let mut h1 = Vec::new();
    let mut bad = None;
    for item in value.split(';') {
        let Some((key, val)) = item.trim().split_once('=') else {
            continue;
        };
        match key {
            "ts" if ts.is_none() => ts = Some(Timestamp::parse_secs(val.trim())?),
            "h1" => match mac::hex_tag(Alg::Sha256, val) {
                Ok(tag) => h1.push(tag),
                Err(why) => bad = Some(format!("h1= {why}")),
            },
            _ => {}
        }
    }
    let ts = ts.ok_or("no ts= timestamp")?.unix_secs();
    if h1.is_empty() {
        return Err(bad.unwrap_or_else(|| "no h1= signature".into()));
    }
    Ok((ts, h1))
}

pub(super) fn verify(input: &VerifyInput<'_>, secrets: &[Secret]) -> Result<Stamp, NoMatch> {
    let (ts, h1) = parse(input.signature(HEADER)?).map_err(NoMatch::malformed)?;
    let prefix = format!("{ts}:");
    HmacScheme {
        provider: Provider::Paddle,
        alg: Alg::Sha256,
        key: KeyRule::Raw,
        prefix: prefix.as_bytes(),
        body: input.body,
        suffix: b"",
        candidates: &h1,
        signs_url: false,
    }
    .check(secrets)?;
    Ok(Stamp::At(Timestamp::from_secs(ts)))
}

pub(super) fn sign(secret: &Secret, input: &VerifyInput<'_>, at: Timestamp) -> Signed {
    let ts = at.unix_secs();
    let prefix = format!("{ts}:");
    let tag = mac::hmac(
        Alg::Sha256,
        secret.expose().as_bytes(),
        &[prefix.as_bytes(), input.body],
    );
    Signed {
        headers: vec![header(HEADER, format!("ts={ts};h1={}", mac::to_hex(&tag)))],
        body: None,
    }
}

/// The Paddle event in a request, if it is one.
pub(super) fn recognize(i: &Input<'_>) -> Option<Recognized> {
    if !i.has("paddle-signature") {
        return None;
    }
    Some(Recognized {
        provider: Provider::Paddle,
        event_type: i.text("/event_type"),
        event_id: i.text("/event_id").or(i.text("/notification_id")),
        occurred_at: i.text("/occurred_at").as_deref().and_then(event::rfc3339),
        object_id: i.text("/data/id"),
    })
}
