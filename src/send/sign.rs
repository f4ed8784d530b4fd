//! Signing a rendered event with its provider's scheme (the code `hooks verify` and
//! `hooks replay --resign` use), over exactly the bytes that will be sent.

use std::path::Path;
use std::time::SystemTime;

use super::args::{PrivateKey, SendArgs};
use super::keys::{self, KeyPair};
use super::template::Rendered;
use crate::exchange::{Signature, Verdict};
use crate::verify::{self, Provider, Secret, VerifyInput};
use crate::UsageError;

/// How events are signed.
#[derive(Debug, Clone)]
pub enum Signer {
    /// Not at all (`--unsigned`).
    Unsigned,
    /// With a shared secret: the same for signing and checking.
    Secret(Provider, Secret),
    /// With a private key; the public key checks the result.
    Private(Provider, KeyPair),
}

impl Signer {
    /// The signer for `scheme` from the flags: `--unsigned`, `--secret`, `--private-key`, or the
    /// key pair kept in `data_dir` (Discord and SendGrid without `--private-key`). A kept key
    /// pair's public key is printed on stderr, for the app's configuration.
    pub fn choose(
        scheme: Option<Provider>,
        provider: &str,
        args: &SendArgs,
        data_dir: impl FnOnce() -> anyhow::Result<std::path::PathBuf>,
    ) -> anyhow::Result<Signer> {
        if args.unsigned {
            return Ok(Signer::Unsigned);
        }
        let Some(scheme) = scheme else {
            return Err(UsageError(format!(
                "{provider} has no signature scheme hooks knows: name one in the template \
                 (scheme = \"github\", …) or pass --unsigned"
            ))
            .into());
        };
        match (&args.secret, &args.private_key) {
            (Some(_), _) if keys::private_only(scheme) => Err(UsageError(format!(
                "{scheme} signs with a private key, not a secret: pass --private-key=KEY, or \
                 nothing to use the key pair hooks keeps (hooks verify takes the public key)"
            ))
            .into()),
            (Some(secret), _) => Ok(Signer::Secret(scheme, secret.clone())),
            (None, Some(PrivateKey::Given(private))) => {
                let public = keys::public_of(scheme, private).map_err(UsageError)?;
                Ok(Signer::Private(
                    scheme,
                    KeyPair {
                        private: private.clone(),
                        public,
                    },
                ))
            }
            (None, Some(PrivateKey::Kept)) if can_sign_privately(scheme) => {
                kept(scheme, &data_dir()?)
            }
            (None, None) if keys::private_only(scheme) => kept(scheme, &data_dir()?),
            (None, Some(PrivateKey::Kept)) => {
                Err(UsageError(format!("{scheme} signs with a shared secret: use --secret")).into())
            }
            (None, None) => Err(UsageError(format!(
                "no --secret: pass the {scheme} signing secret your app verifies with (or set \
                 HOOKS_SECRET), or --unsigned to send the event without a signature"
            ))
            .into()),
        }
    }

    /// The scheme, when there is one.
    pub fn scheme(&self) -> Option<Provider> {
        match self {
            Signer::Unsigned => None,
            Signer::Secret(scheme, _) | Signer::Private(scheme, _) => Some(*scheme),
        }
    }

    /// Signs `request` as its provider would at `at`, for `url` (the URL-signing schemes sign
    /// it). The signature's headers replace the request's of the same name, except those named
    /// in `keep` (what `-H` set wins); a scheme that signs inside the body (Mailgun) replaces it.
    pub fn sign(
        &self,
        request: &mut Rendered,
        url: &str,
        at: SystemTime,
        keep: &[(String, String)],
    ) -> anyhow::Result<()> {
        let (scheme, key) = match self {
            Signer::Unsigned => return Ok(()),
            Signer::Secret(scheme, secret) => (*scheme, secret),
            Signer::Private(scheme, pair) => (*scheme, &pair.private),
        };
        let signed = {
            let headers = pairs(request);
            let input = VerifyInput {
                method: &request.method,
                url,
                headers: &headers,
                body: &request.body,
            };
            verify::sign(scheme, key, &input, at).map_err(|e| UsageError(e.to_string()))?
        };
        for (name, value) in signed.headers {
            if !keep
                .iter()
                .any(|(kept, _)| kept.eq_ignore_ascii_case(&name))
            {
                request.set_header(&name, value);
            }
        }
        if let Some(body) = signed.body {
            request.body = body;
        }
        Ok(())
    }

    /// The verdict `hooks verify` gives `request` now, as the capture keeps it.
    pub fn verdict(&self, request: &Rendered, url: &str) -> Signature {
        let (scheme, key) = match self {
            Signer::Unsigned => (None, None),
            Signer::Secret(scheme, secret) => (Some(*scheme), Some(secret.clone())),
            Signer::Private(scheme, pair) => (Some(*scheme), Some(Secret::new(&pair.public))),
        };
        let headers = pairs(request);
        let input = VerifyInput {
            method: &request.method,
            url,
            headers: &headers,
            body: &request.body,
        };
        let secrets: Vec<Secret> = key.into_iter().collect();
        let report = verify::check(&input, &secrets, scheme, None, SystemTime::now());
        let (provider, verdict, reason) = match report {
            Ok(report) => (report.provider, report.verdict(), report.reason),
            Err(e) => (scheme, Verdict::Unchecked, Some(e.to_string())),
        };
        Signature {
            provider,
            assumed: false,
            verdict,
            reason,
        }
    }
}

/// Whether `scheme` can sign with a private key (Standard Webhooks `v1a` besides HMAC).
fn can_sign_privately(scheme: Provider) -> bool {
    keys::private_only(scheme) || scheme == Provider::StandardWebhooks
}

/// The kept key pair, its public key printed for the app.
fn kept(scheme: Provider, data_dir: &Path) -> anyhow::Result<Signer> {
    let (pair, path) = keys::kept(scheme, data_dir)?;
    eprintln!(
        "hooks: signing with the {scheme} key pair in {}; your app's public key: {}",
        path.display(),
        pair.public
    );
    Ok(Signer::Private(scheme, pair))
}

fn pairs(request: &Rendered) -> Vec<(&str, &[u8])> {
    request
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect()
}
