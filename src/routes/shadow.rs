//! Routes that can never match: a primary route that an earlier primary route leaves nothing
//! to, because the earlier one matches every request the later one does.
//!
//! Deciding that in general is deciding whether one expression implies another, which regexes,
//! ranges and JSON values make impractical. [`covers`] is a sound approximation: when it says
//! yes, the earlier route does take everything (no false alarms); it may miss cases. It sees:
//!
//! - the same term on both sides (`event:invoice.paid` and `event:invoice.paid`);
//! - a glob that takes the other's: `*` takes every value the field has, a prefix glob `p*`
//!   takes a value or glob that starts with `p` (`path:/stripe*` takes `path:/stripe/billing*`
//!   and `path:/stripe/x`), any glob takes a literal it matches (`event:invoice.*` takes
//!   `event:invoice.paid`), for the same field (and header name, query key);
//! - `path:*`, `path:/*` and `method:*`, which every request matches;
//! - `AND`: the earlier route's every term must be taken by some term of the later one
//!   (`path:/stripe*` takes `path:/stripe* AND event:invoice.*`);
//! - `OR`: a later `a OR b` is taken when both are; an earlier `a OR b` takes what either takes;
//! - `NOT x` takes `NOT y` when `y` takes `x`.
//!
//! It does not see what needs reasoning across terms or values: ranges (`size:>10` and
//! `size:>100`), regular expressions, JSON values other than the same test, `since`/`before`,
//! a later route split across several earlier ones (`method:GET`, then `method:POST`, then
//! `method:GET OR method:POST`), or a later route that matches nothing at all.

use super::{Mode, Route};
use crate::query::value::Glob;
use crate::query::{Expr, Term};

/// For each primary route that an earlier primary route leaves nothing to: (its index, the
/// earlier one's). Copy routes get every request they match, whatever came before.
pub fn shadowed_by(routes: &[Route]) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    for (later, route) in routes.iter().enumerate() {
        if route.mode != Mode::Primary {
            continue;
        }
        let earlier = routes[..later]
            .iter()
            .position(|e| e.mode == Mode::Primary && covers(e.query.expr(), route.query.expr()));
        if let Some(earlier) = earlier {
            found.push((later, earlier));
        }
    }
    found
}

/// Whether every request that `b` matches is matched by `a` too, as far as can be seen term by
/// term (see the module's documentation): `true` is certain, `false` is "not shown".
pub fn covers(a: &Expr, b: &Expr) -> bool {
    match (a, b) {
        (_, Expr::Or(all)) => all.iter().all(|b| covers(a, b)),
        (Expr::And(all), _) => all.iter().all(|a| covers(a, b)),
        (Expr::Or(all), _) => all.iter().any(|a| covers(a, b)),
        (Expr::Term(a, _), _) if always(a) => true,
        (Expr::Term(ta, _), Expr::Term(tb, _)) => term_covers(ta, tb),
        (Expr::Not(x), Expr::Not(y)) => covers(y, x),
        // One term of a conjunction is enough to be taken.
        (Expr::Term(..) | Expr::Not(_), Expr::And(all)) => all.iter().any(|b| covers(a, b)),
        _ => false,
    }
}

/// Whether every request matches `term`: its path and method are never missing.
fn always(term: &Term) -> bool {
    match term {
        Term::Path(g) => g.pattern() == "*" || g.pattern() == "/*",
        Term::Method(g) => g.pattern() == "*",
        _ => false,
    }
}

/// Whether every request that term `b` matches is matched by term `a`.
fn term_covers(a: &Term, b: &Term) -> bool {
    if a == b {
        return true;
    }
    match (a, b) {
        (Term::Path(ga), Term::Path(gb))
        | (Term::Method(ga), Term::Method(gb))
        | (Term::Event(ga), Term::Event(gb))
        | (Term::Provider(ga), Term::Provider(gb)) => glob_covers(ga, gb),
        (
            Term::Header {
                name: na,
                value: ga,
            },
            Term::Header {
                name: nb,
                value: gb,
            },
        ) => na == nb && glob_covers(ga, gb),
        (Term::Query { key: ka, value: ga }, Term::Query { key: kb, value: gb }) => {
            ka == kb && glob_covers(ga, gb)
        }
        _ => false,
    }
}

/// Whether glob `a` matches every text glob `b` matches (both of one field, so both tell case
/// apart or both do not).
fn glob_covers(a: &Glob, b: &Glob) -> bool {
    if a.pattern() == "*" || a == b {
        return true;
    }
    if b.is_literal() {
        return a.matches(b.pattern().as_bytes());
    }
    // `p*`: a prefix glob takes every text that starts with `p`, so every text of a glob whose
    // first literal piece starts with `p`.
    match a.pattern().strip_suffix('*') {
        Some(prefix) if !prefix.contains('*') => {
            let first = b.literal_pieces().next().unwrap_or("");
            first.len() >= prefix.len() && a.matches(first.as_bytes())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Query;

    fn covers_text(a: &str, b: &str) -> bool {
        let (a, b) = (Query::parse(a).unwrap(), Query::parse(b).unwrap());
        covers(a.expr(), b.expr())
    }

    #[test]
    fn prefix_globs_and_conjunctions_are_seen() {
        for (a, b) in [
            ("path:/stripe*", "path:/stripe*"),
            ("path:/stripe*", "path:/stripe/billing*"),
            ("path:/stripe*", "path:/stripe/x"),
            ("path:/stripe*", "path:/stripe* AND event:invoice.*"),
            (
                "path:/stripe* method:POST",
                "method:post path:/stripe/x event:a",
            ),
            ("event:invoice.*", "event:invoice.paid"),
            ("event:*", "event:invoice.paid"),
            ("path:*", "header.x-github-event:push"),
            ("method:*", "NOT path:/x"),
            ("header.x-github-event:*", "header.x-github-event:push"),
            ("path:/a* OR path:/b*", "path:/b/c"),
            ("path:/a*", "path:/a/1 OR path:/a/2"),
            ("NOT path:/a/b*", "NOT path:/a*"),
            ("json./type:x", "json./type:x method:POST"),
        ] {
            assert!(covers_text(a, b), "{a} should take everything {b} matches");
        }
    }

    #[test]
    fn what_is_not_certain_is_not_claimed() {
        for (a, b) in [
            ("path:/stripe*", "path:/strip*"),
            ("path:/stripe/x", "path:/stripe*"),
            ("path:/Stripe*", "path:/stripe/x"),
            ("path:/stripe* AND event:invoice.*", "path:/stripe*"),
            ("event:invoice.*", "event:*.paid"),
            ("*.paid", "x"),
            ("header.a:*", "header.b:1"),
            ("size:>10", "size:>100"),
            ("NOT path:/a*", "NOT path:/a/b*"),
            ("path:/a* OR path:/b*", "path:/c"),
            ("path:/a*", "path:/a/1 OR path:/b"),
            ("event:*", "path:/x"),
        ]
        .iter()
        .filter(|(a, _)| Query::parse(a).is_ok())
        {
            assert!(!covers_text(a, b), "{a} does not surely take {b}");
        }
        // Methods ignore case: either spelling takes the other.
        assert!(covers_text("method:post", "method:POST"));
    }
}
