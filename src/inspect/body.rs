//! Bodies for people: JSON pretty-printed and colored, forms as a key/value table, text as is,
//! binary as one line; everything sanitized, masked, and cut at `--max-body-lines`.

use std::fmt::Write as _;

use serde_json::Value;

use super::palette::Palette;
use super::redact::Redactor;
use super::sanitize::{group, sanitize};

/// How to show bodies.
#[derive(Debug, Clone, Default)]
pub struct BodyStyle {
    /// Most lines of a body shown; 0 shows all.
    pub max_lines: usize,
    /// Colors.
    pub palette: Palette,
    /// What to hide.
    pub redactor: Redactor,
}

/// The lines showing `body` of type `content_type` (without a trailing newline each).
pub fn lines(body: &[u8], content_type: Option<&str>, style: &BodyStyle) -> Vec<String> {
    if body.is_empty() {
        return Vec::new();
    }
    let content_type = content_type.unwrap_or("").to_ascii_lowercase();
    // JSON first: many clients (curl -d) label JSON bodies as forms.
    let mut lines = if let Some(json) = as_json(body, &content_type) {
        let mut out = String::new();
        pretty(&mut out, &json, 0, &style.palette);
        out.lines().map(|l| style.redactor.mask(l)).collect()
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        form(body, style)
    } else if let Some(text) = as_text(body, &content_type) {
        text.lines()
            .map(|l| sanitize(&style.redactor.mask(l)))
            .collect()
    } else {
        let kind = if content_type.is_empty() {
            "no content type".to_owned()
        } else {
            sanitize(&content_type)
        };
        vec![style.palette.dim.paint(&format!(
            "(binary body, {} bytes, {kind})",
            group(body.len())
        ))]
    };
    if style.max_lines > 0 && lines.len() > style.max_lines {
        let more = lines.len() - style.max_lines;
        lines.truncate(style.max_lines);
        lines.push(style.palette.dim.paint(&format!(
            "… {} more lines (--max-body-lines 0 shows all)",
            group(more)
        )));
    }
    lines
}

fn as_json(body: &[u8], content_type: &str) -> Option<Value> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    let looks = content_type.contains("json") || matches!(first, b'{' | b'[');
    looks.then(|| serde_json::from_slice(body).ok()).flatten()
}

pub(crate) fn as_text<'a>(body: &'a [u8], content_type: &str) -> Option<&'a str> {
    let binary_type = [
        "image/",
        "audio/",
        "video/",
        "application/octet-stream",
        "application/pdf",
        "application/zip",
    ]
    .iter()
    .any(|t| content_type.starts_with(t));
    let text = std::str::from_utf8(body).ok()?;
    let controls = text
        .chars()
        .filter(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\x1b'))
        .count();
    // A few stray control characters are escaped; a body full of them is binary.
    (!binary_type && !text.contains('\0') && controls * 10 <= text.len()).then_some(text)
}

fn form(body: &[u8], style: &BodyStyle) -> Vec<String> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(body)
        .map(|(k, v)| (sanitize(&k), sanitize(&style.redactor.mask(&v))))
        .collect();
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        .min(24);
    pairs
        .into_iter()
        .map(|(k, v)| {
            let pad = width.saturating_sub(k.chars().count());
            format!(
                "{}{} = {v}",
                style.palette.json_key.paint(&k),
                " ".repeat(pad)
            )
        })
        .collect()
}

/// Pretty JSON, two spaces per level, keys in their original order.
fn pretty(out: &mut String, value: &Value, depth: usize, p: &Palette) {
    let indent = "  ".repeat(depth + 1);
    let close = "  ".repeat(depth);
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push_str("{\n");
            for (i, (key, value)) in map.iter().enumerate() {
                let _ = write!(out, "{indent}{}: ", p.json_key.paint(&quoted(key)));
                pretty(out, value, depth + 1, p);
                out.push_str(if i + 1 < map.len() { ",\n" } else { "\n" });
            }
            let _ = write!(out, "{close}}}");
        }
        Value::Array(items) if !items.is_empty() => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                out.push_str(&indent);
                pretty(out, item, depth + 1, p);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            let _ = write!(out, "{close}]");
        }
        Value::Object(_) => out.push_str("{}"),
        Value::Array(_) => out.push_str("[]"),
        Value::String(s) => out.push_str(&p.json_string.paint(&quoted(s))),
        Value::Number(n) => out.push_str(&p.json_number.paint(&n.to_string())),
        Value::Bool(_) | Value::Null => out.push_str(&p.json_literal.paint(&value.to_string())),
    }
}

/// A JSON string literal; serde escapes C0 controls, `sanitize` the C1 ones it leaves.
fn quoted(text: &str) -> String {
    sanitize(&serde_json::to_string(text).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(max_lines: usize) -> BodyStyle {
        BodyStyle {
            max_lines,
            ..BodyStyle::default()
        }
    }

    #[test]
    fn json_is_pretty_and_cut() {
        let lines = lines(
            br#"{"a":[1,2],"b":{"c":"\u001b[2J"}}"#,
            Some("application/json"),
            &plain(4),
        );
        assert_eq!(
            lines,
            [
                "{",
                "  \"a\": [",
                "    1,",
                "    2",
                "… 5 more lines (--max-body-lines 0 shows all)"
            ]
        );
    }

    #[test]
    fn forms_become_a_table_and_binary_one_line() {
        let form = lines(
            b"To=%2B1555&Body=hi+there",
            Some("application/x-www-form-urlencoded"),
            &plain(0),
        );
        assert_eq!(form, ["To   = +1555", "Body = hi there"]);
        let binary = lines(&[0, 159, 146, 150], Some("image/png"), &plain(0));
        assert_eq!(binary, ["(binary body, 4 bytes, image/png)"]);
        assert_eq!(group(1_234_567), "1,234,567");
    }

    #[test]
    fn escape_sequences_in_text_are_neutralised() {
        let text = lines(b"hello \x1b[2J\x07 world", Some("text/plain"), &plain(0));
        assert_eq!(text, ["hello \\u{1b}[2J\\u{7} world"]);
    }
}
