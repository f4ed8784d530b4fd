//! The part of a `--where` expression SQLite can decide, as a `WHERE` clause over the capture
//! columns that selects a superset of the matching rows; the whole expression is then
//! evaluated on the rows it selects (see `query.rs`), so headers and bodies are read only for
//! rows the columns did not exclude.
//!
//! Each term becomes a condition that is exact (true for a row exactly when the term is) or
//! only a superset (`path` compared without case, `verdict` found in the signature JSON).
//! Terms over headers and bodies become nothing (every row). Under `NOT` a superset would turn
//! into a subset, so only exact conditions are negated; the rest is left to the evaluation.

use rusqlite::types::Value;

use crate::query::value::{Compare, Glob, Op, StatusPattern};
use crate::query::{Expr, Query, Term};

/// The length of the request body: a BLOB, or the length of its file (see `bodies.rs`).
/// SQLite reads neither a BLOB's bytes for `length()` nor the column for `typeof()`.
pub(super) const REQUEST_SIZE: &str = "CASE typeof(request_body) WHEN 'integer' THEN \
     request_body ELSE length(request_body) END";

/// The path as `path:` globs see it: without the query, starting with `/`.
const PATH: &str = "(CASE WHEN substr(path, 1, 1) = '/' THEN '' ELSE '/' END || \
     CASE WHEN instr(path, '?') > 0 THEN substr(path, 1, instr(path, '?') - 1) ELSE path END)";

/// A condition, and whether it is exact.
struct Cond {
    sql: String,
    exact: bool,
}

/// The `WHERE` clause (empty when SQLite can exclude nothing), its parameters, and whether it
/// decides the whole expression; `now_ms` anchors `since` and `before`.
pub(super) fn clause(query: Option<&Query>, now_ms: i64) -> (String, Vec<Value>, bool) {
    let Some(query) = query else {
        return (String::new(), Vec::new(), true);
    };
    let mut params = Vec::new();
    match translate(query.expr(), false, now_ms, &mut params) {
        Some(cond) => (format!("WHERE {}", cond.sql), params, cond.exact),
        None => (String::new(), Vec::new(), false),
    }
}

/// The condition for `expr` (for `NOT expr` when `negated`); `None`: every row.
fn translate(expr: &Expr, negated: bool, now_ms: i64, params: &mut Vec<Value>) -> Option<Cond> {
    match expr {
        Expr::Term(term, _) => {
            let mark = params.len();
            let cond = term_sql(term, now_ms, params);
            match cond {
                Some(cond) if negated && cond.exact => Some(Cond {
                    // A NULL column makes the condition NULL, which the term counts as false.
                    sql: format!("NOT IFNULL(({}), 0)", cond.sql),
                    exact: true,
                }),
                Some(cond) if !negated => Some(cond),
                _ => {
                    params.truncate(mark);
                    None
                }
            }
        }
        Expr::Not(inner) => translate(inner, !negated, now_ms, params),
        // NOT (a AND b) is NOT a OR NOT b; NOT (a OR b) is NOT a AND NOT b.
        Expr::And(all) if !negated => all_of(all, negated, now_ms, params),
        Expr::Or(all) if negated => all_of(all, negated, now_ms, params),
        Expr::And(all) | Expr::Or(all) => any_of(all, negated, now_ms, params),
    }
}

/// Rows matching every one: those the known conditions keep.
fn all_of(all: &[Expr], negated: bool, now_ms: i64, params: &mut Vec<Value>) -> Option<Cond> {
    let mut parts = Vec::new();
    let mut exact = true;
    for expr in all {
        match translate(expr, negated, now_ms, params) {
            Some(cond) => {
                exact &= cond.exact;
                parts.push(format!("({})", cond.sql));
            }
            None => exact = false,
        }
    }
    (!parts.is_empty()).then(|| Cond {
        sql: parts.join(" AND "),
        exact,
    })
}

/// Rows matching any one: every row unless each one has a condition.
fn any_of(all: &[Expr], negated: bool, now_ms: i64, params: &mut Vec<Value>) -> Option<Cond> {
    let mark = params.len();
    let mut parts = Vec::new();
    let mut exact = true;
    for expr in all {
        let Some(cond) = translate(expr, negated, now_ms, params) else {
            params.truncate(mark);
            return None;
        };
        exact &= cond.exact;
        parts.push(format!("({})", cond.sql));
    }
    Some(Cond {
        sql: parts.join(" OR "),
        exact,
    })
}

