//! Matching: the [`Subject`] trait that anything matched implements, and the walk over a plan
//! (the expression with cheap terms first) that reads and parses the body at most once, and
//! only when a body term is reached.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::cmp::Ordering;
use std::time::Duration;

use relay_server::protocol::Header;
use serde_json::Value;

use super::fields::Cost;
use super::json::{Extract, Pointers};
use super::value::{compare_numbers, JsonTest, Verdict};
use super::{Expr, Term};
use crate::verify::Provider;

/// What an expression is matched against: a stored capture, a live exchange, a row of the
/// inspector. Each method answers one field; `None` means the exchange has no such fact.
pub trait Subject {
    /// The capture id, once stored.
    fn id(&self) -> Option<i64>;
    /// When it was received, in ms since the Unix epoch.
    fn received_at_ms(&self) -> i64;
    /// The request method.
    fn method(&self) -> &str;
    /// The request target: path and query as received (the path may lack its leading `/`).
    fn target(&self) -> &str;
    /// The request headers in order (names lowercase).
    fn headers(&self) -> &[Header];
    /// The request body's length in bytes.
    fn request_size(&self) -> u64;
    /// The request body; `None` when it cannot be read. Called at most once per match, and
    /// only when a body term is reached, so it may load the body lazily.
    fn request_body(&self) -> Option<Cow<'_, [u8]>>;
    /// The app's status; `None` when it did not answer.
    fn status(&self) -> Option<u16>;
    /// From forwarding to the whole answer.
    fn duration(&self) -> Option<Duration>;
    /// The provider whose signature scheme was checked.
    fn provider(&self) -> Option<Provider>;
    /// The provider's event type.
    fn event_type(&self) -> Option<&str>;
    /// The signature verdict.
    fn verdict(&self) -> Option<Verdict>;
    /// The capture this one replays.
    fn replay_of(&self) -> Option<i64>;
    /// Whether `hooks send` made it; a webhook being routed never is.
    fn sent(&self) -> bool {
        false
    }
    /// The route that answered.
    fn route(&self) -> Option<&str> {
        None
    }
}

/// An expression as the matcher walks it.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    /// The expression with the children of every `AND` and `OR` in order of cost, cheapest
    /// first (both are commutative and nothing has side effects, so only the work changes).
    root: Expr,
    /// Every JSON pointer it uses.
    pointers: Pointers,
}

impl Plan {
    /// The plan of `expr`.
    pub fn new(expr: &Expr) -> Plan {
        let mut pointers = Vec::new();
        collect_pointers(expr, &mut pointers);
        Plan {
            root: plan(expr),
            pointers: Pointers::new(pointers),
        }
    }
}

fn collect_pointers<'e>(expr: &'e Expr, out: &mut Vec<&'e super::value::Pointer>) {
    match expr {
        Expr::Term(Term::Json { pointer, .. }, _) => out.push(pointer),
        Expr::Term(..) => {}
        Expr::Not(inner) => collect_pointers(inner, out),
        Expr::And(all) | Expr::Or(all) => all.iter().for_each(|e| collect_pointers(e, out)),
    }
}

fn plan(expr: &Expr) -> Expr {
    match expr {
        Expr::Term(..) => expr.clone(),
        Expr::Not(inner) => Expr::Not(Box::new(plan(inner))),
        Expr::And(all) => Expr::And(sorted(all)),
        Expr::Or(all) => Expr::Or(sorted(all)),
    }
}

fn sorted(all: &[Expr]) -> Vec<Expr> {
    let mut all: Vec<Expr> = all.iter().map(plan).collect();
    all.sort_by_key(cost);
    all
}

/// The most expensive term of `expr`.
pub(super) fn cost(expr: &Expr) -> Cost {
    match expr {
        Expr::Term(term, _) => term.field().cost,
        Expr::Not(inner) => cost(inner),
        Expr::And(all) | Expr::Or(all) => all.iter().map(cost).max().unwrap_or(Cost::Row),
    }
}

/// One evaluation: the subject, now, and what was read of its body so far.
struct Context<'s, S: ?Sized> {
    subject: &'s S,
    now_ms: i64,
    pointers: &'s Pointers,
    body: OnceCell<Option<Cow<'s, [u8]>>>,
    json: OnceCell<Option<Extract>>,
}

