//! The `signature` column: an exchange's [`Signature`] as JSON text, `{"provider","verdict",
//! "reason"}` (`assumed` is not kept), read back into the typed verdict at the store's edge.
//! Stores written before this form hold the verdict alone, as a JSON string.

use serde_json::Value;

use crate::exchange::{Signature, Verdict};

/// `signature` as the column keeps it: the text of [`Signature::to_json`], written directly.
/// Building that `Value` (a map that hashes its keys) and printing it through a formatter cost
/// the writer thread about 3,300 instructions per capture, a tenth of its time (callgrind).
pub fn to_json(signature: &Signature) -> String {
    let reason = signature.reason.as_deref();
    let mut out = String::with_capacity(48 + reason.map_or(0, str::len));
    out.push_str("{\"provider\":");
    match signature.provider {
        Some(provider) => push_quoted(&mut out, provider.name()),
        None => out.push_str("null"),
    }
    out.push_str(",\"verdict\":");
    push_quoted(&mut out, signature.verdict.as_str());
    out.push_str(",\"reason\":");
    match reason {
        Some(reason) => push_quoted(&mut out, reason),
        None => out.push_str("null"),
    }
    out.push('}');
    out
}

/// `text` as a JSON string: as is in quotes when nothing in it needs escaping (the usual case),
/// else escaped by serde_json.
fn push_quoted(out: &mut String, text: &str) {
    if text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        // Serializing a `str` cannot fail.
        out.push_str(&serde_json::to_string(text).unwrap_or_default());
    } else {
        out.push('"');
        out.push_str(text);
        out.push('"');
    }
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

    #[test]
    fn the_column_is_the_text_of_the_signature_value() {
        let reasons = [
            None,
            Some(""),
            Some("plain"),
            Some("quote \" backslash \\ slash / tab \t newline \n cr \r"),
            Some("controls \u{0}\u{1}\u{8}\u{b}\u{c}\u{1f} del \u{7f} é ✓ 🦀"),
        ];
        let providers = [None, Some(Provider::Stripe), Some(Provider::GitHub)];
        for reason in reasons {
            for provider in providers {
                for verdict in Verdict::ALL {
                    let signature = Signature {
                        provider,
                        assumed: true,
                        verdict,
                        reason: reason.map(str::to_owned),
                    };
                    assert_eq!(to_json(&signature), signature.to_json().to_string());
                }
            }
        }
    }
}
