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

/// Handle on the checkpoint thread; the thread ends when the handle is dropped.
pub(super) struct Checkpointer {
    wake: std::sync::mpsc::SyncSender<()>,
    done: Arc<AtomicBool>,
}

impl Checkpointer {
    /// Starts a checkpoint thread for the database file behind `conn`; `None` for a database
    /// with no WAL (in memory), or when the thread or its connection cannot be had (the writer
    /// then checkpoints inline, as a fallback).
    pub(super) fn spawn(conn: &Connection) -> Option<Checkpointer> {
        let file = PathBuf::from(conn.path().filter(|p| !p.is_empty())?);
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .ok()?;
        if !mode.eq_ignore_ascii_case("wal") {
            return None;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let own = match Connection::open_with_flags(&file, flags) {
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
        Some(Checkpointer { wake, done })
    }

    /// Starts a checkpoint cycle; `false` if the thread is gone.
    pub(super) fn start(&self) -> bool {
        self.done.store(false, Ordering::Relaxed);
        !matches!(
            self.wake.try_send(()),
            Err(std::sync::mpsc::TrySendError::Disconnected(_))
        )
    }

    /// Whether the cycle [`Checkpointer::start`] began is over; reports it once.
    pub(super) fn finished(&self) -> bool {
        self.done.swap(false, Ordering::Acquire)
    }
}

fn run(conn: Connection, woken: std::sync::mpsc::Receiver<()>, done: Arc<AtomicBool>) {
    while woken.recv().is_ok() {
        for _ in 0..MAX_PASSES {
            let began = Instant::now();
            if let Err(e) = passive(&conn) {
                warn!(error = %e, "could not checkpoint the capture store");
                break;
            }
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