fn term_sql(term: &Term, now_ms: i64, params: &mut Vec<Value>) -> Option<Cond> {
    let exact = |sql: String| Some(Cond { sql, exact: true });
    let superset = |sql: String| Some(Cond { sql, exact: false });
    match term {
        Term::Id(c) => exact(compare("id", c.op, Value::Integer(c.value), params)),
        Term::Method(g) => exact(glob("lower(method)", g, params)),
        Term::Path(g) => exact(glob(PATH, g, params)),
        Term::Status(StatusPattern::Error) => exact("status IS NULL".into()),
        Term::Status(StatusPattern::Class(class)) => {
            params.push(Value::Integer(i64::from(*class) * 100));
            params.push(Value::Integer(i64::from(*class) * 100 + 100));
            exact("status >= ? AND status < ?".into())
        }
        Term::Status(StatusPattern::Compare(c)) => exact(compare(
            "status",
            c.op,
            Value::Integer(c.value.into()),
            params,
        )),
        Term::Duration(c) => {
            let micros = i64::try_from(c.value.as_micros()).unwrap_or(i64::MAX);
            exact(compare("duration_us", c.op, Value::Integer(micros), params))
        }
        Term::Size(Compare { op, value }) => {
            let bytes = i64::try_from(*value).unwrap_or(i64::MAX);
            exact(compare(REQUEST_SIZE, *op, Value::Integer(bytes), params))
        }
        Term::Event(g) => exact(glob("event_type", g, params)),
        // The signature is JSON holding these among other text: LIKE finds a superset.
        Term::Provider(g) => superset(contains("signature", g.literal_pieces(), params)),
        Term::Verdict(v) => superset(contains("signature", [v.as_str()], params)),
        Term::Replay(true) => exact("replay_of IS NOT NULL".into()),
        Term::Replay(false) => exact("replay_of IS NULL".into()),
        Term::Sent(true) => exact("sent <> 0".into()),
        Term::Sent(false) => exact("sent = 0".into()),
        Term::Since(t) => {
            params.push(Value::Integer(t.millis(now_ms)));
            exact("received_at >= ?".into())
        }
        Term::Before(t) => {
            params.push(Value::Integer(t.millis(now_ms)));
            exact("received_at < ?".into())
        }
        Term::Route(g) => exact(glob("route", g, params)),
        Term::Header { .. } | Term::Query { .. } | Term::Json { .. } | Term::Body(_) => None,
    }
}

fn compare(column: &str, op: Op, value: Value, params: &mut Vec<Value>) -> String {
    params.push(value);
    let sign = if op == Op::Eq { "=" } else { op.sign() };
    format!("{column} {sign} ?")
}

/// `column` matched by `glob`: `=` for a glob without `*` (an index can serve it), else
/// SQLite's GLOB with its own special characters escaped.
fn glob(column: &str, glob: &Glob, params: &mut Vec<Value>) -> String {
    let pattern = if column.starts_with("lower(") {
        glob.pattern().to_ascii_lowercase()
    } else {
        glob.pattern().to_owned()
    };
    if glob.is_literal() {
        params.push(Value::Text(pattern));
        return format!("{column} = ?");
    }
    let mut escaped = String::with_capacity(pattern.len());
    for c in pattern.chars() {
        match c {
            '?' => escaped.push_str("[?]"),
            '[' => escaped.push_str("[[]"),
            c => escaped.push(c),
        }
    }
    params.push(Value::Text(escaped));
    format!("{column} GLOB ?")
}

/// `column` holding the `pieces` in order, any case (LIKE, with `%`, `_` and `\` escaped).
fn contains<'p>(
    column: &str,
    pieces: impl IntoIterator<Item = &'p str>,
    params: &mut Vec<Value>,
) -> String {
    let mut pattern = String::from("%");
    for piece in pieces {
        for c in piece.chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
    }
    params.push(Value::Text(pattern));
    format!("{column} LIKE ? ESCAPE '\\'")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(text: &str) -> (String, Vec<Value>, bool) {
        clause(Some(&Query::parse(text).unwrap()), 1_000_000)
    }

    #[test]
    fn column_terms_become_exact_conditions() {
        let (sql_text, params, exact) = sql("status:5xx event:invoice.paid since:1s");
        assert_eq!(
            sql_text,
            "WHERE (status >= ? AND status < ?) AND (event_type = ?) AND (received_at >= ?)"
        );
        assert_eq!(
            params,
            [
                Value::Integer(500),
                Value::Integer(600),
                Value::Text("invoice.paid".into()),
                Value::Integer(999_000)
            ]
        );
        assert!(exact);
        let (sql_text, params, _) = sql("event:inv?[*");
        assert_eq!(sql_text, "WHERE event_type GLOB ?");
        assert_eq!(params, [Value::Text("inv[?][[]*".into())]);
    }

    #[test]
    fn body_and_header_terms_leave_a_superset() {
        assert_eq!(sql("json./a:1"), (String::new(), vec![], false));
        let (sql_text, params, exact) = sql("json./a:1 status:500");
        assert_eq!((sql_text.as_str(), exact), ("WHERE (status = ?)", false));
        assert_eq!(params, [Value::Integer(500)]);
        // One side of the OR unknown: every row.
        assert_eq!(
            sql("header.a:* OR status:500"),
            (String::new(), vec![], false)
        );
        let (sql_text, _, exact) = sql("verdict:valid");
        assert_eq!(
            (sql_text.as_str(), exact),
            ("WHERE signature LIKE ? ESCAPE '\\'", false)
        );
    }

    #[test]
    fn negation_keeps_exact_conditions_only() {
        let (sql_text, _, exact) = sql("NOT (status:500 OR replay:true)");
        assert_eq!(
            sql_text,
            "WHERE (NOT IFNULL((status = ?), 0)) AND (NOT IFNULL((replay_of IS NOT NULL), 0))"
        );
        assert!(exact);
        // NOT of a superset would be a subset: left to the evaluation.
        assert_eq!(sql("NOT verdict:valid"), (String::new(), vec![], false));
        let (sql_text, params, exact) = sql("NOT (status:500 verdict:valid)");
        assert_eq!((sql_text.as_str(), exact), ("", false));
        assert!(params.is_empty(), "parameters of dropped conditions go too");
    }
}
