//! Selecting captures with a `--where` query, for `hooks list` and `hooks replay`: SQLite
//! narrows the rows by the columns it can compare (see `sql.rs`), and the query is evaluated on
//! each row it yields, newest first, until enough matched. Headers are read only when the
//! query tests them, and a request body only when a JSON or body term is reached for that row.

use std::borrow::Cow;
use std::path::PathBuf;
use std::time::Duration;

use relay_server::protocol::Header;
use rusqlite::{Connection, OptionalExtension};

use super::bodies::{self, Which};
use super::{generations, headers, signature, sql, Store, StoreError};
use crate::exchange::{now_ms, CaptureId, Provider, Verdict};
use crate::query::{Cost, Query, Subject};

/// One line of `hooks list`.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Capture id.
    pub id: CaptureId,
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
    /// The signature verdict.
    pub verdict: Option<Verdict>,
    /// The capture this one replays.
    pub replay_of: Option<CaptureId>,
    /// Whether `hooks send` made it.
    pub sent: bool,
    /// Where it was forwarded, or sent (`Target`'s display form); empty when nothing took it.
    pub target: String,
    /// The provider whose signature scheme was checked.
    pub provider: Option<Provider>,
    /// The request body's length in bytes.
    pub request_size: u64,
    /// The route that took it.
    pub route: Option<String>,
    /// Whether it is a copy route's copy.
    pub copy: bool,
}

/// Which end of the store to start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    NewestFirst,
    OldestFirst,
}

impl Store {
    /// The newest captures matching `query` (all without one), newest first, at most `limit`.
    pub fn list(&self, query: Option<&Query>, limit: usize) -> Result<Vec<Summary>, StoreError> {
        self.select(query, Order::NewestFirst, limit)
    }

    /// The ids of every capture matching `query`, oldest first.
    pub fn ids(&self, query: Option<&Query>) -> Result<Vec<CaptureId>, StoreError> {
        let rows = self.select(query, Order::OldestFirst, usize::MAX)?;
        Ok(rows.into_iter().map(|row| row.id).collect())
    }

    fn select(
        &self,
        query: Option<&Query>,
        order: Order,
        limit: usize,
    ) -> Result<Vec<Summary>, StoreError> {
        // One snapshot for the rows and the bodies read for them (WAL: the writer goes on).
        let snapshot = self
            .conn
            .unchecked_transaction()
            .map_err(|e| self.fail(e))?;
        let now = now_ms();
        let (clause, params, _) = sql::clause(query, now);
        let cost = query.map_or(Cost::Row, Query::cost);
        let headers = if cost >= Cost::Headers {
            "request_headers"
        } else {
            "NULL"
        };
        let direction = match order {
            Order::NewestFirst => "DESC",
            Order::OldestFirst => "ASC",
        };
        let sql = format!(
            "SELECT id, received_at, method, path, status, error, duration_us, event_type, \
             event_id, signature, replay_of, {}, {headers}, sent, route, copy, target FROM captures {clause} \
             ORDER BY id {direction}",
            sql::REQUEST_SIZE
        );
        let bodies = if cost >= Cost::Json {
            Some(BodyReader::new(&self.conn, self.body_dir()).map_err(|e| self.fail(e))?)
        } else {
            None
        };
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.fail(e))?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params))
            .map_err(|e| self.fail(e))?;
        let mut found = Vec::new();
        while found.len() < limit {
            let Some(row) = rows.next().map_err(|e| self.fail(e))? else {
                break;
            };
            let candidate = read_candidate(row, bodies.as_ref()).map_err(|e| self.fail(e))?;
            let candidate = candidate.map_err(|reason| StoreError::BadHeaders {
                id: reason.0,
                reason: reason.1,
            })?;
            if query.is_none_or(|q| q.matches_at(&candidate, now)) {
                found.push(candidate.summary);
            }
        }
        drop(rows);
        drop(stmt);
        snapshot.commit().map_err(|e| self.fail(e))?;
        Ok(found)
    }

    fn body_dir(&self) -> PathBuf {
        bodies::dir_of(self.file())
    }
}

/// A row as the query sees it.
struct Candidate<'a> {
    summary: Summary,
    provider: Option<Provider>,
    size: u64,
    headers: Vec<Header>,
    bodies: Option<&'a BodyReader<'a>>,
}

