//! The store's writing side: one thread owns a connection, commits everything waiting in one
//! transaction, and prunes to the retention limits, so a slow disk delays only this thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use super::{now_ms, Outcome, Record, StoreError};

/// Commands waiting for the writer thread. Past this, captures are dropped rather than held:
/// the disk is stalled and memory must stay bounded.
const COMMAND_CAPACITY: usize = 1024;

/// Commits whose outcomes the runtime has not handed out yet; past this the thread waits.
const REPLY_CAPACITY: usize = 64;

/// Most commands committed in one transaction.
const BATCH: usize = 512;

/// Under load, how long the thread lets captures gather before committing: a commit writes
/// every page it touched (the table's last page, the index's, the id sequence's) however few
/// rows it adds, so grouping rows saves most of that. Acknowledgements wait this much longer.
const LINGER: Duration = Duration::from_millis(4);

/// A commit within this long of the previous one means load: the next batch lingers. A lone
/// webhook is committed at once.
const BUSY: Duration = Duration::from_millis(20);

/// Past `--keep N`, captures are deleted once N/PRUNE_SLACK more have come (so at most 1.6 %
/// more are kept for a moment): deleting whole pages at a time costs far less per row than
/// deleting a few rows per commit. Small limits are exact (`--keep 3` keeps 3).
const PRUNE_SLACK: u64 = 64;

/// WAL size between automatic checkpoints.
const WAL_BYTES: i64 = 16 << 20;

/// How often captures older than `--keep-days` are looked for.
const AGE_PRUNE_EVERY: Duration = Duration::from_secs(60);

/// How many captures to keep, and for how long.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep this many; the oldest go first, in chunks of `keep / 64` (see [`PRUNE_SLACK`]).
    pub keep: Option<u64>,
    /// Delete captures received longer ago than this.
    pub max_age: Option<Duration>,
}

/// The outcome of [`Writer::record`]: the new capture's id once committed.
pub type Pending = oneshot::Receiver<Result<i64, StoreError>>;

enum Command {
    Insert {
        record: Box<Record>,
        done: oneshot::Sender<Result<i64, StoreError>>,
    },
    Find {
        channel_url: String,
        relay_id: u64,
        done: oneshot::Sender<Result<Option<i64>, StoreError>>,
    },
}

/// Handle on the writer thread; the thread ends when the handle is dropped.
pub struct Writer {
    commands: mpsc::Sender<Command>,
    /// The largest relay id captured per channel URL when this writer started.
    previous: HashMap<String, u64>,
}

impl Writer {
    /// Starts the writer thread on `conn` (the database at `path`, for messages), and the task
    /// on the current Tokio runtime that hands out its commits' outcomes.
    pub fn spawn(
        conn: Connection,
        path: PathBuf,
        retention: Retention,
    ) -> Result<Writer, StoreError> {
        let fail = |e| StoreError::sqlite(&path, e);
        // Checkpoint every 16 MiB of WAL rather than SQLite's 1000 pages: rows are written once
        // to the WAL and once more by the checkpoint, and a page rewritten by several commits
        // (the table's last page, the index's) is copied once per checkpoint. The WAL file is
        // cut back to that size after a checkpoint.
        let page_size: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(fail)?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_BYTES / page_size.max(512))
            .map_err(fail)?;
        conn.pragma_update(None, "journal_size_limit", WAL_BYTES)
            .map_err(fail)?;
        let previous = previous_relay_ids(&conn).map_err(fail)?;
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM captures", [], |r| r.get(0))
            .map_err(fail)?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| StoreError::Thread(std::io::Error::other(e)))?;
        let (replies, replies_rx) = mpsc::channel(REPLY_CAPACITY);
        runtime.spawn(hand_out(replies_rx));
        let thread = Thread {
            conn,
            path,
            retention,
            rows: rows.max(0) as u64,
            aged_at: None,
            replies,
        };
        let (commands, rx) = mpsc::channel(COMMAND_CAPACITY);
        std::thread::Builder::new()
            .name("capture-store".into())
            .spawn(move || thread.run(rx))
            .map_err(StoreError::Thread)?;
        Ok(Writer { commands, previous })
    }

    /// Queues `record` for the next commit, without waiting for room: when the thread is
    /// [`COMMAND_CAPACITY`] behind, the capture is dropped ([`StoreError::Behind`]).
    pub fn record(&self, record: Record) -> Result<Pending, StoreError> {
        let (done, pending) = oneshot::channel();
        let command = Command::Insert {
            record: Box::new(record),
            done,
        };
        match self.commands.try_send(command) {
            Ok(()) => Ok(pending),
            Err(mpsc::error::TrySendError::Full(_)) => Err(StoreError::Behind),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(StoreError::Closed),
        }
    }

    /// The capture of delivery `relay_id` on `channel_url`, if one was made before this writer
    /// started (a redelivery after a restart). Deliveries newer than every earlier capture are
    /// answered without touching the disk; repeats within one process are the caller's to spot.
    pub async fn captured_before(
        &self,
        channel_url: &str,
        relay_id: u64,
    ) -> Result<Option<i64>, StoreError> {
        match self.previous.get(channel_url) {
            Some(&max) if relay_id <= max => {}
            _ => return Ok(None),
        }
        let (done, found) = oneshot::channel();
        let command = Command::Find {
            channel_url: channel_url.to_owned(),
            relay_id,
            done,
        };
        self.commands
            .send(command)
            .await
            .map_err(|_| StoreError::Closed)?;
        found.await.map_err(|_| StoreError::Closed)?
    }
}

