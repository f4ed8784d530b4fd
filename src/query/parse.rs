//! Reading an expression: a lexer that yields parentheses, keywords and whole terms
//! (`field.key:value` with their parts' positions), and a recursive-descent parser over them.
//!
//! ```text
//! expr  := and ( "OR" and )*
//! and   := unary ( "AND"? unary )*
//! unary := "NOT" unary | "(" expr ")" | term
//! term  := FIELD ( "." KEY )? ( ":" | "~" ) VALUE
//! ```
//!
//! A KEY runs to the `:` (so JSON pointers may hold `~` and `.`); a VALUE runs to whitespace
//! or a parenthesis. Either may be quoted, `"…"`, with `\"`, `\\`, `\n`, `\r`, `\t` and
//! `\u{…}` escapes (any other backslash stands for itself, for regexes). Keywords are
//! case-insensitive.

use std::fmt;

use super::fields::{self, Bad};
use super::{Expr, Span};

/// Longest expression read, in bytes.
pub const MAX_LEN: usize = 16 * 1024;

/// Deepest nesting of parentheses and `NOT`s: the parser recurses once per level, and
/// expressions may come from MCP clients.
pub const MAX_DEPTH: usize = 64;

/// A bad expression: where, what was expected there, and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The expression.
    pub source: String,
    /// Byte offset into `source` (its length: the end).
    pub position: usize,
    /// What would have been right here.
    pub expected: String,
    /// What is here instead.
    pub found: String,
}

impl ParseError {
    /// An error at `position` of `source`.
    pub fn new(source: &str, position: usize, expected: &str, found: &str) -> ParseError {
        ParseError {
            source: source.to_owned(),
            position: position.min(source.len()),
            expected: expected.to_owned(),
            found: found.to_owned(),
        }
    }
}

impl std::error::Error for ParseError {}

impl fmt::Display for ParseError {
    /// The expression on one line, a `^` under the position, and what was expected there.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One column per character: control characters (untrusted input, and tabs that
        // would shift the caret) become spaces.
        let line: String = self
            .source
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let column = self.source[..self.position].chars().count();
        writeln!(f, "  {line}")?;
        write!(
            f,
            "  {:column$}^ expected {}, found {}",
            "", self.expected, self.found
        )
    }
}

/// What the lexer yields.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    And,
    Or,
    Not,
    Term(RawTerm),
    End,
}

/// A term as written, before its field reads it.
#[derive(Debug, Clone, PartialEq)]
struct RawTerm {
    field: String,
    field_at: usize,
    key: Option<(String, usize)>,
    tilde: bool,
    op_at: usize,
    value: String,
    value_at: usize,
    quoted: bool,
    end: usize,
}

/// Characters that end a bare value.
fn ends_value(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '"')
}

/// Characters that end a bare key.
fn ends_key(c: char) -> bool {
    ends_value(c) || c == ':'
}

