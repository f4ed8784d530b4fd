//! SendGrid Event Webhook: `X-Twilio-Email-Event-Webhook-Signature` (base64 DER ECDSA signature)
//! and `X-Twilio-Email-Event-Webhook-Timestamp`, ECDSA P-256 with SHA-256 over
//! `timestamp + body`, checked with the base64 DER (SubjectPublicKeyInfo) public key SendGrid
//! shows (sendgrid-python `EventWebhook`). The SDK checks no timestamp.

use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};

use super::diagnose;
use super::event::{Input, Recognized};
use super::mac;
use super::provider::Provider;
use super::secret::Secret;
use super::window::Timestamp;
use super::{header, NoMatch, SchemeSignError, Signed, Stamp, VerifyInput};
use serde_json::Value;

const SIGNATURE: &str = "X-Twilio-Email-Event-Webhook-Signature";
const TIMESTAMP: &str = "X-Twilio-Email-Event-Webhook-Timestamp";

pub(super) fn verify(input: &VerifyInput<'_>, secrets: &[Secret]) -> Result<Stamp, NoMatch> {
    let signature = mac::from_base64(input.signature(SIGNATURE)?)
        .and_then(|der| {
            Signature::from_der(&der).map_err(|_| "not a DER-encoded ECDSA signature".to_owned())
        })
        .map_err(NoMatch::malformed)?;
    // Signers may produce either of the two equivalent `s` values; accept both, as the SDKs do.
    let signature = signature.normalize_s().unwrap_or(signature);
    let ts = input.required(TIMESTAMP)?;
    let mut unusable = None;
    let keys: Vec<VerifyingKey> = secrets
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
            .any(|key| key.verify(&message, &signature).is_ok())
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

fn public_key(secret: &Secret) -> Result<VerifyingKey, String> {
    let not_a_key = "the secret is not a SendGrid verification key: expected the base64 public key (MFkw…) from the Event Webhook settings";
    let der = mac::from_base64(secret.expose()).map_err(|_| not_a_key.to_owned())?;
    VerifyingKey::from_public_key_der(&der).map_err(|_| not_a_key.to_owned())
}

/// Signs with a P-256 private key given as base64 PKCS#8 DER.
pub(super) fn sign(
    secret: &Secret,
    input: &VerifyInput<'_>,
    at: Timestamp,
) -> Result<Signed, SchemeSignError> {
    let key = mac::from_base64(secret.expose())
        .ok()
        .and_then(|der| SigningKey::from_pkcs8_der(&der).ok())
        .ok_or_else(|| {
            SchemeSignError::Key("expected a base64 PKCS#8 DER P-256 private key".into())
        })?;
    let ts = at.unix_secs().to_string();
    let signature: Signature = key.sign(&[ts.as_bytes(), input.body].concat());
    Ok(Signed {
        headers: vec![
            header(SIGNATURE, mac::to_base64(signature.to_der().as_bytes())),
            header(TIMESTAMP, ts),
        ],
        body: None,
    })
}

/// The SendGrid event in a request, if it is one.
pub(super) fn recognize(i: &Input<'_>) -> Option<Recognized> {
    let first = i.json("/0")?;
    first.get("sg_event_id")?;
    let count = i
        .json
        .as_ref()
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let kind = first
        .get("event")
        .and_then(Value::as_str)
        .unwrap_or("event");
    let event_type = if count > 1 {
        format!("{kind} (+{} more)", count - 1)
    } else {
        kind.to_owned()
    };
    Some(Recognized {
        provider: Provider::SendGrid,
        event_type: Some(event_type),
        event_id: first
            .get("sg_event_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        occurred_at: first.get("timestamp").and_then(Value::as_i64),
        object_id: first
            .get("sg_message_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}