fn previous_relay_ids(conn: &Connection) -> rusqlite::Result<HashMap<String, u64>> {
    let mut stmt = conn.prepare(
        "SELECT channel_url, MAX(relay_id) FROM captures
         WHERE channel_url IS NOT NULL AND relay_id IS NOT NULL GROUP BY channel_url",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
    rows.collect()
}

/// The writer thread's state.
struct Thread {
    conn: Connection,
    path: PathBuf,
    retention: Retention,
    /// Captures in the table as far as this thread knows (other processes' replays are not
    /// counted, so they outlive `--keep` until the next start).
    rows: u64,
    /// When captures past `max_age` were last deleted.
    aged_at: Option<Instant>,
    /// Where commits' outcomes go, one message per commit.
    replies: mpsc::Sender<Outcomes>,
}

impl Thread {
    fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut batch = Vec::with_capacity(BATCH);
        self.prune_now();
        let mut committed_at: Option<Instant> = None;
        while rx.blocking_recv().map(|c| batch.push(c)).is_some() {
            if committed_at.is_some_and(|at| at.elapsed() < BUSY) {
                std::thread::sleep(LINGER);
            }
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(command) => batch.push(command),
                    Err(_) => break,
                }
            }
            self.run_batch(&mut batch);
            committed_at = Some(Instant::now());
        }
    }

    /// Applies the retention limits in a transaction of their own.
    fn prune_now(&mut self) {
        let result = self.conn.transaction().and_then(|tx| {
            let deleted = prune(&tx, self.retention, self.rows, &mut self.aged_at)?;
            tx.commit()?;
            Ok(deleted)
        });
        match result {
            Ok(deleted) => self.rows = self.rows.saturating_sub(deleted),
            Err(e) => warn!(error = %e, "could not prune the capture store"),
        }
    }

    /// Runs a batch in one transaction. Writers hear back once the commit's fate is known.
    fn run_batch(&mut self, batch: &mut Vec<Command>) {
        let tx = match self.conn.transaction() {
            Ok(tx) => tx,
            Err(e) => {
                for command in batch.drain(..) {
                    reply_error(command, StoreError::sqlite(&self.path, copy(&e)));
                }
                return;
            }
        };
        let inserted = apply(&tx, batch, &self.path);
        let rows = self.rows + inserted.len() as u64;
        let pruned = match prune(&tx, self.retention, rows, &mut self.aged_at) {
            Ok(deleted) => deleted,
            Err(e) => {
                warn!(error = %e, "could not prune the capture store");
                0
            }
        };
        let outcomes = match tx.commit() {
            Ok(()) => {
                self.rows = rows.saturating_sub(pruned);
                inserted
                    .into_iter()
                    .map(|(done, id)| (done, Ok(id)))
                    .collect()
            }
            Err(e) => inserted
                .into_iter()
                .map(|(done, _)| (done, Err(StoreError::sqlite(&self.path, copy(&e)))))
                .collect(),
        };
        // One message per commit: waking each writer's task from this thread would cost the
        // runtime a wake-up (an eventfd write) per capture.
        let _ = self.replies.blocking_send(outcomes);
    }
}

/// The outcomes of one commit, for [`hand_out`].
type Outcomes = Vec<(
    oneshot::Sender<Result<i64, StoreError>>,
    Result<i64, StoreError>,
)>;

/// Tells each writer of a commit how it went, from inside the runtime, where waking a task is
/// cheap; ends with the writer thread.
async fn hand_out(mut replies: mpsc::Receiver<Outcomes>) {
    while let Some(outcomes) = replies.recv().await {
        for (done, outcome) in outcomes {
            let _ = done.send(outcome);
        }
    }
}

/// Where an insert's id goes once the commit is known to have succeeded.
type Inserted = (oneshot::Sender<Result<i64, StoreError>>, i64);

