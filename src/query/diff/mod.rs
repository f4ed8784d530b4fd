//! Comparing two exchanges, for `hooks diff` and `replay --check`: the request line, the
//! headers as an ordered list of (name, value) (repeats and order count), the bodies (by JSON
//! pointer when both are JSON, by key when both are forms, else by bytes), and the two answers
//! likewise. [`diff`] returns plain data (`Serialize`, for `--json`); [`render`] writes it for
//! people.

mod headers;
mod render;

/// Something `--ignore` leaves out of the comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignore {
    /// A JSON pointer, with everything under it, in both bodies.
    Pointer(Pointer),
    /// A response header (name lowercase).
    Header(String),
}

/// `--ignore`'s value: `header.NAME`, else a JSON pointer.
pub fn parse_ignore(text: &str) -> Result<Ignore, String> {
    if let Some(name) = text.strip_prefix("header.") {
        return match http::HeaderName::from_bytes(name.as_bytes()) {
            Ok(name) => Ok(Ignore::Header(name.as_str().to_owned())),
            Err(_) => Err(format!("{name:?} is not a header name")),
        };
    }
    Pointer::parse(text).map(Ignore::Pointer).ok_or_else(|| {
        format!(
            "{text:?} is neither a JSON pointer (/data/object/id, or \"\" for the whole body) \
             nor header.NAME"
        )
    })
}

#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::collections::HashMap;

use relay_server::protocol::Header;
use serde::Serialize;
use serde_json::Value;

pub use headers::HeaderChange;
pub use render::render;

use super::value::{compare_numbers, Pointer};
use crate::exchange::{Exchange, Outcome};

/// Most changes listed per body; the rest are counted (two unrelated 10 MiB documents would
/// otherwise list millions).
pub const MAX_CHANGES: usize = 1000;

/// What to leave out of the comparison.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// JSON pointers skipped with everything below them, in both bodies (for forms, `/KEY`
    /// skips the key).
    pub ignore: Vec<Pointer>,
    /// Header names (any case) left out of both header lists, such as `date`.
    pub ignore_headers: Vec<String>,
}

/// A value on each side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Changed<T> {
    /// In the first exchange.
    pub a: T,
    /// In the second.
    pub b: T,
}

/// How two exchanges differ.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diff {
    /// `METHOD target` on each side, when they differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_line: Option<Changed<String>>,
    /// The request headers that differ.
    pub request_headers: Vec<HeaderChange>,
    /// How the request bodies differ.
    pub request_body: BodyDiff,
    /// How the answers differ.
    pub response: ResponseDiff,
}

/// How two answers differ.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponseDiff {
    /// The status (or the failure) on each side, when they differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Changed<Status>>,
    /// The response headers that differ (when both answered).
    pub headers: Vec<HeaderChange>,
    /// How the response bodies differ (when both answered).
    pub body: BodyDiff,
}

/// A status, or why there was none.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Status {
    /// The app answered with this status.
    Code(u16),
    /// It did not answer.
    Error {
        /// Why.
        error: String,
    },
}

/// How two bodies differ.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BodyDiff {
    /// No difference (for JSON and forms: none outside the ignored parts).
    Same,
    /// Both are JSON: the values that differ, by pointer, in document order.
    Json {
        /// At most [`MAX_CHANGES`].
        changes: Vec<JsonChange>,
        /// Changes not listed.
        more: usize,
    },
    /// Both are forms: the keys whose values differ.
    Form {
        /// At most [`MAX_CHANGES`].
        changes: Vec<FormChange>,
        /// Changes not listed.
        more: usize,
    },
    /// Anything else: where the bytes first differ.
    Bytes {
        /// Length of the first.
        a_len: usize,
        /// Length of the second.
        b_len: usize,
        /// Offset of the first byte that differs (the shorter length when one is a prefix of
        /// the other).
        first_difference: usize,
    },
}

/// One difference between two JSON documents.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum JsonChange {
    /// Only in the second.
    Added {
        /// Where.
        pointer: String,
        /// The value.
        value: Value,
    },
    /// Only in the first.
    Removed {
        /// Where.
        pointer: String,
        /// The value.
        value: Value,
    },
    /// In both, different.
    Changed {
        /// Where.
        pointer: String,
        /// In the first.
        a: Value,
        /// In the second.
        b: Value,
    },
}

