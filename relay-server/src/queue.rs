//! The relay's durable queue: every accepted webhook is written here before the relay answers or
//! forwards it, and stays until a CLI acknowledges it or it expires. Also remembers the channels
//! that CLIs have claimed, so they survive restarts.
//!
//! SQLite (WAL, `synchronous=NORMAL`: a committed row survives the process being killed; only a
//! power loss can take the last few) on one dedicated thread fed by a channel. The thread commits
//! everything waiting in one transaction, so many concurrent webhooks share one commit. Long
//! frames are files beside the database (see `frames`). A relay without a data directory keeps
//! its queue in a map instead.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

pub(crate) use crate::frames::FrameFile;
use crate::frames::{self, Frames};
use crate::ids::{self, Ids, ID_RESERVE};
use crate::protocol::RequestId;

/// Commands waiting for the store thread.
const COMMAND_CAPACITY: usize = 1024;

/// Most commands the store thread commits in one transaction.
const BATCH: usize = 256;

/// Longest an acknowledgement waits to share a transaction with the next write. Nobody waits
/// for its commit (a lost one means one redelivery), and a commit of its own per request
/// doubled the store thread's transactions: at one request at a time, each request's deletion
/// now commits with the next one's insert.
const ACK_DELAY: Duration = Duration::from_millis(20);

/// A channel's settings, as its CLI last set them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRecord {
    /// Channel name.
    pub name: String,
    /// Settings chosen by the CLI, as JSON (see `channel::Settings`).
    pub settings: String,
    /// The token digest that owns this channel, on relays with tokens.
    pub owner: Option<String>,
    /// When its last session ended, in milliseconds since the Unix epoch; `None` while one is
    /// attached. Its retention counts from there.
    pub detached_at: Option<i64>,
}

/// What the queue holds at start-up.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Every remembered channel.
    pub channels: Vec<ChannelRecord>,
    /// Unacknowledged request ids, by channel name.
    pub pending: Vec<(String, RequestId)>,
    /// The largest request id ever used or reserved; new ids start above it.
    pub max_id: u64,
}

/// Why the queue could not do something.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// SQLite failed (disk full, corrupt file, …).
    #[error("relay queue: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A long frame's file could not be written or read.
    #[error("relay queue: a request's frame file: {0}")]
    File(#[from] std::io::Error),
    /// Another relay holds the queue.
    #[error("relay queue {}: another relay is using it (one relay per --data-dir)", .0.display())]
    Locked(std::path::PathBuf),
    /// The store thread is gone (the relay is shutting down).
    #[error("relay queue is closed")]
    Closed,
    /// Request ids could not be reserved: the store could not commit (see the log).
    #[error("relay queue: could not reserve request ids")]
    NotReserved,
}

enum Command {
    Insert {
        id: RequestId,
        channel: String,
        frame: Bytes,
        done: Done,
    },
    /// A frame already written to its file ([`FrameFile`]), `len` bytes long.
    InsertFile {
        id: RequestId,
        channel: String,
        len: u64,
        done: Done,
    },
    Load {
        id: RequestId,
        done: oneshot::Sender<Result<Option<Bytes>, QueueError>>,
    },
    Ack {
        id: RequestId,
    },
    SaveChannel {
        record: ChannelRecord,
        done: Done,
    },
    /// The channel's session ended at `at`.
    ChannelLeft {
        name: String,
        at: i64,
        done: Done,
    },
    /// Deletes channels left at `cutoff` or earlier, each with its requests up to an id.
    ForgetChannels {
        channels: Vec<(String, RequestId)>,
        cutoff: i64,
        done: Done,
    },
    /// Commits what waits (acknowledgements held back), then answers.
    Flush {
        done: Done,
    },
    Expire {
        older_than: Duration,
        done: oneshot::Sender<Result<Vec<(String, RequestId)>, QueueError>>,
    },
    /// Commits a larger id reserve ([`Ids::wanted`]).
    Reserve,
}

/// Handle on the queue; cheap to clone.
#[derive(Clone)]
pub struct Queue {
    backend: Backend,
    /// Where long frames' files are; `None` for the queue in memory.
    frames: Option<Arc<Path>>,
    ids: Arc<Ids>,
}

/// A request frame on its way to the queue (see [`Queue::submit_insert`]).
pub enum Committing {
    /// Already settled (the in-memory queue, or a store that is gone).
    Done(Result<(), QueueError>),
    /// Waiting for the store thread's commit.
    Waiting(oneshot::Receiver<Result<(), QueueError>>),
}

impl Committing {
    /// Waits until the frame is committed (or the commit failed).
    pub async fn committed(self) -> Result<(), QueueError> {
        match self {
            Committing::Done(result) => result,
            Committing::Waiting(committed) => committed.await.map_err(|_| QueueError::Closed)?,
        }
    }
}

#[derive(Clone)]
enum Backend {
    /// SQLite on the store thread.
    Sqlite(mpsc::Sender<Command>),
    /// A map, for a relay without a data directory (the one `hooks listen` embeds, which lives
    /// and dies with its CLI): nothing to survive, so no thread hop and no SQL per webhook.
    Memory(Arc<Mutex<HashMap<RequestId, Stored>>>),
}

/// A request held by the in-memory queue.
struct Stored {
    channel: String,
    received_at: i64,
    frame: Bytes,
}

