//! CLI tokens: who may attach to this relay, and the identity that owns reserved channels.
//!
//! Tokens are kept only as SHA-256 digests and compared in constant time; a token never appears
//! in logs, in the queue or in `Debug` output. The file is reread on SIGHUP.

use std::path::PathBuf;
use std::sync::RwLock;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::{info, warn};

/// Identifies a token without revealing it: base64 of its SHA-256, stored as a channel's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner(pub String);

/// The accepted tokens, or an open relay.
pub(crate) struct Tokens {
    file: Option<PathBuf>,
    digests: RwLock<Vec<[u8; 32]>>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    /// Loads the tokens file; `None` means an open relay.
    pub fn load(file: Option<PathBuf>) -> anyhow::Result<Self> {
        let tokens = Tokens {
            file,
            digests: RwLock::new(Vec::new()),
        };
        tokens.reload()?;
        Ok(tokens)
    }

    /// Whether CLIs need a token.
    pub fn required(&self) -> bool {
        self.file.is_some()
    }

    /// Rereads the tokens file. On error the tokens in force stay.
    pub fn reload(&self) -> anyhow::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let text = std::fs::read_to_string(file).map_err(|e| {
            anyhow::anyhow!("could not read the tokens file {}: {e}", file.display())
        })?;
        let digests: Vec<[u8; 32]> = text
            .lines()
            .map(|line| line.split('#').next().unwrap_or("").trim())
            .filter(|token| !token.is_empty())
            .map(digest)
            .collect();
        if digests.is_empty() {
            warn!(file = %file.display(), "the tokens file holds no token: every CLI will be refused");
        }
        info!(count = digests.len(), "tokens loaded");
        *self.digests.write().expect("tokens lock is never poisoned") = digests;
        Ok(())
    }

    /// Checks a CLI's token. `Ok(None)` on an open relay, `Ok(Some(owner))` for an accepted
    /// token, `Err` with a sentence naming the problem otherwise.
    pub fn check(&self, token: Option<&str>) -> Result<Option<Owner>, String> {
        if !self.required() {
            return Ok(None);
        }
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err("this relay requires a token: pass --token or set HOOKS_TOKEN".to_owned());
        };
        let presented = digest(token);
        let digests = self.digests.read().expect("tokens lock is never poisoned");
        // Compare against every token, without stopping early, so timing says nothing.
        let mut found = subtle::Choice::from(0);
        for known in digests.iter() {
            found |= known.ct_eq(&presented);
        }
        if bool::from(found) {
            Ok(Some(Owner(
                base64::engine::general_purpose::STANDARD_NO_PAD.encode(presented),
            )))
        } else {
            Err("this relay does not accept that token; check --token or HOOKS_TOKEN".to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_file_with_comments_is_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(&file, "# team tokens\nalpha\n  beta  # ci\n\n").unwrap();
        let tokens = Tokens::load(Some(file.clone())).unwrap();
        let alpha = tokens.check(Some("alpha")).unwrap().unwrap();
        let beta = tokens.check(Some("beta")).unwrap().unwrap();
        assert_ne!(alpha, beta);
        assert!(!alpha.0.contains("alpha"));
        assert!(tokens.check(Some("gamma")).unwrap_err().contains("token"));
        assert!(tokens.check(None).unwrap_err().contains("token"));
        std::fs::write(&file, "gamma\n").unwrap();
        tokens.reload().unwrap();
        assert!(tokens.check(Some("gamma")).is_ok());
        assert!(tokens.check(Some("alpha")).is_err());
    }

    #[test]
    fn without_a_file_the_relay_is_open() {
        let tokens = Tokens::load(None).unwrap();
        assert_eq!(tokens.check(None), Ok(None));
        assert_eq!(tokens.check(Some("anything")), Ok(None));
    }
}
