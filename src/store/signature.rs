//! The `signature` column: an exchange's [`Signature`] as JSON text, `{"provider","verdict",
//! "reason"}` (`assumed` is not kept), read back into the typed verdict at the store's edge.
//! Stores written before this form hold the verdict alone, as a JSON string.

use serde_json::Value;

use crate::exchange::{Signature, Verdict};

/// `signature` as the column keeps it.
pub fn to_json(signature: &Signature) -> String {
    signature.to_json().to_string()
}

/// The signature a column holds; `None` when there is none, or it is not one hooks wrote (an
/// unknown verdict).
pub fn from_json(column: Option<&str>) -> Option<Signature> {
    fn text(value: Option<&Value>) -> Option<&str> {
        value.and_then(Value::as_str)
    }
    let value: Value = serde_json::from_str(column?).ok()?;
    let (provider, verdict, reason) = match &value {
        Value::String(verdict) => (None, Some(verdict.as_str()), None),
        Value::Object(map) => (
            text(map.get("provider")),
            text(map.get("verdict")),
            text(map.get("reason")),
        ),
        _ => return None,
    };
    Some(Signature {
        provider: provider.and_then(|name| name.parse().ok()),
        assumed: false,
        verdict: Verdict::parse(verdict?)?,
        reason: reason.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::Provider;

    #[test]
    fn verdicts_come_back_from_the_column() {
        assert_eq!(from_json(None), None);
        let legacy = from_json(Some(r#""valid""#)).unwrap();
        assert_eq!((legacy.provider, legacy.verdict), (None, Verdict::Valid));
        let signature = Signature {
            provider: Some(Provider::Stripe),
            assumed: true,
            verdict: Verdict::Invalid,
            reason: Some("x".into()),
        };
        let text = to_json(&signature);
        assert_eq!(
            text,
            r#"{"provider":"stripe","verdict":"invalid","reason":"x"}"#
        );
        let back = from_json(Some(&text)).unwrap();
        assert_eq!(
            back,
            Signature {
                assumed: false,
                ..signature
            }
        );
        assert_eq!(from_json(Some("not json")), None);
        assert_eq!(from_json(Some(r#"{"verdict":"odd"}"#)), None);
    }
}
