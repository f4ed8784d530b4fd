//! A JSON body as the lines of its pretty-printed form, without building the document: one scan
//! records where each line's key and value are in the body's bytes, how deep it is, and where
//! each object or array closes. The view slices and sanitizes only the lines on screen, and
//! folding skips from an opening line to its closing one, so a 25 MiB body opens and scrolls as
//! fast as a small one.

use serde::de::IgnoredAny;

/// A byte range of the body, `start..end`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: u32,
    /// Past the last byte.
    pub end: u32,
}

/// What one line holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string, number, `true`, `false` or `null`.
    Scalar,
    /// `{}` or `[]` (the blanks inside, if any, are not shown).
    Empty {
        /// Whether it is an array.
        array: bool,
    },
    /// `{` or `[` with members; the line after its last member closes it.
    Open {
        /// Whether it is an array.
        array: bool,
        /// Its members.
        members: u32,
    },
    /// The `}` or `]` closing an [`Kind::Open`] line.
    Close,
}

/// One line of the pretty-printed document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    /// Nesting depth (the document itself is 0).
    pub depth: u16,
    /// The key, as written (quotes and escapes included), for a member of an object.
    pub key: Option<Span>,
    /// The value as written, or the bracket of an opening or closing line.
    pub value: Span,
    /// What the line holds.
    pub kind: Kind,
    /// For an opening line, the index of its closing line; for a closing line, its opening one.
    pub partner: u32,
    /// Whether a comma follows (another member comes after it).
    pub comma: bool,
}

/// The lines of a JSON body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonIndex {
    /// In document order.
    pub lines: Vec<Line>,
}

impl JsonIndex {
    /// The lines of `body` when it is one valid JSON document (offsets must fit in `u32`);
    /// `None` otherwise, and the body is shown as text.
    pub fn build(body: &[u8]) -> Option<JsonIndex> {
        if u32::try_from(body.len()).is_err() {
            return None;
        }
        // Validate first (serde_json's nesting limit bounds the scan's recursion too); the
        // scan then assumes well-formed input.
        serde_json::from_slice::<IgnoredAny>(body).ok()?;
        let mut scan = Scan {
            bytes: body,
            at: 0,
            lines: Vec::with_capacity(body.len() / 24 + 1),
        };
        scan.value(0, None);
        Some(JsonIndex { lines: scan.lines })
    }

    /// How many lines.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// The scanner's position in a valid document.
struct Scan<'a> {
    bytes: &'a [u8],
    at: usize,
    lines: Vec<Line>,
}

impl Scan<'_> {
    fn skip_blank(&mut self) {
        while self
            .bytes
            .get(self.at)
            .is_some_and(|b| b.is_ascii_whitespace())
        {
            self.at += 1;
        }
    }

    fn peek(&self) -> u8 {
        self.bytes.get(self.at).copied().unwrap_or(b'\0')
    }

    fn span(&self, start: usize) -> Span {
        // `build` checked that every offset fits.
        Span {
            start: start as u32,
            end: self.at as u32,
        }
    }

    /// One value at `depth`, a member named `key` (when in an object).
    fn value(&mut self, depth: u16, key: Option<Span>) {
        self.skip_blank();
        let start = self.at;
        match self.peek() {
            open @ (b'{' | b'[') => self.container(depth, key, open == b'['),
            b'"' => {
                self.string();
                self.scalar(depth, key, start);
            }
            _ => {
                while !matches!(self.peek(), b',' | b'}' | b']' | b'\0')
                    && !self.peek().is_ascii_whitespace()
                {
                    self.at += 1;
                }
                self.scalar(depth, key, start);
            }
        }
    }

    fn scalar(&mut self, depth: u16, key: Option<Span>, start: usize) {
        let value = self.span(start);
        self.lines.push(Line {
            depth,
            key,
            value,
            kind: Kind::Scalar,
            partner: 0,
            comma: false,
        });
    }

    /// Past a string literal starting at `self.at`.
    fn string(&mut self) {
        self.at += 1;
        while let Some(found) = memchr::memchr2(b'"', b'\\', &self.bytes[self.at..]) {
            self.at += found;
            if self.bytes[self.at] == b'\\' {
                self.at += 2;
            } else {
                self.at += 1;
                return;
            }
        }
        self.at = self.bytes.len();
    }

    fn container(&mut self, depth: u16, key: Option<Span>, array: bool) {
        let start = self.at;
        let close = if array { b']' } else { b'}' };
        self.at += 1;
        let bracket = self.span(start);
        self.skip_blank();
        if self.peek() == close {
            self.at += 1;
            self.lines.push(Line {
                depth,
                key,
                value: self.span(start),
                kind: Kind::Empty { array },
                partner: 0,
                comma: false,
            });
            return;
        }
        let open = self.lines.len();
        self.lines.push(Line {
            depth,
            key,
            value: bracket,
            kind: Kind::Open { array, members: 0 },
            partner: 0,
            comma: false,
        });
        let mut members = 0u32;
        loop {
            self.skip_blank();
            let key = if array {
                None
            } else {
                let key_start = self.at;
                self.string();
                let key = self.span(key_start);
                self.skip_blank();
                self.at += 1; // the colon
                Some(key)
            };
            self.value(depth.saturating_add(1), key);
            members += 1;
            self.skip_blank();
            if self.peek() == b',' {
                self.at += 1;
                if let Some(last) = self.lines.last_mut() {
                    last.comma = true;
                }
                continue;
            }
            break;
        }
        let closing_at = self.at;
        self.at += 1;
        let closing = self.lines.len() as u32;
        self.lines.push(Line {
            depth,
            key: None,
            value: self.span(closing_at),
            kind: Kind::Close,
            partner: open as u32,
            comma: false,
        });
        let line = &mut self.lines[open];
        line.partner = closing;
        line.kind = Kind::Open { array, members };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(body: &[u8], span: Span) -> &str {
        std::str::from_utf8(&body[span.start as usize..span.end as usize]).unwrap()
    }

    #[test]
    fn lines_follow_the_pretty_form() {
        let body = br#" {"a": [ 1, {"b": "x\"}"}], "c": { }, "d": null} "#;
        let index = JsonIndex::build(body).unwrap();
        let shown: Vec<String> = index
            .lines
            .iter()
            .map(|l| {
                let key = l
                    .key
                    .map_or(String::new(), |k| format!("{}: ", text(body, k)));
                let comma = if l.comma { "," } else { "" };
                let value = match l.kind {
                    Kind::Empty { array: false } => "{}",
                    _ => text(body, l.value),
                };
                format!("{}{key}{value}{comma}", "  ".repeat(l.depth as usize))
            })
            .collect();
        assert_eq!(
            shown,
            [
                "{",
                "  \"a\": [",
                "    1,",
                "    {",
                "      \"b\": \"x\\\"}\"",
                "    }",
                "  ],",
                "  \"c\": {},",
                "  \"d\": null",
                "}"
            ]
        );
        assert_eq!(index.lines[0].partner, 9);
        assert_eq!(index.lines[9].partner, 0);
        assert_eq!(
            index.lines[1].kind,
            Kind::Open {
                array: true,
                members: 2
            }
        );
    }

    #[test]
    fn invalid_json_has_no_index() {
        assert!(JsonIndex::build(b"{\"a\": ").is_none());
        assert!(JsonIndex::build(b"not json").is_none());
        assert_eq!(JsonIndex::build(b"42").unwrap().len(), 1);
    }
}
