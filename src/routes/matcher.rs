//! Matching a request against the routes: the request as a `--where` [`Subject`] (only what is
//! known before the app answers), the decision (first matching primary route, every matching
//! copy route), and the path each route's app gets.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::time::Duration;

use relay_server::protocol::Header;

use super::{Mode, Route};
use crate::exchange::{display_path, Request};
use crate::query::{Expr, Subject, Term};
use crate::verify::{self, Provider, Recognized, Verdict};

/// How a request's signature verdict is found, for `verdict:` terms.
type Check<'a> = Box<dyn Fn(&Request) -> Option<Verdict> + 'a>;

/// A request being routed, as the match expressions see it. What needs the body (the event,
/// the provider, the verdict) is worked out once, when a term first asks.
pub struct Incoming<'a> {
    request: &'a Request,
    size: u64,
    received_at_ms: i64,
    event: OnceCell<Option<Recognized>>,
    verdict: OnceCell<Option<Verdict>>,
    /// How to check the signature for `verdict:` terms (the session's `--secret`: a route's own
    /// secret is known only once the route is chosen).
    check: Check<'a>,
}

impl<'a> Incoming<'a> {
    /// `request`, whose body is `size` bytes long (its body may be empty when no route reads
    /// it: see [`needs_body`]), received at `received_at_ms`; `check` gives its signature
    /// verdict.
    pub fn new(
        request: &'a Request,
        size: u64,
        received_at_ms: i64,
        check: impl Fn(&Request) -> Option<Verdict> + 'a,
    ) -> Incoming<'a> {
        Incoming {
            request,
            size,
            received_at_ms,
            event: OnceCell::new(),
            verdict: OnceCell::new(),
            check: Box::new(check),
        }
    }

    /// The event recognised in the request, if a term asked for it (so that the caller need
    /// not recognise it again).
    pub fn take_event(self) -> Option<Option<Recognized>> {
        self.event.into_inner()
    }

    fn event(&self) -> Option<&Recognized> {
        self.event
            .get_or_init(|| verify::recognize(&self.request.headers, &self.request.body))
            .as_ref()
    }
}

impl Subject for Incoming<'_> {
    fn id(&self) -> Option<i64> {
        None
    }
    fn received_at_ms(&self) -> i64 {
        self.received_at_ms
    }
    fn method(&self) -> &str {
        &self.request.method
    }
    fn target(&self) -> &str {
        &self.request.path
    }
    fn headers(&self) -> &[Header] {
        &self.request.headers
    }
    fn request_size(&self) -> u64 {
        self.size
    }
    fn request_body(&self) -> Option<Cow<'_, [u8]>> {
        Some(Cow::Borrowed(&self.request.body))
    }
    fn status(&self) -> Option<u16> {
        None
    }
    fn duration(&self) -> Option<Duration> {
        None
    }
    fn provider(&self) -> Option<Provider> {
        self.event().map(|event| event.provider)
    }
    fn event_type(&self) -> Option<&str> {
        self.event()?.event_type.as_deref()
    }
    fn verdict(&self) -> Option<Verdict> {
        *self.verdict.get_or_init(|| (self.check)(self.request))
    }
    fn replay_of(&self) -> Option<i64> {
        None
    }
}

/// Where one request goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// The first matching primary route (by index); `None`: the default, or a `404`.
    pub primary: Option<usize>,
    /// Every matching copy route, in order.
    pub copies: Vec<usize>,
}

/// Tries `routes` in order on `subject`: the first matching primary route, and every matching
/// copy route.
pub fn decide(routes: &[Route], subject: &(impl Subject + ?Sized)) -> Decision {
    let mut decision = Decision::default();
    for (i, route) in routes.iter().enumerate() {
        match route.mode {
            Mode::Primary if decision.primary.is_some() => {}
            Mode::Primary => {
                if route.query.matches(subject) {
                    decision.primary = Some(i);
                }
            }
            Mode::Copy => {
                if route.query.matches(subject) {
                    decision.copies.push(i);
                }
            }
        }
    }
    decision
}

/// Whether any route's match reads the request body (the event, the provider and the
/// signature are read from it too), so a body that arrives in pieces must be all in first.
pub fn needs_body(routes: &[Route]) -> bool {
    routes.iter().any(|route| reads_body(route.query.expr()))
}

fn reads_body(expr: &Expr) -> bool {
    match expr {
        Expr::Term(term, _) => matches!(
            term,
            Term::Event(_)
                | Term::Provider(_)
                | Term::Verdict(_)
                | Term::Json { .. }
                | Term::Body(_)
        ),
        Expr::Not(inner) => reads_body(inner),
        Expr::And(all) | Expr::Or(all) => all.iter().any(reads_body),
    }
}

/// The request target (path and query, as received) with `prefix` taken off the start of its
/// path, when the path starts with it at a segment boundary: `/stripe/x?a=1` less `/stripe` is
/// `/x?a=1`, `/stripe` is empty (the route's own target), `/stripes` stays.
pub fn strip<'t>(target: &'t str, prefix: Option<&str>) -> Cow<'t, str> {
    let Some(prefix) = prefix else {
        return Cow::Borrowed(target);
    };
    let path = display_path(target);
    match path.strip_prefix(prefix) {
        Some(rest) if rest.is_empty() || rest.starts_with(['/', '?']) => {
            Cow::Owned(rest.to_owned())
        }
        _ => Cow::Borrowed(target),
    }
}

/// Most route names an unrouted request's reason lists.
const NAMES_SHOWN: usize = 8;

/// The one-line reason a request no route took gets with its `404`.
pub fn unrouted_reason(routes: &[Route], method: &str, target: &str) -> String {
    let primaries: Vec<&str> = routes
        .iter()
        .filter(|r| r.mode == Mode::Primary)
        .map(|r| r.name.as_str())
        .collect();
    let path = display_path(target.split('?').next().unwrap_or(target));
    let tried = match primaries.len() {
        0 => "there are no primary routes".to_owned(),
        n if n <= NAMES_SHOWN => format!("tried {}", primaries.join(", ")),
        n => format!(
            "tried {} and {} more",
            primaries[..NAMES_SHOWN].join(", "),
            n - NAMES_SHOWN
        ),
    };
    let method: String = method.chars().filter(|c| !c.is_control()).collect();
    let path: String = path.chars().filter(|c| !c.is_control()).collect();
    format!("no route matches {method} {path} ({tried}) and there is no default target")
}

#[cfg(test)]
mod tests;