/// A form key whose values differ (all of its values, in order, on each side).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FormChange {
    /// The key, decoded.
    pub key: String,
    /// Its values in the first (none: absent).
    pub a: Vec<String>,
    /// Its values in the second.
    pub b: Vec<String>,
}

impl Diff {
    /// Whether nothing differs.
    pub fn is_same(&self) -> bool {
        self.request_line.is_none()
            && self.request_headers.is_empty()
            && self.request_body == BodyDiff::Same
            && self.response.status.is_none()
            && self.response.headers.is_empty()
            && self.response.body == BodyDiff::Same
    }
}

/// Compares `a` with `b`.
pub fn diff(a: &Exchange, b: &Exchange, options: &Options) -> Diff {
    let (a_request, b_request) = (&a.request, &b.request);
    let line = |e: &Exchange| format!("{} {}", e.request.method, e.request.path);
    let same_line = a_request.method == b_request.method && a_request.path == b_request.path;
    let request_line = (!same_line).then(|| Changed {
        a: line(a),
        b: line(b),
    });
    let ignore = &options.ignore;
    Diff {
        request_line,
        request_headers: headers::diff(
            &a_request.headers,
            &b_request.headers,
            &options.ignore_headers,
        ),
        request_body: bodies(
            &a_request.headers,
            &a_request.body,
            &b_request.headers,
            &b_request.body,
            ignore,
        ),
        response: answers(&a.outcome, &b.outcome, options),
    }
}

/// Compares two answers: the response half of [`diff`] (`replay --check` compares only these).
pub fn answers(a: &Outcome, b: &Outcome, options: &Options) -> ResponseDiff {
    let status = |outcome: &Outcome| match outcome {
        Outcome::Answered(response) => Status::Code(response.status),
        Outcome::Failed(why) => Status::Error { error: why.clone() },
    };
    let (status_a, status_b) = (status(a), status(b));
    let status = (status_a != status_b).then_some(Changed {
        a: status_a,
        b: status_b,
    });
    match (a.response(), b.response()) {
        (Some(a), Some(b)) => ResponseDiff {
            status,
            headers: headers::diff(&a.headers, &b.headers, &options.ignore_headers),
            body: bodies(&a.headers, &a.body, &b.headers, &b.body, &options.ignore),
        },
        _ => ResponseDiff {
            status,
            headers: Vec::new(),
            body: BodyDiff::Same,
        },
    }
}

/// The first `content-type` of `headers`, lowercase.
fn content_type(headers: &[Header]) -> String {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-type"))
        .map(|h| String::from_utf8_lossy(&h.value).to_ascii_lowercase())
        .unwrap_or_default()
}

/// `body` as JSON, when it is labelled so or looks like an object or array (as `listen` shows
/// bodies).
fn as_json(body: &[u8], content_type: &str) -> Option<Value> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    let looks = content_type.contains("json") || matches!(first, b'{' | b'[');
    looks.then(|| serde_json::from_slice(body).ok()).flatten()
}

fn bodies(
    headers_a: &[Header],
    a: &[u8],
    headers_b: &[Header],
    b: &[u8],
    ignore: &[Pointer],
) -> BodyDiff {
    if a == b {
        return BodyDiff::Same;
    }
    let (type_a, type_b) = (content_type(headers_a), content_type(headers_b));
    if let (Some(json_a), Some(json_b)) = (as_json(a, &type_a), as_json(b, &type_b)) {
        let mut changes = Changes::default();
        json(&json_a, &json_b, &mut String::new(), ignore, &mut changes);
        return changes.into_body(|changes, more| BodyDiff::Json { changes, more });
    }
    let form = "application/x-www-form-urlencoded";
    if type_a.starts_with(form) && type_b.starts_with(form) {
        return forms(a, b, ignore);
    }
    let first_difference = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    BodyDiff::Bytes {
        a_len: a.len(),
        b_len: b.len(),
        first_difference,
    }
}

/// Changes found so far, at most [`MAX_CHANGES`] kept.
struct Changes<T> {
    kept: Vec<T>,
    more: usize,
}

