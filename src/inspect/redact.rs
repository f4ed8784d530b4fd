//! What never reaches the terminal whole: credentials and signatures in headers are shortened
//! (unless `--show-secrets`), and the secrets given with `--secret` are masked everywhere.

/// Headers whose values are credentials or signatures.
const SENSITIVE: [&str; 26] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "stripe-signature",
    "x-hub-signature",
    "x-hub-signature-256",
    "webhook-signature",
    "svix-signature",
    "x-slack-signature",
    "x-shopify-hmac-sha256",
    "shopify-hmac-sha256",
    "x-twilio-signature",
    "x-signature-ed25519",
    "paddle-signature",
    "linear-signature",
    "x-zm-signature",
    "x-square-hmacsha256-signature",
    "x-square-signature",
    "x-gitlab-token",
    "x-twilio-email-event-webhook-signature",
    "twitch-eventsub-message-signature",
    "typeform-signature",
    "calendly-webhook-signature",
    "x-hubspot-signature",
    "x-hubspot-signature-v3",
];

/// Characters of a sensitive value still shown, so a person can tell two apart.
const SHOWN: usize = 8;

/// Whether `name` (lowercase) carries a credential or signature.
pub fn is_sensitive(name: &str) -> bool {
    SENSITIVE.contains(&name)
        || ["token", "secret", "password", "api-key", "apikey"]
            .iter()
            .any(|word| name.contains(word))
}

/// What to hide.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Show sensitive header values whole (`--show-secrets`).
    pub show_secrets: bool,
    /// The `--secret` values; never shown, whatever `show_secrets` says.
    pub secrets: Vec<String>,
}

impl Redactor {
    /// A header value as it may be shown.
    pub fn header(&self, name: &str, value: &str) -> String {
        let masked = self.mask(value);
        // A masked value hides the secret already; cutting it would only garble it.
        if self.show_secrets || !is_sensitive(name) || masked != value {
            return masked;
        }
        let value = masked;
        let total = value.chars().count();
        if total <= SHOWN {
            return "…(redacted)".to_owned();
        }
        let head: String = value.chars().take(SHOWN).collect();
        format!("{head}…(redacted, {total} chars)")
    }

    /// `text` with every `--secret` replaced.
    pub fn mask(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in self.secrets.iter().filter(|s| s.len() >= 4) {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "(secret)");
            }
        }
        text
    }
}

/// `url` with the user info of its authority (`https://user:pass@relay` → `https://(redacted)@relay`)
/// hidden, for messages: a relay URL can carry credentials, and hooks never sends them anyway.
pub fn userinfo(url: &str) -> std::borrow::Cow<'_, str> {
    let start = url.find("://").map_or(0, |at| at + 3);
    let authority_len = url[start..]
        .find(['/', '?', '#'])
        .unwrap_or(url.len() - start);
    match url[start..start + authority_len].rfind('@') {
        Some(at) => format!("{}(redacted){}", &url[..start], &url[start + at..]).into(),
        None => url.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_is_hidden_in_urls() {
        assert_eq!(
            userinfo("https://user:p@ss@relay.example.com/x@y?a=b@c"),
            "https://(redacted)@relay.example.com/x@y?a=b@c"
        );
        assert_eq!(userinfo("user:pass@relay:80"), "(redacted)@relay:80");
        assert_eq!(userinfo("http://relay/@x"), "http://relay/@x");
        assert_eq!(userinfo("http://127.0.0.1:9"), "http://127.0.0.1:9");
    }

    #[test]
    fn signatures_are_shortened_and_secrets_masked() {
        let redactor = Redactor {
            show_secrets: false,
            secrets: vec!["whsec_abc123".into()],
        };
        assert_eq!(
            redactor.header("stripe-signature", "t=1700000000,v1=deadbeef"),
            "t=170000…(redacted, 24 chars)"
        );
        assert_eq!(redactor.header("x-custom-token", "abc"), "…(redacted)");
        assert_eq!(redactor.header("content-type", "text/plain"), "text/plain");
        assert_eq!(redactor.mask("key=whsec_abc123;"), "key=(secret);");
        let open = Redactor {
            show_secrets: true,
            secrets: vec!["whsec_abc123".into()],
        };
        assert_eq!(
            open.header("authorization", "Bearer whsec_abc123"),
            "Bearer (secret)"
        );
    }
}
