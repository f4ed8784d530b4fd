//! The store thread: the one thread that writes the SQLite queue. It takes [`Command`]s from a
//! channel and commits everything waiting in one transaction, so many concurrent webhooks share
//! one commit; acknowledgements wait a moment for company (see [`ACK_DELAY`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use super::frames::{self, Frames};
use super::ids::Ids;
use super::{now_ms, ChannelRecord, QueueError};
use crate::protocol::RequestId;

/// Commands waiting for the store thread.
pub(super) const COMMAND_CAPACITY: usize = 1024;

/// Most commands the store thread commits in one transaction.
const BATCH: usize = 256;

/// Longest an acknowledgement waits to share a transaction with the next write. Nobody waits
/// for its commit (a lost one means one redelivery), and a commit of its own per request
/// doubled the store thread's transactions: at one request at a time, each request's deletion
/// now commits with the next one's insert.
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

/// The store thread: commits what arrives in batches. Acknowledgements wait (at most
/// [`ACK_DELAY`]) for another command to share its transaction; everything else is committed at
/// once, with the acknowledgements waiting ahead of it, so a load never sees an acknowledged row.
pub(super) fn store_thread(
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
///
/// [`FrameFile`]: super::FrameFile
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
    let mut outcome = Outcome::default();
    for command in batch.drain(..) {
        apply(&tx, frames, command, &mut outcome);
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
    outcome.settle(frames, committed);
}

/// What a batch's commands did in its transaction, settled once its commit's fate is known.
#[derive(Default)]
struct Outcome {
    /// Writers waiting to hear back, with their statement's own result.
    replies: Vec<(Done, Result<(), QueueError>)>,
    /// Frames written to files for rows inserted in the transaction.
    written: Vec<RequestId>,
    /// Rows deleted in the transaction whose frames are files.
    deleted: Vec<RequestId>,
}

impl Outcome {
    /// Unlinks the files the transaction made useless (those of deleted rows if it committed,
    /// of inserted ones if not), then tells every writer.
    fn settle(self, frames: &Frames, committed: rusqlite::Result<()>) {
        let gone = if committed.is_ok() {
            self.deleted
        } else {
            self.written
        };
        for id in gone {
            frames.remove(id);
        }
        for (done, result) in self.replies {
            // The statement's own error, else the commit's.
            let outcome = match (result, &committed) {
                (Err(e), _) => Err(e),
                (Ok(()), Err(e)) => Err(QueueError::Sqlite(clone_error(e))),
                (Ok(()), Ok(())) => Ok(()),
            };
            let _ = done.send(outcome);
        }
    }
}

/// Runs one command in the batch's transaction `tx`.
fn apply(tx: &rusqlite::Transaction<'_>, frames: &Frames, command: Command, outcome: &mut Outcome) {
    match command {
        Command::Insert {
            id,
            channel,
            frame,
            done,
        } => {
            let result = insert(tx, frames, id, &channel, &frame);
            if matches!(result, Ok(true)) {
                outcome.written.push(id);
            }
            outcome.replies.push((done, result.map(|_| ())));
        }
        Command::InsertFile {
            id,
            channel,
            len,
            done,
        } => {
            let result = insert_file(tx, frames, id, &channel, len);
            if result.is_ok() {
                outcome.written.push(id);
            }
            outcome.replies.push((done, result));
        }
        Command::Load { id, done } => {
            let _ = done.send(load(tx, frames, id, &mut outcome.deleted));
        }
        Command::Ack { id } => match delete(tx, id) {
            Ok(Some(Some(_))) => outcome.deleted.push(id),
            Ok(_) => {}
            Err(e) => warn!(error = %e, %id, "could not delete an acknowledged request"),
        },
        Command::Flush { done } => outcome.replies.push((done, Ok(()))),
        Command::Reserve => {}
        Command::SaveChannel { record, done } => {
            let result = save_channel(tx, &record);
            outcome
                .replies
                .push((done, result.map_err(QueueError::from)));
        }
        Command::ChannelLeft { name, at, done } => {
            let result = tx.execute(
                "UPDATE channels SET detached_at = ?2 WHERE name = ?1",
                params![name, at],
            );
            outcome
                .replies
                .push((done, result.map(|_| ()).map_err(QueueError::from)));
        }
        Command::ForgetChannels {
            channels,
            cutoff,
            done,
        } => {
            let result = forget_channels(tx, &channels, cutoff, &mut outcome.deleted);
            outcome
                .replies
                .push((done, result.map_err(QueueError::from)));
        }
        Command::Expire { older_than, done } => {
            let cutoff = now_ms() - i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
            let result = expire(tx, cutoff).map(|gone| {
                outcome
                    .deleted
                    .extend(gone.iter().filter(|g| g.2).map(|g| g.1));
                gone.into_iter()
                    .map(|(channel, id, _)| (channel, id))
                    .collect()
            });
            let _ = done.send(result.map_err(QueueError::from));
        }
    }
}

/// Deletes an acknowledged request's row: `Some(file_len)` if there was one.
fn delete(tx: &rusqlite::Transaction<'_>, id: RequestId) -> rusqlite::Result<Option<Option<i64>>> {
    tx.prepare_cached("DELETE FROM queue WHERE id = ?1 RETURNING file_len")?
        .query_row([id.0 as i64], |r| r.get::<_, Option<i64>>(0))
        .optional()
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
