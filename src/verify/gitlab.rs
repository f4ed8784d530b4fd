//! GitLab: `X-Gitlab-Token` carries the webhook's secret token itself; nothing is hashed and the
//! body is not covered. The comparison hashes both sides first, so it takes the same time
//! whatever the token's length or contents. (GitLab's newer signing token uses Standard Webhooks
//! headers and is checked as `standard-webhooks`.)

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::event::{Input, Recognized};
use super::provider::Provider;
use super::secret::Secret;
use super::{header, NoMatch, Signed, Stamp, VerifyInput};

const HEADER: &str = "X-Gitlab-Token";

pub(super) fn verify(input: &VerifyInput<'_>, secrets: &[Secret]) -> Result<Stamp, NoMatch> {
    let token = input.header(HEADER).ok_or(NoMatch::Unsigned)?;
    if secrets.is_empty() {
        return Err(NoMatch::Unusable(String::new()));
    }
    if equals_any(token, secrets, |text| text.as_bytes()) {
        return Ok(Stamp::None);
    }
    let trimmed = equals_any(token.trim_ascii(), secrets, |text| text.trim().as_bytes());
    Err(NoMatch::Invalid(if trimmed {
        "token differs from the secret only in spaces or line breaks around it; copy it again without them".into()
    } else if secrets.len() > 1 {
        format!(
            "{HEADER} matches none of the {} secret tokens",
            secrets.len()
        )
    } else {
        format!("{HEADER} is not the secret token")
    }))
}

/// Whether `token` equals `view` of one of `secrets`, in time independent of both.
fn equals_any(token: &[u8], secrets: &[Secret], view: fn(&str) -> &[u8]) -> bool {
    let sent = Sha256::digest(token);
    secrets
        .iter()
        .fold(subtle::Choice::from(0), |found, secret| {
            found | Sha256::digest(view(secret.expose())).ct_eq(&sent)
        })
        .into()
}

pub(super) fn sign(secret: &Secret) -> Signed {
    Signed {
        headers: vec![header(HEADER, secret.expose())],
        body: None,
    }
}

/// The GitLab event in a request, if it is one.
pub(super) fn recognize(i: &Input<'_>) -> Option<Recognized> {
    let kind = i.header("x-gitlab-event")?;
    Some(Recognized {
        provider: Provider::GitLab,
        event_type: Some(i.text("/object_kind").unwrap_or_else(|| kind.to_owned())),
        event_id: i
            .header("x-gitlab-event-uuid")
            .or(i.header("idempotency-key"))
            .map(str::to_owned),
        occurred_at: None,
        object_id: None,
    })
}
