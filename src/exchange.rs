//! One exchange: a request hooks forwarded and what became of it (the app's response, or why
//! there is none), with what hooks derived from it (the provider's event, the signature verdict)
//! and where it came from. One set of types carries it from forwarding through the terminal, the
//! capture store, `show`, `replay`, `export`, `diff`, `send` and MCP; nothing converts it back
//! and forth.
//!
//! Times are milliseconds since the Unix epoch ([`now_ms`]), printed as RFC 3339 ([`rfc3339`]).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;

pub use crate::verify::{Provider, Recognized, Verdict};
pub use relay_server::protocol::Header;

/// A capture's id in the store, shown as `#N`; never reused, even after pruning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct CaptureId(pub i64);

impl fmt::Display for CaptureId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A capture id is the number people type: `#12` is 12.
impl PartialEq<i64> for CaptureId {
    fn eq(&self, other: &i64) -> bool {
        self.0 == *other
    }
}

/// A request, as it reached hooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// HTTP method.
    pub method: String,
    /// Path after the channel, with the query, exactly as the relay gave it (may lack the `/`).
    pub path: String,
    /// Headers in order, repeats included, values as raw bytes.
    pub headers: Vec<Header>,
    /// Body bytes.
    pub body: Bytes,
}

/// The app's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Headers in order, hop-by-hop headers removed.
    pub headers: Vec<Header>,
    /// Body bytes, exactly as the app sent them.
    pub body: Bytes,
}

/// How a forwarded request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The app answered (any status).
    Answered(Response),
    /// No answer; why, in one line.
    Failed(String),
}

impl Outcome {
    /// The app's answer, when it answered.
    pub fn response(&self) -> Option<&Response> {
        match self {
            Outcome::Answered(response) => Some(response),
            Outcome::Failed(_) => None,
        }
    }

    /// The status the app answered, `None` when it did not.
    pub fn status(&self) -> Option<u16> {
        self.response().map(|r| r.status)
    }

    /// Why the app did not answer, when it did not.
    pub fn error(&self) -> Option<&str> {
        match self {
            Outcome::Answered(_) => None,
            Outcome::Failed(error) => Some(error),
        }
    }
}

/// A signature verdict, as an exchange carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The provider whose scheme was checked; `None` when none was named or recognised.
    pub provider: Option<Provider>,
    /// Whether the provider was recognised from the headers rather than given (not stored).
    pub assumed: bool,
    /// What the check found.
    pub verdict: Verdict,
    /// Why, for anything but `valid`; `None` for an unsigned webhook nobody expected signed.
    pub reason: Option<String>,
}

impl Signature {
    /// `{"provider","verdict","reason"}`: what the capture store keeps and `hooks show --json`
    /// prints (`assumed` is not kept).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "provider": self.provider.map(Provider::name),
            "verdict": self.verdict.as_str(),
            "reason": self.reason,
        })
    }

    /// Whether it is worth a person's attention: anything but an unsigned webhook when no
    /// secret or provider said one was expected.
    pub fn noteworthy(&self) -> bool {
        self.verdict != Verdict::Unsigned || self.reason.is_some()
    }
}

