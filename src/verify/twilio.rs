//! Twilio: `X-Twilio-Signature`, the base64 HMAC-SHA1 (keyed with the auth token) of the full URL
//! followed by every POST parameter's name and value, sorted by name (twilio-python
//! `RequestValidator`). Parameters are the form-decoded values; repeated names contribute each
//! distinct value, sorted. A JSON body is covered instead by `bodySHA256=<hex sha256>` in the
//! URL's query, and the HMAC then covers the URL alone. Like the SDK, the URL is tried both without
//! its port and with the scheme's default port. No timestamp.

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::event::{Input, Recognized};
use super::mac::{self, Alg};
use super::provider::Provider;
use super::secret::Secret;
use super::{header, NoMatch, Signed, Stamp, VerifyInput};

const HEADER: &str = "X-Twilio-Signature";
const BODY_HASH_PARAM: &str = "bodySHA256";

pub(super) fn verify(input: &VerifyInput<'_>, secrets: &[Secret]) -> Result<Stamp, NoMatch> {
    let tag = mac::base64_tag(Alg::Sha1, input.signature(HEADER)?).map_err(NoMatch::malformed)?;
    if secrets.is_empty() {
        return Err(NoMatch::Unusable(String::new()));
    }
    let body_hash = query_param(input.url, BODY_HASH_PARAM);
    let params = if body_hash.is_some() {
        String::new()
    } else {
        signed_params(input)
    };
    let urls = url_variants(input.url);
    let matched = secrets.iter().any(|secret| {
        urls.iter().any(|url| {
            let mac = mac::hmac(
                Alg::Sha1,
                secret.expose().as_bytes(),
                &[url.as_bytes(), params.as_bytes()],
            );
            mac::matches_any(&mac, std::slice::from_ref(&tag))
        })
    });
    if !matched {
        return Err(NoMatch::Invalid(format!(
            "signature does not match {}: wrong auth token, or not the URL Twilio called (give it with --url; Twilio signs it exactly, query included)",
            mac::quote(input.url)
        )));
    }
    if let Some(expected) = body_hash {
        let actual = Sha256::digest(input.body);
        let expected = hex::decode(expected.trim()).unwrap_or_default();
        if !bool::from(actual[..].ct_eq(&expected)) {
            return Err(NoMatch::Invalid(
                "body differs from what was signed: its SHA-256 is not the bodySHA256 in the URL (was it parsed and re-serialised?)".into(),
            ));
        }
    }
    Ok(Stamp::None)
}

/// Names and values of a form body, decoded, sorted and concatenated as Twilio signs them;
/// empty for any other body.
fn signed_params(input: &VerifyInput<'_>) -> String {
    let is_form = input.optional("Content-Type").is_some_and(|ct| {
        ct.trim()
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    if !is_form {
        return String::new();
    }
    let mut pairs = parse_form(input.body);
    pairs.sort();
    pairs.dedup();
    pairs
        .into_iter()
        .map(|(name, value)| name + &value)
        .collect()
}

/// `a=1&b=%2B+x` → `[("a", "1"), ("b", "+ x")]`.
pub(super) fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    body.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &b""[..]),
            };
            (form_decode(name), form_decode(value))
        })
        .collect()
}

fn form_decode(text: &[u8]) -> String {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of query parameter `name` in `url`, if any.
fn query_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let query = url.split('#').next()?.split_once('?')?.1;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The URL without its port and with the scheme's default port (the SDK accepts either);
/// one of them is the URL as given.
fn url_variants(url: &str) -> Vec<String> {
    let Some((scheme, after)) = url.split_once("://") else {
        return vec![url.to_owned()];
    };
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let (host, port) = split_port(authority);
    let without = format!("{scheme}://{host}{rest}");
    let with = match (port, scheme.to_ascii_lowercase().as_str()) {
        (Some(_), _) => url.to_owned(),
        (None, "https") => format!("{scheme}://{host}:443{rest}"),
        (None, "http") => format!("{scheme}://{host}:80{rest}"),
        (None, _) => url.to_owned(),
    };
    let mut variants = vec![without, with];
    variants.dedup();
    variants
}

/// `host:8080` → (`host`, Some(`8080`)); IPv6 literals keep their colons.
fn split_port(authority: &str) -> (&str, Option<&str>) {
    if let Some((host, port)) = authority.rsplit_once(':') {
        let is_port = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
        // In `[::1]:8443` the port follows the bracket; in `[::1]` the colons are the address.
        let inside_brackets = host.contains('[') && !host.ends_with(']');
        if is_port && !inside_brackets {
            return (host, Some(port));
        }
    }
    (authority, None)
}

/// The signature of `input.url` and, for a form body without `bodySHA256`, its parameters.
pub(super) fn sign(secret: &Secret, input: &VerifyInput<'_>) -> Signed {
    let params = if query_param(input.url, BODY_HASH_PARAM).is_some() {
        String::new()
    } else {
        signed_params(input)
    };
    let tag = mac::hmac(
        Alg::Sha1,
        secret.expose().as_bytes(),
        &[input.url.as_bytes(), params.as_bytes()],
    );
    Signed {
        headers: vec![header(HEADER, mac::to_base64(&tag))],
        body: None,
    }
}

/// The Twilio event in a request, if it is one.
pub(super) fn recognize(i: &Input<'_>) -> Option<Recognized> {
    if !i.has("x-twilio-signature") && i.form("AccountSid").is_none() {
        return None;
    }
    let status = |key: &str, kind: &str| i.form(key).map(|s| format!("{kind}.{s}"));
    let event_type = status("MessageStatus", "message")
        .or_else(|| status("SmsStatus", "message"))
        .or_else(|| status("CallStatus", "call"))
        .or_else(|| i.form("Body").map(|_| "message.incoming".to_owned()));
    Some(Recognized {
        provider: Provider::Twilio,
        event_type,
        event_id: i
            .form("MessageSid")
            .or_else(|| i.form("SmsSid"))
            .or_else(|| i.form("CallSid")),
        occurred_at: None,
        object_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_like_a_browser_sent_them() {
        assert_eq!(
            parse_form(b"From=%2B1415&Body=hi+there&Empty=&Flag&&Bad=%zz%4"),
            vec![
                ("From".into(), "+1415".into()),
                ("Body".into(), "hi there".into()),
                ("Empty".into(), String::new()),
                ("Flag".into(), String::new()),
                ("Bad".into(), "%zz%4".into()),
            ]
        );
    }

    #[test]
    fn urls_are_tried_with_and_without_their_port() {
        assert_eq!(
            url_variants("https://a.com/x?y=1"),
            vec!["https://a.com/x?y=1", "https://a.com:443/x?y=1"]
        );
        assert_eq!(
            url_variants("http://a.com:1234/x"),
            vec!["http://a.com/x", "http://a.com:1234/x"]
        );
        assert_eq!(
            url_variants("https://[::1]:8443/x"),
            vec!["https://[::1]/x", "https://[::1]:8443/x"]
        );
        assert_eq!(url_variants("/relative"), vec!["/relative"]);
    }

    #[test]
    fn query_parameters_are_found_before_the_fragment() {
        let url = "https://a.com/x?foo=1&bodySHA256=abc#bodySHA256=def";
        assert_eq!(query_param(url, "bodySHA256"), Some("abc"));
        assert_eq!(
            query_param("https://a.com/x#?bodySHA256=1", "bodySHA256"),
            None
        );
    }
}
