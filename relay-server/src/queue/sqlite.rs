//! The durable queue in `--data-dir`: the SQLite database (its schema, the channels, the first
//! id reserve), the journal of requests (`journal.rs`), what they hold at start-up, and the
//! handle that sends the store thread its commands (`store.rs`).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use super::frames::{FrameFile, Frames};
use super::ids::{self, Ids, ID_RESERVE};
use super::journal::Journal;
use super::store::{self, Command, Stores, COMMAND_CAPACITY};
use super::{now_ms, ChannelRecord, Committing, QueueError, Snapshot};
use crate::protocol::RequestId;

/// The handle on the store thread, and where long frames' files are.
#[derive(Clone)]
pub(super) struct Sqlite {
    commands: mpsc::Sender<Command>,
    frames: Arc<Path>,
}

/// Opens (or creates) the queue in `dir` and starts its store thread; returns the handle, what
/// the queue holds, and its ids.
pub(super) fn open(dir: &Path) -> Result<(Sqlite, Snapshot, Arc<Ids>), QueueError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| rusqlite::Error::InvalidPath(format!("{}: {e}", dir.display()).into()))?;
    let conn = Connection::open(dir.join("relay.db"))?;
    // One relay per queue: the lock is taken here (in exclusive locking mode a write
    // transaction, even an empty one, keeps it after its commit) and held for the
    // connection's life, so a second relay on the same --data-dir stops at start instead of
    // sharing the queue. Holding it also spares every transaction its file-lock system
    // calls, and the WAL index lives in the heap, not in a shared-memory file.
    conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN IMMEDIATE; COMMIT;")
        .map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy) => QueueError::Locked(dir.join("relay.db")),
            _ => QueueError::Sqlite(e),
        })?;
    // The `queue` table held the requests before the journal (see `journal.rs`); it is kept
    // only so that a queue from before is read once and moved into the journal (`migrate`).
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA busy_timeout = 5000;
         CREATE TABLE IF NOT EXISTS channels (
             name TEXT PRIMARY KEY,
             settings TEXT NOT NULL,
             owner TEXT,
             updated_at INTEGER NOT NULL,
             detached_at INTEGER
         );
         CREATE TABLE IF NOT EXISTS queue (
             id INTEGER PRIMARY KEY,
             channel TEXT NOT NULL,
             received_at INTEGER NOT NULL,
             frame BLOB NOT NULL,
             file_len INTEGER
         );
         CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);",
    )?;
    // Queues written before long frames were files have no `file_len`: every frame in them
    // is in its row.
    let has_file_len = conn
        .prepare("SELECT 1 FROM pragma_table_info('queue') WHERE name = 'file_len'")?
        .exists([])?;
    if !has_file_len {
        conn.execute_batch("ALTER TABLE queue ADD COLUMN file_len INTEGER")?;
    }
    left_since_now(&conn)?;
    let mut journal = Journal::open(&dir.join("journal")).map_err(QueueError::Journal)?;
    migrate(&conn, &mut journal)?;
    let snapshot = snapshot(&conn, &journal)?;
    let queued: HashSet<u64> = snapshot.pending.iter().map(|(_, id)| id.0).collect();
    let (epoch, reserved) = start_ids(&conn, snapshot.max_id)?;
    let frames_dir: Arc<Path> = Arc::from(dir.join("frames"));
    let frames = Frames::open(frames_dir.to_path_buf(), &queued)?;
    let (commands, rx) = mpsc::channel(COMMAND_CAPACITY);
    // Weak: the store thread ends once every queue handle is gone, and it holds the ids.
    let asker = commands.downgrade();
    let ask: ids::Ask = Box::new(move || {
        let Some(commands) = asker.upgrade() else {
            return false;
        };
        if let Err(mpsc::error::TrySendError::Full(command)) = commands.try_send(Command::Reserve) {
            tokio::spawn(async move {
                let _ = commands.send(command).await;
            });
        }
        true
    });
    let ids = Arc::new(Ids::new(epoch, snapshot.max_id + 1, reserved, ask));
    let thread_ids = Arc::clone(&ids);
    std::thread::Builder::new()
        .name("relay-queue".into())
        .spawn(move || {
            let stores = Stores {
                conn,
                journal,
                frames,
            };
            store::store_thread(stores, rx, thread_ids)
        })
        .map_err(|e| rusqlite::Error::InvalidPath(format!("store thread: {e}").into()))?;
    let sqlite = Sqlite {
        commands,
        frames: frames_dir,
    };
    Ok((sqlite, snapshot, ids))
}

