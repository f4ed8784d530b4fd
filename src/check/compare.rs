//! What changed between an expected answer and a new one, as `replay --check` reports it: the
//! response half of the diff engine (`query::diff`), flattened into a list of changes, with the
//! headers that change on every answer left out.

use serde::Serialize;
use serde_json::Value;

use crate::exchange::Outcome;
use crate::query::diff::{self, BodyDiff, HeaderChange, Ignore, JsonChange, Status};

/// Changes named on a line; the rest are counted.
const SHOWN: usize = 3;

/// Longest value shown on a line, in characters.
const MAX_VALUE: usize = 60;

/// Response headers that differ between two answers whatever the app's code does: times,
/// lengths and framing, per-request ids and traces, cache validators. `--ignore header.NAME`
/// adds to them.
pub const VOLATILE_HEADERS: [&str; 20] = [
    "date",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "age",
    "expires",
    "last-modified",
    "etag",
    "set-cookie",
    "x-request-id",
    "request-id",
    "x-correlation-id",
    "traceparent",
    "tracestate",
    "x-trace-id",
    "x-runtime",
    "x-response-time",
    "server-timing",
    "cf-ray",
];

/// One difference between the expected answer and the new one.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "part", rename_all = "snake_case")]
pub enum Change {
    /// The status, or whether there was an answer at all.
    Status {
        /// Expected.
        before: Status,
        /// Got.
        after: Status,
    },
    /// A response header; `None` on the side that lacks it.
    Header {
        /// Name, lowercase.
        name: String,
        /// Expected value.
        #[serde(skip_serializing_if = "Option::is_none")]
        before: Option<String>,
        /// New value.
        #[serde(skip_serializing_if = "Option::is_none")]
        after: Option<String>,
    },
    /// A value in the body, by JSON pointer (`/KEY` for a form); `None` on the side that lacks
    /// it.
    Body {
        /// The pointer.
        path: String,
        /// Expected value.
        #[serde(skip_serializing_if = "Option::is_none")]
        before: Option<Value>,
        /// New value.
        #[serde(skip_serializing_if = "Option::is_none")]
        after: Option<Value>,
    },
    /// Bodies that are not both JSON (or forms): their lengths and the first byte that differs.
    Bytes {
        /// Expected length.
        before: usize,
        /// New length.
        after: usize,
        /// Offset of the first byte that differs.
        first_difference: usize,
    },
}

/// How a new answer differs from the expected one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Verdict {
    /// The changes, status first, then headers, then the body in document order.
    pub changes: Vec<Change>,
    /// Changes of the body not listed (past the diff engine's limit).
    pub more: usize,
}

impl Verdict {
    /// Whether nothing changed.
    pub fn is_same(&self) -> bool {
        self.changes.is_empty() && self.more == 0
    }
}

/// Compares `got` with `expected`. `only_headers`, when given, limits the headers compared to
/// those names (a fixture compares the headers it lists); the volatile ones and the ignored
/// ones are never compared.
pub fn compare(
    expected: &Outcome,
    got: &Outcome,
    ignore: &[Ignore],
    only_headers: Option<&[String]>,
) -> Verdict {
    let mut ignore_headers: Vec<String> = VOLATILE_HEADERS.map(String::from).to_vec();
    let mut pointers = Vec::new();
    for item in ignore {
        match item {
            Ignore::Pointer(pointer) => pointers.push(pointer.clone()),
            Ignore::Header(name) => ignore_headers.push(name.clone()),
        }
    }
    if let (Some(only), Some(got)) = (only_headers, got.response()) {
        let unlisted = got
            .headers
            .iter()
            .filter(|h| !only.iter().any(|n| n.eq_ignore_ascii_case(&h.name)));
        ignore_headers.extend(unlisted.map(|h| h.name.clone()));
    }
    let options = diff::Options {
        ignore: pointers,
        ignore_headers,
    };
    flatten(diff::answers(expected, got, &options))
}