/// The candidate in `row`; the inner `Err` is a header list that cannot be read (id, why).
fn read_candidate<'a>(
    row: &rusqlite::Row<'_>,
    bodies: Option<&'a BodyReader<'a>>,
) -> rusqlite::Result<Result<Candidate<'a>, (i64, String)>> {
    let id: i64 = row.get(0)?;
    let signature = signature::from_json(row.get::<_, Option<String>>(9)?.as_deref());
    let (provider, verdict) = match signature {
        Some(signature) => (signature.provider, Some(signature.verdict)),
        None => (None, None),
    };
    let headers = match row.get::<_, Option<headers::Stored>>(12)? {
        Some(stored) => match headers::unpack(stored) {
            Ok(headers) => headers,
            Err(reason) => return Ok(Err((id, reason))),
        },
        None => Vec::new(),
    };
    let summary = Summary {
        id: CaptureId(id),
        received_at_ms: row.get(1)?,
        method: row.get(2)?,
        path: row.get(3)?,
        status: row.get(4)?,
        error: row.get(5)?,
        duration: Duration::from_micros(row.get::<_, i64>(6)?.max(0) as u64),
        event_type: row.get(7)?,
        event_id: row.get(8)?,
        verdict,
        replay_of: row.get::<_, Option<i64>>(10)?.map(CaptureId),
        sent: row.get(13)?,
        target: row.get(16)?,
        provider,
        request_size: row.get::<_, i64>(11)?.max(0) as u64,
        route: row.get(14)?,
        copy: row.get(15)?,
    };
    Ok(Ok(Candidate {
        size: summary.request_size,
        summary,
        provider,
        headers,
        bodies,
    }))
}

impl Subject for Candidate<'_> {
    fn id(&self) -> Option<i64> {
        Some(self.summary.id.0)
    }
    fn received_at_ms(&self) -> i64 {
        self.summary.received_at_ms
    }
    fn method(&self) -> &str {
        &self.summary.method
    }
    // The request target (path and query), which the summary calls `path`; its `target` is
    // where the request was forwarded.
    #[allow(clippy::misnamed_getters)]
    fn target(&self) -> &str {
        &self.summary.path
    }
    fn headers(&self) -> &[Header] {
        &self.headers
    }
    fn request_size(&self) -> u64 {
        self.size
    }
    fn request_body(&self) -> Option<Cow<'_, [u8]>> {
        let body = self.bodies?.read(self.summary.id.0);
        if body.is_none() {
            tracing::warn!(
                id = self.summary.id.0,
                "could not read the request body of a capture"
            );
        }
        body.map(Cow::Owned)
    }
    fn status(&self) -> Option<u16> {
        self.summary.status
    }
    fn duration(&self) -> Option<Duration> {
        Some(self.summary.duration)
    }
    fn provider(&self) -> Option<Provider> {
        self.provider
    }
    fn event_type(&self) -> Option<&str> {
        self.summary.event_type.as_deref()
    }
    fn verdict(&self) -> Option<Verdict> {
        self.summary.verdict
    }
    fn replay_of(&self) -> Option<i64> {
        self.summary.replay_of.map(|id| id.0)
    }
    fn sent(&self) -> bool {
        self.summary.sent
    }
    fn route(&self) -> Option<&str> {
        self.summary.route.as_deref()
    }
}

/// Reads request bodies by id, straight from the generation table that holds each one (the
/// view would look the id up in all ten).
struct BodyReader<'a> {
    conn: &'a Connection,
    dir: PathBuf,
    ranges: Vec<(i64, i64)>,
    /// The statement reading a body from each slot's table.
    by_slot: Vec<String>,
}

impl<'a> BodyReader<'a> {
    fn new(conn: &'a Connection, dir: PathBuf) -> rusqlite::Result<BodyReader<'a>> {
        let by_slot = (0..generations::SLOTS)
            .map(|slot| {
                let table = generations::table(slot);
                format!("SELECT request_body FROM {table} WHERE id = ?1")
            })
            .collect();
        Ok(BodyReader {
            conn,
            dir,
            ranges: generations::ranges(conn)?,
            by_slot,
        })
    }

    /// Capture `id`'s request body; `None` when it cannot be read.
    fn read(&self, id: i64) -> Option<Vec<u8>> {
        let slot = generations::slot_of(&self.ranges, id)?;
        let from_slot = self.by_slot.get(usize::try_from(slot).ok()?)?;
        let stored = match self.lookup(from_slot, id) {
            Some(stored) => stored,
            // Not where its id says (a store being upgraded): ask the view.
            None => self.lookup("SELECT request_body FROM captures WHERE id = ?1", id)?,
        };
        let body = bodies::load(&self.dir, id, Which::Request, stored).ok()??;
        Some(Vec::from(body))
    }

    fn lookup(&self, sql: &str, id: i64) -> Option<bodies::Stored> {
        let mut stmt = self.conn.prepare_cached(sql).ok()?;
        stmt.query_row([id], |r| r.get(0)).optional().ok()?
    }
}
