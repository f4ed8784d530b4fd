//! Standard Webhooks (and Svix, Clerk, Resend, which use it): `webhook-id`, `webhook-timestamp`
//! and `webhook-signature: v1,<base64> [v1,<base64> …]` (or the same under `svix-*`), signing
//! `"<id>.<timestamp>." + body`. `v1` is HMAC-SHA256 keyed with the base64 that follows `whsec_`;
//! `v1a` is Ed25519, checked with a `whpk_` public key. The list is space-separated for key
//! rotation: unknown versions are skipped and any match passes. 300 s either way.

use ed25519_dalek::Signature;

use super::diagnose;
use super::eddsa;
use super::event::{self, Input, Recognized};
use super::mac::{self, Alg, Failure, HmacScheme, KeyRule};
use super::provider::Provider;
use super::secret::Secret;
use super::window::Timestamp;
use super::{header, random_hex, NoMatch, SchemeSignError, Signed, Stamp, VerifyInput};

/// Header names: the spec's, then Svix's (which its libraries also accept).
const FAMILIES: [Family; 2] = [
    Family {
        id: "webhook-id",
        timestamp: "webhook-timestamp",
        signature: "webhook-signature",
    },
    Family {
        id: "svix-id",
        timestamp: "svix-timestamp",
        signature: "svix-signature",
    },
];

struct Family {
    id: &'static str,
    timestamp: &'static str,
    signature: &'static str,
}

/// The signatures a header lists, by version.
#[derive(Debug, Default)]
struct Signatures {
    v1: Vec<Vec<u8>>,
    v1a: Vec<Signature>,
}

fn parse_list(value: &str) -> Result<Signatures, String> {
    let mut found = Signatures::default();
    let mut bad = None;
    for item in value.split_ascii_whitespace() {
        let Some((version, encoded)) = item.split_once(',') else {
            continue;
        };
        let decoded = match version {
            "v1" => mac::base64_tag(Alg::Sha256, encoded).map(|tag| found.v1.push(tag)),
            "v1a" => mac::from_base64(encoded)
                .and_then(|bytes| eddsa::signature(&bytes))
                .map(|sig| found.v1a.push(sig)),
            _ => Ok(()),
        };
        if let Err(why) = decoded {
            bad = Some(format!("{version}: {why}"));
        }
    }
    if found.v1.is_empty() && found.v1a.is_empty() {
        return Err(bad.unwrap_or_else(|| "no v1 or v1a signature in the list".into()));
    }
    Ok(found)
}

pub(super) fn verify(input: &VerifyInput<'_>, secrets: &[Secret]) -> Result<Stamp, NoMatch> {
    let family = FAMILIES
        .iter()
        .find(|f| input.header(f.signature).is_some())
        .ok_or(NoMatch::Unsigned)?;
    let list = parse_list(input.signature(family.signature)?).map_err(NoMatch::malformed)?;
    let id = input.required(family.id)?;
    let ts = input.required(family.timestamp)?;
    let ts = Timestamp::parse_secs(ts.trim()).map_err(|why| {
        NoMatch::Invalid(format!("{} header is malformed: {why}", family.timestamp))
    })?;
    let prefix = format!("{id}.{}.", ts.unix_secs());

    let (public, symmetric): (Vec<&Secret>, Vec<&Secret>) = secrets
        .iter()
        .partition(|s| s.expose().starts_with("whpk_"));
    let mut failure = None;
    if !list.v1.is_empty() && !symmetric.is_empty() {
        let symmetric: Vec<Secret> = symmetric.into_iter().cloned().collect();
        let scheme = HmacScheme {
            provider: Provider::StandardWebhooks,
            alg: Alg::Sha256,
            key: KeyRule::StandardWebhooks,
            prefix: prefix.as_bytes(),
            body: input.body,
            suffix: b"",
            candidates: &list.v1,
            signs_url: false,
        };
        match scheme.check(&symmetric) {
            Ok(()) => return Ok(Stamp::At(ts)),
            Err(f) => failure = Some(f),
        }
    }
    if !list.v1a.is_empty() && !public.is_empty() {
        match verify_v1a(&public, &prefix, input.body, &list.v1a) {
            Ok(()) => return Ok(Stamp::At(ts)),
            Err(f) if !matches!(failure, Some(Failure::Mismatch(_))) => failure = Some(f),
            Err(_) => {}
        }
    }
    Err(failure
        .unwrap_or_else(|| Failure::Unusable(missing_key(&list)))
        .into())
}

