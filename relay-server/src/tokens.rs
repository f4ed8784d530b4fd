//! CLI tokens: who may attach to this relay, the identity that owns reserved channels, the
//! channels the tokens file gives to a token, and the live sessions a reload of the file ends.
//!
//! Tokens are kept only as SHA-256 digests and compared in constant time; a token never appears
//! in logs, in the queue, in an error or in `Debug` output. The file is reread on SIGHUP.
//!
//! The file holds one token per line, optionally followed by `channels=NAME,NAME…`, the
//! channels that token owns whoever claimed them before. A `#` at the start of a line or after
//! whitespace starts a comment; a `#` inside a token is part of it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Identifies a token without revealing it: base64 of its SHA-256, stored as a channel's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner(pub String);

/// Refusal of a hello without a token, by a relay that requires one.
const NO_TOKEN: &str = "this relay requires a token: pass --token or set HOOKS_TOKEN";

/// Refusal of a token that is not in the tokens file.
const WRONG_TOKEN: &str = "this relay does not accept that token; check --token or HOOKS_TOKEN";

/// Why a session ends when its token is taken out of the tokens file.
const REVOKED: &str = "the relay no longer accepts this token";

/// How the refusals that no retry can overcome (the token, or the channel's owner) say so.
const FINAL_REFUSALS: [&str; 4] = [
    "requires a token",
    "does not accept that token",
    "is reserved by another token",
    "claimed before this relay required tokens",
];

/// The refusal of a channel that another token owns.
pub(crate) fn reserved(channel: &str) -> String {
    format!("channel {channel} is reserved by another token; pick another --channel")
}

/// The refusal of a channel claimed while the relay had no tokens file: it belongs to no token,
/// and the first one to ask must not get it (or the webhooks it queued).
pub(crate) fn ownerless(channel: &str) -> String {
    format!(
        "channel {channel} was claimed before this relay required tokens; \
         the relay's operator can give it to a token in the tokens file"
    )
}

/// Whether `message` (a relay's refusal of a session) is about the token or the channel's
/// owner, so that asking again with the same token cannot succeed until the relay's operator
/// changes the tokens file. `hooks listen` stops on such a refusal rather than retry forever.
pub fn is_token_refusal(message: &str) -> bool {
    FINAL_REFUSALS.iter().any(|phrase| message.contains(phrase))
}

type Sha = [u8; 32];

fn digest(token: &str) -> Sha {
    Sha256::digest(token.as_bytes()).into()
}

fn same(a: &Sha, b: &Sha) -> bool {
    bool::from(a.ct_eq(b))
}

/// What the tokens file says.
#[derive(Default)]
struct Table {
    digests: Vec<Sha>,
    /// Channels the file gives to a token, with that token's digest.
    assigned: HashMap<String, Sha>,
}

impl Table {
    /// Whether `presented` is one of the tokens, compared with every one without stopping
    /// early, so that timing says nothing.
    fn accepts(&self, presented: &Sha) -> bool {
        let mut found = subtle::Choice::from(0);
        for known in &self.digests {
            found |= known.ct_eq(presented);
        }
        bool::from(found)
    }

    /// Why a session of `token` on `channel` may not go on under this table, if it may not.
    fn forbids(&self, token: &Sha, channel: &str) -> Option<String> {
        if !self.accepts(token) {
            return Some(REVOKED.to_owned());
        }
        match self.assigned.get(channel) {
            Some(holder) if !same(holder, token) => Some(format!(
                "channel {channel} is now reserved by another token"
            )),
            _ => None,
        }
    }
}

/// The line without its comment, which starts at a `#` opening the line or following
/// whitespace: tokens may contain `#` (a random token can), so one inside a word is kept.
fn without_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let start = (0..bytes.len())
        .find(|&i| bytes[i] == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()));
    match start {
        Some(i) => &line[..i],
        None => line,
    }
}

