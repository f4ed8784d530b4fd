//! The store thread: the one thread that writes the durable queue, its requests to the journal
//! (`journal.rs`) and its channels and id reserve to SQLite. It takes [`Command`]s from a
//! channel and writes everything waiting at once: one `write` of the journal's records (and a
//! SQLite transaction only when channels or the reserve change), so many concurrent webhooks
//! share one write; acknowledgements wait a moment for company (see [`ACK_DELAY`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rusqlite::{params, Connection};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use super::frames::{self, Frames};
use super::ids::Ids;
use super::journal::{Journal, Loaded};
use super::{now_ms, ChannelRecord, QueueError};
use crate::protocol::RequestId;

/// Commands waiting for the store thread.
pub(super) const COMMAND_CAPACITY: usize = 1024;

/// Most commands the store thread writes at once.
const BATCH: usize = 256;

/// Longest an acknowledgement waits to share a write with the next insert. Nobody waits for it
/// (a lost one means one redelivery), and a write of its own per request doubled the store
/// thread's writes: at one request at a time, each request's deletion now goes with the next
/// one's insert.
const ACK_DELAY: Duration = Duration::from_millis(20);

/// What the store thread is asked to do.
pub(super) enum Command {
    Insert {
        id: RequestId,
        channel: String,
        frame: Bytes,
        done: Done,
    },
    /// A frame already written to its file ([`FrameFile`](super::FrameFile)), `len` bytes
    /// long.
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

/// Where a write's outcome goes.
type Done = oneshot::Sender<Result<(), QueueError>>;

/// What the store thread writes to.
pub(super) struct Stores {
    /// Channels and the id reserve.
    pub conn: Connection,
    /// Requests.
    pub journal: Journal,
    /// Long requests' frames.
    pub frames: Frames,
}

/// The store thread: writes what arrives in batches. Acknowledgements wait (at most
/// [`ACK_DELAY`]) for another command to share their write; everything else is written at
/// once, with the acknowledgements waiting ahead of it, so a load never sees an acknowledged
/// request.
pub(super) fn store_thread(mut stores: Stores, mut rx: mpsc::Receiver<Command>, ids: Arc<Ids>) {
    // Only for waiting on the channel with a timeout; without it, acknowledgements are written
    // at once, as everything else is.
    let clock = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| warn!(error = %e, "relay queue: no timer for the store thread"))
        .ok();
    let mut batch = Vec::with_capacity(BATCH);
    let mut acks = Vec::new();
    // When the oldest of `acks` must be written.
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
                        run_batch(&mut stores, &mut acks, &ids);
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
        run_batch(&mut stores, &mut batch, &ids);
    }
    run_batch(&mut stores, &mut acks, &ids);
    // Nobody is left to commit a reserve: whoever waits for one stops.
    ids.failed();
}

/// Whether `command` writes to SQLite (channels, the id reserve) rather than the journal.
fn in_sqlite(command: &Command) -> bool {
    matches!(
        command,
        Command::SaveChannel { .. }
            | Command::ChannelLeft { .. }
            | Command::ForgetChannels { .. }
            | Command::Reserve
    )
}

/// Runs a batch: the journal's records in one write, and, when the batch changes channels or
/// the reserve, one SQLite transaction. Every writer hears how what it asked for went. Frame
/// files are unlinked once the deletion of their requests is written; the files of requests
/// whose insert was not written are unlinked at once. A reserve asked for is committed with the
/// rest, and `ids` told its fate.
fn run_batch(stores: &mut Stores, batch: &mut Vec<Command>, ids: &Ids) {
    if batch.is_empty() {
        return;
    }
    let Stores {
        conn,
        journal,
        frames,
    } = stores;
    let reserving = batch.iter().any(|c| matches!(c, Command::Reserve));
    let mut tx = None;
    if batch.iter().any(in_sqlite) {
        match conn.transaction() {
            Ok(started) => tx = Some(started),
            Err(e) => {
                if reserving {
                    warn!(error = %e, "could not reserve request ids");
                    ids.failed();
                }
                let (failed, rest): (Vec<Command>, Vec<Command>) =
                    batch.drain(..).partition(in_sqlite);
                *batch = rest;
                fail_all(failed.into_iter(), &e);
            }
        }
    }
    let mut outcome = Outcome::default();
    for command in batch.drain(..) {
        let mut stores = Batch {
            tx: tx.as_ref(),
            journal: &mut *journal,
            frames: &*frames,
        };
        apply(&mut stores, command, &mut outcome);
    }
    let written = journal.write();
    if let Err(e) = &written {
        warn!(error = %e, dir = %frames.dir().display(), "could not write to the relay's journal");
    }
    let Some(tx) = tx else {
        outcome.settle(frames, written, Ok(()));
        return;
    };
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
    outcome.settle(frames, written, committed);
}

