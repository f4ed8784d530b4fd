//! The store's reading side: whole captures by id or `last`, for `show`, `replay` and `export`
//! (the summaries `list` prints are in `query.rs`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension};

use super::bodies::{self, Which};
use super::headers::{unpack, Stored};
use super::{connect, signature, CaptureRef, StoreError};
use crate::exchange::{CaptureId, Exchange, Outcome, Recognized, Request, Response};
use crate::verify;

/// A reading connection, for `list`, `show`, `replay` and `export`.
pub struct Store {
    pub(super) conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens the existing store at `path`; a missing one is [`StoreError::NoCaptures`].
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Ok(Store {
            conn: connect(path, false)?,
            path: path.to_owned(),
        })
    }

    /// A private store in memory, for tests.
    pub fn in_memory() -> Result<Store, StoreError> {
        Store::open(Path::new(":memory:"))
    }

    /// The connection, to hand to a [`Writer`](super::Writer) (tests use this with [`Store::in_memory`]).
    pub fn into_connection(self) -> Connection {
        self.conn
    }

    /// The database file.
    pub(super) fn file(&self) -> &Path {
        &self.path
    }

    pub(super) fn fail(&self, e: rusqlite::Error) -> StoreError {
        StoreError::sqlite(&self.path, e)
    }

    /// The id `reference` stands for, checking that it exists.
    pub fn resolve(&self, reference: CaptureRef) -> Result<CaptureId, StoreError> {
        let found: Option<i64> = match reference {
            CaptureRef::Last => self
                .conn
                // Not MAX(id): over the view that reads every generation; this merges them.
                .query_row(
                    "SELECT id FROM captures ORDER BY id DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| self.fail(e))?,
            CaptureRef::Id(id) => self
                .conn
                .query_row("SELECT id FROM captures WHERE id = ?1", [id.0], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(|e| self.fail(e))?,
        };
        match (found, reference) {
            (Some(id), _) => Ok(CaptureId(id)),
            (None, CaptureRef::Last) => Err(StoreError::NoCaptures),
            (None, CaptureRef::Id(id)) => Err(StoreError::NotFound(id)),
        }
    }

    /// A number that changes whenever another connection commits to the store (SQLite's
    /// `PRAGMA data_version`): polling it is how `hooks inspect` notices the captures a running
    /// `hooks listen` writes, without reading a row.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(|e| self.fail(e))
    }

    /// Reads capture `id` whole, bodies included.
    pub fn get(&self, id: CaptureId) -> Result<Exchange, StoreError> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM captures WHERE id = ?1"),
                [id.0],
                read_row,
            )
            .optional()
            .map_err(|e| self.fail(e))?;
        row.ok_or(StoreError::NotFound(id))?
            .decode(&bodies::dir_of(&self.path))
    }

    /// Reads the capture `reference` stands for.
    pub fn load(&self, reference: CaptureRef) -> Result<Exchange, StoreError> {
        self.get(self.resolve(reference)?)
    }
}

/// The columns [`read_row`] reads, in its order.
const COLUMNS: &str = "id, received_at, channel, channel_url, relay_id, target, method, path, \
    request_headers, request_body, status, response_headers, response_body, error, duration_us, \
    signature, event_type, event_id, replay_of, relay_epoch, redelivered, sent, route, copy";

/// One row as SQLite returns it, before the header lists are decoded.
struct Row {
    id: i64,
    received_at_ms: i64,
    channel: Option<String>,
    channel_url: Option<String>,
    relay_id: Option<i64>,
    target: String,
    method: String,
    path: String,
    request_headers: Stored,
    request_body: bodies::Stored,
    status: Option<u16>,
    response_headers: Option<Stored>,
    response_body: Option<bodies::Stored>,
    error: Option<String>,
    duration_us: i64,
    signature: Option<String>,
    event_type: Option<String>,
    event_id: Option<String>,
    replay_of: Option<i64>,
    relay_epoch: Option<i64>,
    redelivered: Option<bool>,
    sent: bool,
    route: Option<String>,
    copy: bool,
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        id: r.get(0)?,
        received_at_ms: r.get(1)?,
        channel: r.get(2)?,
        channel_url: r.get(3)?,
        relay_id: r.get(4)?,
        target: r.get(5)?,
        method: r.get(6)?,
        path: r.get(7)?,
        request_headers: r.get(8)?,
        request_body: r.get(9)?,
        status: r.get(10)?,
        response_headers: r.get(11)?,
        response_body: r.get(12)?,
        error: r.get(13)?,
        duration_us: r.get(14)?,
        signature: r.get(15)?,
        event_type: r.get(16)?,
        event_id: r.get(17)?,
        replay_of: r.get(18)?,
        relay_epoch: r.get(19)?,
        redelivered: r.get(20)?,
        sent: r.get(21)?,
        route: r.get(22)?,
        copy: r.get(23)?,
    })
}

impl Row {
    /// The exchange, its long bodies read from their files in `dir`.
    fn decode(self, dir: &Path) -> Result<Exchange, StoreError> {
        let id = self.id;
        let body = |which, stored| match bodies::load(dir, id, which, stored) {
            Ok(Some(body)) => Ok(body),
            _ => Err(StoreError::BodyFile {
                id,
                dir: dir.to_owned(),
            }),
        };
        let headers =
            |stored: Stored| unpack(stored).map_err(|reason| StoreError::BadHeaders { id, reason });
        let outcome = match self.status {
            Some(status) => Outcome::Answered(Response {
                status,
                headers: match self.response_headers {
                    Some(stored) => headers(stored)?,
                    None => Vec::new(),
                },
                body: match self.response_body {
                    Some(stored) => body(Which::Response, stored)?,
                    None => Bytes::new(),
                },
            }),
            None => Outcome::Failed(self.error.unwrap_or_default()),
        };
        let request = Request {
            method: self.method,
            path: self.path,
            headers: headers(self.request_headers)?,
            body: body(Which::Request, self.request_body)?,
        };
        let event = event(&request, self.event_type, self.event_id);
        Ok(Exchange {
            id: Some(CaptureId(id)),
            received_at_ms: self.received_at_ms,
            channel: self.channel,
            channel_url: self.channel_url,
            relay_id: self.relay_id.map(|id| id as u64),
            relay_epoch: self.relay_epoch.map(|epoch| epoch as u64),
            redelivered: self.redelivered.unwrap_or(false),
            target: self.target,
            request,
            outcome,
            duration: Duration::from_micros(self.duration_us.max(0) as u64),
            hint: None,
            sender_timed_out: None,
            event,
            signature: signature::from_json(self.signature.as_deref()),
            replay_of: self.replay_of.map(CaptureId),
            sent: self.sent,
            route: self.route,
            copy: self.copy,
        })
    }
}

/// The event of a stored request: recognised again (the store keeps only its type and id, and
/// the recognition reads no more than it did when it was captured), with the type and id that
/// were stored.
fn event(
    request: &Request,
    event_type: Option<String>,
    event_id: Option<String>,
) -> Option<Recognized> {
    let recognized = verify::recognize(&request.headers, &request.body)?;
    Some(Recognized {
        event_type,
        event_id,
        ..recognized
    })
}
