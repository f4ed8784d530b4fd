//! Zoom: `x-zm-signature: v0=<hex>` and `x-zm-request-timestamp`, Slack's construction with the
//! webhook secret token. Zoom's own library checks no timestamp, so none is enforced unless
//! `--tolerance` asks; examples show both seconds and milliseconds, so 13-digit values are read
//! as milliseconds (the hashed text is the header as sent either way).

use super::event::{Input, Recognized};
use super::provider::Provider;
use super::secret::Secret;
use super::slack::{sign_v0, verify_v0, V0Headers};
use super::window::Timestamp;
use super::{NoMatch, Signed, Stamp, VerifyInput};
use serde_json::Value;

const NAMES: V0Headers = V0Headers {
    signature: "x-zm-signature",
    timestamp: "x-zm-request-timestamp",
};

/// Seconds below this, milliseconds above: 10^11 s is the year 5138, 10^11 ms is 1973.
const MILLIS_ABOVE: i64 = 100_000_000_000;

fn read_stamp(ts: &str) -> Stamp {
    match Timestamp::parse_secs(ts.trim()) {
        Ok(at) if at.unix_secs().abs() >= MILLIS_ABOVE => {
            Stamp::At(Timestamp::from_millis(at.unix_secs()))
        }
        Ok(at) => Stamp::At(at),
        Err(why) => Stamp::Unreadable(format!("{} header is malformed: {why}", NAMES.timestamp)),
    }
}

pub(super) fn verify(input: &VerifyInput<'_>, secrets: &[Secret]) -> Result<Stamp, NoMatch> {
    verify_v0(Provider::Zoom, &NAMES, input, secrets, read_stamp)
}

pub(super) fn sign(secret: &Secret, input: &VerifyInput<'_>, at: Timestamp) -> Signed {
    sign_v0(&NAMES, secret, input, &at.unix_secs().to_string())
}

/// The Zoom event in a request, if it is one.
pub(super) fn recognize(i: &Input<'_>) -> Option<Recognized> {
    if !i.has("x-zm-signature") {
        return None;
    }
    Some(Recognized {
        provider: Provider::Zoom,
        event_type: i.text("/event"),
        event_id: i.header("x-zm-trackingid").map(str::to_owned),
        occurred_at: i
            .json("/event_ts")
            .and_then(Value::as_i64)
            .map(|ms| ms / 1000),
        object_id: i.text("/payload/object/id"),
    })
}
