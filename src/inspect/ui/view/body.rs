//! One line of a body, made on demand from the body's bytes and index: only the lines on screen
//! are ever sliced, decoded, sanitized and masked, and a value is read no further than the
//! screen is wide (a 25 MiB string costs what its first hundred bytes do).

use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::{clip, theme};
use crate::inspect::sanitize::{group, sanitize, truncate};
use crate::inspect::ui::document::{Body, Folds, Rows, HEX_WIDTH};
use crate::inspect::ui::json_index::{Kind, Span as ByteSpan};
use crate::inspect::Redactor;

/// Deepest indentation drawn, in levels: deeper lines keep this indentation.
const MAX_INDENT: usize = 24;

/// Line `n` of `body` as `rows` shows it, in `width` columns.
pub fn line(
    body: &Body,
    rows: Rows<'_>,
    n: usize,
    folds: &Folds,
    width: usize,
    redactor: &Redactor,
) -> Line<'static> {
    let bytes = &body.bytes[..];
    let text = |from: usize, to: usize| excerpt(bytes, from, to, width, redactor);
    match rows {
        Rows::Empty => Line::raw(""),
        Rows::Json(json) => {
            let Some(line) = json.lines.get(n) else {
                return Line::raw("");
            };
            let indent = " ".repeat(1 + 2 * usize::from(line.depth).min(MAX_INDENT));
            let mut spans = vec![Span::raw(indent)];
            if let Some(key) = line.key {
                spans.push(Span::styled(slice(&text, key), theme::KEY));
                spans.push(Span::raw(": "));
            }
            let value = slice(&text, line.value);
            match line.kind {
                Kind::Scalar => spans.push(Span::styled(value.clone(), scalar_style(&value))),
                Kind::Empty { array } => spans.push(Span::raw(if array { "[]" } else { "{}" })),
                Kind::Open { array, members } if folds.contains(&(n as u32)) => {
                    let (brackets, unit) = if array {
                        ("[…]", "items")
                    } else {
                        ("{…}", "keys")
                    };
                    spans.push(Span::raw(brackets));
                    let unit = if members == 1 {
                        &unit[..unit.len() - 1]
                    } else {
                        unit
                    };
                    spans.push(Span::styled(format!(" {members} {unit}"), theme::DIM));
                    let closing = json.lines.get(line.partner as usize);
                    if closing.is_some_and(|c| c.comma) {
                        spans.push(Span::raw(","));
                    }
                }
                Kind::Open { .. } | Kind::Close => spans.push(Span::raw(value)),
            }
            if line.comma {
                spans.push(Span::raw(","));
            }
            clip(spans, width)
        }
        Rows::Form(fields) => {
            let Some((key, value)) = fields.get(n) else {
                return Line::raw("");
            };
            let pad = fields
                .iter()
                .map(|(k, _)| k.chars().count())
                .max()
                .unwrap_or(0)
                .min(24);
            let key = sanitize(key);
            let spaces = " ".repeat(pad.saturating_sub(key.chars().count()));
            let value = sanitize(&redactor.mask(value));
            clip(
                vec![
                    Span::raw(" "),
                    Span::styled(key, theme::KEY),
                    Span::raw(format!("{spaces} = {value}")),
                ],
                width,
            )
        }
        Rows::Text(starts) => {
            let from = starts.get(n).map_or(bytes.len(), |&s| s as usize);
            let to = starts.get(n + 1).map_or(bytes.len(), |&s| s as usize);
            let end = bytes[from..to]
                .iter()
                .rposition(|b| !matches!(b, b'\n' | b'\r'))
                .map_or(from, |last| from + last + 1);
            Line::raw(format!(" {}", text(from, end)))
        }
        Rows::Hex(_) => hex(bytes, n),
        Rows::Binary => Line::styled(
            format!(
                " (binary body, {} bytes, {}: v shows it in hex)",
                group(bytes.len()),
                if body.content_type.is_empty() {
                    "no content type".to_owned()
                } else {
                    sanitize(&body.content_type)
                }
            ),
            theme::DIM,
        ),
    }
}

/// The text of `span` through `text`.
fn slice(text: &impl Fn(usize, usize) -> String, span: ByteSpan) -> String {
    text(span.start as usize, span.end as usize)
}

/// `bytes[from..to]` as it may be shown in `width` columns: no more of it read than fits
/// (plus room for a secret to be recognised across the cut), decoded, masked, sanitized, cut.
fn excerpt(bytes: &[u8], from: usize, to: usize, width: usize, redactor: &Redactor) -> String {
    let longest_secret = redactor.secrets.iter().map(String::len).max().unwrap_or(0);
    let limit = from + (width * 4 + longest_secret).min(to - from);
    let cut = limit < to;
    let text = String::from_utf8_lossy(&bytes[from..limit]);
    let mut text = sanitize(&redactor.mask(&text));
    if cut {
        // The screen ends before the value does.
        text.push('…');
    }
    truncate(&text, width)
}

fn scalar_style(text: &str) -> Style {
    match text.as_bytes().first() {
        Some(b'"') => theme::STRING,
        Some(b'-' | b'0'..=b'9') => theme::NUMBER,
        Some(b't' | b'f' | b'n') => theme::LITERAL,
        _ => Style::new(),
    }
}

/// Hex line `n`: offset, bytes, and the printable ones.
fn hex(bytes: &[u8], n: usize) -> Line<'static> {
    let from = (n * HEX_WIDTH).min(bytes.len());
    let chunk = &bytes[from..(from + HEX_WIDTH).min(bytes.len())];
    let mut hex = String::with_capacity(HEX_WIDTH * 3 + 1);
    for (i, b) in chunk.iter().enumerate() {
        if i == HEX_WIDTH / 2 {
            hex.push(' ');
        }
        hex.push_str(&format!("{b:02x} "));
    }
    let text: String = chunk
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    Line::from(vec![
        Span::styled(format!(" {from:08x}  "), theme::DIM),
        Span::raw(format!("{hex:49}")),
        Span::styled(format!("|{text}|"), theme::DIM),
    ])
}
