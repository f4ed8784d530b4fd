//! The `--where` language, one filter over exchanges for `hooks list`, `replay`, `export`, the
//! inspector, routing and MCP; and `diff`, the comparison of two exchanges. UI-free.
//!
//! An expression is terms `field:value` joined by `AND` (or whitespace), `OR` and `NOT` (which
//! binds tighter than `AND`, which binds tighter than `OR`), with parentheses:
//!
//! ```text
//! status:5xx event:invoice.* NOT header.x-test:*
//! json./data/object/customer:cus_42 (since:1d OR replay:true)
//! ```
//!
//! [`Query::parse`] reads one (errors point at the position with a `^`), its `Display` prints
//! it back in canonical form, and [`Query::matches`] tests a [`Subject`]: anything that can
//! answer the fields' questions (a stored capture, a live exchange).

pub mod diff;
mod eval;
mod fields;
mod json;
mod parse;
mod print;
pub mod value;

#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::exchange::now_ms;

pub use eval::Subject;
pub use fields::{known as known_fields, Cost, FieldSpec, FIELDS};
pub use parse::{ParseError, MAX_DEPTH, MAX_LEN};

use value::{BodyPattern, Compare, Glob, JsonTest, Pointer, StatusPattern, TimePoint, Verdict};

/// Where a term was written: byte offsets into the expression. Positions take no part in
/// equality: two trees are the same expression wherever their terms were written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Span {
    /// Offset of its first byte.
    pub start: usize,
    /// Offset past its last byte.
    pub end: usize,
}

impl PartialEq for Span {
    fn eq(&self, _: &Span) -> bool {
        true
    }
}

/// An expression: a tree of terms.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// One test of one field.
    Term(Term, Span),
    /// True when the inner expression is false.
    Not(Box<Expr>),
    /// True when every one is (two or more).
    And(Vec<Expr>),
    /// True when any one is (two or more).
    Or(Vec<Expr>),
}

/// One test of one field.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    /// `id:12`, `id:>100`.
    Id(Compare<i64>),
    /// `method:POST` (any case).
    Method(Glob),
    /// `path:/webhooks/*`: the path without the query, starting with `/`.
    Path(Glob),
    /// `status:500`, `5xx`, `>=400`, `error`.
    Status(StatusPattern),
    /// `duration:>1s`: from forwarding to the whole answer.
    Duration(Compare<Duration>),
    /// `size:>1MiB`: the request body's length.
    Size(Compare<u64>),
    /// `provider:stripe`: the provider whose signature scheme was recognised or given.
    Provider(Glob),
    /// `event:invoice.*`: the provider's event type.
    Event(Glob),
    /// `verdict:invalid`: the signature verdict.
    Verdict(Verdict),
    /// `replay:true`: whether the exchange is a replay.
    Replay(bool),
    /// `sent:true`: whether `hooks send` made the request (rather than a provider, through the
    /// relay).
    Sent(bool),
    /// `since:1h`: received at or after.
    Since(TimePoint),
    /// `before:2024-05-01T00:00:00Z`: received before.
    Before(TimePoint),
    /// `route:stripe`: the route that answered (routing, `hooks.toml`).
    Route(Glob),
    /// `header.NAME:glob`: any request header of that name (any case) whose value matches.
    Header {
        /// Header name, lowercase.
        name: String,
        /// Value glob (`*`: the header is present).
        value: Glob,
    },
    /// `query.KEY:glob`: any query parameter `KEY` (decoded) whose value matches.
    Query {
        /// Parameter name, as decoded.
        key: String,
        /// Value glob (`*`: the parameter is present).
        value: Glob,
    },
    /// `json./data/object/customer:cus_42`: the request body as JSON, at a pointer.
    Json {
        /// Where in the document.
        pointer: Pointer,
        /// What the value there must be.
        test: JsonTest,
    },
    /// `body~"cus_\d+"`: a regular expression found in the request body.
    Body(BodyPattern),
}

impl Term {
    /// The field this term tests.
    pub fn field(&self) -> &'static FieldSpec {
        fields::of(self)
    }
}

/// When an expression is evaluated, which decides the fields it may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Routing a request: the app has not answered and no route is chosen, so `status`,
    /// `duration` and `route` are unknown.
    Routing,
    /// A finished exchange: every field.
    Exchange,
}

/// A parsed expression, ready to match.
#[derive(Debug, Clone)]
pub struct Query {
    expr: Expr,
    /// The same tree with cheap terms first, as the matcher walks it.
    plan: eval::Plan,
    /// The expression as written, for error messages; empty when built from parts.
    source: String,
}

impl PartialEq for Query {
    fn eq(&self, other: &Query) -> bool {
        self.expr == other.expr
    }
}

impl Query {
    /// Parses `text`; the error points at where it went wrong.
    pub fn parse(text: &str) -> Result<Query, ParseError> {
        let expr = parse::parse(text)?;
        let mut query = Query::new(expr);
        query.source = text.to_owned();
        Ok(query)
    }

    /// The query of an expression built by hand (the shorthand flags of `hooks list`).
    pub fn new(expr: Expr) -> Query {
        Query {
            plan: eval::Plan::new(&expr),
            expr,
            source: String::new(),
        }
    }

    /// A query of one term.
    pub fn term(term: Term) -> Query {
        Query::new(Expr::Term(term, Span::default()))
    }

    /// Both this and `other` (the result has no source text: its terms' positions are in
    /// different texts).
    pub fn and(self, other: Query) -> Query {
        Query::new(Expr::And(vec![self.expr, other.expr]))
    }

    /// The expression tree.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// The most expensive term, so callers know what to load: [`Cost::Row`] needs neither
    /// headers nor body.
    pub fn cost(&self) -> Cost {
        eval::cost(&self.expr)
    }

    /// Refuses fields unknown at `stage` (`status` in a route's match), pointing at the
    /// first such term.
    pub fn check(&self, stage: Stage) -> Result<(), ParseError> {
        if stage == Stage::Exchange {
            return Ok(());
        }
        match first_term(&self.expr, &|term| term.field().after_routing) {
            None => Ok(()),
            // A query built from flags has no text of its own: point at its printed form.
            Some((term, _)) if self.source.is_empty() => Err(ParseError::new(
                &self.expr.to_string(),
                0,
                "a field known before the app answers (not status, duration or route)",
                &term.to_string(),
            )),
            Some((term, span)) => Err(ParseError::new(
                &self.source,
                span.start,
                "a field known before the app answers (not status, duration or route)",
                &term.to_string(),
            )),
        }
    }

    /// Whether `subject` matches, `since` and `before` counting from now.
    pub fn matches(&self, subject: &(impl Subject + ?Sized)) -> bool {
        self.matches_at(subject, now_ms())
    }

    /// Whether `subject` matches, `since` and `before` counting from `now_ms` (ms since the
    /// Unix epoch), so a whole listing uses one now.
    pub fn matches_at(&self, subject: &(impl Subject + ?Sized), now_ms: i64) -> bool {
        eval::matches(&self.plan, subject, now_ms)
    }
}

/// The first term in `expr` for which `pick` holds, in the order written.
fn first_term<'e>(expr: &'e Expr, pick: &dyn Fn(&Term) -> bool) -> Option<(&'e Term, Span)> {
    match expr {
        Expr::Term(term, span) => pick(term).then_some((term, *span)),
        Expr::Not(inner) => first_term(inner, pick),
        Expr::And(all) | Expr::Or(all) => all.iter().find_map(|e| first_term(e, pick)),
    }
}
