//! `hooks list`: the newest captures, as a table for people or as NDJSON.

use std::io::{self, Write};

use serde_json::{json, Value};

use crate::cli::{FilterArgs, ListArgs};
use crate::exchange::{display_path, millis, now_ms, rfc3339};
use crate::inspect::sanitize::{cut_line, sanitize, truncate, write_json};
use crate::query::value::{Glob, TimePoint};
use crate::query::{Expr, Query, Span, Term};
use crate::store::{self, Store, Summary};
use crate::UsageError;

/// Longest path shown in the table; longer ones end in `…` (`hooks show` has them whole).
const PATH_WIDTH: usize = 60;

/// Runs `hooks list`.
pub fn list(args: &ListArgs) -> anyhow::Result<()> {
    let query = query(&args.filters, false)?;
    let store = Store::open(&store::path()?)?;
    let rows = store.list(query.as_ref(), args.limit)?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if args.json {
        for row in &rows {
            write_json(&mut out, &summary_json(row))?;
            out.write_all(b"\n")?;
        }
    } else if rows.is_empty() {
        eprintln!("no captures match");
    } else {
        write_table(&rows, now_ms(), &mut out)?;
    }
    out.flush()?;
    Ok(())
}

/// The query `args` ask for: `--where`, and the shorthand flags as terms of the same
/// language; `originals_only` leaves replays out unless `--where` has a `replay:` term.
/// `None` selects everything.
pub fn query(args: &FilterArgs, originals_only: bool) -> Result<Option<Query>, UsageError> {
    let term = |term| Expr::Term(term, Span::default());
    let mut all = Vec::new();
    if let Some(status) = args.status {
        all.push(term(Term::Status(status)));
    }
    if let Some(event) = &args.event {
        all.push(term(Term::Event(Glob::new(event))));
    }
    if let Some(prefix) = &args.path {
        all.push(term(Term::Path(Glob::new(&format!("{prefix}*")))));
    }
    if let Some(since) = args.since {
        all.push(term(Term::Since(TimePoint::Ago(since))));
    }
    let given = match &args.r#where {
        Some(text) => Some(
            Query::parse(text)
                .map_err(|e| UsageError(format!("invalid --where expression\n{e}")))?,
        ),
        None => None,
    };
    // An expression that says which replays it wants (replay:true) gets them.
    if originals_only && !given.as_ref().is_some_and(|q| names_replay(q.expr())) {
        all.push(term(Term::Replay(false)));
    }
    Ok(match (given, all.len()) {
        (given, 0) => given,
        (None, 1) => Some(Query::new(all.remove(0))),
        (None, _) => Some(Query::new(Expr::And(all))),
        (Some(given), _) => {
            all.push(given.expr().clone());
            Some(Query::new(Expr::And(all)))
        }
    })
}

/// Whether `expr` has a `replay:` term anywhere.
fn names_replay(expr: &Expr) -> bool {
    match expr {
        Expr::Term(term, _) => matches!(term, Term::Replay(_)),
        Expr::Not(inner) => names_replay(inner),
        Expr::And(all) | Expr::Or(all) => all.iter().any(names_replay),
    }
}

/// One NDJSON line of `hooks list --json`.
pub fn summary_json(row: &Summary) -> Value {
    let mut value = json!({
        "id": row.id,
        "received_at": rfc3339(row.received_at_ms),
        "method": row.method,
        "path": display_path(&row.path),
        "status": row.status,
        "duration_ms": millis(row.duration),
        "event_type": row.event_type,
        "event_id": row.event_id,
        "verdict": row.verdict.map(|v| v.as_str()),
        "replay_of": row.replay_of,
        "sent": row.sent,
        "target": row.target,
        "route": row.route,
        "copy": row.copy,
    });
    if let Some(error) = &row.error {
        value["error"] = json!(error);
    }
    value
}

