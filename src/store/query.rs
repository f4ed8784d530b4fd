//! Selecting captures: the filters of `hooks list` and `hooks replay`, and the summaries `list`
//! prints (no bodies are read for them).

use std::time::Duration;

use rusqlite::types::Value;

use super::{now_ms, verdict, Store, StoreError};

/// Which statuses a filter keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Exactly this status, e.g. `404`.
    Exact(u16),
    /// A class: `5` for `5xx`.
    Class(u16),
    /// The app did not answer.
    Error,
}

impl std::str::FromStr for StatusFilter {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{text:?} is not a status filter: use 404, 4xx, 5xx, … or error");
        if text == "error" {
            return Ok(StatusFilter::Error);
        }
        if let Some(class) = text.to_ascii_lowercase().strip_suffix("xx") {
            return match class.parse::<u16>() {
                Ok(class @ 1..=5) => Ok(StatusFilter::Class(class)),
                _ => Err(bad()),
            };
        }
        match text.parse::<u16>() {
            Ok(status @ 100..=999) => Ok(StatusFilter::Exact(status)),
            _ => Err(bad()),
        }
    }
}

/// What `list` and `replay` select; every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Status (or class, or no answer).
    pub status: Option<StatusFilter>,
    /// Event type, exactly.
    pub event: Option<String>,
    /// Path prefix, as `list` shows paths (always starting with `/`).
    pub path: Option<String>,
    /// Received within this long before now.
    pub since: Option<Duration>,
    /// Leave out replays (so replaying a selection twice does not replay the first replays).
    pub originals_only: bool,
}

impl Filter {
    /// The `WHERE` clause (possibly empty) and its parameters.
    fn clause(&self) -> (String, Vec<Value>) {
        let mut terms: Vec<&str> = Vec::new();
        let mut params: Vec<Value> = Vec::new();
        match self.status {
            Some(StatusFilter::Exact(status)) => {
                terms.push("status = ?");
                params.push(Value::Integer(status.into()));
            }
            Some(StatusFilter::Class(class)) => {
                terms.push("status / 100 = ?");
                params.push(Value::Integer(class.into()));
            }
            Some(StatusFilter::Error) => terms.push("status IS NULL"),
            None => {}
        }
        if let Some(event) = &self.event {
            terms.push("event_type = ?");
            params.push(Value::Text(event.clone()));
        }
        if let Some(prefix) = &self.path {
            // Compare bytes, not LIKE, so `%` and `_` in the prefix mean themselves.
            terms.push(
                "substr(CASE WHEN substr(path, 1, 1) = '/' THEN path ELSE '/' || path END, 1, length(?)) = ?",
            );
            params.push(Value::Text(prefix.clone()));
            params.push(Value::Text(prefix.clone()));
        }
        if let Some(since) = self.since {
            terms.push("received_at >= ?");
            let span = i64::try_from(since.as_millis()).unwrap_or(i64::MAX);
            params.push(Value::Integer(now_ms().saturating_sub(span)));
        }
        if self.originals_only {
            terms.push("replay_of IS NULL");
        }
        if terms.is_empty() {
            return (String::new(), params);
        }
        (format!("WHERE {}", terms.join(" AND ")), params)
    }
}

/// One line of `hooks list`.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Capture id.
    pub id: i64,
    /// When it was received, in ms since the Unix epoch.
    pub received_at_ms: i64,
    /// HTTP method.
    pub method: String,
    /// Path with query, as the relay gave it.
    pub path: String,
    /// The app's status; `None` when it did not answer.
    pub status: Option<u16>,
    /// Why the app did not answer.
    pub error: Option<String>,
    /// From forwarding to the full answer.
    pub duration: Duration,
    /// Provider event type.
    pub event_type: Option<String>,
    /// Provider event id.
    pub event_id: Option<String>,
    /// The signature verdict (see [`verdict`]).
    pub verdict: Option<String>,
    /// The capture this one replays.
    pub replay_of: Option<i64>,
    /// Whether `hooks send` made it.
    pub sent: bool,
}

impl Store {
    /// The newest captures matching `filter`, newest first, at most `limit`.
    pub fn list(&self, filter: &Filter, limit: usize) -> Result<Vec<Summary>, StoreError> {
        let (clause, mut params) = filter.clause();
        params.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
        let sql = format!(
            "SELECT id, received_at, method, path, status, error, duration_us, event_type, \
             event_id, signature, replay_of, sent FROM captures {clause} ORDER BY id DESC LIMIT ?"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.fail(e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |r| {
                Ok(Summary {
                    id: r.get(0)?,
                    received_at_ms: r.get(1)?,
                    method: r.get(2)?,
                    path: r.get(3)?,
                    status: r.get(4)?,
                    error: r.get(5)?,
                    duration: Duration::from_micros(r.get::<_, i64>(6)?.max(0) as u64),
                    event_type: r.get(7)?,
                    event_id: r.get(8)?,
                    verdict: verdict(r.get::<_, Option<String>>(9)?.as_deref()),
                    replay_of: r.get(10)?,
                    sent: r.get(11)?,
                })
            })
            .map_err(|e| self.fail(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.fail(e))
    }

    /// The ids of every capture matching `filter`, oldest first.
    pub fn ids(&self, filter: &Filter) -> Result<Vec<i64>, StoreError> {
        let (clause, params) = filter.clause();
        let sql = format!("SELECT id FROM captures {clause} ORDER BY id");
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.fail(e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |r| r.get(0))
            .map_err(|e| self.fail(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.fail(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_filters_parse() {
        assert_eq!("404".parse(), Ok(StatusFilter::Exact(404)));
        assert_eq!("5xx".parse(), Ok(StatusFilter::Class(5)));
        assert_eq!("2XX".parse(), Ok(StatusFilter::Class(2)));
        assert_eq!("error".parse(), Ok(StatusFilter::Error));
        for bad in ["", "6xx", "xx", "42", "abc", "1000"] {
            assert!(bad.parse::<StatusFilter>().is_err(), "{bad:?}");
        }
    }
}
