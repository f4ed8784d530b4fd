//! Why an expression does not match a request, in a few words: the term that failed and what
//! the request has instead (`event:invoice.* (event is customer.created)`).

use crate::exchange::{display_path, header};
use crate::inspect::sanitize::{sanitize, truncate};
use crate::query::{Expr, Query, Subject, Term};

/// Longest value quoted from the request.
const VALUE_WIDTH: usize = 60;

/// `None` when `expr` matches `subject`; else why not.
pub fn why_not(expr: &Expr, subject: &(impl Subject + ?Sized)) -> Option<String> {
    match expr {
        Expr::Term(term, _) => (!holds(term, subject)).then(|| failed(term, subject)),
        Expr::Not(inner) => match why_not(inner, subject) {
            Some(_) => None,
            None => Some(format!("{expr} (the request matches {inner})")),
        },
        // The first failing term, in the order written.
        Expr::And(all) => all.iter().find_map(|e| why_not(e, subject)),
        Expr::Or(all) => {
            let mut reasons = Vec::with_capacity(all.len());
            for e in all {
                reasons.push(why_not(e, subject)?);
            }
            Some(format!("none of: {}", reasons.join("; ")))
        }
    }
}

fn holds(term: &Term, subject: &(impl Subject + ?Sized)) -> bool {
    Query::term(term.clone()).matches(subject)
}

/// A failed term, and what the request has instead.
fn failed(term: &Term, subject: &(impl Subject + ?Sized)) -> String {
    let quote = |text: &str| truncate(&sanitize(text), VALUE_WIDTH);
    let has = match term {
        Term::Method(_) => format!("method is {}", quote(subject.method())),
        Term::Path(_) => {
            let target = subject.target();
            let path = display_path(target.split('?').next().unwrap_or(target));
            format!("path is {}", quote(&path))
        }
        Term::Event(_) => match subject.event_type() {
            Some(event) => format!("event is {}", quote(event)),
            None => "no event recognised".to_owned(),
        },
        Term::Provider(_) => match subject.provider() {
            Some(provider) => format!("provider is {}", provider.name()),
            None => "no provider recognised".to_owned(),
        },
        Term::Verdict(_) => match subject.verdict() {
            Some(verdict) => format!("signature is {}", verdict.as_str()),
            None => "no signature verdict".to_owned(),
        },
        Term::Size(_) => format!("body is {} bytes", subject.request_size()),
        Term::Header { name, .. } => match header(subject.headers(), name) {
            Some(value) => format!("{name} is {:?}", quote(value)),
            None if subject.headers().iter().any(|h| &h.name == name) => {
                format!("{name} is not text")
            }
            None => format!("no {name} header"),
        },
        Term::Query { key, .. } => match subject.target().split_once('?') {
            Some(_) => format!("{} is missing or differs", quote(key)),
            None => "no query".to_owned(),
        },
        Term::Json { .. } => "the body's value differs, or the body is not JSON".to_owned(),
        Term::Body(_) => "the body does not contain it".to_owned(),
        _ => String::new(),
    };
    if has.is_empty() {
        term.to_string()
    } else {
        format!("{term} ({has})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{Header, Request};
    use crate::routes::Incoming;
    use bytes::Bytes;

    fn why(expr: &str, request: &Request) -> Option<String> {
        let query = Query::parse(expr).unwrap();
        let subject = Incoming::new(request, request.body.len() as u64, 0, |_| None);
        why_not(query.expr(), &subject)
    }

    #[test]
    fn the_failed_term_is_named_with_what_the_request_has() {
        let request = Request {
            method: "POST".into(),
            path: "/github?x=1".into(),
            headers: vec![Header {
                name: "x-github-event".into(),
                value: Bytes::from_static(b"pull_request"),
            }],
            body: Bytes::from_static(b"{}"),
        };
        assert_eq!(why("path:/github* method:POST", &request), None);
        assert_eq!(
            why("path:/github* AND header.x-github-event:push", &request).as_deref(),
            Some("header.x-github-event:push (x-github-event is \"pull_request\")")
        );
        assert_eq!(
            why("path:/stripe* OR event:invoice.*", &request).as_deref(),
            Some(
                "none of: path:/stripe* (path is /github); event:invoice.* (event is pull_request)"
            )
        );
        assert_eq!(
            why("NOT method:POST", &request).as_deref(),
            Some("NOT method:POST (the request matches method:POST)")
        );
        assert_eq!(
            why("header.x-other:*", &request).as_deref(),
            Some("header.x-other:* (no x-other header)")
        );
    }
}
