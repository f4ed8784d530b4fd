//! Mailgun: the signature lives in the body, as `signature: {timestamp, token, signature}` in a
//! JSON body (or `timestamp`, `token`, `signature` fields of a legacy form body). It is the hex
//! HMAC-SHA256 of `timestamp + token`, keyed with the HTTP webhook signing key: the event data is
//! not covered. Subaccount deliveries also carry `parent-signature`, signed with the parent
//! account's key; either may match. Mailgun mandates no window.

use serde_json::{Map, Value};

use super::event::{Input, Recognized};
use super::mac::{self, Alg};
use super::provider::Provider;
use super::secret::Secret;
use super::twilio::parse_form;
use super::window::Timestamp;
use super::{random_hex, NoMatch, SchemeSignError, Signed, Stamp, VerifyInput};

/// The signed fields of one signature object.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fields {
    timestamp: String,
    token: String,
    signature: String,
}

/// Bodies larger than this are not searched for a signature: Mailgun's are a few KiB, and
/// recognising the provider must stay cheap for any request.
const MAX_BODY: usize = 1 << 20;

/// The body's signature objects: `signature`, then `parent-signature` if present.
fn signatures(input: &VerifyInput<'_>) -> Vec<Fields> {
    if input.body.len() > MAX_BODY {
        return Vec::new();
    }
    if let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(input.body) {
        return ["signature", "parent-signature"]
            .iter()
            .filter_map(|name| match body.get(*name) {
                Some(Value::Object(object)) => json_fields(object),
                _ => None,
            })
            .collect();
    }
    let is_form = input.optional("Content-Type").is_some_and(|ct| {
        ct.trim()
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    if !is_form {
        return Vec::new();
    }
    let form = parse_form(input.body);
    let get = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    match (get("timestamp"), get("token"), get("signature")) {
        (Some(timestamp), Some(token), Some(signature)) => vec![Fields {
            timestamp,
            token,
            signature,
        }],
        _ => Vec::new(),
    }
}

fn json_fields(object: &Map<String, Value>) -> Option<Fields> {
    let text = |name: &str| match object.get(name)? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    };
    Some(Fields {
        timestamp: text("timestamp")?,
        token: text("token")?,
        signature: text("signature")?,
    })
}

/// Whether the body carries a Mailgun signature (for recognising the provider).
pub(super) fn carries_signature(input: &VerifyInput<'_>) -> bool {
    if input.body.len() > MAX_BODY {
        return false;
    }
    let mentions = |word: &[u8]| memchr::memmem::find(input.body, word).is_some();
    mentions(b"signature") && mentions(b"token") && !signatures(input).is_empty()
}

pub(super) fn verify(input: &VerifyInput<'_>, secrets: &[Secret]) -> Result<Stamp, NoMatch> {
    let found = signatures(input);
    if found.is_empty() {
        return Err(NoMatch::Unsigned);
    }
    let mut tags = Vec::new();
    for fields in &found {
        let tag = mac::hex_tag(Alg::Sha256, &fields.signature).map_err(NoMatch::malformed)?;
        tags.push((fields, tag));
    }
    if secrets.is_empty() {
        return Err(NoMatch::Unusable(String::new()));
    }
    let matched = tags.iter().find(|(fields, tag)| {
        secrets.iter().any(|secret| {
            let mac = mac::hmac(
                Alg::Sha256,
                secret.expose().as_bytes(),
                &[fields.timestamp.as_bytes(), fields.token.as_bytes()],
            );
            mac::matches_any(&mac, std::slice::from_ref(tag))
        })
    });
    let Some((fields, _)) = matched else {
        return Err(NoMatch::Invalid(format!(
            "signature does not match its timestamp and token: wrong key (Mailgun signs with the HTTP webhook signing key, not the API key){}",
            if found.len() > 1 { "; neither signature nor parent-signature matches" } else { "" }
        )));
    };
    Ok(match Timestamp::parse_secs(fields.timestamp.trim()) {
        Ok(at) => Stamp::At(at),
        Err(why) => Stamp::Unreadable(format!("signature.timestamp is malformed: {why}")),
    })
}

/// Sets the JSON body's `signature` object: its token is kept (or made up), its timestamp set to
/// `at`. The body is re-serialised compactly, as Mailgun sends it.
pub(super) fn sign(
    secret: &Secret,
    input: &VerifyInput<'_>,
    at: Timestamp,
) -> Result<Signed, SchemeSignError> {
    let mut body = match serde_json::from_slice::<Value>(input.body) {
        Ok(Value::Object(body)) => body,
        _ if input.body.is_empty() => Map::new(),
        _ => {
            return Err(SchemeSignError::Request(
                "Mailgun signs inside a JSON object body, and this body is not one".into(),
            ))
        }
    };
    let token = match body.get("signature").and_then(|s| s.get("token")) {
        Some(Value::String(token)) => token.clone(),
        _ => random_hex(25),
    };
    let timestamp = at.unix_secs().to_string();
    let tag = mac::hmac(
        Alg::Sha256,
        secret.expose().as_bytes(),
        &[timestamp.as_bytes(), token.as_bytes()],
    );
    let mut signature = Map::new();
    signature.insert("token".into(), Value::String(token));
    signature.insert("timestamp".into(), Value::String(timestamp));
    signature.insert("signature".into(), Value::String(mac::to_hex(&tag)));
    body.insert("signature".into(), Value::Object(signature));
    let body = serde_json::to_vec(&Value::Object(body))
        .map_err(|e| SchemeSignError::Request(format!("could not write the body: {e}")))?;
    Ok(Signed {
        headers: Vec::new(),
        body: Some(body),
    })
}

/// The Mailgun event in a request, if it is one.
pub(super) fn recognize(i: &Input<'_>) -> Option<Recognized> {
    i.json("/signature/token")?;
    Some(Recognized {
        provider: Provider::Mailgun,
        event_type: i.text("/event-data/event"),
        event_id: i.text("/event-data/id"),
        occurred_at: i
            .json("/event-data/timestamp")
            .and_then(Value::as_f64)
            .map(|t| t as i64),
        object_id: i.text("/event-data/message/headers/message-id"),
    })
}