/// Reads a tokens file; an `Err` names the line (never the token) and what is wrong with it.
fn parse(text: &str) -> Result<Table, String> {
    let mut table = Table::default();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let words: Vec<&str> = without_comment(line).split_whitespace().collect();
        let Some((token, rest)) = words.split_first() else {
            continue;
        };
        let token = digest(token);
        match rest {
            [] => {}
            [list] if list.starts_with("channels=") => {
                for name in list["channels=".len()..]
                    .split(',')
                    .filter(|n| !n.is_empty())
                {
                    crate::protocol::validate_channel(name)
                        .map_err(|e| format!("line {line_no}: {e}: {name:?}"))?;
                    let before = table.assigned.insert(name.to_owned(), token);
                    if before.is_some_and(|before| !same(&before, &token)) {
                        return Err(format!(
                            "line {line_no}: channel {name} is already given to another token"
                        ));
                    }
                }
            }
            _ => {
                return Err(format!(
                    "line {line_no}: expected a token, alone or followed by channels=NAME,NAME \
                     (a token has no spaces)"
                ))
            }
        }
        if !table.digests.iter().any(|known| same(known, &token)) {
            table.digests.push(token);
        }
    }
    Ok(table)
}

/// A live session's standing, shared by its [`Licence`] and a reload that ends it.
struct Standing {
    token: Sha,
    channel: String,
    ended: CancellationToken,
    reason: OnceLock<String>,
}

/// The sessions holding a [`Licence`], by licence number.
#[derive(Default)]
struct Live {
    next: u64,
    sessions: HashMap<u64, Arc<Standing>>,
}

/// The accepted tokens, or an open relay.
pub(crate) struct Tokens {
    file: Option<PathBuf>,
    table: RwLock<Table>,
    live: Mutex<Live>,
}

/// A session's leave to hold its channel under the tokens file. A reload of the file that
/// takes away its token, or gives its channel to another token, ends it
/// ([`Licence::revoked`]); dropping it (the session ended) forgets it.
pub(crate) struct Licence<'a> {
    tokens: &'a Tokens,
    id: u64,
    standing: Arc<Standing>,
    /// The token's identity, recorded as the owner of the channel.
    pub owner: Owner,
    /// The tokens file gives the channel to this token, even if another one claimed it.
    pub assigned: bool,
}

impl Licence<'_> {
    /// Completes once a reload of the tokens file ends the session; returns why, a sentence
    /// for the user.
    pub async fn revoked(&self) -> String {
        self.standing.ended.cancelled().await;
        self.standing.reason.get().cloned().unwrap_or_default()
    }
}

impl Drop for Licence<'_> {
    fn drop(&mut self) {
        self.tokens.live().sessions.remove(&self.id);
    }
}

impl Tokens {
    /// Loads the tokens file; `None` means an open relay.
    pub fn load(file: Option<PathBuf>) -> anyhow::Result<Self> {
        let tokens = Tokens {
            file,
            table: RwLock::new(Table::default()),
            live: Mutex::new(Live::default()),
        };
        tokens.reload()?;
        Ok(tokens)
    }

    /// Whether CLIs need a token.
    pub fn required(&self) -> bool {
        self.file.is_some()
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live
            .lock()
            .expect("live sessions lock is never poisoned")
    }

