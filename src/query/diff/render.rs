//! A [`Diff`] for people: one section per part that differs, `-` for the first exchange, `+`
//! for the second, `~` for a value that changed in place. Untrusted text is sanitized and long
//! values are cut; with colors off there is no escape code, so snapshots are plain text.

use std::io::{self, Write};

use serde_json::Value;

use super::{BodyDiff, Diff, FormChange, HeaderChange, JsonChange, Status};
use crate::inspect::{sanitize, Palette};

/// Longest value shown, in characters; longer ones end in `…`.
const MAX_VALUE: usize = 120;

/// Writes `diff` between the exchanges named `labels` (e.g. `#12`, `#13`).
pub fn render(
    diff: &Diff,
    labels: [&str; 2],
    palette: &Palette,
    out: &mut impl Write,
) -> io::Result<()> {
    let lines = Lines { palette, out };
    lines.render(diff, labels)
}

struct Lines<'p, W> {
    palette: &'p Palette,
    out: &'p mut W,
}

impl<W: Write> Lines<'_, W> {
    fn render(mut self, diff: &Diff, [a, b]: [&str; 2]) -> io::Result<()> {
        let p = *self.palette;
        writeln!(
            self.out,
            "{}",
            p.server_error.paint(&format!("--- {}", sanitize(a)))
        )?;
        writeln!(self.out, "{}", p.ok.paint(&format!("+++ {}", sanitize(b))))?;
        if diff.is_same() {
            return writeln!(self.out, "{}", p.dim.paint("no differences"));
        }
        if let Some(line) = &diff.request_line {
            self.title("request line")?;
            self.removed(&line.a)?;
            self.added(&line.b)?;
        }
        self.headers("request headers", &diff.request_headers)?;
        self.body("request body", &diff.request_body)?;
        if let Some(status) = &diff.response.status {
            self.title("response status")?;
            self.removed(&status_text(&status.a))?;
            self.added(&status_text(&status.b))?;
        }
        self.headers("response headers", &diff.response.headers)?;
        self.body("response body", &diff.response.body)
    }

    fn title(&mut self, title: &str) -> io::Result<()> {
        writeln!(self.out, "{}", self.palette.method.paint(title))
    }

    fn removed(&mut self, text: &str) -> io::Result<()> {
        let line = format!("  - {}", shorten(text));
        writeln!(self.out, "{}", self.palette.server_error.paint(&line))
    }

    fn added(&mut self, text: &str) -> io::Result<()> {
        let line = format!("  + {}", shorten(text));
        writeln!(self.out, "{}", self.palette.ok.paint(&line))
    }

    fn changed(&mut self, name: &str, a: &str, b: &str) -> io::Result<()> {
        let line = format!("  ~ {name}: {} → {}", shorten(a), shorten(b));
        writeln!(self.out, "{}", self.palette.warning.paint(&line))
    }

    fn headers(&mut self, title: &str, changes: &[HeaderChange]) -> io::Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        self.title(title)?;
        for change in changes {
            match change {
                HeaderChange::Added { name, value } => self.added(&format!("{name}: {value}"))?,
                HeaderChange::Removed { name, value } => {
                    self.removed(&format!("{name}: {value}"))?
                }
                HeaderChange::Changed { name, a, b } => self.changed(&sanitize(name), a, b)?,
            }
        }
        Ok(())
    }

    fn body(&mut self, title: &str, body: &BodyDiff) -> io::Result<()> {
        match body {
            BodyDiff::Same => Ok(()),
            BodyDiff::Json { changes, more } => {
                self.title(&format!("{title} (JSON)"))?;
                changes.iter().try_for_each(|c| self.json(c))?;
                self.more(*more)
            }
            BodyDiff::Form { changes, more } => {
                self.title(&format!("{title} (form)"))?;
                changes.iter().try_for_each(|c| self.form(c))?;
                self.more(*more)
            }
            BodyDiff::Bytes {
                a_len,
                b_len,
                first_difference,
            } => {
                self.title(&format!("{title} (bytes)"))?;
                let line = format!(
                    "  ~ first difference at byte {first_difference}: {} → {}",
                    bytes(*a_len),
                    bytes(*b_len)
                );
                writeln!(self.out, "{}", self.palette.warning.paint(&line))
            }
        }
    }

    fn json(&mut self, change: &JsonChange) -> io::Result<()> {
        let at = |pointer: &str| {
            if pointer.is_empty() {
                "(the document)".to_owned()
            } else {
                sanitize(pointer)
            }
        };
        match change {
            JsonChange::Added { pointer, value } => {
                self.added(&format!("{}: {}", at(pointer), compact(value)))
            }
            JsonChange::Removed { pointer, value } => {
                self.removed(&format!("{}: {}", at(pointer), compact(value)))
            }
            JsonChange::Changed { pointer, a, b } => {
                self.changed(&at(pointer), &compact(a), &compact(b))
            }
        }
    }

    fn form(&mut self, change: &FormChange) -> io::Result<()> {
        let key = sanitize(&change.key);
        match (change.a.is_empty(), change.b.is_empty()) {
            (true, _) => self.added(&format!("{key}: {}", change.b.join(", "))),
            (_, true) => self.removed(&format!("{key}: {}", change.a.join(", "))),
            _ => self.changed(&key, &change.a.join(", "), &change.b.join(", ")),
        }
    }

    fn more(&mut self, more: usize) -> io::Result<()> {
        if more == 0 {
            return Ok(());
        }
        let line = format!("  … {more} more changes");
        writeln!(self.out, "{}", self.palette.dim.paint(&line))
    }
}

fn status_text(status: &Status) -> String {
    match status {
        Status::Code(code) => code.to_string(),
        Status::Error { error } => format!("error: {error}"),
    }
}

fn compact(value: &Value) -> String {
    value.to_string()
}

fn bytes(n: usize) -> String {
    if n == 1 {
        "1 byte".to_owned()
    } else {
        let digits = n.to_string();
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(c);
        }
        format!("{grouped} bytes")
    }
}

/// `text` sanitized and cut to [`MAX_VALUE`] characters.
fn shorten(text: &str) -> String {
    let clean = sanitize(text);
    if clean.chars().count() <= MAX_VALUE {
        return clean;
    }
    let mut short: String = clean.chars().take(MAX_VALUE - 1).collect();
    short.push('…');
    short
}