impl Queue {
    /// Opens (or creates) the queue in `dir`, or in memory when `dir` is `None`, and returns it
    /// with what it already holds.
    pub fn open(dir: Option<&Path>) -> Result<(Queue, Snapshot), QueueError> {
        let Some(dir) = dir else {
            let backend = Backend::Memory(Arc::default());
            let queue = Queue {
                backend,
                frames: None,
                ids: Arc::new(Ids::unbounded(ids::new_epoch())),
            };
            return Ok((queue, Snapshot::default()));
        };
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
        // A checkpoint (copying the WAL into the file, then an fsync) every 8,192 pages (32 MiB)
        // rather than SQLite's 1,000: a request is written and deleted again within moments,
        // so most pages the WAL holds are superseded before the checkpoint copies them, and a
        // 10 MiB webhook no longer pays a checkpoint of its own before it is answered.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 5000;
             PRAGMA wal_autocheckpoint = 8192;
             PRAGMA journal_size_limit = 33554432;
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
             CREATE INDEX IF NOT EXISTS queue_received ON queue (received_at);
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
        let snapshot = snapshot(&conn)?;
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
            if let Err(mpsc::error::TrySendError::Full(command)) =
                commands.try_send(Command::Reserve)
            {
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
            .spawn(move || store_thread(conn, frames, rx, thread_ids))
            .map_err(|e| rusqlite::Error::InvalidPath(format!("store thread: {e}").into()))?;
        let backend = Backend::Sqlite(commands);
        let queue = Queue {
            backend,
            frames: Some(frames_dir),
            ids,
        };
        Ok((queue, snapshot))
    }

    /// The queue's epoch: random, made with the queue and kept in it (see `ids`).
    pub fn epoch(&self) -> u64 {
        self.ids.epoch()
    }

    /// A fresh request id, never handed out before by this queue, in this life or an earlier
    /// one: it waits, when it must, for the reserve above it to be committed.
    pub async fn next_id(&self) -> Result<RequestId, QueueError> {
        match self.ids.next().await {
            Ok(id) => Ok(RequestId(id)),
            Err(ids::NotReserved) => Err(QueueError::NotReserved),
        }
    }

    async fn call<T>(
        commands: &mpsc::Sender<Command>,
        make: impl FnOnce(oneshot::Sender<Result<T, QueueError>>) -> Command,
    ) -> Result<T, QueueError> {
        let (done, rx) = oneshot::channel();
        commands
            .send(make(done))
            .await
            .map_err(|_| QueueError::Closed)?;
        rx.await.map_err(|_| QueueError::Closed)?
    }

    fn memory(
        map: &Mutex<HashMap<RequestId, Stored>>,
    ) -> MutexGuard<'_, HashMap<RequestId, Stored>> {
        map.lock().expect("memory queue lock is never poisoned")
    }

    /// Writes one request frame durably; returns once it is committed.
    pub async fn insert(
        &self,
        id: RequestId,
        channel: &str,
        frame: Bytes,
    ) -> Result<(), QueueError> {
        self.submit_insert(id, channel, frame)
            .await
            .committed()
            .await
    }

    /// Starts writing one request frame: returns once the write is queued, before it is
    /// committed, so the caller can deliver the request meanwhile. Commands run in the order
    /// they are queued, so a later acknowledgement of `id` deletes it after it is written.
    pub async fn submit_insert(&self, id: RequestId, channel: &str, frame: Bytes) -> Committing {
        let channel = channel.to_owned();
        match &self.backend {
            Backend::Sqlite(commands) => {
                let (done, committed) = oneshot::channel();
                let command = Command::Insert {
                    id,
                    channel,
                    frame,
                    done,
                };
                match commands.send(command).await {
                    Ok(()) => Committing::Waiting(committed),
                    Err(_) => Committing::Done(Err(QueueError::Closed)),
                }
            }
            Backend::Memory(map) => {
                let stored = Stored {
                    channel,
                    received_at: now_ms(),
                    frame,
                };
                Self::memory(map).insert(id, stored);
                Committing::Done(Ok(()))
            }
        }
    }

    /// A file to write request `id`'s frame into as it arrives, so that a long body need not be
    /// held whole in memory: `None` for the queue in memory, or when the file cannot be made
    /// (the frame is then kept in memory and stored with [`Queue::submit_insert`]).
    pub async fn frame_file(&self, id: RequestId) -> Option<FrameFile> {
        let dir = self.frames.as_ref()?;
        match FrameFile::create(dir, id).await {
            Ok(file) => Some(file),
            Err(e) => {
                warn!(error = %e, dir = %dir.display(), "could not create a frame file; keeping the frame in memory");
                None
            }
        }
    }

    /// [`Queue::submit_insert`] for a frame written to `file`.
    pub async fn submit_file(&self, id: RequestId, channel: &str, file: FrameFile) -> Committing {
        let Backend::Sqlite(commands) = &self.backend else {
            return Committing::Done(Err(QueueError::Closed));
        };
        // From here the store thread owns the file: it renames it, or removes it on failure.
        let len = match file.hand_over().await {
            Ok(len) => len,
            Err(e) => return Committing::Done(Err(QueueError::File(e))),
        };
        let (done, committed) = oneshot::channel();
        let command = Command::InsertFile {
            id,
            channel: channel.to_owned(),
            len,
            done,
        };
        match commands.send(command).await {
            Ok(()) => Committing::Waiting(committed),
            Err(_) => Committing::Done(Err(QueueError::Closed)),
        }
    }

    /// Whether frames are read back from disk (SQLite and its files), rather than handed back
    /// from memory.
    pub fn is_durable(&self) -> bool {
        self.frames.is_some()
    }

    /// Reads a queued frame back, `None` if it was acknowledged or expired meanwhile.
    pub async fn load(&self, id: RequestId) -> Result<Option<Bytes>, QueueError> {
        match &self.backend {
            Backend::Sqlite(commands) => {
                Self::call(commands, |done| Command::Load { id, done }).await
            }
            Backend::Memory(map) => Ok(Self::memory(map).get(&id).map(|s| s.frame.clone())),
        }
    }

