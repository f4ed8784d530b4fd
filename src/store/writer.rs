//! The store's writing side: one thread owns a connection, commits everything waiting in one
//! transaction, and prunes to the retention limits, so a slow disk delays only this thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{params, CachedStatement, Connection, Transaction};
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use super::bodies::{Bodies, Which};
use super::checkpoint::{self, Checkpointer};
use super::generations::{self, Place, Sizes, PRUNE_SLACK};
use super::upkeep::Upkeep;
use super::{signature, StoreError};
use crate::exchange::{now_ms, CaptureId, Exchange, Outcome};

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

/// WAL written since the last checkpoint beyond which one starts, even under load, on the
/// checkpoint thread ([`Checkpointer`]). Otherwise checkpoints (which copy the WAL into the
/// database file and fsync it) wait until the writer is idle.
/// (1 MiB in unit tests, which check that the WAL stays bounded under sustained load.)
pub(super) const WAL_BYTES: u64 = if cfg!(test) { 1 << 20 } else { 32 << 20 };

/// How long the writer waits without a capture before it checkpoints and prunes.
const IDLE: Duration = Duration::from_millis(200);

/// Bytes a capture adds to the WAL besides its bodies and headers (columns, page overhead).
const ROW_OVERHEAD: u64 = 512;

/// Long bodies' files written between sweeps of those retention has taken (see
/// [`Bodies::sweep`]), besides the sweep of every idle moment.
const SWEEP_EVERY: usize = 16;

/// How often captures older than `--keep-days` are looked for.
const AGE_PRUNE_EVERY: Duration = Duration::from_secs(60);

/// How many captures to keep, and for how long.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep this many; the oldest go first, in generations of `keep / 8` (see `PRUNE_SLACK`).
    pub keep: Option<u64>,
    /// Delete captures received longer ago than this.
    pub max_age: Option<Duration>,
}

/// The outcome of [`Writer::record`]: the new capture's id once committed.
pub type Pending = oneshot::Receiver<Result<CaptureId, StoreError>>;

/// The outcome of one capture queued with [`Writer::record_in_turn`], with its exchange, handed
/// back so that its caller need not keep a copy.
pub type Committed = (Result<CaptureId, StoreError>, Box<Exchange>);

/// The captures queued with [`Writer::record_in_turn`] that one commit settled, in the order
/// they were queued.
pub type Commits = mpsc::Receiver<Vec<Committed>>;

/// Earlier captures of relay deliveries: capture id by (relay epoch, relay id), by channel URL.
type Previous = HashMap<String, HashMap<(u64, u64), i64>>;

/// Most earlier captures whose deliveries [`Writer::captured_before`] recognises: the newest
/// ones. A redelivery after a restart is one the earlier run forwarded and did not acknowledge,
/// so at most a relay's window (1,024 by default) of that run's newest captures.
const PREVIOUS_LIMIT: i64 = 20_000;

/// Who hears of an insert's outcome.
enum Reply {
    /// Its own channel.
    One(oneshot::Sender<Result<CaptureId, StoreError>>),
    /// The writer's [`Commits`], with the rest of its commit, and the exchange with it.
    InTurn,
}

struct Command {
    exchange: Box<Exchange>,
    reply: Reply,
}

