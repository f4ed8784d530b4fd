//! Checkpoints of the capture store's WAL on a thread and connection of their own, so that the
//! writer goes on committing while one runs.
//!
//! A checkpoint copies the WAL's pages into the database file and fsyncs both; after 32 MiB of
//! captures those fsyncs take 20–60 ms on a virtual disk (measured with strace). Run on the
//! writer's thread, that was a stall of every commit, and so of every acknowledgement: at
//! 20,000 webhooks a second the relay's window of 256 unacknowledged requests filled, and the
//! tunnel stood still for most of each checkpoint. SQLite lets one connection checkpoint while
//! another writes (WAL mode: the checkpointer and the writer take different locks).
//!
//! The WAL file restarts from its beginning only at a write that finds every frame already
//! copied. Under sustained load frames are added while a checkpoint runs, so the writer finishes
//! each cycle itself ([`Checkpointer::finished`], then a short checkpoint of what came during
//! the long one); otherwise the WAL would grow for as long as the load lasts.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use tracing::warn;

/// A pass that took longer than this is followed by another: the frames committed during it
/// are copied by the checkpointer too, so the writer's own pass at the end stays short.
const SHORT_PASS: Duration = Duration::from_millis(10);

/// Most passes per cycle: under a load that outruns the disk, the writer's pass ends it anyway.
const MAX_PASSES: usize = 4;

/// Handle on the checkpoint thread, which starts with the first checkpoint (an idle `hooks
/// listen` needs neither it nor its connection) and ends when the handle is dropped.
pub(super) struct Checkpointer {
    file: PathBuf,
    thread: Option<Thread>,
    /// The thread or its connection could not be had, or the thread is gone: the writer
    /// checkpoints itself from then on.
    broken: bool,
}

/// The running checkpoint thread.
struct Thread {
    wake: std::sync::mpsc::SyncSender<()>,
    done: Arc<AtomicBool>,
}

impl Checkpointer {
    /// A checkpointer for the database file behind `conn`; `None` for a database with no WAL
    /// (in memory).
    pub(super) fn new(conn: &Connection) -> Option<Checkpointer> {
        let file = PathBuf::from(conn.path().filter(|p| !p.is_empty())?);
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .ok()?;
        mode.eq_ignore_ascii_case("wal").then_some(Checkpointer {
            file,
            thread: None,
            broken: false,
        })
    }

    /// Starts a checkpoint cycle (and the thread, the first time); `false` when there is no
    /// thread to run it, so the writer should checkpoint itself.
    pub(super) fn start(&mut self) -> bool {
        if self.broken {
            return false;
        }
        if self.thread.is_none() {
            self.thread = spawn(&self.file);
            self.broken = self.thread.is_none();
        }
        let Some(thread) = &self.thread else {
            return false;
        };
        thread.done.store(false, Ordering::Relaxed);
        let gone = matches!(
            thread.wake.try_send(()),
            Err(std::sync::mpsc::TrySendError::Disconnected(_))
        );
        self.broken = gone;
        !gone
    }

    /// Whether the cycle [`Checkpointer::start`] began is over; reports it once.
    pub(super) fn finished(&self) -> bool {
        self.thread
            .as_ref()
            .is_some_and(|thread| thread.done.swap(false, Ordering::Acquire))
    }
}

/// Opens the checkpoint thread's own connection to `file` and starts the thread.
fn spawn(file: &std::path::Path) -> Option<Thread> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let own = match Connection::open_with_flags(file, flags) {
        Ok(own) => own,
        Err(e) => {
            warn!(error = %e, "could not open the capture store for checkpoints");
            return None;
        }
    };
    let (wake, woken) = std::sync::mpsc::sync_channel(1);
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    std::thread::Builder::new()
        .name("capture-ckpt".into())
        .spawn(move || run(own, woken, flag))
        .map_err(|e| warn!(error = %e, "could not start the checkpoint thread"))
        .ok()?;
    Some(Thread { wake, done })
}

fn run(conn: Connection, woken: std::sync::mpsc::Receiver<()>, done: Arc<AtomicBool>) {
    // Logged once per run of failures: a full disk fails every cycle.
    let mut failing = false;
    while woken.recv().is_ok() {
        for _ in 0..MAX_PASSES {
            let began = Instant::now();
            if let Err(e) = passive(&conn) {
                if !std::mem::replace(&mut failing, true) {
                    warn!(error = %e, "could not checkpoint the capture store");
                }
                break;
            }
            failing = false;
            if began.elapsed() < SHORT_PASS {
                break;
            }
        }
        done.store(true, Ordering::Release);
    }
}

/// Copies what it can of the WAL into the database file, waiting for no reader or writer.
pub(super) fn passive(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}