fn missing_key(list: &Signatures) -> String {
    if list.v1.is_empty() {
        "the request has only v1a (Ed25519) signatures: give the sender's whpk_ public key".into()
    } else {
        "the request has only v1 (HMAC) signatures: give the whsec_ secret, not a whpk_ public key"
            .into()
    }
}

fn verify_v1a(
    keys: &[&Secret],
    prefix: &str,
    body: &[u8],
    candidates: &[Signature],
) -> Result<(), Failure> {
    let keys: Vec<_> = keys
        .iter()
        .filter_map(|s| {
            let encoded = s.expose().strip_prefix("whpk_")?;
            eddsa::public_key(&mac::from_base64(encoded).ok()?).ok()
        })
        .collect();
    if keys.is_empty() {
        return Err(Failure::Unusable(
            "the whpk_ secret is not base64 of a 32-byte Ed25519 public key".into(),
        ));
    }
    let matches = |body: &[u8]| {
        let message = [prefix.as_bytes(), body].concat();
        keys.iter()
            .any(|key| eddsa::verify_any(key, &message, candidates))
    };
    if matches(body) {
        return Ok(());
    }
    Err(Failure::Mismatch(
        diagnose::body_hint(body, matches)
            .unwrap_or_else(|| diagnose::mismatch_public_key(keys.len())),
    ))
}

/// `v1` with a `whsec_` secret, `v1a` with a `whsk_` private key; under `svix-*` names when the
/// request already uses them.
pub(super) fn sign(
    secret: &Secret,
    input: &VerifyInput<'_>,
    at: Timestamp,
) -> Result<Signed, SchemeSignError> {
    let family = if FAMILIES[1..].iter().any(|f| {
        [f.id, f.timestamp, f.signature]
            .iter()
            .any(|name| input.header(name).is_some())
    }) {
        &FAMILIES[1]
    } else {
        &FAMILIES[0]
    };
    let id = FAMILIES
        .iter()
        .find_map(|f| input.optional(f.id))
        .map_or_else(|| format!("msg_{}", random_hex(12)), str::to_owned);
    let ts = at.unix_secs();
    let message = [format!("{id}.{ts}.").as_bytes(), input.body].concat();
    let signature = match secret.expose().strip_prefix("whsk_") {
        Some(encoded) => {
            let key = mac::from_base64(encoded)
                .and_then(|bytes| eddsa::signing_key(&bytes))
                .map_err(SchemeSignError::Key)?;
            format!("v1a,{}", mac::to_base64(&eddsa::sign(&key, &message)))
        }
        None => {
            let key = KeyRule::StandardWebhooks
                .derive(secret)
                .map_err(SchemeSignError::Key)?;
            format!(
                "v1,{}",
                mac::to_base64(&mac::hmac(Alg::Sha256, &key, &[&message]))
            )
        }
    };
    Ok(Signed {
        headers: vec![
            header(family.id, id),
            header(family.timestamp, ts.to_string()),
            header(family.signature, signature),
        ],
        body: None,
    })
}

/// The Standard Webhooks event in a request, if it is one.
pub(super) fn recognize(i: &Input<'_>) -> Option<Recognized> {
    let (id, timestamp) = match (i.header("webhook-id"), i.header("svix-id")) {
        (Some(id), _) => (id, i.header("webhook-timestamp")),
        (None, Some(id)) => (id, i.header("svix-timestamp")),
        (None, None) => return None,
    };
    Some(Recognized {
        provider: Provider::StandardWebhooks,
        event_type: i.text("/type"),
        event_id: Some(id.to_owned()),
        occurred_at: timestamp.and_then(event::seconds),
        object_id: i.text("/data/id"),
    })
}