    /// Deletes an acknowledged request (in the background; a lost ack means one redelivery).
    /// Not async, so a session's reader does not carry a send's state for every ack it reads:
    /// when the store thread is behind, a task waits for room instead.
    pub fn ack(&self, id: RequestId) {
        match &self.backend {
            Backend::Sqlite(commands) => {
                if let Err(mpsc::error::TrySendError::Full(command)) =
                    commands.try_send(Command::Ack { id })
                {
                    let commands = commands.clone();
                    tokio::spawn(async move {
                        let _ = commands.send(command).await;
                    });
                }
            }
            Backend::Memory(map) => {
                Self::memory(map).remove(&id);
            }
        }
    }

    /// Commits what the store thread holds back (acknowledgements waiting for company), for a
    /// relay about to stop.
    pub async fn flush(&self) -> Result<(), QueueError> {
        match &self.backend {
            Backend::Sqlite(commands) => Self::call(commands, |done| Command::Flush { done }).await,
            Backend::Memory(_) => Ok(()),
        }
    }

    /// Remembers a channel and its settings.
    pub async fn save_channel(&self, record: ChannelRecord) -> Result<(), QueueError> {
        match &self.backend {
            Backend::Sqlite(commands) => {
                Self::call(commands, |done| Command::SaveChannel { record, done }).await
            }
            // The channel map itself is all an in-memory relay remembers.
            Backend::Memory(_) => Ok(()),
        }
    }

    /// Records that `name`'s session ended `at` (milliseconds since the Unix epoch).
    pub async fn channel_left(&self, name: &str, at: i64) -> Result<(), QueueError> {
        match &self.backend {
            Backend::Sqlite(commands) => {
                let name = name.to_owned();
                Self::call(commands, |done| Command::ChannelLeft { name, at, done }).await
            }
            Backend::Memory(_) => Ok(()),
        }
    }

    /// Forgets `channels`, each with its requests up to the id given (a request queued for
    /// the name since it is forgotten has a higher id, and stays): a channel whose record says
    /// it was left after `cutoff` (a session claimed it again meanwhile) keeps its record.
    pub async fn forget_channels(
        &self,
        channels: Vec<(String, RequestId)>,
        cutoff: i64,
    ) -> Result<(), QueueError> {
        match &self.backend {
            Backend::Sqlite(commands) => {
                Self::call(commands, |done| Command::ForgetChannels {
                    channels,
                    cutoff,
                    done,
                })
                .await
            }
            Backend::Memory(map) => {
                let mut map = Self::memory(map);
                for (name, last) in &channels {
                    map.retain(|id, stored| !(stored.channel == *name && id <= last));
                }
                Ok(())
            }
        }
    }

    /// Deletes requests received `older_than` ago or earlier; returns what it deleted.
    pub async fn expire(
        &self,
        older_than: Duration,
    ) -> Result<Vec<(String, RequestId)>, QueueError> {
        match &self.backend {
            Backend::Sqlite(commands) => {
                Self::call(commands, |done| Command::Expire { older_than, done }).await
            }
            Backend::Memory(map) => {
                let cutoff = now_ms() - i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
                let mut map = Self::memory(map);
                let gone: Vec<(String, RequestId)> = map
                    .iter()
                    .filter(|(_, s)| s.received_at <= cutoff)
                    .map(|(id, s)| (s.channel.clone(), *id))
                    .collect();
                for (_, id) in &gone {
                    map.remove(id);
                }
                Ok(gone)
            }
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

fn snapshot(conn: &Connection) -> Result<Snapshot, QueueError> {
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
    let mut pending = Vec::new();
    let mut stmt = conn.prepare("SELECT channel, id FROM queue ORDER BY id")?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (channel, id) = row?;
        pending.push((channel, RequestId(id as u64)));
    }
    // Ids are never reused, even after the rows are gone, so a CLI's "already handled" memory
    // can never swallow a new request.
    let queued: Option<i64> = conn.query_row("SELECT MAX(id) FROM queue", [], |r| r.get(0))?;
    let recorded: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = 'max_id'", [], |r| {
            r.get(0)
        })
        .optional()?;
    let max_id = queued.unwrap_or(0).max(recorded.unwrap_or(0)) as u64;
    Ok(Snapshot {
        channels,
        pending,
        max_id,
    })
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

/// The store thread: commits what arrives in batches. Acknowledgements wait (at most
/// [`ACK_DELAY`]) for another command to share its transaction; everything else is committed at
/// once, with the acknowledgements waiting ahead of it, so a load never sees an acknowledged row.
fn store_thread(
    mut conn: Connection,
    frames: Frames,
    mut rx: mpsc::Receiver<Command>,
    ids: Arc<Ids>,
) {
    // Only for waiting on the channel with a timeout; without it, acknowledgements commit at
    // once, as everything else does.
    let clock = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| warn!(error = %e, "relay queue: no timer for the store thread"))
        .ok();
    let mut batch = Vec::with_capacity(BATCH);
    let mut acks = Vec::new();
    // When the oldest of `acks` must be committed.
    let mut deadline = Instant::now();
    loop {
        let next = match &clock {
            Some(clock) if !acks.is_empty() => {
                // The timer is made inside `block_on`: it needs the clock's context.
                let waited = clock
                    .block_on(async { tokio::time::timeout_at(deadline.into(), rx.recv()).await });
                match waited {
                    Ok(next) => next,
                    Err(_) => {
                        run_batch(&mut conn, &frames, &mut acks, &ids);
                        continue;
                    }
                }
            }
            _ => rx.blocking_recv(),
        };
        let Some(first) = next else { break };
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        let only_acks = batch.iter().all(|c| matches!(c, Command::Ack { .. }));
        if clock.is_some()
            && only_acks
            && acks.len() + batch.len() < BATCH
            && (acks.is_empty() || Instant::now() < deadline)
        {
            if acks.is_empty() {
                deadline = Instant::now() + ACK_DELAY;
            }
            acks.append(&mut batch);
            continue;
        }
        batch.splice(0..0, acks.drain(..));
        run_batch(&mut conn, &frames, &mut batch, &ids);
    }
    run_batch(&mut conn, &frames, &mut acks, &ids);
    // Nobody is left to commit a reserve: whoever waits for one stops.
    ids.failed();
}