impl<T> Default for Changes<T> {
    fn default() -> Self {
        Changes {
            kept: Vec::new(),
            more: 0,
        }
    }
}

impl<T> Changes<T> {
    fn push(&mut self, change: T) {
        if self.kept.len() < MAX_CHANGES {
            self.kept.push(change);
        } else {
            self.more += 1;
        }
    }

    fn into_body(self, make: impl FnOnce(Vec<T>, usize) -> BodyDiff) -> BodyDiff {
        if self.kept.is_empty() {
            BodyDiff::Same
        } else {
            make(self.kept, self.more)
        }
    }
}

/// Whether `pointer` (escaped, as built here) is ignored.
fn ignored(pointer: &str, ignore: &[Pointer]) -> bool {
    ignore.iter().any(|p| p.as_str() == pointer)
}

/// Compares `a` with `b` at `pointer`, recording what differs below it.
fn json(
    a: &Value,
    b: &Value,
    pointer: &mut String,
    ignore: &[Pointer],
    out: &mut Changes<JsonChange>,
) {
    if ignored(pointer, ignore) {
        return;
    }
    match (a, b) {
        (Value::Object(map_a), Value::Object(map_b)) => {
            for (key, value_a) in map_a {
                let len = descend(pointer, key);
                match map_b.get(key) {
                    Some(value_b) => json(value_a, value_b, pointer, ignore, out),
                    None if !ignored(pointer, ignore) => out.push(JsonChange::Removed {
                        pointer: pointer.clone(),
                        value: value_a.clone(),
                    }),
                    None => {}
                }
                pointer.truncate(len);
            }
            for (key, value_b) in map_b.iter().filter(|(k, _)| !map_a.contains_key(*k)) {
                let len = descend(pointer, key);
                if !ignored(pointer, ignore) {
                    out.push(JsonChange::Added {
                        pointer: pointer.clone(),
                        value: value_b.clone(),
                    });
                }
                pointer.truncate(len);
            }
        }
        (Value::Array(items_a), Value::Array(items_b)) => {
            for i in 0..items_a.len().max(items_b.len()) {
                let len = descend(pointer, &i.to_string());
                match (items_a.get(i), items_b.get(i)) {
                    (Some(x), Some(y)) => json(x, y, pointer, ignore, out),
                    (Some(x), None) if !ignored(pointer, ignore) => out.push(JsonChange::Removed {
                        pointer: pointer.clone(),
                        value: x.clone(),
                    }),
                    (None, Some(y)) if !ignored(pointer, ignore) => out.push(JsonChange::Added {
                        pointer: pointer.clone(),
                        value: y.clone(),
                    }),
                    _ => {}
                }
                pointer.truncate(len);
            }
        }
        (Value::Number(x), Value::Number(y)) if compare_numbers(x, y) == Some(Ordering::Equal) => {}
        _ if a == b => {}
        _ => out.push(JsonChange::Changed {
            pointer: pointer.clone(),
            a: a.clone(),
            b: b.clone(),
        }),
    }
}

/// Appends `/token` (escaped) to `pointer`; returns the length to cut it back to.
fn descend(pointer: &mut String, token: &str) -> usize {
    let len = pointer.len();
    pointer.push('/');
    for c in token.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
    len
}

fn forms(a: &[u8], b: &[u8], ignore: &[Pointer]) -> BodyDiff {
    // Each key in order of first appearance, with its values on each side.
    let mut keys: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (side, body) in [(0, a), (1, b)] {
        for (key, value) in form_urlencoded::parse(body) {
            let at = *index.entry(key.to_string()).or_insert_with(|| {
                keys.push((key.to_string(), Vec::new(), Vec::new()));
                keys.len() - 1
            });
            let entry = &mut keys[at];
            let values = if side == 0 {
                &mut entry.1
            } else {
                &mut entry.2
            };
            values.push(value.into_owned());
        }
    }
    let mut changes = Changes::default();
    for (key, a, b) in keys {
        let mut pointer = String::new();
        descend(&mut pointer, &key);
        if a != b && !ignored(&pointer, ignore) {
            changes.push(FormChange { key, a, b });
        }
    }
    changes.into_body(|changes, more| BodyDiff::Form { changes, more })
}
