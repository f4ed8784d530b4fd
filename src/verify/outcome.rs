//! What checking a request found: the [`Outcome`], and the [`Report`] that adds which provider
//! was checked, whether it was assumed from the headers, and a reason a person can act on.

use std::fmt;
use std::time::Duration;

use serde_json::json;

use super::provider::Provider;

/// How far a signed timestamp is from the time it was evaluated at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    /// The timestamp is this far in the past.
    Past(Duration),
    /// The timestamp is this far in the future.
    Future(Duration),
}

impl Age {
    /// Seconds in the past, negative for the future.
    pub fn signed_secs(self) -> f64 {
        match self {
            Age::Past(d) => d.as_secs_f64(),
            Age::Future(d) => -d.as_secs_f64(),
        }
    }
}

/// The result of checking one request's signature.
///
/// The signature is checked first: `Expired` means it matched, but the signed timestamp is outside
/// the replay window; a signature that does not match is `Invalid` whatever its timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The signature matches one of the secrets, and its timestamp (if it has one) is recent.
    Valid,
    /// The signature is incomplete, malformed, or does not match any secret.
    Invalid {
        /// Why, in words a person can act on.
        reason: String,
    },
    /// The signature matches, but its timestamp is outside the replay window.
    Expired {
        /// How old (or how far ahead) the timestamp is.
        age: Age,
        /// The window it is outside of.
        tolerance: Duration,
    },
    /// The request carries no signature of the provider it was checked for.
    Unsigned,
}

/// An [`Outcome`] without its details: what `--json` prints as `verdict`; or `Unchecked`, for a
/// signed request that could not be checked (no secret given, or none usable), which no
/// [`Outcome`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// See [`Outcome::Valid`].
    Valid,
    /// See [`Outcome::Invalid`].
    Invalid,
    /// See [`Outcome::Expired`].
    Expired,
    /// See [`Outcome::Unsigned`].
    Unsigned,
    /// Signed, but not checked: no secret was given, or none can be a key for the scheme.
    Unchecked,
}

impl Verdict {
    /// Every verdict, in the order help texts list them.
    pub const ALL: [Verdict; 5] = [
        Verdict::Valid,
        Verdict::Invalid,
        Verdict::Expired,
        Verdict::Unsigned,
        Verdict::Unchecked,
    ];

    /// `valid`, `invalid`, `expired`, `unsigned` or `unchecked`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Expired => "expired",
            Verdict::Unsigned => "unsigned",
            Verdict::Unchecked => "unchecked",
        }
    }

    /// The verdict named `text` (as [`Verdict::as_str`] spells it).
    pub fn parse(text: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.as_str() == text)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Outcome {
    /// The outcome without its details.
    pub fn verdict(&self) -> Verdict {
        match self {
            Outcome::Valid => Verdict::Valid,
            Outcome::Invalid { .. } => Verdict::Invalid,
            Outcome::Expired { .. } => Verdict::Expired,
            Outcome::Unsigned => Verdict::Unsigned,
        }
    }
}

/// Everything `verify::check` found about one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The provider whose scheme was checked; `None` when none was given and none recognised.
    pub provider: Option<Provider>,
    /// Whether the provider was recognised from the request rather than given.
    pub assumed: bool,
    /// The header (or `body`) the provider was recognised from, when `assumed`.
    pub detected_from: Option<&'static str>,
    /// What the check found.
    pub outcome: Outcome,
    /// Why the outcome is not `Valid`, as one sentence; `None` when valid.
    pub reason: Option<String>,
    /// What the provider's signature does not cover (Mailgun's body, GitLab's everything).
    pub note: Option<&'static str>,
}

impl Report {
    /// The outcome without its details.
    pub fn verdict(&self) -> Verdict {
        self.outcome.verdict()
    }

    /// The report as one JSON object: `provider`, `assumed`, `detected_from`, `verdict`,
    /// `reason`, `note`, and for expired signatures `age_s` (negative when in the future) and
    /// `tolerance_s`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = json!({
            "provider": self.provider.map(Provider::name),
            "assumed": self.assumed,
            "detected_from": self.detected_from,
            "verdict": self.verdict().as_str(),
            "reason": self.reason,
            "note": self.note,
        });
        if let Outcome::Expired { age, tolerance } = &self.outcome {
            value["age_s"] = json!(age.signed_secs());
            value["tolerance_s"] = json!(tolerance.as_secs_f64());
        }
        value
    }
}

/// `412` for whole seconds, `412.25` otherwise.
pub(crate) fn format_secs(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        let text = format!("{:.3}", d.as_secs_f64());
        text.trim_end_matches('0').to_owned()
    }
}

/// "timestamp is 412 s old; stripe allows 300 s", in the words of the window that applied.
pub(crate) fn expired_reason(
    provider: Provider,
    age: Age,
    tolerance: Duration,
    overridden: bool,
) -> String {
    let limit = format_secs(tolerance);
    let who = if overridden {
        "--tolerance".to_owned()
    } else {
        provider.name().to_owned()
    };
    let strict = !overridden && provider.default_window().is_some_and(|w| w.strict);
    match age {
        Age::Past(d) if strict => format!(
            "timestamp is {} s old; {who} allows less than {limit} s",
            format_secs(d)
        ),
        Age::Past(d) => format!("timestamp is {} s old; {who} allows {limit} s", format_secs(d)),
        Age::Future(d) => format!(
            "timestamp is {} s in the future; {who} allows {limit} s either way (is this machine's clock right?)",
            format_secs(d)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_reasons_read_well() {
        let secs = Duration::from_secs;
        assert_eq!(
            expired_reason(Provider::Stripe, Age::Past(secs(412)), secs(300), false),
            "timestamp is 412 s old; stripe allows 300 s"
        );
        assert_eq!(
            expired_reason(Provider::HubSpot, Age::Past(secs(300)), secs(300), false),
            "timestamp is 300 s old; hubspot allows less than 300 s"
        );
        assert_eq!(
            expired_reason(Provider::Slack, Age::Future(secs(301)), secs(300), false),
            "timestamp is 301 s in the future; slack allows 300 s either way (is this machine's clock right?)"
        );
        assert_eq!(
            expired_reason(
                Provider::Twitch,
                Age::Past(Duration::from_millis(61_250)),
                secs(60),
                true
            ),
            "timestamp is 61.25 s old; --tolerance allows 60 s"
        );
    }
}