/// Runs `batch` in `tx`, answering lookups at once; returns the inserts waiting for the commit.
/// After a failed write (disk full, corruption) the transaction may be gone, so the rest of the
/// batch is failed with the same error rather than run outside it.
fn apply(tx: &Transaction<'_>, batch: &mut Vec<Command>, path: &Path) -> Vec<Inserted> {
    let mut inserted = Vec::with_capacity(batch.len());
    let mut broken: Option<rusqlite::Error> = None;
    for command in batch.drain(..) {
        if let Some(e) = &broken {
            reply_error(command, StoreError::sqlite(path, copy(e)));
            continue;
        }
        match command {
            Command::Insert { record, done } => match insert(tx, &record) {
                Ok(id) => inserted.push((done, id)),
                Err(e) => {
                    let _ = done.send(Err(StoreError::sqlite(path, copy(&e))));
                    broken = Some(e);
                }
            },
            Command::Find {
                channel_url,
                relay_id,
                done,
            } => {
                let found = find(tx, &channel_url, relay_id);
                let _ = done.send(found.map_err(|e| StoreError::sqlite(path, e)));
            }
        }
    }
    inserted
}

fn reply_error(command: Command, error: StoreError) {
    match command {
        Command::Insert { done, .. } => {
            let _ = done.send(Err(error));
        }
        Command::Find { done, .. } => {
            let _ = done.send(Err(error));
        }
    }
}

/// A copy of a SQLite error, for telling every writer in a failed batch.
fn copy(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        // Other kinds carry no code to classify by; their text is enough for a message.
        other => rusqlite::Error::InvalidPath(other.to_string().into()),
    }
}

/// Inserts one capture and returns its id. A delivery already captured (same channel URL and
/// relay id: a redelivery that was forwarded again) keeps its first capture, whose id is returned.
fn insert(tx: &Transaction<'_>, record: &Record) -> rusqlite::Result<i64> {
    let header_json =
        |headers| serde_json::to_string(headers).expect("header lists always serialize to JSON");
    let (status, response_headers, response_body, error) = match &record.outcome {
        Outcome::Answered(r) => (
            Some(r.status),
            Some(header_json(&r.headers)),
            Some(r.body.as_ref()),
            None,
        ),
        Outcome::Failed(error) => (None, None, None, Some(error.as_str())),
    };
    let mut stmt = tx.prepare_cached(
        "INSERT INTO captures (received_at, channel, channel_url, relay_id, target, method, path,
             request_headers, request_body, status, response_headers, response_body, error,
             duration_us, signature, event_type, event_id, replay_of)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
         ON CONFLICT (channel_url, relay_id) DO NOTHING",
    )?;
    let request = &record.request;
    // Not RETURNING: SQLite gathers its rows in a temporary table, which costs more than asking
    // for the rowid.
    let inserted = stmt.execute(params![
        record.received_at_ms,
        record.channel,
        record.channel_url,
        record.relay_id.map(|id| id as i64),
        record.target,
        request.method,
        request.path,
        header_json(&request.headers),
        request.body.as_ref(),
        status,
        response_headers,
        response_body,
        error,
        i64::try_from(record.duration.as_micros()).unwrap_or(i64::MAX),
        record.signature,
        record.event_type,
        record.event_id,
        record.replay_of,
    ])?;
    match (inserted, &record.channel_url, record.relay_id) {
        (1, _, _) => Ok(tx.last_insert_rowid()),
        (_, Some(url), Some(relay_id)) => {
            find(tx, url, relay_id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
        }
        (_, _, _) => Err(rusqlite::Error::QueryReturnedNoRows),
    }
}

fn find(tx: &Transaction<'_>, channel_url: &str, relay_id: u64) -> rusqlite::Result<Option<i64>> {
    tx.prepare_cached("SELECT id FROM captures WHERE channel_url = ?1 AND relay_id = ?2")?
        .query_row(params![channel_url, relay_id as i64], |r| r.get(0))
        .optional()
}

/// Deletes what the retention limits no longer allow, given `rows` captures in the table;
/// returns how many went.
fn prune(
    tx: &Transaction<'_>,
    retention: Retention,
    rows: u64,
    aged_at: &mut Option<Instant>,
) -> rusqlite::Result<u64> {
    let mut deleted = 0;
    if let Some(keep) = retention
        .keep
        .filter(|&keep| rows > keep + keep / PRUNE_SLACK)
    {
        // Oldest first by id: ids grow with time and are never reused (AUTOINCREMENT). The
        // first id to keep, then one range delete: no temporary table for an IN (SELECT …).
        let first_kept: Option<i64> = tx
            .prepare_cached("SELECT id FROM captures ORDER BY id LIMIT 1 OFFSET ?1")?
            .query_row([i64::try_from(rows - keep).unwrap_or(i64::MAX)], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(first_kept) = first_kept {
            deleted += tx
                .prepare_cached("DELETE FROM captures WHERE id < ?1")?
                .execute([first_kept])? as u64;
        }
    }
    if let Some(max_age) = retention.max_age {
        if aged_at.map_or(true, |at| at.elapsed() >= AGE_PRUNE_EVERY) {
            let span = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
            deleted += tx
                .prepare_cached("DELETE FROM captures WHERE received_at < ?1")?
                .execute([now_ms().saturating_sub(span)])? as u64;
            *aged_at = Some(Instant::now());
        }
    }
    Ok(deleted)
}
