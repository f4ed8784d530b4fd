//! The forward target (`--forward-to`): where webhooks go on the developer's machine.

use std::fmt;
use std::str::FromStr;

/// A parsed `TARGET`: scheme, authority and base path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// `host:port`, as the `Host` header carries it.
    pub authority: String,
    /// Path prefix without a trailing slash; empty for the root.
    pub base_path: String,
}

impl Target {
    /// The full URI for a relay target (`/a/b?x=1`, `?x=1` or empty) under this target.
    pub fn uri_for(&self, target: &str) -> String {
        let mut path = format!("{}{}", self.base_path, target);
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        format!("{}://{}{}", self.scheme, self.authority, path)
    }

    /// The port the app listens on, for hints.
    pub fn port(&self) -> Option<&str> {
        self.authority.rsplit_once(':').map(|(_, port)| port)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.base_path)
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let input = input.trim();
        if input.is_empty() {
            return Err("target is empty; try 3000 or localhost:3000".into());
        }
        let (scheme, rest) = match input.split_once("://") {
            Some(("http", rest)) => ("http", rest),
            Some(("https", rest)) => ("https", rest),
            Some((other, _)) => {
                return Err(format!("unsupported scheme {other:?}; use http or https"))
            }
            None => ("http", input),
        };
        if rest.contains(['?', '#']) {
            return Err(
                "a target cannot have a query or fragment; the webhook's own query is appended"
                    .into(),
            );
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        // A bare port (`3000`, `3000/base`) means the app on this machine.
        let authority = if !authority.is_empty() && authority.chars().all(|c| c.is_ascii_digit()) {
            parse_port(authority)?;
            format!("localhost:{authority}")
        } else {
            check_authority(authority, scheme)?
        };
        Ok(Target {
            scheme,
            authority,
            base_path: path.trim_end_matches('/').to_owned(),
        })
    }
}

fn parse_port(port: &str) -> Result<u16, String> {
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{port:?} is not a port number (1 to 65535)")),
        Ok(port) => Ok(port),
    }
}

/// Validates `host[:port]` and adds the scheme's default port when there is none.
fn check_authority(authority: &str, scheme: &str) -> Result<String, String> {
    if authority.is_empty() {
        return Err("target has no host; try localhost:3000".into());
    }
    if authority.contains('@') {
        return Err("a target cannot carry credentials".into());
    }
    let (host, port) = match authority.rsplit_once(':') {
        // An IPv6 literal without a port, like [::1].
        Some((_, tail)) if tail.ends_with(']') => (authority, None),
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    if host.is_empty() {
        return Err(format!("target {authority:?} has no host"));
    }
    if let Some(bad) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':')))
    {
        return Err(format!(
            "target host {host:?} has an invalid character {bad:?}"
        ));
    }
    let port = match port {
        Some(port) => parse_port(port)?,
        None if scheme == "https" => 443,
        None => 80,
    };
    Ok(format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Target {
        s.parse().unwrap()
    }

    #[test]
    fn accepts_every_documented_form() {
        assert_eq!(parse("3000").to_string(), "http://localhost:3000");
        assert_eq!(parse("localhost:3000").to_string(), "http://localhost:3000");
        assert_eq!(parse("3000/base").to_string(), "http://localhost:3000/base");
        assert_eq!(
            parse("localhost:3000/base").to_string(),
            "http://localhost:3000/base"
        );
        assert_eq!(
            parse("http://127.0.0.1:8080/hooks/").to_string(),
            "http://127.0.0.1:8080/hooks"
        );
        assert_eq!(
            parse("https://app.test").to_string(),
            "https://app.test:443"
        );
        assert_eq!(parse("[::1]:3000").authority, "[::1]:3000");
    }

    #[test]
    fn joins_relay_targets_under_the_base_path() {
        let t = parse("localhost:3000/base");
        assert_eq!(t.uri_for("/a/b?x=1"), "http://localhost:3000/base/a/b?x=1");
        assert_eq!(t.uri_for(""), "http://localhost:3000/base");
        assert_eq!(t.uri_for("?x=1"), "http://localhost:3000/base?x=1");
        let root = parse("3000");
        assert_eq!(root.uri_for(""), "http://localhost:3000/");
        assert_eq!(root.uri_for("?x=1"), "http://localhost:3000/?x=1");
    }

    #[test]
    fn rejects_bad_targets_with_a_reason() {
        for bad in [
            "",
            "0",
            "99999",
            "ftp://x",
            "localhost:abc",
            "localhost:3000?x=1",
            "user@host:1",
            ":3000",
            "local host:3000",
        ] {
            assert!(bad.parse::<Target>().is_err(), "{bad:?} should be rejected");
        }
    }
}
