//! Linear: `Linear-Signature`, the hex HMAC-SHA256 of the body keyed with the secret as is. The
//! timestamp is the body's `webhookTimestamp` field (milliseconds), covered by the signature; the
//! SDK (`LinearWebhookClient.verify`) rejects it 60 s either side of now. A body without the field
//! is not held against the window.

use serde::Deserialize;

use super::event::{self, Input, Recognized};
use super::mac::{self, Alg, HmacScheme, KeyRule};
use super::provider::Provider;
use super::secret::Secret;
use super::window::Timestamp;
use super::{header, NoMatch, Signed, Stamp, VerifyInput};
use serde_json::Value;

const HEADER: &str = "Linear-Signature";

#[derive(Deserialize)]
struct Body {
    #[serde(rename = "webhookTimestamp")]
    webhook_timestamp: Option<serde_json::Number>,
}

pub(super) fn verify(input: &VerifyInput<'_>, secrets: &[Secret]) -> Result<Stamp, NoMatch> {
    let tag = mac::hex_tag(Alg::Sha256, input.signature(HEADER)?).map_err(NoMatch::malformed)?;
    HmacScheme {
        provider: Provider::Linear,
        alg: Alg::Sha256,
        key: KeyRule::Raw,
        prefix: b"",
        body: input.body,
        suffix: b"",
        candidates: &[tag],
        signs_url: false,
    }
    .check(secrets)?;
    Ok(body_timestamp(input.body))
}

/// `webhookTimestamp` from a (signed, hence trusted) JSON body.
fn body_timestamp(body: &[u8]) -> Stamp {
    let Ok(Body {
        webhook_timestamp: Some(number),
    }) = serde_json::from_slice::<Body>(body)
    else {
        return Stamp::None;
    };
    match number.as_i64() {
        Some(millis) => Stamp::At(Timestamp::from_millis(millis)),
        None => Stamp::Unreadable(format!(
            "webhookTimestamp {number} is not a whole number of milliseconds"
        )),
    }
}

/// Signs the body, with its `webhookTimestamp` (if any) moved to `at`: the digits are replaced
/// in place, so every other byte of the body stays as it was.
pub(super) fn sign(secret: &Secret, input: &VerifyInput<'_>, at: Timestamp) -> Signed {
    let body = restamp(input.body, at.unix_millis());
    let signed_body = body.as_deref().unwrap_or(input.body);
    let tag = mac::hmac(Alg::Sha256, secret.expose().as_bytes(), &[signed_body]);
    Signed {
        headers: vec![header(HEADER, mac::to_hex(&tag))],
        body,
    }
}

/// `body` with the number after `"webhookTimestamp":` replaced by `millis`, if there is one.
fn restamp(body: &[u8], millis: i64) -> Option<Vec<u8>> {
    const KEY: &[u8] = b"\"webhookTimestamp\"";
    let key_at = body.windows(KEY.len()).position(|w| w == KEY)?;
    let mut i = key_at + KEY.len();
    let skip_space = |i: &mut usize| {
        while body.get(*i).is_some_and(u8::is_ascii_whitespace) {
            *i += 1;
        }
    };
    skip_space(&mut i);
    if body.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    skip_space(&mut i);
    let start = i;
    while body
        .get(i)
        .is_some_and(|b| b.is_ascii_digit() || *b == b'-')
    {
        i += 1;
    }
    if i == start {
        return None;
    }
    Some([&body[..start], millis.to_string().as_bytes(), &body[i..]].concat())
}

/// The Linear event in a request, if it is one.
pub(super) fn recognize(i: &Input<'_>) -> Option<Recognized> {
    let kind = i.header("linear-event")?;
    Some(Recognized {
        provider: Provider::Linear,
        event_type: Some(event::dotted(kind, i.text("/action"))),
        event_id: i.header("linear-delivery").map(str::to_owned),
        occurred_at: i
            .json("/webhookTimestamp")
            .and_then(Value::as_i64)
            .map(|ms| ms / 1000),
        object_id: i.text("/data/id"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restamping_touches_only_the_digits() {
        let body = br#"{"a":1, "webhookTimestamp" : 1735689595000,"b":"x"}"#;
        assert_eq!(
            restamp(body, 42).unwrap(),
            br#"{"a":1, "webhookTimestamp" : 42,"b":"x"}"#.to_vec()
        );
        assert_eq!(restamp(br#"{"a":1}"#, 42), None);
        assert_eq!(restamp(br#"{"webhookTimestamp":"x"}"#, 42), None);
    }

    #[test]
    fn body_timestamps_are_milliseconds() {
        assert_eq!(
            body_timestamp(br#"{"webhookTimestamp":1500}"#),
            Stamp::At(Timestamp::from_millis(1500))
        );
        assert_eq!(body_timestamp(b"not json"), Stamp::None);
        assert!(matches!(
            body_timestamp(br#"{"webhookTimestamp":1.5}"#),
            Stamp::Unreadable(_)
        ));
    }
}