/// What a command is applied to: the batch's transaction (when it has one), the journal, the
/// frame files.
struct Batch<'a, 't> {
    tx: Option<&'a rusqlite::Transaction<'t>>,
    journal: &'a mut Journal,
    frames: &'a Frames,
}

/// What a writer waits for besides its own statement's result.
#[derive(Clone, Copy)]
struct Needs {
    journal: bool,
    sqlite: bool,
}

const JOURNAL: Needs = Needs {
    journal: true,
    sqlite: false,
};
const SQLITE: Needs = Needs {
    journal: false,
    sqlite: true,
};

/// What a batch's commands did, settled once its writes' fate is known.
#[derive(Default)]
struct Outcome {
    /// Writers waiting to hear back, with their own result and what else it needs.
    replies: Vec<(Done, Result<(), QueueError>, Needs)>,
    /// Frames written to files for requests inserted in the batch.
    written: Vec<RequestId>,
    /// Requests deleted in the batch whose frames are files.
    deleted: Vec<RequestId>,
}

impl Outcome {
    /// Unlinks the files the batch made useless (those of deleted requests if the journal was
    /// written, of inserted ones if not), then tells every writer.
    fn settle(
        self,
        frames: &Frames,
        written: std::io::Result<()>,
        committed: rusqlite::Result<()>,
    ) {
        let gone = if written.is_ok() {
            self.deleted
        } else {
            self.written
        };
        for id in gone {
            frames.remove(id);
        }
        for (done, result, needs) in self.replies {
            let outcome = result.and_then(|()| match (&written, &committed) {
                (Err(e), _) if needs.journal => Err(QueueError::Journal(clone_io(e))),
                (_, Err(e)) if needs.sqlite => Err(QueueError::Sqlite(clone_error(e))),
                _ => Ok(()),
            });
            let _ = done.send(outcome);
        }
    }
}

/// Runs one command of a batch.
fn apply(stores: &mut Batch<'_, '_>, command: Command, outcome: &mut Outcome) {
    match command {
        Command::Insert {
            id,
            channel,
            frame,
            done,
        } => {
            let result = insert(stores, id, &channel, &frame);
            if matches!(result, Ok(true)) {
                outcome.written.push(id);
            }
            outcome.replies.push((done, result.map(|_| ()), JOURNAL));
        }
        Command::InsertFile {
            id,
            channel,
            len,
            done,
        } => {
            let result = insert_file(stores, id, &channel, len);
            if result.is_ok() {
                outcome.written.push(id);
            }
            outcome.replies.push((done, result, JOURNAL));
        }
        Command::Load { id, done } => {
            let _ = done.send(load(stores, id, &mut outcome.deleted));
        }
        Command::Ack { id } => {
            if stores.journal.delete(id) == Some(true) {
                outcome.deleted.push(id);
            }
        }
        Command::Flush { done } => outcome.replies.push((done, Ok(()), JOURNAL)),
        Command::Reserve => {}
        Command::SaveChannel { record, done } => {
            let result = in_tx(stores, |tx| save_channel(tx, &record));
            outcome.replies.push((done, result, SQLITE));
        }
        Command::ChannelLeft { name, at, done } => {
            let result = in_tx(stores, |tx| {
                tx.execute(
                    "UPDATE channels SET detached_at = ?2 WHERE name = ?1",
                    params![name, at],
                )
                .map(|_| ())
            });
            outcome.replies.push((done, result, SQLITE));
        }
        Command::ForgetChannels {
            channels,
            cutoff,
            done,
        } => {
            for (name, last) in &channels {
                for id in stores.journal.of_channel(name, *last) {
                    if stores.journal.delete(id) == Some(true) {
                        outcome.deleted.push(id);
                    }
                }
            }
            let result = in_tx(stores, |tx| forget_channels(tx, &channels, cutoff));
            let both = Needs {
                journal: true,
                sqlite: true,
            };
            outcome.replies.push((done, result, both));
        }
        Command::Expire { older_than, done } => {
            let cutoff = now_ms() - i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
            let gone = stores.journal.received_by(cutoff);
            let mut expired = Vec::with_capacity(gone.len());
            for (channel, id, in_file) in gone {
                stores.journal.delete(id);
                if in_file {
                    outcome.deleted.push(id);
                }
                expired.push((channel, id));
            }
            let _ = done.send(Ok(expired));
        }
    }
}

