//! Expressions in canonical form: explicit `AND`, parentheses only where the tree needs them,
//! values bare when they can be and quoted otherwise. Reading the text back gives the same
//! tree.

use std::fmt::{self, Write as _};

use super::value::{duration_text, size_text, Compare, JsonTest, Op};
use super::{Expr, Query, Term};

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr().fmt(f)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Term(term, _) => term.fmt(f),
            Expr::Not(inner) => {
                f.write_str("NOT ")?;
                grouped(f, inner, matches!(**inner, Expr::And(_) | Expr::Or(_)))
            }
            // An AND inside an AND keeps its parentheses, so the tree reads back as it was.
            Expr::And(all) => join(f, all, " AND ", |e| matches!(e, Expr::And(_) | Expr::Or(_))),
            Expr::Or(all) => join(f, all, " OR ", |e| matches!(e, Expr::Or(_))),
        }
    }
}

fn join(
    f: &mut fmt::Formatter<'_>,
    all: &[Expr],
    separator: &str,
    needs_parens: fn(&Expr) -> bool,
) -> fmt::Result {
    for (i, expr) in all.iter().enumerate() {
        if i > 0 {
            f.write_str(separator)?;
        }
        grouped(f, expr, needs_parens(expr))?;
    }
    Ok(())
}

fn grouped(f: &mut fmt::Formatter<'_>, expr: &Expr, parens: bool) -> fmt::Result {
    if parens {
        write!(f, "({expr})")
    } else {
        fmt::Display::fmt(expr, f)
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.field().name;
        match self {
            Term::Id(c) => write!(f, "{name}:{}", compared(c, |v| v.to_string())),
            Term::Method(g)
            | Term::Path(g)
            | Term::Provider(g)
            | Term::Event(g)
            | Term::Route(g) => write!(f, "{name}:{}", value(g.pattern())),
            Term::Status(s) => write!(f, "{name}:{s}"),
            Term::Duration(c) => write!(f, "{name}:{}", compared(c, |d| duration_text(*d))),
            Term::Size(c) => write!(f, "{name}:{}", compared(c, |s| size_text(*s))),
            Term::Verdict(v) => write!(f, "{name}:{}", v.as_str()),
            Term::Replay(b) | Term::Sent(b) => write!(f, "{name}:{b}"),
            Term::Since(t) | Term::Before(t) => write!(f, "{name}:{t}"),
            Term::Header {
                name: key,
                value: g,
            }
            | Term::Query { key, value: g } => {
                write!(f, "{name}.{}:{}", self::key(key), value(g.pattern()))
            }
            Term::Json { pointer, test } => {
                write!(f, "{name}.{}:", key(pointer.as_str()))?;
                match test {
                    JsonTest::Compare(c) => write!(f, "{}{}", c.op.sign(), c.value.0),
                    // A value that would read as a comparison is quoted.
                    JsonTest::Equals { glob, .. } if glob.pattern().starts_with(['<', '>']) => {
                        f.write_str(&quote(glob.pattern()))
                    }
                    JsonTest::Equals { glob, .. } => f.write_str(&value(glob.pattern())),
                }
            }
            Term::Body(pattern) => write!(f, "{name}~{}", value(pattern.as_str())),
        }
    }
}

fn compared<T>(c: &Compare<T>, text: impl Fn(&T) -> String) -> String {
    let sign = if c.op == Op::Eq { "" } else { c.op.sign() };
    format!("{sign}{}", text(&c.value))
}

/// A value, bare when the lexer reads it back whole.
fn value(text: &str) -> String {
    let bare = !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '(' | ')' | '"'));
    if bare {
        text.to_owned()
    } else {
        quote(text)
    }
}

/// A key, bare when the lexer reads it back whole (it also ends at `:`).
fn key(text: &str) -> String {
    if text.contains(':') {
        quote(text)
    } else {
        value(text)
    }
}

/// `text` in double quotes, with escapes for quotes, backslashes and control characters.
pub(super) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
