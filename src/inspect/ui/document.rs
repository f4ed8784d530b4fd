//! A body as the detail view shows it, in one of three modes: a tree (JSON, folding; forms as a
//! table), raw text, or hex. Indexed once when the capture is loaded (off the UI thread), so
//! that moving through it is a step from one line to the next, whatever the body's size; only
//! the lines on screen are ever turned into text (see `view::body`).

use std::collections::HashSet;

use bytes::Bytes;

use super::json_index::{JsonIndex, Kind};
use crate::inspect::body::as_text;

/// Most form fields shown as a table; a larger form is shown as text.
const MAX_FORM_FIELDS: usize = 10_000;

/// How a body is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// JSON as a foldable tree, a form as a table of fields.
    Tree,
    /// The text as it is, line by line.
    Raw,
    /// Offsets, bytes in hex, and the printable ones as text.
    Hex,
}

impl Mode {
    /// Its name, as the detail view's tab bar shows it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Tree => "tree",
            Mode::Raw => "raw",
            Mode::Hex => "hex",
        }
    }
}

/// Bytes per line in [`Mode::Hex`].
pub const HEX_WIDTH: usize = 16;

/// A body, indexed for display.
#[derive(Debug, Clone, Default)]
pub struct Body {
    /// The bytes.
    pub bytes: Bytes,
    /// Its `content-type`, lowercase (empty when none).
    pub content_type: String,
    /// Its lines as pretty JSON, when it is a JSON document.
    pub json: Option<JsonIndex>,
    /// Its fields, decoded, when it is a form (`application/x-www-form-urlencoded`).
    pub form: Option<Vec<(String, String)>>,
    /// Where each line starts, when it is text.
    pub text: Option<Vec<u32>>,
}

impl Body {
    /// `bytes`, labelled `content_type`, indexed. JSON is recognised as `hooks listen` does:
    /// labelled so, or starting like an object or array (many clients label JSON as a form).
    pub fn new(bytes: Bytes, content_type: Option<&str>) -> Body {
        let content_type = content_type.unwrap_or("").to_ascii_lowercase();
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        let looks_json = content_type.contains("json") || matches!(first, Some(b'{' | b'['));
        let json = looks_json.then(|| JsonIndex::build(&bytes)).flatten();
        let form = (json.is_none()
            && content_type.starts_with("application/x-www-form-urlencoded"))
        .then(|| form_fields(&bytes))
        .flatten();
        let text = (u32::try_from(bytes.len()).is_ok() && as_text(&bytes, &content_type).is_some())
            .then(|| line_starts(&bytes));
        Body {
            bytes,
            content_type,
            json,
            form,
            text,
        }
    }

    /// The mode a body opens in: tree for JSON and forms, raw for text, hex for the rest.
    pub fn default_mode(&self) -> Mode {
        if self.json.is_some() || self.form.is_some() {
            Mode::Tree
        } else if self.text.is_some() || self.bytes.is_empty() {
            Mode::Raw
        } else {
            Mode::Hex
        }
    }

    /// What `mode` shows of this body (a tree of a body that is neither JSON nor a form is its
    /// text).
    pub fn rows(&self, mode: Mode) -> Rows<'_> {
        if self.bytes.is_empty() {
            return Rows::Empty;
        }
        match (mode, &self.json, &self.form, &self.text) {
            (Mode::Hex, ..) => Rows::Hex(self.bytes.len().div_ceil(HEX_WIDTH)),
            (Mode::Tree, Some(json), _, _) => Rows::Json(json),
            (Mode::Tree, None, Some(form), _) => Rows::Form(form),
            (_, _, _, Some(starts)) => Rows::Text(starts),
            _ => Rows::Binary,
        }
    }
}

/// What a body shows in a mode, line by line.
#[derive(Debug, Clone, Copy)]
pub enum Rows<'a> {
    /// No body: no line.
    Empty,
    /// A JSON tree.
    Json(&'a JsonIndex),
    /// A form's fields.
    Form(&'a [(String, String)]),
    /// Text lines, by their starts.
    Text(&'a [u32]),
    /// This many lines of hex.
    Hex(usize),
    /// One line saying the body is binary (press `v` for hex).
    Binary,
}

/// The fields of a form, unless there are too many (then it shows as text).
fn form_fields(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let mut fields = Vec::new();
    for (key, value) in form_urlencoded::parse(bytes) {
        if fields.len() == MAX_FORM_FIELDS {
            return None;
        }
        fields.push((key.into_owned(), value.into_owned()));
    }
    Some(fields)
}

/// The offset where each line starts (the first at 0).
fn line_starts(bytes: &[u8]) -> Vec<u32> {
    let mut starts = vec![0u32];
    // `Body::new` checked that the length fits in u32.
    starts.extend(memchr::memchr_iter(b'\n', bytes).map(|at| at as u32 + 1));
    if starts.len() > 1 && starts.last() == Some(&(bytes.len() as u32)) {
        // A final line break ends the last line; it does not start another.
        starts.pop();
    }
    starts
}

/// The objects and arrays folded in a JSON tree, by the index of their opening line.
pub type Folds = HashSet<u32>;

/// A line of a pane: one of its head lines (the request line and headers, or the overview),
/// then a line of its body (in the body's own numbering for the mode: a JSON line, a field, a
/// text line, a hex line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pos {
    /// The n-th head line.
    Head(usize),
    /// The n-th body line.
    Body(usize),
}

/// A pane's lines as the cursor moves through them: `head` head lines, then the body's rows,
/// less the lines inside folded objects and arrays.
#[derive(Debug, Clone, Copy)]
pub struct Lines<'a> {
    /// How many head lines.
    pub head: usize,
    /// The body's rows.
    pub rows: Rows<'a>,
    /// What is folded.
    pub folds: &'a Folds,
}