/// Inserts one request frame in `tx`; a long one goes to its file first, and `true` says so.
/// If the insert fails, the file goes too.
fn insert(
    tx: &rusqlite::Transaction<'_>,
    frames: &Frames,
    id: RequestId,
    channel: &str,
    frame: &[u8],
) -> Result<bool, QueueError> {
    if frame.len() < frames::FILE_FROM {
        insert_row(tx, id, channel, frame, None)?;
        return Ok(false);
    }
    frames.write(id, frame).inspect_err(|_| frames.remove(id))?;
    insert_row(tx, id, channel, &[], Some(frame.len() as u64))
        .inspect_err(|_| frames.remove(id))?;
    Ok(true)
}

/// Inserts the row of a frame already written to `<id>.part` (a [`FrameFile`]), which it
/// renames to the frame's file first. If either fails, the file goes.
fn insert_file(
    tx: &rusqlite::Transaction<'_>,
    frames: &Frames,
    id: RequestId,
    channel: &str,
    len: u64,
) -> Result<(), QueueError> {
    frames.adopt(id).inspect_err(|_| frames.remove_part(id))?;
    insert_row(tx, id, channel, &[], Some(len)).inspect_err(|_| frames.remove(id))?;
    Ok(())
}

/// Inserts request `id`'s row: its frame, or (`file_len`) the length of its frame's file.
fn insert_row(
    tx: &rusqlite::Transaction<'_>,
    id: RequestId,
    channel: &str,
    frame: &[u8],
    file_len: Option<u64>,
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO queue (id, channel, received_at, frame, file_len) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let file_len = file_len.map(|len| len as i64);
    insert.execute(params![id.0 as i64, channel, now_ms(), frame, file_len])?;
    Ok(())
}

/// Reads one queued frame back, from its row or its file. A file missing or cut short (a power
/// loss took it) drops the request, with a warning, rather than delivering part of it.
fn load(
    tx: &rusqlite::Transaction<'_>,
    frames: &Frames,
    id: RequestId,
    deleted: &mut Vec<RequestId>,
) -> Result<Option<Bytes>, QueueError> {
    let row: Option<(Vec<u8>, Option<i64>)> = tx
        .prepare_cached("SELECT frame, file_len FROM queue WHERE id = ?1")?
        .query_row([id.0 as i64], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match row {
        None => Ok(None),
        Some((frame, None)) => Ok(Some(Bytes::from(frame))),
        Some((_, Some(len))) => {
            if let Some(frame) = frames.read(id, len as u64)? {
                return Ok(Some(frame));
            }
            warn!(%id, dir = %frames.dir().display(), "a queued request's frame file is missing or cut short; dropping the request");
            tx.prepare_cached("DELETE FROM queue WHERE id = ?1")?
                .execute([id.0 as i64])?;
            deleted.push(id);
            Ok(None)
        }
    }
}

/// Runs a batch in one transaction. If the transaction fails, every caller in it is told.
/// Frame files are unlinked once the deletion of their rows is committed; the files of rows
/// whose insert did not commit are unlinked at once.
/// A reserve asked for is committed with the rest, and `ids` told its fate.
fn run_batch(conn: &mut Connection, frames: &Frames, batch: &mut Vec<Command>, ids: &Ids) {
    if batch.is_empty() {
        return;
    }
    let reserving = batch.iter().any(|c| matches!(c, Command::Reserve));
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            if reserving {
                warn!(error = %e, "could not reserve request ids");
                ids.failed();
            }
            fail_all(batch.drain(..), &e);
            return;
        }
    };
    // Writers hear back only once the commit's fate is known.
    let mut replies: Vec<(Done, Result<(), QueueError>)> = Vec::new();
    let mut written = Vec::new();
    let mut deleted = Vec::new();
    for command in batch.drain(..) {
        match command {
            Command::Insert {
                id,
                channel,
                frame,
                done,
            } => {
                let result = insert(&tx, frames, id, &channel, &frame);
                if matches!(result, Ok(true)) {
                    written.push(id);
                }
                replies.push((done, result.map(|_| ())));
            }
            Command::InsertFile {
                id,
                channel,
                len,
                done,
            } => {
                let result = insert_file(&tx, frames, id, &channel, len);
                if result.is_ok() {
                    written.push(id);
                }
                replies.push((done, result));
            }
            Command::Load { id, done } => {
                let _ = done.send(load(&tx, frames, id, &mut deleted));
            }
            Command::Ack { id } => {
                let result = tx
                    .prepare_cached("DELETE FROM queue WHERE id = ?1 RETURNING file_len")
                    .and_then(|mut delete| {
                        delete
                            .query_row([id.0 as i64], |r| r.get::<_, Option<i64>>(0))
                            .optional()
                    });
                match result {
                    Ok(Some(Some(_))) => deleted.push(id),
                    Ok(_) => {}
                    Err(e) => warn!(error = %e, %id, "could not delete an acknowledged request"),
                }
            }
            Command::Flush { done } => replies.push((done, Ok(()))),
            Command::Reserve => {}
            Command::SaveChannel { record, done } => {
                let result = tx.execute(
                    "INSERT INTO channels (name, settings, owner, updated_at, detached_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (name) DO UPDATE
                     SET settings = ?2, owner = ?3, updated_at = ?4, detached_at = ?5",
                    params![
                        record.name,
                        record.settings,
                        record.owner,
                        now_ms(),
                        record.detached_at
                    ],
                );
                replies.push((done, result.map(|_| ()).map_err(QueueError::from)));
            }
            Command::ChannelLeft { name, at, done } => {
                let result = tx.execute(
                    "UPDATE channels SET detached_at = ?2 WHERE name = ?1",
                    params![name, at],
                );
                replies.push((done, result.map(|_| ()).map_err(QueueError::from)));
            }
            Command::ForgetChannels {
                channels,
                cutoff,
                done,
            } => {
                let result = forget_channels(&tx, &channels, cutoff, &mut deleted);
                replies.push((done, result.map_err(QueueError::from)));
            }
            Command::Expire { older_than, done } => {
                let cutoff = now_ms() - i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
                let result = expire(&tx, cutoff).map(|gone| {
                    deleted.extend(gone.iter().filter(|g| g.2).map(|g| g.1));
                    gone.into_iter()
                        .map(|(channel, id, _)| (channel, id))
                        .collect()
                });
                let _ = done.send(result.map_err(QueueError::from));
            }
        }
    }
    // Taken last, so it covers every id handed out until now.
    let reserve = reserving.then(|| {
        let reserve = ids.wanted();
        tx.prepare_cached(
            "INSERT INTO meta (key, value) VALUES ('max_id', ?1)
             ON CONFLICT (key) DO UPDATE SET value = MAX(value, ?1)",
        )
        .and_then(|mut upsert| upsert.execute([reserve as i64]))
        .map(|_| reserve)
    });
    let committed = tx.commit();
    match (&reserve, &committed) {
        (None, _) => {}
        (Some(Ok(reserve)), Ok(())) => ids.committed(*reserve),
        (Some(Err(e)), _) | (Some(Ok(_)), Err(e)) => {
            warn!(error = %e, "could not reserve request ids");
            ids.failed();
        }
    }
    let gone = if committed.is_ok() { deleted } else { written };
    for id in gone {
        frames.remove(id);
    }
    for (done, result) in replies {
        // The statement's own error, else the commit's.
        let outcome = match (result, &committed) {
            (Err(e), _) => Err(e),
            (Ok(()), Err(e)) => Err(QueueError::Sqlite(clone_error(e))),
            (Ok(()), Ok(())) => Ok(()),
        };
        let _ = done.send(outcome);
    }
}