/// One request and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// Its capture id, once stored.
    pub id: Option<CaptureId>,
    /// When hooks received the request (or sent it: a replay, `hooks send`).
    pub received_at_ms: i64,
    /// Channel name, when it came through a relay.
    pub channel: Option<String>,
    /// Public URL of the channel; with `relay_epoch` and `relay_id` it identifies a delivery
    /// across restarts.
    pub channel_url: Option<String>,
    /// The relay's request id.
    pub relay_id: Option<u64>,
    /// The epoch of the relay's queue, in which `relay_id` is unique; `None` for a relay that
    /// sends none (and for captures from before epochs).
    pub relay_epoch: Option<u64>,
    /// The relay had sent the request before and hooks had no record of handling it: the app
    /// may have seen it already (hooks died before acknowledging it).
    pub redelivered: bool,
    /// Where it was forwarded (`Target`'s display form, e.g. `http://localhost:3000/base`).
    pub target: String,
    /// The request.
    pub request: Request,
    /// The answer, or why there was none.
    pub outcome: Outcome,
    /// From forwarding to having the whole answer (or the failure).
    pub duration: Duration,
    /// A hint for a known mistake when the app did not answer, e.g. "is your app listening on
    /// 3000?" (not stored).
    pub hint: Option<String>,
    /// The relay's wait limit, when the app took longer: the sender got `504` instead (not
    /// stored).
    pub sender_timed_out: Option<Duration>,
    /// The provider event recognised in the request.
    pub event: Option<Recognized>,
    /// The signature verdict.
    pub signature: Option<Signature>,
    /// The capture this one replays.
    pub replay_of: Option<CaptureId>,
    /// Whether `hooks send` made the request (rather than a provider, through the relay).
    pub sent: bool,
    /// The route (`hooks.toml`, `--route`) that took it; `None` without routes, or when it went
    /// to the default target or no route matched.
    pub route: Option<String>,
    /// Whether this is a copy route's copy of the request: the sender got another route's
    /// answer (or the default's), not this one.
    pub copy: bool,
}

impl Exchange {
    /// `request`, forwarded to `target` at `received_at_ms`, and its `outcome` after
    /// `duration`; nothing else known yet.
    pub fn new(
        received_at_ms: i64,
        target: String,
        request: Request,
        outcome: Outcome,
        duration: Duration,
    ) -> Exchange {
        Exchange {
            id: None,
            received_at_ms,
            channel: None,
            channel_url: None,
            relay_id: None,
            relay_epoch: None,
            redelivered: false,
            target,
            request,
            outcome,
            duration,
            hint: None,
            sender_timed_out: None,
            event: None,
            signature: None,
            replay_of: None,
            sent: false,
            route: None,
            copy: false,
        }
    }

    /// The number people use for it (`#N`): the capture id once stored, else the relay's id.
    pub fn number(&self) -> u64 {
        match self.id {
            Some(id) => id.0.unsigned_abs(),
            None => self.relay_id.unwrap_or(0),
        }
    }

    /// The status the sender got from hooks: the app's, or `502` when it did not answer
    /// (unless `sender_timed_out`).
    pub fn status(&self) -> u16 {
        self.outcome.status().unwrap_or(502)
    }

    /// Roughly how many bytes its request and answer hold: bodies and headers.
    pub fn size(&self) -> u64 {
        let headers = |list: &[Header]| -> usize {
            list.iter().map(|h| h.name.len() + h.value.len() + 6).sum()
        };
        let request = self.request.body.len() + headers(&self.request.headers);
        let answer = match &self.outcome {
            Outcome::Answered(r) => r.body.len() + headers(&r.headers),
            Outcome::Failed(error) => error.len(),
        };
        (request + answer) as u64
    }
}

/// The value of the first header called `name` (lowercase) in `headers`, if it is text.
pub fn header<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name == name)
        .and_then(|h| std::str::from_utf8(&h.value).ok())
}

/// A request path as people read it: `/` for the channel's root.
pub fn display_path(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// `ms` since the Unix epoch as RFC 3339 in UTC with milliseconds: `2026-11-26T18:47:34.123Z`.
/// The one formatter for every time hooks prints (NDJSON, `list`, HAR).
pub fn rfc3339(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(at) => at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Err(_) => String::new(),
    }
}

/// A duration in milliseconds with microsecond precision, as every `--json` prints one.
pub fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
        assert_eq!(rfc3339(1_798_329_654_123), "2026-12-27T00:00:54.123Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn the_number_is_the_capture_id_once_stored() {
        let request = Request {
            method: "POST".into(),
            path: "hook".into(),
            headers: Vec::new(),
            body: Bytes::new(),
        };
        let mut exchange = Exchange::new(
            0,
            "http://localhost:3000".into(),
            request,
            Outcome::Failed("refused".into()),
            Duration::ZERO,
        );
        exchange.relay_id = Some(41);
        assert_eq!((exchange.number(), exchange.status()), (41, 502));
        exchange.id = Some(CaptureId(7));
        assert_eq!(exchange.number(), 7);
        assert_eq!(display_path(&exchange.request.path), "/hook");
    }
}