impl Lines<'_> {
    /// How many body lines there are, folds ignored.
    fn body_len(&self) -> usize {
        match self.rows {
            Rows::Empty => 0,
            Rows::Json(json) => json.len(),
            Rows::Form(fields) => fields.len(),
            Rows::Text(starts) => starts.len(),
            Rows::Hex(lines) => lines,
            Rows::Binary => 1,
        }
    }

    /// The first line, if any.
    pub fn first(&self) -> Option<Pos> {
        if self.head > 0 {
            Some(Pos::Head(0))
        } else {
            (self.body_len() > 0).then_some(Pos::Body(0))
        }
    }

    /// The line after `pos`, skipping folded ones.
    pub fn next(&self, pos: Pos) -> Option<Pos> {
        let len = self.body_len();
        let after = match pos {
            Pos::Head(n) if n + 1 < self.head => return Some(Pos::Head(n + 1)),
            Pos::Head(_) => 0,
            Pos::Body(n) => match self.rows {
                Rows::Json(json) if self.folds.contains(&(n as u32)) => {
                    json.lines.get(n).map_or(n, |l| l.partner as usize) + 1
                }
                _ => n + 1,
            },
        };
        (after < len).then_some(Pos::Body(after))
    }

    /// The line before `pos`, skipping folded ones.
    pub fn prev(&self, pos: Pos) -> Option<Pos> {
        match pos {
            Pos::Head(0) => None,
            Pos::Head(n) => Some(Pos::Head(n - 1)),
            Pos::Body(0) => self.head.checked_sub(1).map(Pos::Head),
            Pos::Body(n) => Some(Pos::Body(self.unfolded(n - 1))),
        }
    }

    /// The last line, if any.
    pub fn last(&self) -> Option<Pos> {
        match self.body_len() {
            0 => self.head.checked_sub(1).map(Pos::Head),
            len => Some(Pos::Body(self.unfolded(len - 1))),
        }
    }

    /// Body line `n`, or the opening line of the folded object it closes. Walking back from a
    /// shown line, the line before is shown unless it closes a folded object or array.
    fn unfolded(&self, n: usize) -> usize {
        if let Rows::Json(json) = self.rows {
            if let Some(line) = json.lines.get(n) {
                if line.kind == Kind::Close && self.folds.contains(&line.partner) {
                    return line.partner as usize;
                }
            }
        }
        n
    }

    /// The position `steps` lines after `pos` (or the last one).
    pub fn forward(&self, mut pos: Pos, steps: usize) -> Pos {
        for _ in 0..steps {
            match self.next(pos) {
                Some(next) => pos = next,
                None => break,
            }
        }
        pos
    }

    /// The position `steps` lines before `pos` (or the first one).
    pub fn back(&self, mut pos: Pos, steps: usize) -> Pos {
        for _ in 0..steps {
            match self.prev(pos) {
                Some(prev) => pos = prev,
                None => break,
            }
        }
        pos
    }

    /// How many lines from `from` to `to` (`to` after `from`), counting at most `limit`.
    pub fn distance(&self, from: Pos, to: Pos, limit: usize) -> usize {
        let mut pos = from;
        let mut steps = 0;
        while pos < to && steps < limit {
            match self.next(pos) {
                Some(next) => pos = next,
                None => break,
            }
            steps += 1;
        }
        steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Body {
        Body::new(Bytes::from(text.to_owned()), Some("application/json"))
    }

    #[test]
    fn folded_lines_are_skipped_both_ways() {
        // 0 {  1 "a": {  2 "b": 1  3 }  4 "c": 2  5 }
        let body = json(r#"{"a":{"b":1},"c":2}"#);
        let mut folds = Folds::new();
        folds.insert(1);
        let lines = Lines {
            head: 2,
            rows: body.rows(Mode::Tree),
            folds: &folds,
        };
        let mut seen = vec![lines.first().unwrap()];
        while let Some(next) = lines.next(*seen.last().unwrap()) {
            seen.push(next);
        }
        use Pos::{Body as B, Head as H};
        assert_eq!(seen, [H(0), H(1), B(0), B(1), B(4), B(5)]);
        assert_eq!(lines.prev(B(4)), Some(B(1)));
        assert_eq!(lines.prev(B(0)), Some(H(1)));
        assert_eq!(lines.last(), Some(B(5)));
        assert_eq!(lines.distance(H(0), B(4), 100), 4);
        assert_eq!(lines.back(B(5), 2), B(1));
    }

    #[test]
    fn bodies_open_in_the_mode_that_suits_them() {
        assert_eq!(json("[1]").default_mode(), Mode::Tree);
        let form = Body::new(
            Bytes::from_static(b"a=1&b=x+y"),
            Some("application/x-www-form-urlencoded"),
        );
        assert_eq!(form.default_mode(), Mode::Tree);
        assert!(
            matches!(form.rows(Mode::Tree), Rows::Form(f) if f[1] == ("b".into(), "x y".into()))
        );
        let text = Body::new(Bytes::from_static(b"one\ntwo\n"), Some("text/plain"));
        assert!(matches!(text.rows(Mode::Tree), Rows::Text(s) if s == [0, 4]));
        let binary = Body::new(Bytes::from_static(&[0, 1, 2, 255]), None);
        assert_eq!(binary.default_mode(), Mode::Hex);
        assert!(matches!(binary.rows(Mode::Raw), Rows::Binary));
        assert!(matches!(binary.rows(Mode::Hex), Rows::Hex(1)));
    }
}