/// Characters that end a field name.
fn ends_field(c: char) -> bool {
    ends_key(c) || matches!(c, '~' | '.')
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn error(&self, at: usize, expected: &str, found: &str) -> ParseError {
        ParseError::new(self.src, at, expected, found)
    }

    fn peek_char(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn skip_space(&mut self) {
        let rest = &self.src[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// The next token and where it starts.
    fn next(&mut self) -> Result<(Token, usize), ParseError> {
        self.skip_space();
        let start = self.pos;
        let token = match self.peek_char() {
            None => Token::End,
            Some('(') => {
                self.pos += 1;
                Token::Open
            }
            Some(')') => {
                self.pos += 1;
                Token::Close
            }
            Some('"') => {
                return Err(self.error(start, "a term such as status:500", "a quoted string"))
            }
            Some(_) => self.word()?,
        };
        Ok((token, start))
    }

    fn take_while(&mut self, stop: fn(char) -> bool) -> &'a str {
        let rest = &self.src[self.pos..];
        let len = rest.find(stop).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    /// A keyword, or a term.
    fn word(&mut self) -> Result<Token, ParseError> {
        let field_at = self.pos;
        let field = self.take_while(ends_field);
        let key = match self.peek_char() {
            Some('.') => {
                self.pos += 1;
                Some(self.key()?)
            }
            _ => None,
        };
        let (tilde, op_at) = match self.peek_char() {
            Some(':') => (false, self.pos),
            Some('~') => (true, self.pos),
            _ if key.is_none() => return self.keyword(field, field_at),
            other => {
                return Err(self.error(self.pos, "a : after the key", &describe(other)));
            }
        };
        self.pos += 1;
        let value_at = self.pos;
        let (value, quoted) = match self.peek_char() {
            Some('"') => (self.quoted()?, true),
            _ => (self.take_while(ends_value).to_owned(), false),
        };
        Ok(Token::Term(RawTerm {
            field: field.to_owned(),
            field_at,
            key,
            tilde,
            op_at,
            value,
            value_at,
            quoted,
            end: self.pos,
        }))
    }

    fn keyword(&self, word: &str, at: usize) -> Result<Token, ParseError> {
        let keyword = [("AND", Token::And), ("OR", Token::Or), ("NOT", Token::Not)]
            .into_iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(word));
        if let Some((_, token)) = keyword {
            return Ok(token);
        }
        match fields::lookup(word) {
            Some(field) => {
                let expected = if field.tilde {
                    format!("~ after {}", field.name)
                } else if field.key.is_some() {
                    format!("a key after {}, as in {}", field.name, field.label())
                } else {
                    format!(": after {}", field.name)
                };
                Err(self.error(self.pos, &expected, &describe(self.peek_char())))
            }
            None => Err(self.error(
                at,
                "a term such as status:500 (field:value), NOT or (",
                &format!("{word:?}"),
            )),
        }
    }

    /// A key after `field.`, quoted or bare (to the `:`).
    fn key(&mut self) -> Result<(String, usize), ParseError> {
        let at = self.pos;
        if self.peek_char() == Some('"') {
            return Ok((self.quoted()?, at));
        }
        let key = self.take_while(ends_key);
        if key.is_empty() {
            return Err(self.error(at, "a key after the .", &describe(self.peek_char())));
        }
        Ok((key.to_owned(), at))
    }

    /// A quoted string at the position, its escapes resolved.
    fn quoted(&mut self) -> Result<String, ParseError> {
        let open = self.pos;
        self.pos += 1;
        let mut text = String::new();
        loop {
            let at = self.pos;
            let Some(c) = self.peek_char() else {
                return Err(self.error(
                    at,
                    &format!(
                        "a \" to close the string opened at column {}",
                        column(self.src, open)
                    ),
                    "the end of the expression",
                ));
            };
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(text),
                '\\' => self.escape(&mut text),
                c => text.push(c),
            }
        }
    }

    /// What an escape stands for, the backslash read: `\"`, `\\`, `\n`, `\r`, `\t`,
    /// `\u{HEX}`; any other backslash stands for itself, so `"cus_\d+"` is the regex
    /// `cus_\d+`.
    fn escape(&mut self, text: &mut String) {
        let rest = &self.src[self.pos..];
        let simple = match rest.chars().next() {
            Some('"') => Some('"'),
            Some('\\') => Some('\\'),
            Some('n') => Some('\n'),
            Some('r') => Some('\r'),
            Some('t') => Some('\t'),
            _ => None,
        };
        if let Some(c) = simple {
            self.pos += 1;
            text.push(c);
            return;
        }
        let unicode = rest
            .strip_prefix("u{")
            .and_then(|r| r.split_once('}'))
            .filter(|(hex, _)| (1..=6).contains(&hex.len()))
            .and_then(|(hex, _)| {
                let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
                Some((c, hex.len() + 3))
            });
        match unicode {
            Some((c, len)) => {
                self.pos += len;
                text.push(c);
            }
            None => text.push('\\'),
        }
    }
}

/// Column (1-based, in characters) of byte offset `at`.
fn column(src: &str, at: usize) -> usize {
    src[..at].chars().count() + 1
}

fn describe(c: Option<char>) -> String {
    match c {
        None => "the end of the expression".to_owned(),
        Some(c) if c.is_whitespace() => "a space".to_owned(),
        Some(c) => format!("{:?}", c.to_string()),
    }
}

/// Reads an expression.
pub(super) fn parse(src: &str) -> Result<Expr, ParseError> {
    if src.len() > MAX_LEN {
        let end = (0..=MAX_LEN)
            .rev()
            .find(|&i| src.is_char_boundary(i))
            .unwrap_or(0);
        return Err(ParseError::new(
            &src[..end],
            end,
            &format!("an expression of at most {MAX_LEN} bytes"),
            &format!("{} bytes", src.len()),
        ));
    }
    let mut parser = Parser {
        lexer: Lexer { src, pos: 0 },
        peeked: None,
        depth: 0,
    };
    let expr = parser.or()?;
    match parser.next()? {
        (Token::End, _) => Ok(expr),
        (Token::Close, at) => Err(parser.lexer.error(
            at,
            "AND, OR or the end of the expression",
            "a ) without its (",
        )),
        (token, at) => Err(parser.lexer.error(
            at,
            "AND, OR or the end of the expression",
            &parser.found(&token, at),
        )),
    }
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<(Token, usize)>,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&mut self) -> Result<&(Token, usize), ParseError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next()?);
        }
        Ok(self.peeked.as_ref().expect("just peeked"))
    }

    fn next(&mut self) -> Result<(Token, usize), ParseError> {
        match self.peeked.take() {
            Some(peeked) => Ok(peeked),
            None => self.lexer.next(),
        }
    }

    /// How errors name `token`.
    fn found(&self, token: &Token, at: usize) -> String {
        match token {
            Token::End => "the end of the expression".to_owned(),
            Token::Open => "(".to_owned(),
            Token::Close => ")".to_owned(),
            Token::And => "AND".to_owned(),
            Token::Or => "OR".to_owned(),
            Token::Not => "NOT".to_owned(),
            Token::Term(term) => format!("{:?}", &self.lexer.src[at..term.end]),
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut all = vec![self.and()?];
        while matches!(self.peek()?, (Token::Or, _)) {
            self.next()?;
            all.push(self.and()?);
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            Expr::Or(all)
        })
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut all = vec![self.unary()?];
        loop {
            match self.peek()? {
                (Token::And, _) => {
                    self.next()?;
                }
                (Token::Term(_) | Token::Not | Token::Open, _) => {}
                _ => break,
            }
            all.push(self.unary()?);
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            Expr::And(all)
        })
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        let (token, at) = self.next()?;
        match token {
            Token::Not => self
                .nested(at, |p| p.unary())
                .map(|e| Expr::Not(Box::new(e))),
            Token::Open => {
                let inner = self.nested(at, |p| p.or())?;
                match self.next()? {
                    (Token::Close, _) => Ok(inner),
                    (token, found_at) => Err(self.lexer.error(
                        found_at,
                        &format!(
                            "AND, OR, or a ) to close the ( at column {}",
                            column(self.lexer.src, at)
                        ),
                        &self.found(&token, found_at),
                    )),
                }
            }
            Token::Term(raw) => self.term(raw),
            token => Err(self.lexer.error(
                at,
                "a term such as status:500, NOT or (",
                &self.found(&token, at),
            )),
        }
    }

    /// Runs `inner` one level deeper, refusing to go past [`MAX_DEPTH`].
    fn nested(
        &mut self,
        at: usize,
        inner: impl FnOnce(&mut Self) -> Result<Expr, ParseError>,
    ) -> Result<Expr, ParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.lexer.error(
                at,
                &format!("at most {MAX_DEPTH} levels of parentheses and NOTs"),
                "one more",
            ));
        }
        self.depth += 1;
        let result = inner(self);
        self.depth -= 1;
        result
    }

    /// A term read by its field.
    fn term(&self, raw: RawTerm) -> Result<Expr, ParseError> {
        let src = self.lexer.src;
        let error = |at, expected: &str, found: String| ParseError::new(src, at, expected, &found);
        let field = fields::lookup(&raw.field).ok_or_else(|| {
            error(
                raw.field_at,
                &format!("a field: {}", fields::known()),
                format!("{:?}", raw.field),
            )
        })?;
        let (key, key_at) = match (&raw.key, field.key) {
            (Some((key, at)), Some(_)) => (key.as_str(), *at),
            (None, None) => ("", raw.field_at),
            (Some(_), None) => {
                let dot = raw.field_at + raw.field.len();
                return Err(error(
                    dot,
                    &format!(": after {}", field.name),
                    "\".\"".to_owned(),
                ));
            }
            (None, Some(_)) => {
                let expected = format!("a key after {}, as in {}", field.name, field.label());
                return Err(error(
                    raw.op_at,
                    &expected,
                    describe(src[raw.op_at..].chars().next()),
                ));
            }
        };
        if raw.tilde != field.tilde {
            let expected = if field.tilde { "~" } else { ":" };
            let found = if raw.tilde { "~" } else { ":" };
            return Err(error(
                raw.op_at,
                &format!("{expected} after {}", field.name),
                format!("{found:?}"),
            ));
        }
        if raw.value.is_empty() && !raw.quoted {
            let sign = if field.tilde { "~" } else { ":" };
            return Err(error(
                raw.value_at,
                &format!(
                    "a value after {}{sign} (quote an empty one: \"\")",
                    field.name
                ),
                describe(src[raw.value_at..].chars().next()),
            ));
        }
        let term = field
            .parse(key, &raw.value, raw.quoted)
            .map_err(|bad| match bad {
                Bad::Key(expected) => error(key_at, &expected, format!("{key:?}")),
                Bad::Value(expected) => error(raw.value_at, &expected, format!("{:?}", raw.value)),
            })?;
        Ok(Expr::Term(
            term,
            Span {
                start: raw.field_at,
                end: raw.end,
            },
        ))
    }
}