/// Whether `subject` matches `plan`.
pub(super) fn matches<S: Subject + ?Sized>(plan: &Plan, subject: &S, now_ms: i64) -> bool {
    let context = Context {
        subject,
        now_ms,
        pointers: &plan.pointers,
        body: OnceCell::new(),
        json: OnceCell::new(),
    };
    context.eval(&plan.root)
}

impl<'s, S: Subject + ?Sized> Context<'s, S> {
    fn eval(&self, expr: &Expr) -> bool {
        match expr {
            Expr::Term(term, _) => self.term(term),
            Expr::Not(inner) => !self.eval(inner),
            Expr::And(all) => all.iter().all(|e| self.eval(e)),
            Expr::Or(all) => all.iter().any(|e| self.eval(e)),
        }
    }

    fn term(&self, term: &Term) -> bool {
        let s = self.subject;
        match term {
            Term::Id(c) => s.id().is_some_and(|id| c.holds(&id)),
            Term::Method(g) => g.matches(s.method().as_bytes()),
            Term::Path(g) => g.matches(path_of(s.target()).as_bytes()),
            Term::Status(p) => p.matches(s.status()),
            Term::Duration(c) => s.duration().is_some_and(|d| c.holds(&d)),
            Term::Size(c) => c.holds(&s.request_size()),
            Term::Provider(g) => s.provider().is_some_and(|p| g.matches(p.name().as_bytes())),
            Term::Event(g) => s.event_type().is_some_and(|e| g.matches(e.as_bytes())),
            Term::Verdict(v) => s.verdict() == Some(*v),
            Term::Replay(replay) => s.replay_of().is_some() == *replay,
            Term::Sent(sent) => s.sent() == *sent,
            Term::Since(t) => s.received_at_ms() >= t.millis(self.now_ms),
            Term::Before(t) => s.received_at_ms() < t.millis(self.now_ms),
            Term::Route(g) => s.route().is_some_and(|r| g.matches(r.as_bytes())),
            Term::Header { name, value } => s
                .headers()
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case(name) && value.matches(&h.value)),
            Term::Query { key, value } => query_of(s.target()).is_some_and(|query| {
                form_urlencoded::parse(query.as_bytes())
                    .any(|(k, v)| k == key.as_str() && value.matches(v.as_bytes()))
            }),
            Term::Json { pointer, test } => self
                .json()
                .and_then(|extract| self.pointers.get(extract, pointer))
                .is_some_and(|found| json_matches(test, found)),
            Term::Body(pattern) => self.body().is_some_and(|body| pattern.is_match(body)),
        }
    }

    fn body(&self) -> Option<&[u8]> {
        self.body
            .get_or_init(|| self.subject.request_body())
            .as_deref()
    }

    /// The values at every pointer the expression uses, from one parse of the body.
    fn json(&self) -> Option<&Extract> {
        self.json
            .get_or_init(|| self.pointers.read(self.body()?))
            .as_ref()
    }
}

/// The path of a request target, without the query, starting with `/`.
pub fn path_of(target: &str) -> Cow<'_, str> {
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    if path.starts_with('/') {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(format!("/{path}"))
    }
}

/// The query string of a request target, without the `?`.
pub fn query_of(target: &str) -> Option<&str> {
    target.split_once('?').map(|(_, query)| query)
}

fn json_matches(test: &JsonTest, found: &Value) -> bool {
    match test {
        JsonTest::Compare(c) => match found {
            Value::Number(n) => {
                compare_numbers(n, &c.value.0).is_some_and(|ordering| c.op.holds(ordering))
            }
            _ => false,
        },
        JsonTest::Equals { glob, number } => match found {
            Value::String(text) => glob.matches(text.as_bytes()),
            Value::Number(n) => match number {
                Some(number) => compare_numbers(n, number) == Some(Ordering::Equal),
                None => glob.matches(n.to_string().as_bytes()),
            },
            Value::Bool(b) => glob.matches(if *b { b"true" } else { b"false" }),
            Value::Null => glob.matches(b"null"),
            Value::Array(_) | Value::Object(_) => glob.pattern() == "*",
        },
    }
}
