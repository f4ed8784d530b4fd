//! The relay's durable queue: every accepted webhook is written here before the relay answers or
//! forwards it, and stays until a CLI acknowledges it or it expires. Also remembers the channels
//! that CLIs have claimed, so they survive restarts.
//!
//! [`Queue`] is the seam the rest of the relay calls: ids ([`Queue::next_id`]), requests in
//! ([`Queue::submit`]), back out ([`Queue::load`]) and done ([`Queue::ack`]), and the channels'
//! records. Behind it, one of two stores:
//!
//! - On disk in `--data-dir` (`sqlite.rs`): requests in an append-only journal (`journal.rs`),
//!   channels and the id reserve in SQLite (WAL, `synchronous=NORMAL`); what was written
//!   survives the process being killed, and only a power loss can take the last few. One
//!   dedicated thread fed by a channel writes both (`store.rs`): everything waiting at once, so
//!   many concurrent webhooks share one write. Long frames are files beside them (`frames.rs`).
//! - A map (`memory.rs`), for a relay without a data directory.
//!
//! Request ids and the queue's epoch are in `ids.rs`.

mod frames;
mod ids;
mod journal;
mod memory;
mod sqlite;
mod store;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::oneshot;

pub(crate) use frames::{FrameFile, FILE_FROM};
use ids::Ids;
use memory::Memory;
use sqlite::Sqlite;

use crate::protocol::RequestId;

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
    /// The journal of requests could not be written or read.
    #[error("relay queue: its journal: {0}")]
    Journal(std::io::Error),
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

/// A request frame on its way to the queue (see [`Queue::submit`]).
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

/// A request's frame as the relay read it, on its way into the queue.
pub enum Frame {
    /// In memory, whole (carrying its charge against the relay's memory budget).
    Whole(Bytes),
    /// In its file, written as the body arrived (see [`Queue::frame_file`]).
    File(FrameFile),
}

/// Handle on the queue; cheap to clone.
#[derive(Clone)]
pub struct Queue {
    store: Store,
    ids: Arc<Ids>,
}

#[derive(Clone)]
enum Store {
    Sqlite(Sqlite),
    Memory(Memory),
}

impl Queue {
    /// Opens (or creates) the queue in `dir`, or in memory when `dir` is `None`, and returns it
    /// with what it already holds.
    pub fn open(dir: Option<&Path>) -> Result<(Queue, Snapshot), QueueError> {
        let Some(dir) = dir else {
            let queue = Queue {
                store: Store::Memory(Memory::default()),
                ids: Arc::new(Ids::unbounded(ids::new_epoch())),
            };
            return Ok((queue, Snapshot::default()));
        };
        let (sqlite, snapshot, ids) = sqlite::open(dir)?;
        let queue = Queue {
            store: Store::Sqlite(sqlite),
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

    /// A file to write request `id`'s frame into as it arrives, so that a long body need not be
    /// held whole in memory: `None` for the queue in memory, or when the file cannot be made
    /// (the frame is then kept in memory and stored whole).
    pub async fn frame_file(&self, id: RequestId) -> Option<FrameFile> {
        match &self.store {
            Store::Sqlite(sqlite) => sqlite.frame_file(id).await,
            Store::Memory(_) => None,
        }
    }

    /// Starts writing request `id`'s frame: returns once the write is queued, before it is
    /// committed, so the caller can deliver the request meanwhile. Commands run in the order
    /// they are queued, so a later acknowledgement of `id` deletes it after it is written.
    pub async fn submit(&self, id: RequestId, channel: &str, frame: Frame) -> Committing {
        let channel = channel.to_owned();
        match (&self.store, frame) {
            (Store::Sqlite(sqlite), Frame::Whole(frame)) => {
                sqlite.submit_insert(id, channel, frame).await
            }
            (Store::Sqlite(sqlite), Frame::File(file)) => {
                sqlite.submit_file(id, channel, file).await
            }
            (Store::Memory(memory), Frame::Whole(frame)) => {
                memory.insert(id, channel, frame);
                Committing::Done(Ok(()))
            }
            // The memory queue makes no frame files.
            (Store::Memory(_), Frame::File(_)) => Committing::Done(Err(QueueError::Closed)),
        }
    }

    /// Writes one request frame; returns once it is committed.
    pub async fn insert(
        &self,
        id: RequestId,
        channel: &str,
        frame: Bytes,
    ) -> Result<(), QueueError> {
        self.submit(id, channel, Frame::Whole(frame))
            .await
            .committed()
            .await
    }

    /// Whether frames are read back from disk (SQLite and its files), rather than handed back
    /// from memory.
    pub fn is_durable(&self) -> bool {
        matches!(self.store, Store::Sqlite(_))
    }

    /// Reads a queued frame back, `None` if it was acknowledged or expired meanwhile.
    pub async fn load(&self, id: RequestId) -> Result<Option<Bytes>, QueueError> {
        match &self.store {
            Store::Sqlite(sqlite) => sqlite.load(id).await,
            Store::Memory(memory) => Ok(memory.load(id)),
        }
    }

    /// Deletes an acknowledged request (in the background; a lost ack means one redelivery).
    pub fn ack(&self, id: RequestId) {
        match &self.store {
            Store::Sqlite(sqlite) => sqlite.ack(id),
            Store::Memory(memory) => memory.ack(id),
        }
    }

    /// Commits what the store thread holds back (acknowledgements waiting for company), for a
    /// relay about to stop.
    pub async fn flush(&self) -> Result<(), QueueError> {
        match &self.store {
            Store::Sqlite(sqlite) => sqlite.flush().await,
            Store::Memory(_) => Ok(()),
        }
    }

    /// Remembers a channel and its settings.
    pub async fn save_channel(&self, record: ChannelRecord) -> Result<(), QueueError> {
        match &self.store {
            Store::Sqlite(sqlite) => sqlite.save_channel(record).await,
            // The channel map itself is all an in-memory relay remembers.
            Store::Memory(_) => Ok(()),
        }
    }

    /// Records that `name`'s session ended `at` (milliseconds since the Unix epoch).
    pub async fn channel_left(&self, name: &str, at: i64) -> Result<(), QueueError> {
        match &self.store {
            Store::Sqlite(sqlite) => sqlite.channel_left(name.to_owned(), at).await,
            Store::Memory(_) => Ok(()),
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
        match &self.store {
            Store::Sqlite(sqlite) => sqlite.forget_channels(channels, cutoff).await,
            Store::Memory(memory) => {
                memory.forget_channels(&channels);
                Ok(())
            }
        }
    }

    /// Deletes requests received `older_than` ago or earlier; returns what it deleted.
    pub async fn expire(
        &self,
        older_than: Duration,
    ) -> Result<Vec<(String, RequestId)>, QueueError> {
        match &self.store {
            Store::Sqlite(sqlite) => sqlite.expire(older_than).await,
            Store::Memory(memory) => Ok(memory.expire(older_than)),
        }
    }
}

/// Now, in milliseconds since the Unix epoch, as the queue records times.
pub(crate) fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}