/// Handle on the writer thread; the thread ends when the handle is dropped.
pub struct Writer {
    commands: std::sync::mpsc::SyncSender<Command>,
    /// Earlier captures of relay deliveries (the newest [`PREVIOUS_LIMIT`]) when this writer
    /// started.
    previous: Previous,
    /// Where the outcomes of [`Writer::record_in_turn`] go, until someone takes it.
    commits: Option<Commits>,
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
        // The thread checkpoints by itself (see `Thread::maintain`) rather than SQLite every
        // 1000 pages: rows are written once to the WAL and once more by the checkpoint, and a
        // page rewritten by several commits (the table's last page) is copied once per
        // checkpoint. The WAL file is cut back to WAL_BYTES after a checkpoint.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(fail)?;
        conn.pragma_update(None, "journal_size_limit", WAL_BYTES as i64)
            .map_err(fail)?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| StoreError::Thread(std::io::Error::other(e)))?;
        let (replies, replies_rx) = mpsc::channel(REPLY_CAPACITY);
        let (in_turn, commits) = mpsc::channel(REPLY_CAPACITY);
        let (commands, rx) = std::sync::mpsc::sync_channel(COMMAND_CAPACITY);
        let (opened, started) = std::sync::mpsc::sync_channel(1);
        // What opening reads (the newest captures, every generation's count) is read on the
        // writer's thread, whose allocator arena keeps the high-water mark of its pages for the
        // rest of the run anyway, rather than on the caller's, which would keep a second one.
        std::thread::Builder::new()
            .name("capture-store".into())
            .spawn(move || {
                let fail = |e| StoreError::sqlite(&path, e);
                let loaded = previous_relay_ids(&conn)
                    .and_then(|previous| Ok((previous, Sizes::load(&conn)?)))
                    .map_err(fail);
                let sizes = match loaded {
                    Ok((previous, sizes)) => {
                        let _ = opened.send(Ok(previous));
                        sizes
                    }
                    Err(e) => {
                        let _ = opened.send(Err(e));
                        return;
                    }
                };
                let thread = Thread {
                    bodies: Bodies::of(&conn),
                    checkpointer: Checkpointer::new(&conn),
                    conn,
                    checkpointing: false,
                    path,
                    retention,
                    sizes,
                    next: None,
                    aged_at: None,
                    unchecked: 0,
                    replies,
                    upkeep: Upkeep::default(),
                };
                thread.run(rx)
            })
            .map_err(StoreError::Thread)?;
        let previous = started.recv().map_err(|_| StoreError::Closed)??;
        runtime.spawn(hand_out(replies_rx, in_turn));
        Ok(Writer {
            commands,
            previous,
            commits: Some(commits),
        })
    }

    /// The outcomes of the captures queued with [`Writer::record_in_turn`], one message per
    /// commit; `None` once taken.
    pub fn take_commits(&mut self) -> Option<Commits> {
        self.commits.take()
    }

    /// Queues `exchange` for the next commit, without waiting for room: when the thread is
    /// `COMMAND_CAPACITY` behind, the capture is dropped ([`StoreError::Behind`]).
    pub fn record(&self, exchange: Exchange) -> Result<Pending, StoreError> {
        let (done, pending) = oneshot::channel();
        self.queue(Box::new(exchange), Reply::One(done))
            .map_err(|(e, _)| e)?;
        Ok(pending)
    }

    /// Queues `exchange` like [`Writer::record`], but its outcome comes on the writer's
    /// [`Commits`] with the rest of its commit, in queueing order (one wake-up per commit rather
    /// than one per capture), and the exchange comes back with it, as it does with the error
    /// when it cannot be queued.
    pub fn record_in_turn(
        &self,
        exchange: Box<Exchange>,
    ) -> Result<(), (StoreError, Box<Exchange>)> {
        self.queue(exchange, Reply::InTurn)
            .map_err(|(e, command)| (e, command.exchange))
    }

    fn queue(&self, exchange: Box<Exchange>, reply: Reply) -> Result<(), (StoreError, Command)> {
        use std::sync::mpsc::TrySendError;
        match self.commands.try_send(Command { exchange, reply }) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(command)) => Err((StoreError::Behind, command)),
            Err(TrySendError::Disconnected(command)) => Err((StoreError::Closed, command)),
        }
    }

    /// The capture of delivery `relay_id` of the relay queue's `relay_epoch` (0: none) on
    /// `channel_url`, if one was made before this writer started (a redelivery after a
    /// restart), among the newest `PREVIOUS_LIMIT` captures then. Answered from memory;
    /// repeats within one process are the caller's to spot.
    pub fn captured_before(
        &self,
        channel_url: &str,
        relay_epoch: u64,
        relay_id: u64,
    ) -> Option<CaptureId> {
        self.previous
            .get(channel_url)?
            .get(&(relay_epoch, relay_id))
            .map(|&id| CaptureId(id))
    }
}