/// Where a write's outcome goes.
type Done = oneshot::Sender<Result<(), QueueError>>;

fn clone_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::InvalidPath(other.to_string().into()),
    }
}

fn fail_all(commands: impl Iterator<Item = Command>, e: &rusqlite::Error) {
    for command in commands {
        match command {
            Command::Insert { done, .. }
            | Command::InsertFile { done, .. }
            | Command::SaveChannel { done, .. }
            | Command::ChannelLeft { done, .. }
            | Command::ForgetChannels { done, .. }
            | Command::Flush { done } => {
                let _ = done.send(Err(QueueError::Sqlite(clone_error(e))));
            }
            Command::Load { done, .. } => {
                let _ = done.send(Err(QueueError::Sqlite(clone_error(e))));
            }
            Command::Expire { done, .. } => {
                let _ = done.send(Err(QueueError::Sqlite(clone_error(e))));
            }
            Command::Ack { .. } | Command::Reserve => {}
        }
    }
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

/// Deletes `channels` left at `cutoff` or earlier, and their requests up to the id given
/// (`deleted` gets those whose frame is a file).
fn forget_channels(
    tx: &rusqlite::Transaction<'_>,
    channels: &[(String, RequestId)],
    cutoff: i64,
    deleted: &mut Vec<RequestId>,
) -> rusqlite::Result<()> {
    let mut record =
        tx.prepare_cached("DELETE FROM channels WHERE name = ?1 AND detached_at <= ?2")?;
    let mut requests = tx.prepare_cached(
        "DELETE FROM queue WHERE channel = ?1 AND id <= ?2 RETURNING id, file_len IS NOT NULL",
    )?;
    for (name, last) in channels {
        record.execute(params![name, cutoff])?;
        let rows = requests.query_map(params![name, last.0 as i64], |r| {
            Ok((RequestId(r.get::<_, i64>(0)? as u64), r.get::<_, bool>(1)?))
        })?;
        for row in rows {
            let (id, in_file) = row?;
            if in_file {
                deleted.push(id);
            }
        }
    }
    Ok(())
}

/// Deletes the requests received at `cutoff` or earlier: their channel, id, and whether their
/// frame is in a file.
fn expire(
    tx: &rusqlite::Transaction<'_>,
    cutoff: i64,
) -> rusqlite::Result<Vec<(String, RequestId, bool)>> {
    let mut stmt = tx.prepare(
        "DELETE FROM queue WHERE received_at <= ?1 RETURNING channel, id, file_len IS NOT NULL",
    )?;
    let rows = stmt.query_map([cutoff], |r| {
        Ok((
            r.get::<_, String>(0)?,
            RequestId(r.get::<_, i64>(1)? as u64),
            r.get::<_, bool>(2)?,
        ))
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rows_survive_reopening_and_ids_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (queue, snapshot) = Queue::open(Some(dir.path())).unwrap();
            assert_eq!(snapshot.max_id, 0);
            queue
                .save_channel(ChannelRecord {
                    name: "ch".into(),
                    settings: "{}".into(),
                    owner: Some("digest".into()),
                    detached_at: None,
                })
                .await
                .unwrap();
            queue
                .insert(RequestId(1), "ch", Bytes::from_static(b"one"))
                .await
                .unwrap();
            queue
                .insert(RequestId(2), "ch", Bytes::from_static(b"two"))
                .await
                .unwrap();
            // Long frames are files (see `frames`).
            queue.insert(RequestId(3), "ch", long()).await.unwrap();
            queue.ack(RequestId(2));
            assert_eq!(queue.load(RequestId(1)).await.unwrap().unwrap(), "one");
            // A load after the ack is committed shows the ack took effect.
            assert_eq!(queue.load(RequestId(2)).await.unwrap(), None);
        }
        let (queue, snapshot) = Queue::open(Some(dir.path())).unwrap();
        assert_eq!(snapshot.channels.len(), 1);
        assert_eq!(snapshot.channels[0].owner.as_deref(), Some("digest"));
        assert_eq!(
            snapshot.pending,
            vec![
                ("ch".to_owned(), RequestId(1)),
                ("ch".to_owned(), RequestId(3))
            ]
        );
        assert!(
            snapshot.max_id >= 3,
            "ids up to 3 must not be handed out again, max_id {}",
            snapshot.max_id
        );
        assert_eq!(queue.load(RequestId(1)).await.unwrap().unwrap(), "one");
        assert_eq!(queue.load(RequestId(3)).await.unwrap().unwrap(), long());
    }

    fn record(name: &str, detached_at: Option<i64>) -> ChannelRecord {
        ChannelRecord {
            name: name.into(),
            settings: "{}".into(),
            owner: Some("digest".into()),
            detached_at,
        }
    }

    fn detached_at(snapshot: &Snapshot, name: &str) -> Option<Option<i64>> {
        let record = snapshot.channels.iter().find(|c| c.name == name)?;
        Some(record.detached_at)
    }

    #[tokio::test]
    async fn issue_17_channels_keep_when_they_were_left_and_go_with_their_requests() {
        let dir = tempfile::tempdir().unwrap();
        let started = now_ms();
        {
            let (queue, _) = Queue::open(Some(dir.path())).unwrap();
            for name in ["old", "back", "live"] {
                queue.save_channel(record(name, None)).await.unwrap();
            }
            queue.channel_left("old", 1_000).await.unwrap();
            queue.channel_left("back", 1_000).await.unwrap();
            for (id, channel) in [(1, "old"), (2, "old"), (3, "back"), (4, "old")] {
                let frame = if id == 2 {
                    long()
                } else {
                    Bytes::from_static(b"x")
                };
                queue.insert(RequestId(id), channel, frame).await.unwrap();
            }
        }
        let (queue, snapshot) = Queue::open(Some(dir.path())).unwrap();
        assert_eq!(detached_at(&snapshot, "old"), Some(Some(1_000)));
        // Recorded with a session attached: the relay stopped without saying it was left.
        let live = detached_at(&snapshot, "live").unwrap().unwrap();
        assert!(live >= started, "left at this start, not never: {live}");
        // "back" was claimed again after the relay decided to forget it: its record stays.
        queue.save_channel(record("back", None)).await.unwrap();
        let forget = vec![("old".into(), RequestId(2)), ("back".into(), RequestId(3))];
        queue.forget_channels(forget, 2_000).await.unwrap();
        assert_eq!(
            files(dir.path()),
            Vec::<String>::new(),
            "a forgotten frame's file goes"
        );
        drop(queue);
        let (_, snapshot) = Queue::open(Some(dir.path())).unwrap();
        assert_eq!(detached_at(&snapshot, "old"), None, "forgotten");
        assert!(
            detached_at(&snapshot, "back").is_some(),
            "claimed again, kept"
        );
        // A request queued after the channel was forgotten is not taken with it.
        assert_eq!(snapshot.pending, vec![("old".to_owned(), RequestId(4))]);
    }

    #[test]
    fn a_queue_from_before_channels_kept_when_they_were_left_opens() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("relay.db")).unwrap();
        conn.execute_batch(
            "CREATE TABLE channels (name TEXT PRIMARY KEY, settings TEXT NOT NULL, owner TEXT,
                 updated_at INTEGER NOT NULL);
             INSERT INTO channels VALUES ('ch', '{}', 'digest', 1);",
        )
        .unwrap();
        drop(conn);
        let started = now_ms();
        let (_queue, snapshot) = Queue::open(Some(dir.path())).unwrap();
        assert_eq!(snapshot.channels.len(), 1);
        assert_eq!(snapshot.channels[0].owner.as_deref(), Some("digest"));
        let left = snapshot.channels[0].detached_at.unwrap();
        assert!(
            left >= started,
            "its retention counts from the upgrade: {left}"
        );
    }

    #[tokio::test]
    async fn ids_stay_used_once_every_row_is_gone_and_are_recorded_once_per_reserve() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (queue, _) = Queue::open(Some(dir.path())).unwrap();
            for want in 1..=3 {
                let id = queue.next_id().await.unwrap();
                assert_eq!(id, RequestId(want));
                queue
                    .insert(id, "ch", Bytes::from_static(b"x"))
                    .await
                    .unwrap();
                queue.ack(id);
            }
            // A load commits the waiting acknowledgements first.
            assert_eq!(queue.load(RequestId(3)).await.unwrap(), None);
        }
        let (queue, snapshot) = Queue::open(Some(dir.path())).unwrap();
        assert!(snapshot.pending.is_empty());
        // The reserve committed at open, not written again by the inserts below it.
        assert_eq!(snapshot.max_id, ID_RESERVE);
        let id = queue.next_id().await.unwrap();
        assert_eq!(
            id,
            RequestId(ID_RESERVE + 1),
            "the rest of the reserve is skipped"
        );
        queue
            .insert(id, "ch", Bytes::from_static(b"y"))
            .await
            .unwrap();
        drop(queue);
        let (_queue, snapshot) = Queue::open(Some(dir.path())).unwrap();
        assert_eq!(snapshot.pending, vec![("ch".to_owned(), id)]);
        assert_eq!(snapshot.max_id, 2 * ID_RESERVE);
    }

    /// Issue 17: requests go to the CLI before their insert is committed, so a relay killed
    /// right after handing out ids (its first commit not done) must not hand them out again,
    /// nor ids past a reserve it extended meanwhile.
    #[tokio::test]
    async fn issue_17_ids_handed_out_before_a_crash_are_never_handed_out_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut handed = HashSet::new();
        let mut epochs = HashSet::new();
        for life in 0..4 {
            let (queue, _) = Queue::open(Some(dir.path())).unwrap();
            epochs.insert(queue.epoch());
            // Handed out and delivered; the process dies before any insert is committed
            // (nothing reaches the store thread). One life goes past its first reserve.
            let count = if life == 1 { ID_RESERVE + 5 } else { 3 };
            for _ in 0..count {
                let id = queue.next_id().await.unwrap().0;
                assert!(handed.insert(id), "life {life}: id {id} handed out again");
            }
            drop(queue);
        }
        assert_eq!(epochs.len(), 1, "the epoch is kept with the queue");
    }

    #[tokio::test]
    async fn every_queue_has_its_own_epoch_and_the_memory_queue_a_new_one_each_time() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (first, _) = Queue::open(Some(a.path())).unwrap();
        let (second, _) = Queue::open(Some(b.path())).unwrap();
        assert_ne!(first.epoch(), second.epoch());
        let (memory, _) = Queue::open(None).unwrap();
        let (again, _) = Queue::open(None).unwrap();
        assert_ne!(memory.epoch(), again.epoch());
        assert_eq!(memory.next_id().await.unwrap(), RequestId(1));
        assert_eq!(again.next_id().await.unwrap(), RequestId(1));
    }

    #[tokio::test]
    async fn acknowledgements_waiting_for_a_write_are_committed_when_the_queue_closes() {
        let dir = tempfile::tempdir().unwrap();
        let (queue, _) = Queue::open(Some(dir.path())).unwrap();
        queue
            .insert(RequestId(1), "ch", Bytes::from_static(b"x"))
            .await
            .unwrap();
        // Nothing else comes before the queue closes: the acknowledgement is still waiting
        // for a transaction to share, and closing commits it.
        queue.ack(RequestId(1));
        drop(queue);
        let (_queue, snapshot) = Queue::open(Some(dir.path())).unwrap();
        assert!(snapshot.pending.is_empty(), "{:?}", snapshot.pending);
    }

    #[tokio::test]
    async fn a_flush_commits_the_acknowledgements_held_back() {
        let dir = tempfile::tempdir().unwrap();
        let (queue, _) = Queue::open(Some(dir.path())).unwrap();
        // A long frame has a file, unlinked once its row's deletion is committed.
        queue.insert(RequestId(1), "ch", long()).await.unwrap();
        assert_eq!(files(dir.path()), ["1"]);
        queue.ack(RequestId(1));
        queue.flush().await.unwrap();
        assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
    }

    #[tokio::test]
    async fn a_second_relay_on_the_same_queue_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_queue, _) = Queue::open(Some(dir.path())).unwrap();
        match Queue::open(Some(dir.path())) {
            Err(e @ QueueError::Locked(_)) => {
                assert!(e.to_string().contains("another relay"), "{e}")
            }
            Err(e) => panic!("expected the queue to be locked, got {e}"),
            Ok(_) => panic!("a second queue opened while the first holds it"),
        }
    }

    /// The frame files in the queue at `dir`.
    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.join("frames"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn long_frames_are_files_that_go_with_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let (queue, _) = Queue::open(Some(dir.path())).unwrap();
        queue.insert(RequestId(1), "ch", long()).await.unwrap();
        queue.insert(RequestId(2), "ch", long()).await.unwrap();
        queue
            .insert(RequestId(3), "ch", Bytes::from_static(b"short"))
            .await
            .unwrap();
        assert_eq!(
            files(dir.path()),
            ["1", "2"],
            "short frames stay in their rows"
        );
        let in_db = std::fs::metadata(dir.path().join("relay.db"))
            .unwrap()
            .len()
            + std::fs::metadata(dir.path().join("relay.db-wal")).map_or(0, |m| m.len());
        assert!(
            in_db < long().len() as u64,
            "the database holds {in_db} bytes"
        );
        queue.ack(RequestId(1));
        assert_eq!(queue.load(RequestId(1)).await.unwrap(), None);
        // Files go once their rows' deletion is committed, before the commit's writers hear
        // back: an insert after it is a barrier.
        let barrier = |id| queue.insert(RequestId(id), "ch", Bytes::from_static(b"x"));
        barrier(4).await.unwrap();
        assert_eq!(
            files(dir.path()),
            ["2"],
            "an acknowledged frame's file is gone"
        );
        let gone = queue.expire(Duration::ZERO).await.unwrap();
        assert_eq!(gone.len(), 3);
        barrier(5).await.unwrap();
        assert!(
            files(dir.path()).is_empty(),
            "an expired frame's file is gone"
        );
    }

    #[tokio::test]
    async fn a_frame_written_as_it_arrives_is_stored_and_a_dropped_one_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (queue, _) = Queue::open(Some(dir.path())).unwrap();
        let frame = long();
        let mut file = queue.frame_file(RequestId(1)).await.unwrap();
        for piece in frame.chunks(100_000) {
            file.write(piece).await.unwrap();
        }
        queue
            .submit_file(RequestId(1), "ch", file)
            .await
            .committed()
            .await
            .unwrap();
        assert_eq!(files(dir.path()), ["1"]);
        assert_eq!(queue.load(RequestId(1)).await.unwrap().unwrap(), frame);
        let mut dropped = queue.frame_file(RequestId(2)).await.unwrap();
        dropped.write(b"part of a frame").await.unwrap();
        assert_eq!(files(dir.path()), ["1", "2.part"]);
        drop(dropped);
        assert_eq!(
            files(dir.path()),
            ["1"],
            "an abandoned frame's file is removed"
        );
        let (memory, _) = Queue::open(None).unwrap();
        assert!(memory.frame_file(RequestId(3)).await.is_none());
    }

    #[tokio::test]
    async fn stray_and_damaged_frame_files_are_dealt_with() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (queue, _) = Queue::open(Some(dir.path())).unwrap();
            queue.insert(RequestId(1), "ch", long()).await.unwrap();
            queue.insert(RequestId(2), "ch", long()).await.unwrap();
        }
        // A crash between writing a file and committing its row leaves a file without a row.
        std::fs::write(dir.path().join("frames/9"), b"stray").unwrap();
        std::fs::write(dir.path().join("frames/junk"), b"stray").unwrap();
        // A power loss may cut a file short.
        let cut = &long()[..1000];
        std::fs::write(dir.path().join("frames/2"), cut).unwrap();
        let (queue, snapshot) = Queue::open(Some(dir.path())).unwrap();
        assert_eq!(files(dir.path()), ["1", "2"], "strays removed at start");
        assert_eq!(snapshot.pending.len(), 2);
        assert_eq!(queue.load(RequestId(1)).await.unwrap().unwrap(), long());
        assert_eq!(
            queue.load(RequestId(2)).await.unwrap(),
            None,
            "never a cut frame"
        );
        // Committed with (or before) the next insert: the cut request is gone for good.
        queue
            .insert(RequestId(3), "ch", Bytes::from_static(b"short"))
            .await
            .unwrap();
        drop(queue);
        let (_, snapshot) = Queue::open(Some(dir.path())).unwrap();
        let ids: Vec<RequestId> = snapshot.pending.iter().map(|(_, id)| *id).collect();
        assert_eq!(ids, [RequestId(1), RequestId(3)]);
        assert_eq!(files(dir.path()), ["1"]);
    }

    #[tokio::test]
    async fn a_long_frame_whose_file_cannot_be_written_is_an_error_and_leaves_no_row() {
        let dir = tempfile::tempdir().unwrap();
        let (queue, _) = Queue::open(Some(dir.path())).unwrap();
        // Where the file should go is a directory: writing it fails, even for root.
        std::fs::create_dir(dir.path().join("frames/1")).unwrap();
        let error = queue.insert(RequestId(1), "ch", long()).await.unwrap_err();
        assert!(matches!(error, QueueError::File(_)), "{error}");
        queue
            .insert(RequestId(2), "ch", Bytes::from_static(b"short"))
            .await
            .unwrap();
        drop(queue);
        std::fs::remove_dir(dir.path().join("frames/1")).unwrap();
        let (_, snapshot) = Queue::open(Some(dir.path())).unwrap();
        assert_eq!(snapshot.pending, vec![("ch".to_owned(), RequestId(2))]);
    }

    #[test]
    fn a_queue_from_before_frame_files_opens_and_keeps_its_frames() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("relay.db")).unwrap();
        conn.execute_batch(
            "CREATE TABLE queue (id INTEGER PRIMARY KEY, channel TEXT NOT NULL,
                 received_at INTEGER NOT NULL, frame BLOB NOT NULL);
             INSERT INTO queue VALUES (4, 'ch', 1, x'0102');",
        )
        .unwrap();
        drop(conn);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (queue, snapshot) = Queue::open(Some(dir.path())).unwrap();
        assert_eq!(snapshot.pending, vec![("ch".to_owned(), RequestId(4))]);
        let frame = runtime.block_on(queue.load(RequestId(4))).unwrap().unwrap();
        assert_eq!(frame.as_ref(), b"\x01\x02");
    }

    /// A frame longer than `frames::FILE_FROM`.
    fn long() -> Bytes {
        (0..(1usize << 20) + 3)
            .map(|i| (i % 241) as u8)
            .collect::<Vec<u8>>()
            .into()
    }

    #[tokio::test]
    async fn expire_deletes_old_rows_only() {
        let dir = tempfile::tempdir().unwrap();
        for place in [None, Some(dir.path())] {
            expire_in(place).await;
        }
    }

    async fn expire_in(place: Option<&Path>) {
        let (queue, _) = Queue::open(place).unwrap();
        queue
            .insert(RequestId(5), "ch", Bytes::from_static(b"x"))
            .await
            .unwrap();
        assert!(queue
            .expire(Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty());
        let gone = queue.expire(Duration::ZERO).await.unwrap();
        assert_eq!(gone, vec![("ch".to_owned(), RequestId(5))]);
        assert_eq!(queue.load(RequestId(5)).await.unwrap(), None);
    }
}
