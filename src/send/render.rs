//! Placeholders: `{{now}}`, `{{id:evt_}}`, `{{event_uuid}}`, … replaced by fresh values when an
//! event is rendered, the same value wherever the same placeholder repeats in one event.
//!
//! Grammar: `{{KIND}}`, `{{KIND:ARG}}`, and either with `#LABEL` at the end to ask for a value
//! of its own (`{{digits:9#repo}}` and `{{digits:9#owner}}` differ). Kinds that start with
//! `event_` name the event and its delivery: a retry (`--duplicate`) keeps them, and so does
//! every other value; the second event of `--out-of-order` gets new ones but keeps the rest, so
//! it is about the same object.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest `hex`/`digits` value a placeholder may ask for.
const MAX_RANDOM_LEN: usize = 256;

/// Random characters after an `id:` prefix, like a Stripe or Svix id.
const ID_LEN: usize = 24;

/// The values of one event's placeholders, made as they are first met.
#[derive(Debug, Clone, Default)]
pub struct Values {
    made: HashMap<String, String>,
}

impl Values {
    /// Values for a new event: nothing made yet.
    pub fn fresh() -> Values {
        Values::default()
    }

    /// Values for another event about the same object: everything but the `event_` kinds.
    pub fn same_object(&self) -> Values {
        let made = self
            .made
            .iter()
            .filter(|(key, _)| !key.starts_with("event_"))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        Values { made }
    }
}

/// A placeholder that cannot be rendered; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlaceholderError(String);