/// Writes `rows` as an aligned table with a heading; `now_ms` dates the ages. A ROUTE column
/// comes after STATUS when some row went through a route.
pub fn write_table(rows: &[Summary], now_ms: i64, out: &mut impl Write) -> io::Result<()> {
    let routed = rows.iter().any(|row| row.route.is_some());
    let mut heading: Vec<String> = [
        "ID", "METHOD", "PATH", "EVENT", "STATUS", "VERDICT", "RECEIVED",
    ]
    .map(String::from)
    .to_vec();
    if routed {
        heading.insert(ROUTE_COLUMN, "ROUTE".into());
    }
    let cells: Vec<Vec<String>> = rows.iter().map(|row| cells(row, now_ms, routed)).collect();
    let mut widths: Vec<usize> = heading.iter().map(|h| h.chars().count()).collect();
    for line in &cells {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    write_line(&heading, &widths, None, out)?;
    for (line, row) in cells.iter().zip(rows) {
        write_line(line, &widths, Some(row), out)?;
    }
    Ok(())
}

/// Where ROUTE goes among the columns: after STATUS.
const ROUTE_COLUMN: usize = 5;

fn write_line(
    cells: &[String],
    widths: &[usize],
    row: Option<&Summary>,
    out: &mut impl Write,
) -> io::Result<()> {
    let mut text = String::new();
    for (cell, &width) in cells.iter().zip(widths) {
        text.push_str(cell);
        text.extend(std::iter::repeat_n(' ', width - cell.chars().count() + 2));
    }
    let text = cut_line(text.trim_end());
    match row {
        Some(Summary {
            replay_of: Some(of),
            ..
        }) => writeln!(out, "{text}  (replay of #{of})"),
        Some(Summary {
            sent: true, target, ..
        }) => writeln!(out, "{text}  (sent to {})", sanitize(target)),
        Some(Summary { copy: true, .. }) => writeln!(out, "{text}  (copy)"),
        _ => writeln!(out, "{text}"),
    }
}

fn cells(row: &Summary, now_ms: i64, routed: bool) -> Vec<String> {
    let dash = || "-".to_owned();
    let mut cells = vec![
        format!("#{}", row.id),
        sanitize(&row.method),
        truncate(&sanitize(&display_path(&row.path)), PATH_WIDTH),
        row.event_type.as_deref().map_or_else(dash, sanitize),
        row.status
            .map_or_else(|| "error".to_owned(), |s| s.to_string()),
        row.verdict.map_or_else(dash, |v| v.as_str().to_owned()),
        age(now_ms.saturating_sub(row.received_at_ms)),
    ];
    if routed {
        let route = row.route.as_deref().map_or_else(dash, sanitize);
        cells.insert(ROUTE_COLUMN, route);
    }
    cells
}

/// How long ago, in the largest whole unit: `5s ago`, `3m ago`, `2h ago`, `4d ago`.
fn age(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    match secs {
        0..=59 => format!("{secs}s ago"),
        60..=3599 => format!("{}m ago", secs / 60),
        3600..=86_399 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::CaptureId;
    use std::time::Duration;

    fn summary(id: i64, path: &str, status: Option<u16>) -> Summary {
        Summary {
            id: CaptureId(id),
            received_at_ms: 1_000_000,
            method: "POST".into(),
            path: path.into(),
            status,
            error: status.is_none().then(|| "connection refused".into()),
            duration: Duration::from_micros(3104),
            event_type: Some("invoice.paid".into()),
            event_id: None,
            verdict: None,
            replay_of: None,
            sent: false,
            target: "http://localhost:3000".into(),
            provider: None,
            request_size: 0,
            route: None,
            copy: false,
        }
    }

    #[test]
    fn table_is_aligned_and_escapes_control_characters() {
        let mut rows = vec![
            summary(12, "/webhooks/stripe?live=1", Some(200)),
            summary(9, "x\x1b[2J", None),
        ];
        rows[1].replay_of = Some(CaptureId(3));
        rows.push(summary(15, "/", Some(202)));
        rows[2].sent = true;
        let mut out = Vec::new();
        write_table(&rows, 1_000_000 + 125_000, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "ID   METHOD  PATH                     EVENT         STATUS  VERDICT  RECEIVED\n\
             #12  POST    /webhooks/stripe?live=1  invoice.paid  200     -        2m ago\n\
             #9   POST    /x\\u{1b}[2J              invoice.paid  error   -        2m ago  (replay of #3)\n\
             #15  POST    /                        invoice.paid  202     -        2m ago  (sent to http://localhost:3000)\n"
        );
    }

    /// Issue 22: a ROUTE column once a row went through a route; a copy is marked.
    #[test]
    fn routed_rows_get_a_route_column() {
        let mut rows = vec![
            summary(3, "/stripe/x", Some(200)),
            summary(2, "/stripe/x", Some(500)),
            summary(1, "/other", Some(404)),
        ];
        rows[0].route = Some("billing".into());
        rows[1].route = Some("ci-mirror".into());
        rows[1].copy = true;
        let mut out = Vec::new();
        write_table(&rows, 1_000_000 + 5_000, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ID  METHOD  PATH       EVENT         STATUS  ROUTE      VERDICT  RECEIVED\n\
             #3  POST    /stripe/x  invoice.paid  200     billing    -        5s ago\n\
             #2  POST    /stripe/x  invoice.paid  500     ci-mirror  -        5s ago  (copy)\n\
             #1  POST    /other     invoice.paid  404     -          -        5s ago\n"
        );
    }

    #[test]
    fn json_lines_carry_the_documented_fields() {
        let value = summary_json(&summary(4, "?a=1", None));
        assert_eq!(value["id"], 4);
        assert_eq!(value["path"], "/?a=1");
        assert_eq!(value["status"], Value::Null);
        assert_eq!(value["received_at"], "1970-01-01T00:16:40.000Z");
        assert_eq!(value["duration_ms"], 3.104);
        assert_eq!(value["error"], "connection refused");
        for field in [
            "event_type",
            "event_id",
            "verdict",
            "replay_of",
            "sent",
            "route",
            "copy",
        ] {
            assert!(value.get(field).is_some(), "{field}");
        }
    }

    #[test]
    fn ages_use_the_largest_unit() {
        assert_eq!(age(-5), "0s ago");
        assert_eq!(age(59_999), "59s ago");
        assert_eq!(age(60_000), "1m ago");
        assert_eq!(age(7_200_000), "2h ago");
        assert_eq!(age(86_400_000 * 3), "3d ago");
    }
}