    /// Rereads the tokens file, and ends the sessions it no longer allows: those of a token
    /// taken out of it, or on a channel it now gives to another token. On error the tokens in
    /// force stay.
    pub fn reload(&self) -> anyhow::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let text = std::fs::read_to_string(file).map_err(|e| {
            anyhow::anyhow!("could not read the tokens file {}: {e}", file.display())
        })?;
        let table =
            parse(&text).map_err(|e| anyhow::anyhow!("the tokens file {}, {e}", file.display()))?;
        if table.digests.is_empty() {
            warn!(file = %file.display(), "the tokens file holds no token: every CLI will be refused");
        }
        info!(
            count = table.digests.len(),
            channels = table.assigned.len(),
            "tokens loaded"
        );
        let mut current = self.table.write().expect("tokens lock is never poisoned");
        *current = table;
        // Under the write lock: a session checked against the old table registered itself
        // before the lock was taken, so it is judged here.
        let mut ended = 0;
        for standing in self.live().sessions.values() {
            if let Some(reason) = current.forbids(&standing.token, &standing.channel) {
                let _ = standing.reason.set(reason);
                standing.ended.cancel();
                ended += 1;
            }
        }
        if ended > 0 {
            info!(
                sessions = ended,
                "ended the sessions the tokens file no longer allows"
            );
        }
        Ok(())
    }

    /// Checks a CLI's token for a session on `channel`. `Ok(None)` on an open relay,
    /// `Ok(Some(licence))` for an accepted token, `Err` with a sentence naming the problem
    /// otherwise.
    pub fn check(&self, token: Option<&str>, channel: &str) -> Result<Option<Licence<'_>>, String> {
        if !self.required() {
            return Ok(None);
        }
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(NO_TOKEN.to_owned());
        };
        let presented = digest(token);
        let table = self.table.read().expect("tokens lock is never poisoned");
        if !table.accepts(&presented) {
            return Err(WRONG_TOKEN.to_owned());
        }
        let assigned = match table.assigned.get(channel) {
            Some(holder) if !same(holder, &presented) => return Err(reserved(channel)),
            Some(_) => true,
            None => false,
        };
        let standing = Arc::new(Standing {
            token: presented,
            channel: channel.to_owned(),
            ended: CancellationToken::new(),
            reason: OnceLock::new(),
        });
        // Registered while the table is read-locked, so a reload cannot slip in between.
        let id = {
            let mut live = self.live();
            live.next += 1;
            let id = live.next;
            live.sessions.insert(id, Arc::clone(&standing));
            id
        };
        drop(table);
        Ok(Some(Licence {
            tokens: self,
            id,
            standing,
            owner: Owner(base64::engine::general_purpose::STANDARD_NO_PAD.encode(presented)),
            assigned,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(&file, text).unwrap();
        (dir, file)
    }

    fn accepted(tokens: &Tokens, token: &str) -> bool {
        tokens.check(Some(token), "ch").is_ok()
    }

    #[test]
    fn tokens_file_with_comments_is_enforced() {
        let (_dir, file) = file_with("# team tokens\nalpha\n  beta  # ci\n\n");
        let tokens = Tokens::load(Some(file.clone())).unwrap();
        let alpha = tokens.check(Some("alpha"), "ch").unwrap().unwrap();
        let beta = tokens.check(Some("beta"), "ch").unwrap().unwrap();
        assert_ne!(alpha.owner, beta.owner);
        assert!(!alpha.owner.0.contains("alpha"));
        assert_eq!(
            tokens.check(Some("gamma"), "ch").err().unwrap(),
            WRONG_TOKEN
        );
        assert_eq!(tokens.check(None, "ch").err().unwrap(), NO_TOKEN);
        std::fs::write(&file, "gamma\n").unwrap();
        tokens.reload().unwrap();
        assert!(accepted(&tokens, "gamma"));
        assert!(!accepted(&tokens, "alpha"));
    }

    #[test]
    fn issue_17_a_hash_inside_a_token_is_part_of_it() {
        let (_dir, file) =
            file_with("#comment\n  # indented comment\nab#cd\nef#gh # its comment\nij\t#tab\n");
        let tokens = Tokens::load(Some(file)).unwrap();
        for token in ["ab#cd", "ef#gh", "ij"] {
            assert!(accepted(&tokens, token), "{token}");
        }
        for shortened in ["ab", "ef", "ef#gh #", "#comment", "comment"] {
            assert!(!accepted(&tokens, shortened), "{shortened}");
        }
    }

    #[test]
    fn the_readme_example_reads_as_it_says() {
        let readme = include_str!("../../README.md");
        let start = readme.find("# team tokens").unwrap();
        let example = &readme[start..start + readme[start..].find("```").unwrap()];
        let (_dir, file) = file_with(example);
        let tokens = Tokens::load(Some(file)).unwrap();
        assert!(accepted(&tokens, "3f9a61c0e5d2b7a4c8e1f0d9b6a5c4e3"));
        assert!(accepted(&tokens, "k#9Lq2x"));
        let owner = tokens.check(Some("77e0c4a1b2d3f4e5a6b7c8d9"), "legacy");
        assert!(owner.unwrap().unwrap().assigned);
        assert_eq!(
            tokens.check(Some("k#9Lq2x"), "team-b").err().unwrap(),
            reserved("team-b")
        );
    }

    #[test]
    fn the_file_gives_channels_to_tokens_and_its_mistakes_never_show_a_token() {
        let (_dir, file) = file_with("alpha channels=team-a,team-b\nbeta\n");
        let tokens = Tokens::load(Some(file.clone())).unwrap();
        assert!(
            tokens
                .check(Some("alpha"), "team-a")
                .unwrap()
                .unwrap()
                .assigned
        );
        assert!(
            !tokens
                .check(Some("alpha"), "other")
                .unwrap()
                .unwrap()
                .assigned
        );
        assert_eq!(
            tokens.check(Some("beta"), "team-b").err().unwrap(),
            reserved("team-b")
        );
        assert!(is_token_refusal(&reserved("team-b")));
        for bad in [
            "secret words\n",
            "secret channels=bad/name\n",
            "secret channels=x\nhidden channels=x\n",
        ] {
            std::fs::write(&file, bad).unwrap();
            let error = format!("{:#}", tokens.reload().unwrap_err());
            assert!(error.contains("line "), "{error}");
            assert!(!error.contains("secret"), "{error}");
            assert!(!error.contains("hidden"), "{error}");
        }
        // A file in error leaves the tokens in force.
        assert!(accepted(&tokens, "alpha"));
    }

    #[test]
    fn issue_17_a_reload_ends_the_sessions_it_no_longer_allows() {
        let (_dir, file) = file_with("alpha\nbeta\ngamma\n");
        let tokens = Tokens::load(Some(file.clone())).unwrap();
        let alpha = tokens.check(Some("alpha"), "a").unwrap().unwrap();
        let beta = tokens.check(Some("beta"), "b").unwrap().unwrap();
        let gamma = tokens.check(Some("gamma"), "c").unwrap().unwrap();
        let gone = tokens.check(Some("alpha"), "d").unwrap().unwrap();
        drop(gone);
        assert_eq!(
            tokens.live().sessions.len(),
            3,
            "a dropped licence is forgotten"
        );
        std::fs::write(&file, "beta\ngamma\nbeta channels=c\n").unwrap();
        tokens.reload().unwrap();
        assert!(alpha.standing.ended.is_cancelled());
        assert_eq!(alpha.standing.reason.get().unwrap(), REVOKED);
        assert!(!beta.standing.ended.is_cancelled());
        assert_eq!(
            gamma.standing.reason.get().unwrap(),
            "channel c is now reserved by another token"
        );
        assert!(is_token_refusal(WRONG_TOKEN));
        assert!(is_token_refusal(NO_TOKEN));
        assert!(is_token_refusal(&ownerless("x")));
        assert!(!is_token_refusal(
            "this relay is at its limit of 1 sessions"
        ));
    }

    #[test]
    fn without_a_file_the_relay_is_open() {
        let tokens = Tokens::load(None).unwrap();
        assert!(tokens.check(None, "ch").unwrap().is_none());
        assert!(tokens.check(Some("anything"), "ch").unwrap().is_none());
    }
}
