//! The CLI's config file: connection settings that would otherwise be typed on every run.
//!
//! `$HOOKS_CONFIG`, else `$XDG_CONFIG_HOME/hooks/config.toml`, else
//! `~/.config/hooks/config.toml`. Flags and `HOOKS_*` variables win over it.
//!
//! ```toml
//! relay = "https://relay.example.com"   # or a list: the nodes of a relay cluster
//! token = "…"
//! ca-cert = "/etc/hooks/ca.pem"
//! channel = "my-app"
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use relay_server::protocol::Token;
use serde::Deserialize;

use crate::cli::ListenArgs;

/// Settings read from the config file.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    #[serde(default, deserialize_with = "one_or_many")]
    relay: Option<String>,
    token: Option<Token>,
    ca_cert: Option<PathBuf>,
    channel: Option<String>,
}

/// `relay`: one URL (several comma-separated), or a list of them, kept as `--relay` takes them.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Relay {
        One(String),
        Many(Vec<String>),
    }
    Ok(Some(match Relay::deserialize(d)? {
        Relay::One(url) => url,
        Relay::Many(urls) => urls.join(","),
    }))
}

/// Where the config file is looked for.
pub fn path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("HOOKS_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".config")))?;
    Some(base.join("hooks").join("config.toml"))
}

/// Reads the config file at `path`; a missing file is an empty config.
pub fn load(path: Option<&Path>) -> anyhow::Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileConfig::default()),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("could not read the config file {}", path.display()))
        }
    };
    toml::from_str(&text).with_context(|| format!("config file {} is not valid", path.display()))
}

impl ListenArgs {
    /// Fills the settings not given as flags or variables from the config file.
    pub fn apply(&mut self, file: FileConfig) {
        if self.relay.is_none() {
            self.relay = file.relay;
        }
        if self.token.is_none() {
            self.token = file.token;
        }
        if self.ca_cert.is_none() {
            self.ca_cert = file.ca_cert;
        }
        if self.channel.is_none() {
            self.channel = file.channel;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn file_fills_what_flags_left_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "relay = \"https://r.example\"\nchannel = \"from-file\"\ntoken = \"t\"\n",
        )
        .unwrap();
        let cli =
            crate::cli::Cli::parse_from(["hooks", "listen", "-f", "3000", "--channel", "flag"]);
        // Refutable once `hooks` has more subcommands than `listen`.
        #[allow(irrefutable_let_patterns)]
        let crate::cli::Command::Listen(mut args) = cli.command
        else {
            panic!("listen expected");
        };
        args.apply(load(Some(&path)).unwrap());
        assert_eq!(args.relay.as_deref(), Some("https://r.example"));
        assert_eq!(args.channel.as_deref(), Some("flag"));
        assert_eq!(args.token.map(|t| t.0), Some("t".to_owned()));
    }

    #[test]
    fn relay_may_be_a_list_of_a_clusters_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "relay = [\"https://a.example\", \"https://b.example\"]\n",
        )
        .unwrap();
        let relay = load(Some(&path)).unwrap().relay;
        assert_eq!(
            relay.as_deref(),
            Some("https://a.example,https://b.example")
        );
    }

    #[test]
    fn missing_file_is_empty_and_bad_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(Some(&dir.path().join("none.toml")))
            .unwrap()
            .relay
            .is_none());
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "relays = 1\n").unwrap();
        let err = load(Some(&bad)).err().unwrap();
        assert!(format!("{err:#}").contains("relays"), "{err:#}");
    }
}