impl Sqlite {
    /// Sends `make`'s command and waits for its answer.
    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, QueueError>>) -> Command,
    ) -> Result<T, QueueError> {
        let (done, rx) = oneshot::channel();
        self.commands
            .send(make(done))
            .await
            .map_err(|_| QueueError::Closed)?;
        rx.await.map_err(|_| QueueError::Closed)?
    }

    /// Sends `make`'s write and returns at once: the caller waits for its commit, or not.
    async fn submit(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<(), QueueError>>) -> Command,
    ) -> Committing {
        let (done, committed) = oneshot::channel();
        match self.commands.send(make(done)).await {
            Ok(()) => Committing::Waiting(committed),
            Err(_) => Committing::Done(Err(QueueError::Closed)),
        }
    }

    /// [`super::Queue::submit`] of a frame in memory.
    pub(super) async fn submit_insert(
        &self,
        id: RequestId,
        channel: String,
        frame: Bytes,
    ) -> Committing {
        self.submit(|done| Command::Insert {
            id,
            channel,
            frame,
            done,
        })
        .await
    }

    /// [`super::Queue::submit`] of a frame written to its file.
    pub(super) async fn submit_file(
        &self,
        id: RequestId,
        channel: String,
        file: FrameFile,
    ) -> Committing {
        // From here the store thread owns the file: it renames it, or removes it on failure.
        let len = match file.hand_over().await {
            Ok(len) => len,
            Err(e) => return Committing::Done(Err(QueueError::File(e))),
        };
        self.submit(|done| Command::InsertFile {
            id,
            channel,
            len,
            done,
        })
        .await
    }

    /// A file for request `id`'s frame (see [`super::Queue::frame_file`]).
    pub(super) async fn frame_file(&self, id: RequestId) -> Option<FrameFile> {
        match FrameFile::create(&self.frames, id).await {
            Ok(file) => Some(file),
            Err(e) => {
                warn!(error = %e, dir = %self.frames.display(), "could not create a frame file; keeping the frame in memory");
                None
            }
        }
    }

    /// Reads a frame back (see [`super::Queue::load`]).
    pub(super) async fn load(&self, id: RequestId) -> Result<Option<Bytes>, QueueError> {
        self.call(|done| Command::Load { id, done }).await
    }

    /// Deletes an acknowledged request in the background (see [`super::Queue::ack`]).
    /// Not async, so a session's reader does not carry a send's state for every ack it reads:
    /// when the store thread is behind, a task waits for room instead.
    pub(super) fn ack(&self, id: RequestId) {
        if let Err(mpsc::error::TrySendError::Full(command)) =
            self.commands.try_send(Command::Ack { id })
        {
            let commands = self.commands.clone();
            tokio::spawn(async move {
                let _ = commands.send(command).await;
            });
        }
    }

    /// Commits the acknowledgements held back (see [`super::Queue::flush`]).
    pub(super) async fn flush(&self) -> Result<(), QueueError> {
        self.call(|done| Command::Flush { done }).await
    }

    /// Remembers a channel (see [`super::Queue::save_channel`]).
    pub(super) async fn save_channel(&self, record: ChannelRecord) -> Result<(), QueueError> {
        self.call(|done| Command::SaveChannel { record, done })
            .await
    }

    /// Records when a channel's session ended (see [`super::Queue::channel_left`]).
    pub(super) async fn channel_left(&self, name: String, at: i64) -> Result<(), QueueError> {
        self.call(|done| Command::ChannelLeft { name, at, done })
            .await
    }

    /// Forgets idle channels (see [`super::Queue::forget_channels`]).
    pub(super) async fn forget_channels(
        &self,
        channels: Vec<(String, RequestId)>,
        cutoff: i64,
    ) -> Result<(), QueueError> {
        self.call(|done| Command::ForgetChannels {
            channels,
            cutoff,
            done,
        })
        .await
    }

    /// Deletes old requests (see [`super::Queue::expire`]).
    pub(super) async fn expire(
        &self,
        older_than: Duration,
    ) -> Result<Vec<(String, RequestId)>, QueueError> {
        self.call(|done| Command::Expire { older_than, done }).await
    }
}

