//! Slack: `X-Slack-Signature: v0=<hex>` and `X-Slack-Request-Timestamp`, HMAC-SHA256 over
//! `"v0:<ts>:" + body` with the signing secret as is (python-slack-sdk `SignatureVerifier`,
//! which rejects `abs(now - ts) > 300`). Zoom copies the construction.

use super::event::{Input, Recognized};
use super::mac::{self, Alg, HmacScheme, KeyRule};
use super::provider::Provider;
use super::secret::Secret;
use super::window::Timestamp;
use super::{header, NoMatch, Signed, Stamp, VerifyInput};
use serde_json::Value;

const SIGNATURE: &str = "X-Slack-Signature";
const TIMESTAMP: &str = "X-Slack-Request-Timestamp";

/// Names of a `v0=` scheme's two headers.
pub(super) struct V0Headers {
    pub signature: &'static str,
    pub timestamp: &'static str,
}

/// Checks a `v0=<hex>` signature of `"v0:<ts>:" + body`; the timestamp is hashed as sent.
/// `read_stamp` turns it into a time for the window.
pub(super) fn verify_v0(
    provider: Provider,
    names: &V0Headers,
    input: &VerifyInput<'_>,
    secrets: &[Secret],
    read_stamp: fn(&str) -> Stamp,
) -> Result<Stamp, NoMatch> {
    let tag = mac::after_label(input.signature(names.signature)?, "v0=")
        .and_then(|hex| mac::hex_tag(Alg::Sha256, hex))
        .map_err(NoMatch::malformed)?;
    let ts = input.required(names.timestamp)?;
    let stamp = read_stamp(ts);
    let prefix = format!("v0:{ts}:");
    HmacScheme {
        provider,
        alg: Alg::Sha256,
        key: KeyRule::Raw,
        prefix: prefix.as_bytes(),
        body: input.body,
        suffix: b"",
        candidates: &[tag],
        signs_url: false,
    }
    .check(secrets)?;
    Ok(stamp)
}

/// Both headers of a `v0=` scheme, with `ts` as the timestamp text.
pub(super) fn sign_v0(
    names: &V0Headers,
    secret: &Secret,
    input: &VerifyInput<'_>,
    ts: &str,
) -> Signed {
    let prefix = format!("v0:{ts}:");
    let tag = mac::hmac(
        Alg::Sha256,
        secret.expose().as_bytes(),
        &[prefix.as_bytes(), input.body],
    );
    Signed {
        headers: vec![
            header(names.timestamp, ts),
            header(names.signature, format!("v0={}", mac::to_hex(&tag))),
        ],
        body: None,
    }
}

const NAMES: V0Headers = V0Headers {
    signature: SIGNATURE,
    timestamp: TIMESTAMP,
};

pub(super) fn verify(input: &VerifyInput<'_>, secrets: &[Secret]) -> Result<Stamp, NoMatch> {
    verify_v0(
        Provider::Slack,
        &NAMES,
        input,
        secrets,
        |ts| match Timestamp::parse_secs(ts.trim()) {
            Ok(at) => Stamp::At(at),
            Err(why) => Stamp::Unreadable(format!("{TIMESTAMP} header is malformed: {why}")),
        },
    )
}

pub(super) fn sign(secret: &Secret, input: &VerifyInput<'_>, at: Timestamp) -> Signed {
    sign_v0(&NAMES, secret, input, &at.unix_secs().to_string())
}

/// The Slack event in a request, if it is one.
pub(super) fn recognize(i: &Input<'_>) -> Option<Recognized> {
    if !i.has("x-slack-signature") {
        return None;
    }
    let (event_type, event_id, occurred_at) = if let Some(kind) = i.text("/type") {
        let inner = i.text("/event/type");
        let event_type = match (kind.as_str(), inner) {
            ("event_callback", Some(inner)) => inner,
            _ => kind,
        };
        (
            Some(event_type),
            i.text("/event_id"),
            i.json("/event_time").and_then(Value::as_i64),
        )
    } else if let Some(command) = i.form("command") {
        (
            Some(format!("command {command}")),
            i.form("trigger_id"),
            None,
        )
    } else if let Some(payload) = i.form("payload") {
        let payload: Option<Value> = serde_json::from_str(&payload).ok();
        let kind = payload
            .as_ref()
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        (kind, None, None)
    } else {
        (None, None, None)
    };
    Some(Recognized {
        provider: Provider::Slack,
        event_type,
        event_id,
        occurred_at,
        object_id: None,
    })
}
