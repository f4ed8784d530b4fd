//! Twitch EventSub: `Twitch-Eventsub-Message-Signature: sha256=<hex>`, HMAC-SHA256 over
//! `message id + timestamp + body` (no separators), keyed with the subscription secret as is.
//! The timestamp is RFC 3339 with nanoseconds, hashed as sent; Twitch's guidance rejects
//! messages older than 10 minutes.

use super::event::{self, Input, Recognized};
use super::mac::{self, Alg, HmacScheme, KeyRule};
use super::provider::Provider;
use super::secret::Secret;
use super::window::Timestamp;
use super::{header, random_hex, NoMatch, Signed, Stamp, VerifyInput};

const SIGNATURE: &str = "Twitch-Eventsub-Message-Signature";
const ID: &str = "Twitch-Eventsub-Message-Id";
const TIMESTAMP: &str = "Twitch-Eventsub-Message-Timestamp";

pub(super) fn verify(input: &VerifyInput<'_>, secrets: &[Secret]) -> Result<Stamp, NoMatch> {
    let tag = mac::after_label(input.signature(SIGNATURE)?, "sha256=")
        .and_then(|hex| mac::hex_tag(Alg::Sha256, hex))
        .map_err(NoMatch::malformed)?;
    let id = input.required(ID)?;
    let ts = input.required(TIMESTAMP)?;
    let at = Timestamp::parse_rfc3339(ts.trim())
        .map_err(|why| NoMatch::Invalid(format!("{TIMESTAMP} header is malformed: {why}")))?;
    let prefix = format!("{id}{ts}");
    HmacScheme {
        provider: Provider::Twitch,
        alg: Alg::Sha256,
        key: KeyRule::Raw,
        prefix: prefix.as_bytes(),
        body: input.body,
        suffix: b"",
        candidates: &[tag],
        signs_url: false,
    }
    .check(secrets)?;
    Ok(Stamp::At(at))
}

/// Keeps the request's message id (else makes one up) and stamps it `at`.
pub(super) fn sign(secret: &Secret, input: &VerifyInput<'_>, at: Timestamp) -> Signed {
    let id = input.optional(ID).map_or_else(make_id, str::to_owned);
    let ts = rfc3339(at);
    let prefix = format!("{id}{ts}");
    let tag = mac::hmac(
        Alg::Sha256,
        secret.expose().as_bytes(),
        &[prefix.as_bytes(), input.body],
    );
    Signed {
        headers: vec![
            header(ID, id),
            header(TIMESTAMP, ts),
            header(SIGNATURE, format!("sha256={}", mac::to_hex(&tag))),
        ],
        body: None,
    }
}

/// A UUID-shaped id like Twitch's.
fn make_id() -> String {
    let hex = random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// `2024-12-31T23:59:30.123456789Z`.
fn rfc3339(at: Timestamp) -> String {
    let secs = at.unix_secs();
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        at.subsec_nanos()
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to a proleptic Gregorian date.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The Twitch EventSub event in a request, if it is one.
pub(super) fn recognize(i: &Input<'_>) -> Option<Recognized> {
    let kind = i.header("twitch-eventsub-subscription-type")?;
    Some(Recognized {
        provider: Provider::Twitch,
        event_type: Some(kind.to_owned()),
        event_id: i.header("twitch-eventsub-message-id").map(str::to_owned),
        occurred_at: i
            .header("twitch-eventsub-message-timestamp")
            .and_then(event::rfc3339),
        object_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_rfc3339() {
        for text in [
            "2024-12-31T23:59:30.123456789Z",
            "1970-01-01T00:00:00.000000000Z",
            "2000-02-29T12:00:00.000000001Z",
            "1969-12-31T23:59:59.999999999Z",
        ] {
            let at = Timestamp::parse_rfc3339(text).unwrap();
            assert_eq!(rfc3339(at), text);
        }
    }
}