/// Runs `statement` in the batch's transaction.
fn in_tx(
    stores: &Batch<'_, '_>,
    statement: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>,
) -> Result<(), QueueError> {
    let tx = stores
        .tx
        .expect("a batch with SQLite commands has a transaction");
    statement(tx).map_err(QueueError::from)
}

/// Queues one request frame for the journal; a long one goes to its file first, and `true`
/// says so. If its file cannot be written, the file goes too.
fn insert(
    stores: &mut Batch<'_, '_>,
    id: RequestId,
    channel: &str,
    frame: &[u8],
) -> Result<bool, QueueError> {
    if frame.len() < frames::FILE_FROM {
        stores.journal.insert(id, channel, now_ms(), frame);
        return Ok(false);
    }
    let frames = stores.frames;
    frames.write(id, frame).inspect_err(|_| frames.remove(id))?;
    let len = frame.len() as u64;
    stores.journal.insert_file(id, channel, now_ms(), len);
    Ok(true)
}

/// Queues the record of a frame already written to `<id>.part` (a [`FrameFile`]), which it
/// renames to the frame's file first. If that fails, the file goes.
///
/// [`FrameFile`]: super::FrameFile
fn insert_file(
    stores: &mut Batch<'_, '_>,
    id: RequestId,
    channel: &str,
    len: u64,
) -> Result<(), QueueError> {
    let frames = stores.frames;
    frames.adopt(id).inspect_err(|_| frames.remove_part(id))?;
    stores.journal.insert_file(id, channel, now_ms(), len);
    Ok(())
}

/// Reads one queued frame back, from the journal or its file. A file missing or cut short (a
/// power loss took it) drops the request, with a warning, rather than delivering part of it.
fn load(
    stores: &mut Batch<'_, '_>,
    id: RequestId,
    deleted: &mut Vec<RequestId>,
) -> Result<Option<Bytes>, QueueError> {
    match stores.journal.load(id).map_err(QueueError::Journal)? {
        None => Ok(None),
        Some(Loaded::Frame(frame)) => Ok(Some(frame)),
        Some(Loaded::File(len)) => {
            if let Some(frame) = stores.frames.read(id, len)? {
                return Ok(Some(frame));
            }
            warn!(%id, dir = %stores.frames.dir().display(), "a queued request's frame file is missing or cut short; dropping the request");
            stores.journal.delete(id);
            deleted.push(id);
            Ok(None)
        }
    }
}

/// Remembers a channel and its settings.
fn save_channel(tx: &rusqlite::Transaction<'_>, record: &ChannelRecord) -> rusqlite::Result<()> {
    tx.execute(
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
    )?;
    Ok(())
}

fn clone_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::InvalidPath(other.to_string().into()),
    }
}

fn clone_io(e: &std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), e.to_string())
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

/// Deletes the records of `channels` left at `cutoff` or earlier (their requests go from the
/// journal).
fn forget_channels(
    tx: &rusqlite::Transaction<'_>,
    channels: &[(String, RequestId)],
    cutoff: i64,
) -> rusqlite::Result<()> {
    let mut record =
        tx.prepare_cached("DELETE FROM channels WHERE name = ?1 AND detached_at <= ?2")?;
    for (name, _) in channels {
        record.execute(params![name, cutoff])?;
    }
    Ok(())
}
