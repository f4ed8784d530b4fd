//! Peer input in the relay's own words: whatever a sender or a CLI sent is quoted short and with
//! its control characters escaped, so that a log line or a refusal stays one short line however
//! much a peer sends (issue 17: a 250 KB channel name made a 250 KB log line).

use std::fmt::Write as _;

/// Most characters of one piece of peer input that the relay quotes.
pub(crate) const QUOTE_LEN: usize = 64;

/// Most characters of a message that embeds peer input it does not delimit, such as a decoder's
/// error ("unknown variant `…`").
pub(crate) const EXCERPT_LEN: usize = 160;

/// `text` in double quotes as Rust's `Debug` writes it (control, bidi and other invisible
/// characters escaped), cut after [`QUOTE_LEN`] characters with its full length in bytes.
pub(crate) fn quote(text: &str) -> String {
    let (shown, cut) = escaped(text, QUOTE_LEN);
    match cut {
        false => format!("\"{shown}\""),
        true => format!("\"{shown}…\" ({} bytes)", text.len()),
    }
}

/// `text` with its control characters escaped, cut after [`EXCERPT_LEN`] characters.
pub(crate) fn excerpt(text: &str) -> String {
    let (shown, cut) = escaped(text, EXCERPT_LEN);
    match cut {
        false => shown,
        true => format!("{shown}… ({} bytes)", text.len()),
    }
}

/// The first `max` characters of `text`, escaped as `Debug` escapes them inside a string, and
/// whether any were left out.
fn escaped(text: &str, max: usize) -> (String, bool) {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == max {
            return (out, true);
        }
        // `escape_debug` escapes double quotes and backslashes too, so a quote cannot be closed
        // early; a single quote needs no escape inside a string.
        match c {
            '\'' => out.push(c),
            _ => {
                let _ = write!(out, "{}", c.escape_debug());
            }
        }
    }
    (out, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_quoted_whole_with_controls_escaped() {
        assert_eq!(quote("team-x"), "\"team-x\"");
        assert_eq!(quote("a\u{1b}[2J\"b\\\n"), r#""a\u{1b}[2J\"b\\\n""#);
        assert_eq!(quote("\u{202e}evil"), r#""\u{202e}evil""#);
        assert_eq!(quote("it's"), "\"it's\"");
    }

    #[test]
    fn long_text_is_cut_and_its_length_given() {
        let long = "x".repeat(250_000);
        let quoted = quote(&long);
        assert_eq!(
            quoted,
            format!("\"{}…\" (250000 bytes)", "x".repeat(QUOTE_LEN))
        );
        let message = excerpt(&format!("unknown variant `{long}`"));
        assert!(message.len() < EXCERPT_LEN + 40, "{message}");
        assert!(message.ends_with("… (250018 bytes)"), "{message}");
    }
}
