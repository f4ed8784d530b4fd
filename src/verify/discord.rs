//! Discord: `X-Signature-Ed25519` (128 hex characters) and `X-Signature-Timestamp`, an Ed25519
//! signature of `timestamp + body`, checked with the application's public key (64 hex
//! characters) as discord-interactions-js `verifyKey` does. The library checks no timestamp.

use super::diagnose;
use super::eddsa;
use super::event::{Input, Recognized};
use super::mac;
use super::provider::Provider;
use super::secret::Secret;
use super::window::Timestamp;
use super::{header, NoMatch, SchemeSignError, Signed, Stamp, VerifyInput};
use serde_json::Value;

const SIGNATURE: &str = "X-Signature-Ed25519";
const TIMESTAMP: &str = "X-Signature-Timestamp";

pub(super) fn verify(input: &VerifyInput<'_>, secrets: &[Secret]) -> Result<Stamp, NoMatch> {
    let signature = mac::from_hex(input.signature(SIGNATURE)?)
        .and_then(|bytes| eddsa::signature(&bytes))
        .map_err(NoMatch::malformed)?;
    let ts = input.required(TIMESTAMP)?;
    let mut unusable = None;
    let keys: Vec<_> = secrets
        .iter()
        .filter_map(|secret| match public_key(secret) {
            Ok(key) => Some(key),
            Err(why) => {
                unusable.get_or_insert(why);
                None
            }
        })
        .collect();
    if keys.is_empty() {
        return Err(NoMatch::Unusable(unusable.unwrap_or_default()));
    }
    let matches = |body: &[u8]| {
        let message = [ts.as_bytes(), body].concat();
        keys.iter()
            .any(|key| eddsa::verify_any(key, &message, std::slice::from_ref(&signature)))
    };
    if !matches(input.body) {
        return Err(NoMatch::Invalid(
            diagnose::body_hint(input.body, matches)
                .unwrap_or_else(|| diagnose::mismatch_public_key(keys.len())),
        ));
    }
    Ok(match Timestamp::parse_secs(ts.trim()) {
        Ok(at) => Stamp::At(at),
        Err(why) => Stamp::Unreadable(format!("{TIMESTAMP} header is malformed: {why}")),
    })
}

fn public_key(secret: &Secret) -> Result<ed25519_dalek::VerifyingKey, String> {
    let not_a_key =
        "the secret is not a Discord public key: expected the application's 64 hex characters";
    let bytes = mac::from_hex(secret.expose()).map_err(|_| not_a_key.to_owned())?;
    eddsa::public_key(&bytes).map_err(|why| format!("{not_a_key} ({why})"))
}

/// Signs with a private key given as its 64-hex-character seed.
pub(super) fn sign(
    secret: &Secret,
    input: &VerifyInput<'_>,
    at: Timestamp,
) -> Result<Signed, SchemeSignError> {
    let key = mac::from_hex(secret.expose())
        .and_then(|seed| eddsa::signing_key(&seed))
        .map_err(|why| {
            SchemeSignError::Key(format!("expected a 64-hex-character Ed25519 seed: {why}"))
        })?;
    let ts = at.unix_secs().to_string();
    let signature = eddsa::sign(&key, &[ts.as_bytes(), input.body].concat());
    Ok(Signed {
        headers: vec![
            header(SIGNATURE, mac::to_hex(&signature)),
            header(TIMESTAMP, ts),
        ],
        body: None,
    })
}

/// The Discord event in a request, if it is one.
pub(super) fn recognize(i: &Input<'_>) -> Option<Recognized> {
    if !i.has("x-signature-ed25519") {
        return None;
    }
    let event_type = i.json("/type").and_then(Value::as_u64).map(|kind| {
        match kind {
            1 => "PING",
            2 => "APPLICATION_COMMAND",
            3 => "MESSAGE_COMPONENT",
            4 => "APPLICATION_COMMAND_AUTOCOMPLETE",
            5 => "MODAL_SUBMIT",
            _ => "interaction",
        }
        .to_owned()
    });
    Some(Recognized {
        provider: Provider::Discord,
        event_type,
        event_id: i.text("/id"),
        occurred_at: None,
        object_id: None,
    })
}