/// What the queue holds: the channels from the database, the pending requests from the
/// journal.
fn snapshot(conn: &Connection, journal: &Journal) -> Result<Snapshot, QueueError> {
    let mut channels = Vec::new();
    let mut stmt = conn.prepare("SELECT name, settings, owner, detached_at FROM channels")?;
    for row in stmt.query_map([], |r| {
        Ok(ChannelRecord {
            name: r.get(0)?,
            settings: r.get(1)?,
            owner: r.get(2)?,
            detached_at: r.get(3)?,
        })
    })? {
        channels.push(row?);
    }
    // Ids are never reused, even after the requests are gone, so a CLI's "already handled"
    // memory can never swallow a new request.
    let recorded: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = 'max_id'", [], |r| {
            r.get(0)
        })
        .optional()?;
    let max_id = journal.max_id().max(recorded.unwrap_or(0) as u64);
    Ok(Snapshot {
        channels,
        pending: journal.pending(),
        max_id,
    })
}

/// Moves the requests of a queue from before the journal (rows of the `queue` table) into the
/// journal: written and synced there before the rows go, so a crash in between leaves them in
/// both, which the next start moves again (the journal keeps the later copy).
fn migrate(conn: &Connection, journal: &mut Journal) -> Result<(), QueueError> {
    let mut stmt =
        conn.prepare("SELECT id, channel, received_at, frame, file_len FROM queue ORDER BY id")?;
    let mut rows = stmt.query([])?;
    let mut moved = 0;
    while let Some(row) = rows.next()? {
        let id = RequestId(row.get::<_, i64>(0)? as u64);
        let channel: String = row.get(1)?;
        let received_at: i64 = row.get(2)?;
        match row.get::<_, Option<i64>>(4)? {
            Some(len) => journal.insert_file(id, &channel, received_at, len as u64),
            None => journal.insert(id, &channel, received_at, &row.get::<_, Vec<u8>>(3)?),
        }
        moved += 1;
    }
    if moved > 0 {
        journal.write().map_err(QueueError::Journal)?;
        journal.sync().map_err(QueueError::Journal)?;
        conn.execute("DELETE FROM queue", [])?;
        tracing::info!(moved, "moved the queued requests into the relay's journal");
    }
    Ok(())
}

/// The queue's epoch (made now if it has none) and the first id reserve, [`ID_RESERVE`] past
/// `max_id`, both committed before any id is handed out: requests reach CLIs before their
/// inserts commit, so an id must be recorded as used before it leaves.
fn start_ids(conn: &Connection, max_id: u64) -> Result<(u64, u64), QueueError> {
    let kept: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |r| {
            r.get(0)
        })
        .optional()?;
    let epoch = match kept {
        Some(epoch) if epoch > 0 => epoch as u64,
        _ => ids::new_epoch(),
    };
    let reserved = max_id.saturating_add(ID_RESERVE);
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let written = (|| {
        let mut upsert = conn.prepare(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = ?2",
        )?;
        upsert.execute(params!["epoch", epoch as i64])?;
        upsert.execute(params!["max_id", reserved as i64])?;
        conn.execute_batch("COMMIT")
    })();
    if let Err(e) = written {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e.into());
    }
    Ok((epoch, reserved))
}

/// A channel recorded with a session attached was left when the relay stopped, whether the
/// relay could record it or not (killed), or was recorded before channels kept when they were
/// left: its retention counts from this start.
fn left_since_now(conn: &Connection) -> rusqlite::Result<()> {
    let has_detached_at = conn
        .prepare("SELECT 1 FROM pragma_table_info('channels') WHERE name = 'detached_at'")?
        .exists([])?;
    if !has_detached_at {
        conn.execute_batch("ALTER TABLE channels ADD COLUMN detached_at INTEGER")?;
    }
    conn.execute(
        "UPDATE channels SET detached_at = ?1 WHERE detached_at IS NULL",
        [now_ms()],
    )?;
    Ok(())
}