/// The newest `PREVIOUS_LIMIT` captures of relay deliveries. Those from before epochs (or
/// from a relay without one) have epoch 0.
fn previous_relay_ids(conn: &Connection) -> rusqlite::Result<Previous> {
    // Table by table rather than through the view: the view's ten-way merge compiles to a
    // program whose memory the allocator keeps for the rest of the run (about 250 KiB of an
    // idle `hooks listen`'s RSS).
    let mut newest: Vec<(i64, String, i64, i64)> = Vec::new();
    for slot in 0..generations::SLOTS {
        let mut stmt = conn.prepare(&format!(
            "SELECT id, channel_url, relay_id, COALESCE(relay_epoch, 0) FROM {}
             WHERE channel_url IS NOT NULL AND relay_id IS NOT NULL AND copy = 0
             ORDER BY id DESC LIMIT ?1",
            generations::table(slot)
        ))?;
        let rows = stmt.query_map([PREVIOUS_LIMIT], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        for row in rows {
            newest.push(row?);
        }
    }
    newest.sort_unstable_by_key(|&(id, ..)| std::cmp::Reverse(id));
    newest.truncate(PREVIOUS_LIMIT as usize);
    let mut previous = Previous::new();
    for (id, url, relay_id, epoch) in newest {
        let key = (epoch as u64, relay_id as u64);
        previous.entry(url).or_default().insert(key, id);
    }
    Ok(previous)
}

/// Where the next capture goes: `known`, what this thread's last commit left, unless another
/// connection has committed since (a replay, another `hooks listen`).
fn next_at(tx: &Transaction<'_>, known: Option<Next>) -> rusqlite::Result<Next> {
    let data_version: i64 = tx
        .prepare_cached("PRAGMA data_version")?
        .query_row([], |r| r.get(0))?;
    if let Some(next) = known.filter(|next| next.data_version == data_version) {
        return Ok(next);
    }
    Ok(Next {
        place: generations::newest(tx)?,
        data_version,
    })
}

/// Where the next capture goes, and when that was known.
#[derive(Debug, Clone, Copy)]
struct Next {
    /// The newest generation and the next id.
    place: Place,
    /// `PRAGMA data_version` when this was known.
    data_version: i64,
}

/// The writer thread's state.
struct Thread {
    conn: Connection,
    /// Long bodies' files.
    bodies: Bodies,
    path: PathBuf,
    retention: Retention,
    /// Captures per generation table as far as this thread knows.
    sizes: Sizes,
    /// After a commit of this thread's: the newest generation and the next id, valid while
    /// `PRAGMA data_version` (which other connections' commits change) stays what it was.
    next: Option<Next>,
    /// When captures past `max_age` were last deleted.
    aged_at: Option<Instant>,
    /// Bytes (roughly) committed to the WAL since the last checkpoint began.
    unchecked: u64,
    /// Runs the long checkpoints under load, beside this thread; `None` for a database in
    /// memory (and if its thread cannot start, this thread checkpoints).
    checkpointer: Option<Checkpointer>,
    /// A cycle of the checkpointer's is running.
    checkpointing: bool,
    /// Where commits' outcomes go, one message per commit.
    replies: mpsc::Sender<Outcomes>,
    /// Which upkeep tasks are failing, so each failure is logged once per run.
    upkeep: Upkeep,
}

impl Thread {
    fn run(mut self, rx: std::sync::mpsc::Receiver<Command>) {
        use std::sync::mpsc::RecvTimeoutError;
        let mut batch = Vec::with_capacity(BATCH);
        self.prune_now();
        self.sweep();
        // Opening read the newest captures (redeliveries) and counted the generations.
        self.release_memory();
        let mut committed_at: Option<Instant> = None;
        let mut tidy = true;
        loop {
            let first = if tidy {
                rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                rx.recv_timeout(IDLE)
            };
            match first {
                Ok(command) => batch.push(command),
                Err(RecvTimeoutError::Timeout) => {
                    self.maintain();
                    // Come back to finish a checkpoint cycle still running.
                    tidy = !self.checkpointing;
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
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
            tidy = false;
            self.checkpoint_under_load();
        }
        self.maintain();
    }

    /// Under load: starts a checkpoint on the checkpoint thread once [`WAL_BYTES`] have been
    /// written, and finishes the cycle when it is over (see the `checkpoint` module).
    fn checkpoint_under_load(&mut self) {
        let Some(checkpointer) = &mut self.checkpointer else {
            if self.unchecked >= WAL_BYTES {
                self.checkpoint();
            }
            return;
        };
        if self.checkpointing {
            if checkpointer.finished() {
                self.checkpointing = false;
                // What was committed while it ran: short, and then the next write can restart
                // the WAL from its beginning.
                self.checkpoint();
            }
        } else if self.unchecked >= WAL_BYTES {
            if checkpointer.start() {
                self.checkpointing = true;
                self.unchecked = 0;
            } else {
                self.checkpoint();
            }
        }
    }

    /// What waits for a quiet moment: pruning to the retention limits exactly, and a
    /// checkpoint (once the checkpoint thread's cycle, if one runs, is over).
    fn maintain(&mut self) {
        self.prune_now();
        self.sweep();
        if self.checkpointing {
            match &self.checkpointer {
                Some(checkpointer) if !checkpointer.finished() => return,
                _ => self.checkpointing = false,
            }
        }
        if self.unchecked > 0 {
            self.checkpoint();
        }
        self.release_memory();
    }

    /// Gives back SQLite's cache of pages (16 KiB each) while idle: an idle `hooks listen`
    /// should be small (issue 8's 10 MiB), and the next burst reads what it needs from the
    /// operating system's cache.
    fn release_memory(&self) {
        if let Err(e) = self.conn.release_memory() {
            debug!(error = %e, "could not release the capture store's cache");
        }
    }

    /// Copies the WAL into the database file, without waiting for readers.
    fn checkpoint(&mut self) {
        let done = checkpoint::passive(&self.conn);
        if self.upkeep.report("checkpoint the capture store", done) {
            self.unchecked = 0;
        }
    }

    /// Removes the body files of captures retention has taken (or a crash left).
    fn sweep(&mut self) {
        let swept = self.bodies.sweep(&self.conn);
        self.upkeep
            .report("remove the body files of pruned captures", swept);
    }

    /// Applies the retention limits exactly, in a transaction of its own.
    fn prune_now(&mut self) {
        // It may start a generation: the next batch looks again.
        self.next = None;
        let result = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .and_then(|tx| {
                prune(
                    &tx,
                    &mut self.sizes,
                    self.retention,
                    true,
                    &mut self.aged_at,
                )?;
                tx.commit()
            });
        if !self.upkeep.report("prune the capture store", result) {
            // What this thread knew may be what was rolled back.
            self.resync();
        }
    }

    /// Counts the generations' rows again, after a failed transaction.
    fn resync(&mut self) {
        if let Ok(sizes) = Sizes::load(&self.conn) {
            self.sizes = sizes;
        }
    }

    /// Runs a batch in one transaction. Writers hear back once the commit's fate is known.
    fn run_batch(&mut self, batch: &mut Vec<Command>) {
        // The write lock first: the next id, read below, is then this writer's to use, so the
        // body file written under that id (before its row) cannot be another writer's (a
        // `hooks replay`'s, say) that this one would overwrite, and then remove with its
        // failed insert.
        let tx = match self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => {
                let outcomes = batch
                    .drain(..)
                    .map(|command| (command, Err(StoreError::sqlite(&self.path, copy(&e)))))
                    .collect();
                let _ = self.replies.blocking_send(outcomes);
                return;
            }
        };
        let written: u64 = batch.iter().map(|c| c.exchange.size() + ROW_OVERHEAD).sum();
        let (inserted, failed) = match next_at(&tx, self.next) {
            Ok(Next {
                mut place,
                data_version,
            }) => {
                let keep = self.retention.keep;
                let (inserted, failed) = apply(
                    &tx,
                    batch,
                    keep,
                    &mut self.sizes,
                    &mut place,
                    &mut self.bodies,
                    &self.path,
                );
                // Under load, a generation at a time; small limits are always exact.
                let exact = self.retention.keep.is_some_and(|keep| keep < PRUNE_SLACK);
                // After a failed insert SQLite may have rolled the transaction back; deletes
                // would then commit on their own.
                if failed.is_empty() {
                    let retention = self.retention;
                    let pruned = prune(&tx, &mut self.sizes, retention, exact, &mut self.aged_at);
                    self.upkeep.report("prune the capture store", pruned);
                }
                self.next = Some(Next {
                    place,
                    data_version,
                });
                (inserted, failed)
            }
            Err(e) => {
                let failed = batch
                    .drain(..)
                    .map(|command| (command, Err(StoreError::sqlite(&self.path, copy(&e)))))
                    .collect();
                (Vec::new(), failed)
            }
        };
        let committed = tx.commit();
        if committed.is_err() || !failed.is_empty() {
            self.next = None;
            self.resync();
        }
        let mut outcomes: Outcomes = match committed {
            Ok(()) => {
                self.unchecked += written;
                inserted
                    .into_iter()
                    .map(|(command, id)| (command, Ok(CaptureId(id))))
                    .collect()
            }
            Err(e) => inserted
                .into_iter()
                .map(|(command, id)| {
                    self.bodies.remove(id);
                    (command, Err(StoreError::sqlite(&self.path, copy(&e))))
                })
                .collect(),
        };
        // Under a stream of long bodies with no idle moment, retention's files go every so
        // often rather than all at the next pause.
        if self.bodies.unswept >= SWEEP_EVERY {
            self.sweep();
        }
        // The failed ones came after every inserted one: a failure ends the batch's writes.
        outcomes.extend(failed);
        // One message per commit: waking each writer's task from this thread would cost the
        // runtime a wake-up (an eventfd write) per capture.
        let _ = self.replies.blocking_send(outcomes);
    }
}

/// The outcomes of one commit, in queueing order, for [`hand_out`].
type Outcomes = Vec<(Command, Result<CaptureId, StoreError>)>;

/// Tells each writer of a commit how it went, from inside the runtime, where waking a task is
/// cheap: [`Reply::One`]s one by one, [`Reply::InTurn`]s in one message on `in_turn`. Ends with
/// the writer thread.
async fn hand_out(mut replies: mpsc::Receiver<Outcomes>, in_turn: mpsc::Sender<Vec<Committed>>) {
    while let Some(outcomes) = replies.recv().await {
        let mut turn = Vec::new();
        for (Command { exchange, reply }, outcome) in outcomes {
            match reply {
                Reply::One(done) => {
                    let _ = done.send(outcome);
                }
                Reply::InTurn => turn.push((outcome, exchange)),
            }
        }
        if !turn.is_empty() {
            let _ = in_turn.send(turn).await;
        }
    }
}

/// An insert and its id, waiting for the commit.
type Inserted = (Command, i64);

/// Runs `batch` in `tx`; returns the inserts waiting for the commit, then those that failed.
/// With `--keep`, a full generation is followed by a new one, even within a batch, so each
/// holds at most its share. After a failed write (disk full, corruption) the transaction may be
/// gone, so the rest of the batch is failed with the same error rather than run outside it.
fn apply(
    tx: &Transaction<'_>,
    batch: &mut Vec<Command>,
    keep: Option<u64>,
    sizes: &mut Sizes,
    place: &mut Place,
    bodies: &mut Bodies,
    path: &Path,
) -> (Vec<Inserted>, Outcomes) {
    let mut inserted = Vec::with_capacity(batch.len());
    let mut failed = Vec::new();
    let mut broken: Option<rusqlite::Error> = None;
    let mut statement: Option<(i64, CachedStatement<'_>)> = None;
    for command in batch.drain(..) {
        if let Some(e) = &broken {
            failed.push((command, Err(StoreError::sqlite(path, copy(e)))));
            continue;
        }
        let rotated = match keep.filter(|&keep| sizes.full(place.n, keep)) {
            Some(keep) => sizes.rotate(tx, keep, place.next_id).map(|new| {
                if let Some(new) = new {
                    *place = new;
                }
            }),
            None => Ok(()),
        };
        let inserted_one = rotated.and_then(|()| {
            // One prepared statement for the batch's run of rows in one table: formatting its
            // text and looking it up in the cache (hashing 400 bytes) per row cost the writer
            // about a tenth of its time.
            if !matches!(&statement, Some((slot, _)) if *slot == place.slot) {
                statement = Some((place.slot, tx.prepare_cached(&insert_sql(place.slot))?));
            }
            let (_, stmt) = statement.as_mut().expect("prepared just above");
            insert(stmt, bodies, place.next_id, &command.exchange)
        });
        match inserted_one {
            Ok(()) => {
                inserted.push((command, place.next_id));
                sizes.inserted(place.n, 1);
                place.next_id += 1;
            }
            Err(e) => {
                failed.push((command, Err(StoreError::sqlite(path, copy(&e)))));
                broken = Some(e);
            }
        }
    }
    (inserted, failed)
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

/// The insert into the table of slot `slot`.
fn insert_sql(slot: i64) -> String {
    format!(
        "INSERT INTO {} (received_at, channel, channel_url, relay_id, target, method, path,
             request_headers, request_body, status, response_headers, response_body, error,
             duration_us, signature, event_type, event_id, replay_of, relay_epoch, redelivered,
             id, sent, route, copy)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
             ?19, ?20, ?21, ?22, ?23, ?24)",
        generations::table(slot)
    )
}

/// Inserts one capture as `id` with `stmt`, an insert of [`insert_sql`]; long bodies go to
/// their files first (and are removed again if the insert fails).
fn insert(
    stmt: &mut CachedStatement<'_>,
    bodies: &mut Bodies,
    id: i64,
    exchange: &Exchange,
) -> rusqlite::Result<()> {
    let pack = super::headers::pack;
    let (status, response_headers, response_body, error) = match &exchange.outcome {
        Outcome::Answered(r) => (
            Some(r.status),
            Some(pack(&r.headers)),
            Some(r.body.as_ref()),
            None,
        ),
        Outcome::Failed(error) => (None, None, None, Some(error.as_str())),
    };
    let request = &exchange.request;
    let event = exchange.event.as_ref();
    let inserted = (|| {
        let request_body = bodies
            .param(id, Which::Request, &request.body)
            .map_err(file_error)?;
        let response_body = match response_body {
            Some(body) => Some(
                bodies
                    .param(id, Which::Response, body)
                    .map_err(file_error)?,
            ),
            None => None,
        };
        stmt.execute(params![
            exchange.received_at_ms,
            exchange.channel,
            exchange.channel_url,
            exchange.relay_id.map(|id| id as i64),
            exchange.target,
            request.method,
            request.path,
            pack(&request.headers),
            request_body,
            status,
            response_headers,
            response_body,
            error,
            i64::try_from(exchange.duration.as_micros()).unwrap_or(i64::MAX),
            exchange.signature.as_ref().map(signature::to_json),
            event.and_then(|e| e.event_type.as_deref()),
            event.and_then(|e| e.event_id.as_deref()),
            exchange.replay_of.map(|id| id.0),
            exchange.relay_epoch.map(|epoch| epoch as i64),
            // Only a redelivery is marked; the rest stay NULL, as earlier captures are.
            exchange.redelivered.then_some(1),
            id,
            exchange.sent,
            exchange.route,
            exchange.copy,
        ])
    })();
    if inserted.is_err() {
        bodies.remove(id);
    }
    inserted.map(|_| ())
}

/// A body file's write error as SQLite's own would be, so that a full disk reads as one.
fn file_error(e: std::io::Error) -> rusqlite::Error {
    // ENOSPC, 28 on Linux and macOS alike (`ErrorKind::StorageFull` is newer than the MSRV).
    let code = if e.raw_os_error() == Some(28) {
        rusqlite::ffi::SQLITE_FULL
    } else {
        rusqlite::ffi::SQLITE_IOERR
    };
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(code),
        Some(format!("writing a body file: {e}")),
    )
}

/// Applies the retention limits (see [`Sizes::retain`] for `--keep`, and `exact`); captures
/// older than `--keep-days` are looked for every [`AGE_PRUNE_EVERY`].
fn prune(
    tx: &Transaction<'_>,
    sizes: &mut Sizes,
    retention: Retention,
    exact: bool,
    aged_at: &mut Option<Instant>,
) -> rusqlite::Result<()> {
    if let Some(keep) = retention.keep.filter(|&keep| sizes.due(keep, exact)) {
        sizes.retain(tx, keep, exact)?;
    }
    if let Some(max_age) = retention.max_age {
        if aged_at.is_none_or(|at| at.elapsed() >= AGE_PRUNE_EVERY) {
            let span = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
            sizes.expire(tx, now_ms().saturating_sub(span))?;
            *aged_at = Some(Instant::now());
        }
    }
    Ok(())
}
