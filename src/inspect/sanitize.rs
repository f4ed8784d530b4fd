//! What untrusted text may look like on a terminal: the one place that decides which characters
//! are escaped and how long a line may be. Payloads, headers, and everything a relay sends
//! (its hello's URL, close reasons, refusals) go through here before they are printed.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;

/// Longest line of human output, in characters: a longer one is cut with a note saying how much
/// was left out, so one huge line (a 25 MiB body without a newline, a relay's 256 KiB refusal)
/// cannot flood the terminal. `--json`, `hooks show --json` and `hooks export` keep everything.
pub const MAX_LINE_CHARS: usize = 4096;

/// Whether `c` must not reach a terminal as itself: control characters (C0, DEL, C1), which
/// move the cursor, retitle the window or write the clipboard (OSC 52); bidirectional
/// overrides and isolates, which make text read differently from what it is (U+202A–202E,
/// U+2066–2069, U+061C, and the marks U+200E/200F); and characters that are invisible (the
/// zero-width U+200B–200D, U+2060–2064, U+FEFF, and the line and paragraph separators
/// U+2028/2029), which hide differences between two strings.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// `text` with every [`is_unsafe`] character replaced by a visible escape (`\u{1b}`), so an
/// untrusted payload can never move the cursor, clear the screen, ring the bell or reorder text.
pub fn sanitize(text: &str) -> String {
    if !text.chars().any(is_unsafe) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_unsafe(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// A message of several lines (an error with its causes) for the terminal: each line
/// [`sanitize`]d and [`cut_line`], the line breaks kept.
pub fn sanitize_lines(text: &str) -> String {
    text.split('\n')
        .map(|line| cut_line(&sanitize(line.strip_suffix('\r').unwrap_or(line))).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `line` cut after [`MAX_LINE_CHARS`] characters, with a note of how many more there were.
/// The line may hold hooks' own color codes (`ESC [ … m`; untrusted text has been
/// [`sanitize`]d): they are not counted, and a cut line ends with a reset.
pub fn cut_line(line: &str) -> Cow<'_, str> {
    // No character takes less than a byte.
    if line.len() <= MAX_LINE_CHARS {
        return Cow::Borrowed(line);
    }
    let mut shown = 0usize;
    let mut cut_at = None;
    let mut left = 0usize;
    let mut styled = false;
    let mut chars = line.char_indices();
    while let Some((at, c)) = chars.next() {
        if c == '\x1b' {
            styled = true;
            // The rest of the color code, through its final `m`.
            chars.by_ref().find(|&(_, c)| c == 'm');
            continue;
        }
        if shown < MAX_LINE_CHARS {
            shown += 1;
        } else {
            cut_at.get_or_insert(at);
            left += 1;
        }
    }
    let Some(cut_at) = cut_at else {
        return Cow::Borrowed(line);
    };
    let reset = if styled { "\x1b[0m" } else { "" };
    Cow::Owned(format!(
        "{}{reset}… ({} more characters)",
        &line[..cut_at],
        group(left)
    ))
}

/// `1234567` → `1,234,567`.
pub fn group(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `text` cut to at most `max` characters, the last of them `…` when it was longer.
pub fn truncate(text: &str, max: usize) -> String {
    if max == 0 {
        return String::new();
    }
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

/// A JSON formatter that also escapes what serde_json writes as is: DEL, the C1 controls
/// (U+0080–009F, which some terminals obey like their ESC-prefixed forms) and the other
/// [`is_unsafe`] characters, as `\uXXXX`. The JSON means the same; a terminal that shows it
/// is safe.
#[derive(Debug, Clone, Copy, Default)]
pub struct SafeJson;

impl serde_json::ser::Formatter for SafeJson {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // Nearly every fragment is plain ASCII.
        if fragment.bytes().all(|b| b < 0x7f) {
            return writer.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (at, c) in fragment.char_indices() {
            if is_unsafe(c) {
                writer.write_all(&fragment.as_bytes()[start..at])?;
                // Every unsafe character is in the Basic Multilingual Plane: one `\uXXXX`.
                write!(writer, "\\u{:04x}", c as u32)?;
                start = at + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Writes `value` as one line of JSON with [`SafeJson`] escapes (no newline).
pub fn write_json<W: io::Write, T: serde::Serialize + ?Sized>(
    writer: W,
    value: &T,
) -> serde_json::Result<()> {
    let mut serializer = serde_json::Serializer::with_formatter(writer, SafeJson);
    value.serialize(&mut serializer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(sanitize("a\x1b[2Jb\x07\u{9b}"), "a\\u{1b}[2Jb\\u{7}\\u{9b}");
        assert_eq!(
            sanitize("\x1b]52;c;aGk=\x07"),
            "\\u{1b}]52;c;aGk=\\u{7}",
            "OSC 52 writes the clipboard"
        );
    }

    #[test]
    fn bidi_and_invisible_characters_are_escaped() {
        let text = "a\u{202E}b\u{2066}c\u{200B}d\u{061C}e\u{200F}f\u{2069}g\u{FEFF}h\u{2028}";
        assert_eq!(
            sanitize(text),
            "a\\u{202e}b\\u{2066}c\\u{200b}d\\u{61c}e\\u{200f}f\\u{2069}g\\u{feff}h\\u{2028}"
        );
        assert_eq!(
            sanitize("café ✓ 日本 →"),
            "café ✓ 日本 →",
            "other text stays"
        );
    }

    #[test]
    fn long_lines_are_cut_with_a_note() {
        let line = "x".repeat(MAX_LINE_CHARS + 1234);
        let cut = cut_line(&line);
        assert_eq!(
            cut,
            format!("{}… (1,234 more characters)", "x".repeat(MAX_LINE_CHARS))
        );
        let exact = "é".repeat(MAX_LINE_CHARS);
        assert_eq!(cut_line(&exact), exact, "characters, not bytes");
    }

    #[test]
    fn color_codes_do_not_count_and_a_cut_line_is_reset() {
        let line = format!("\x1b[32m{}\x1b[0m", "y".repeat(MAX_LINE_CHARS + 1));
        let cut = cut_line(&line);
        assert_eq!(
            cut,
            format!(
                "\x1b[32m{}\x1b[0m… (1 more characters)",
                "y".repeat(MAX_LINE_CHARS)
            )
        );
        let fits = format!("\x1b[32m{}\x1b[0m", "y".repeat(MAX_LINE_CHARS));
        assert_eq!(cut_line(&fits), fits);
    }

    #[test]
    fn messages_keep_their_line_breaks() {
        assert_eq!(
            sanitize_lines("first\x1b[2J\nsecond\u{202E}\r\n"),
            "first\\u{1b}[2J\nsecond\\u{202e}\n"
        );
    }

    #[test]
    fn json_escapes_c1_bidi_and_invisible_characters() {
        let value =
            serde_json::json!({"s": "a\u{9d}52;c;x\u{9c}b\u{7f}c\u{202e}d\x1be\"f\u{1F600}"});
        let mut plain = Vec::new();
        serde_json::to_writer(&mut plain, &value).unwrap();
        assert!(
            String::from_utf8(plain).unwrap().contains('\u{9d}'),
            "serde_json leaves C1 controls as they are"
        );
        let mut out = Vec::new();
        write_json(&mut out, &value).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            r#"{"s":"a\u009d52;c;x\u009cb\u007fc\u202ed\u001be\"f😀"}"#
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value, "the same JSON");
    }
}