/// `text` with every placeholder replaced; times come from `at`.
pub fn render(text: &str, values: &mut Values, at: SystemTime) -> Result<String, PlaceholderError> {
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| {
            PlaceholderError(format!(
                "unclosed placeholder {:?}",
                preview(&rest[start..])
            ))
        })?;
        out.push_str(&value(after[..end].trim(), values, at)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Checks every placeholder in `text` without keeping the values (for loading templates).
pub fn check(text: &str) -> Result<(), PlaceholderError> {
    render(text, &mut Values::fresh(), UNIX_EPOCH).map(|_| ())
}

fn preview(text: &str) -> String {
    text.chars().take(30).collect()
}

/// The value of one placeholder, `inner` being what is between the braces.
fn value(inner: &str, values: &mut Values, at: SystemTime) -> Result<String, PlaceholderError> {
    if let Some(time) = time_value(inner, at) {
        return Ok(time);
    }
    if inner == "braces" {
        return Ok("{{".to_owned());
    }
    if let Some(made) = values.made.get(inner) {
        return Ok(made.clone());
    }
    let spec = inner.split_once('#').map_or(inner, |(spec, _)| spec);
    let (kind, arg) = match spec.split_once(':') {
        Some((kind, arg)) => (kind, Some(arg)),
        None => (spec, None),
    };
    let made = generate(kind.strip_prefix("event_").unwrap_or(kind), arg)
        .map_err(|why| PlaceholderError(format!("placeholder {{{{{inner}}}}}: {why}")))?;
    values.made.insert(inner.to_owned(), made.clone());
    Ok(made)
}

/// The time placeholders, from `at`, moved by an offset when one follows (`now_iso-30d`).
fn time_value(name: &str, at: SystemTime) -> Option<String> {
    let (base, offset) = match name.find(['+', '-']) {
        Some(i) => (&name[..i], Some(&name[i..])),
        None => (name, None),
    };
    if !matches!(base, "now" | "now_ms" | "now_iso" | "now_iso_ms") {
        return None;
    }
    let at = match offset {
        None => at,
        Some(offset) => shift(at, offset)?,
    };
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let timestamp = jiff::Timestamp::try_from(at).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    Some(match base {
        "now" => since.as_secs().to_string(),
        "now_ms" => since.as_millis().to_string(),
        "now_iso" => timestamp.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        _ => timestamp.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    })
}

/// `at` moved by `offset`: a sign, a number and a unit (`s`, `m`, `h`, `d`), e.g. `+30d`.
fn shift(at: SystemTime, offset: &str) -> Option<SystemTime> {
    let (sign, rest) = offset.split_at(1);
    let unit = match rest.chars().last()? {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    let number: u64 = rest[..rest.len() - 1].parse().ok()?;
    let by = std::time::Duration::from_secs(number.checked_mul(unit)?);
    match sign {
        "+" => at.checked_add(by),
        _ => at.checked_sub(by),
    }
}

/// A new random value of `kind` (without its `event_` prefix).
fn generate(kind: &str, arg: Option<&str>) -> Result<String, String> {
    let length = |arg: Option<&str>| -> Result<usize, String> {
        match arg.map(str::parse::<usize>) {
            Some(Ok(n)) if (1..=MAX_RANDOM_LEN).contains(&n) => Ok(n),
            _ => Err(format!(
                "give a length from 1 to {MAX_RANDOM_LEN}, e.g. {kind}:12"
            )),
        }
    };
    match kind {
        "id" => Ok(format!(
            "{}{}",
            arg.unwrap_or_default(),
            random_chars(ID_LEN, ALNUM)
        )),
        "uuid" if arg.is_none() => Ok(uuid()),
        "hex" => Ok(random_chars(length(arg)?, HEX)),
        "digits" => {
            let n = length(arg)?;
            Ok(format!(
                "{}{}",
                random_chars(1, &DIGITS[1..]),
                random_chars(n - 1, DIGITS)
            ))
        }
        "uuid" => Err("uuid takes no argument (use #LABEL for another value)".into()),
        _ => Err(
            "unknown placeholder; expected now, now_ms, now_iso, now_iso_ms (each with an \
                  offset like +30d or -5m if needed), id:PREFIX, uuid, hex:N, digits:N (or \
                  event_id, event_uuid, event_hex, event_digits), braces"
                .into(),
        ),
    }
}

const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const HEX: &[u8] = b"0123456789abcdef";
const DIGITS: &[u8] = b"0123456789";

/// `n` characters drawn uniformly from `alphabet` (fewer than 256 characters).
fn random_chars(n: usize, alphabet: &[u8]) -> String {
    // Bytes past the largest multiple of the alphabet's size are skipped, so no character is
    // more likely than another.
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        fill(&mut buf);
        for &byte in buf.iter().filter(|&&b| usize::from(b) < limit) {
            if out.len() == n {
                break;
            }
            out.push(char::from(alphabet[usize::from(byte) % alphabet.len()]));
        }
    }
    out
}

/// A random (version 4) UUID, lowercase.
fn uuid() -> String {
    let mut bytes = [0u8; 16];
    fill(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn fill(buf: &mut [u8]) {
    // Without an OS random source the ids repeat; they are made-up test data, not secrets, and
    // the clock keeps them apart.
    if getrandom::fill(buf).is_err() {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        for (i, byte) in buf.iter_mut().enumerate() {
            *byte = (nanos >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_767_323_045_678)
    }

    #[test]
    fn times_come_from_one_instant() {
        let text = "{{now}} {{now_ms}} {{now_iso}} {{ now_iso_ms }}";
        let out = render(text, &mut Values::fresh(), at()).unwrap();
        assert_eq!(
            out,
            "1767323045 1767323045678 2026-01-02T03:04:05Z 2026-01-02T03:04:05.678Z"
        );
    }

    #[test]
    fn times_can_be_moved() {
        let text = "{{now+1m}} {{now_iso-1d}} {{now_ms+2s}}";
        let out = render(text, &mut Values::fresh(), at()).unwrap();
        assert_eq!(out, "1767323105 2026-01-01T03:04:05Z 1767323047678");
        let err = render("{{now+1y}}", &mut Values::fresh(), at()).unwrap_err();
        assert!(err.0.contains("unknown placeholder"), "{err}");
    }

    #[test]
    fn a_placeholder_repeated_has_one_value_and_labels_make_others() {
        let mut values = Values::fresh();
        let text = "{{id:evt_}} {{id:evt_}} {{id:evt_#2}} {{uuid}} {{uuid}} {{digits:9}}";
        let out = render(text, &mut values, at()).unwrap();
        let parts: Vec<&str> = out.split(' ').collect();
        assert_eq!(parts[0], parts[1]);
        assert_ne!(parts[0], parts[2]);
        assert!(parts[0].starts_with("evt_") && parts[0].len() == 4 + ID_LEN);
        assert!(parts[0][4..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(parts[3], parts[4]);
        assert_eq!(parts[3].len(), 36);
        assert_eq!(&parts[3][14..15], "4", "version 4: {}", parts[3]);
        assert_eq!(parts[5].len(), 9);
        assert!(!parts[5].starts_with('0'));
        let again = render(text, &mut Values::fresh(), at()).unwrap();
        assert_ne!(out, again, "fresh values for a new event");
    }

    #[test]
    fn the_same_object_keeps_all_but_the_event_values() {
        let mut first = Values::fresh();
        let text = "{{event_id:evt_}} {{id:sub_}} {{event_uuid}} {{hex:8}}";
        let one = render(text, &mut first, at()).unwrap();
        let two = render(text, &mut first.same_object(), at()).unwrap();
        let one: Vec<&str> = one.split(' ').collect();
        let two: Vec<&str> = two.split(' ').collect();
        assert_ne!(one[0], two[0]);
        assert_eq!(one[1], two[1]);
        assert_ne!(one[2], two[2]);
        assert_eq!(one[3], two[3]);
        let retry = render(text, &mut first.clone(), at()).unwrap();
        assert_eq!(retry, one.join(" "));
    }

    #[test]
    fn mistakes_are_named() {
        let err = |text: &str| render(text, &mut Values::fresh(), at()).unwrap_err().0;
        assert!(err("{{nope}}").starts_with("placeholder {{nope}}: unknown placeholder"));
        assert!(err("{{hex}}").contains("give a length from 1 to 256"));
        assert!(err("{{digits:0}}").contains("give a length"));
        assert!(err("a {{now").starts_with("unclosed placeholder \"{{now\""));
        assert_eq!(
            render("{{braces}}x}}", &mut Values::fresh(), at()).unwrap(),
            "{{x}}"
        );
        assert!(check("plain } text { here").is_ok());
    }
}