fn flatten(response: diff::ResponseDiff) -> Verdict {
    let mut verdict = Verdict::default();
    if let Some(status) = response.status {
        verdict.changes.push(Change::Status {
            before: status.a,
            after: status.b,
        });
    }
    verdict
        .changes
        .extend(response.headers.into_iter().map(|change| match change {
            HeaderChange::Added { name, value } => Change::Header {
                name,
                before: None,
                after: Some(value),
            },
            HeaderChange::Removed { name, value } => Change::Header {
                name,
                before: Some(value),
                after: None,
            },
            HeaderChange::Changed { name, a, b } => Change::Header {
                name,
                before: Some(a),
                after: Some(b),
            },
        }));
    body(response.body, &mut verdict);
    verdict
}

fn body(found: BodyDiff, verdict: &mut Verdict) {
    match found {
        BodyDiff::Same => {}
        BodyDiff::Json { changes, more } => {
            verdict.more += more;
            verdict.changes.extend(changes.into_iter().map(|c| match c {
                JsonChange::Added { pointer, value } => Change::Body {
                    path: pointer,
                    before: None,
                    after: Some(value),
                },
                JsonChange::Removed { pointer, value } => Change::Body {
                    path: pointer,
                    before: Some(value),
                    after: None,
                },
                JsonChange::Changed { pointer, a, b } => Change::Body {
                    path: pointer,
                    before: Some(a),
                    after: Some(b),
                },
            }));
        }
        BodyDiff::Form { changes, more } => {
            verdict.more += more;
            verdict.changes.extend(changes.into_iter().map(|c| {
                let path = format!("/{}", c.key.replace('~', "~0").replace('/', "~1"));
                Change::Body {
                    path,
                    before: form_value(c.a),
                    after: form_value(c.b),
                }
            }));
        }
        BodyDiff::Bytes {
            a_len,
            b_len,
            first_difference,
        } => verdict.changes.push(Change::Bytes {
            before: a_len,
            after: b_len,
            first_difference,
        }),
    }
}

/// A form key's values as JSON: none, one string, or a list when repeated.
fn form_value(mut values: Vec<String>) -> Option<Value> {
    match values.len() {
        0 => None,
        1 => values.pop().map(Value::String),
        _ => Some(Value::from(values)),
    }
}

/// The verdict for a line: `same`, `changed: no answer (why)`, or `changed:` and the first few
/// changes (`status 200 → 500, /data/amount 2000 → 2100 (and 2 more)`). Not yet sanitized.
pub fn describe(verdict: &Verdict) -> String {
    if verdict.is_same() {
        return "same".to_owned();
    }
    for change in &verdict.changes {
        if let Change::Status {
            after: Status::Error { error },
            ..
        } = change
        {
            return format!("changed: no answer ({error})");
        }
    }
    let shown: Vec<String> = verdict.changes.iter().take(SHOWN).map(one).collect();
    let rest = verdict.changes.len().saturating_sub(SHOWN) + verdict.more;
    let more = if rest > 0 {
        format!(" (and {rest} more)")
    } else {
        String::new()
    };
    format!("changed: {}{more}", shown.join(", "))
}

fn one(change: &Change) -> String {
    let side = |value: Option<String>| value.unwrap_or_else(|| "(none)".to_owned());
    match change {
        Change::Status { before, after } => {
            format!("status {} → {}", status(before), status(after))
        }
        Change::Header {
            name,
            before,
            after,
        } => format!(
            "header {name} {} → {}",
            side(before.as_deref().map(short)),
            side(after.as_deref().map(short))
        ),
        Change::Body {
            path,
            before,
            after,
        } => {
            let value = |v: &Option<Value>| side(v.as_ref().map(|v| short(&v.to_string())));
            let path = if path.is_empty() { "body" } else { path };
            format!("{path} {} → {}", value(before), value(after))
        }
        Change::Bytes {
            before,
            after,
            first_difference,
        } => format!(
            "body {before} bytes → {after} bytes (first difference at byte {first_difference})"
        ),
    }
}

fn status(status: &Status) -> String {
    match status {
        Status::Code(code) => code.to_string(),
        Status::Error { .. } => "no answer".to_owned(),
    }
}

fn short(text: &str) -> String {
    if text.chars().count() <= MAX_VALUE {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(MAX_VALUE - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests;
