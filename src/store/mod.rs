//! The capture store: every request `hooks listen` forwards, with the app's answer, kept in SQLite
//! so that `list`, `show`, `replay` and `export` can read it back.
//!
//! One file, [`FILE_NAME`], in [`data_dir`]. WAL mode, so readers in other processes work while
//! `listen` writes; `listen` writes through one thread ([`Writer`]) that commits everything
//! waiting in one transaction. Readers ([`Store`]) are plain synchronous connections, used from
//! `spawn_blocking`.

mod bodies;
mod checkpoint;
mod generations;
mod headers;
mod query;
mod read;
mod route;
mod sent;
mod signature;
mod sql;
mod upkeep;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};

use crate::exchange::{now_ms, rfc3339, CaptureId};

pub use query::Summary;
pub use read::Store;
pub use writer::{Commits, Committed, Pending, Retention, Writer};

/// Name of the database file inside the data directory.
pub const FILE_NAME: &str = "captures.db";

/// Schema version kept in `PRAGMA user_version`; a store written by a newer hooks is refused.
///
/// - Version 2 dropped version 1's unique index on `(channel_url, relay_id)`: it cost every
///   capture an index entry (written, then deleted when pruned), and the one question it
///   answered, whether a redelivery was captured by an earlier run, is answered from memory (see
///   [`Writer::captured_before`]).
/// - Version 3 keeps captures in ten tables of generations behind a view named `captures` (see
///   the `generations` module), so that retention empties old captures a table at a time
///   rather than deleting them a row at a time, and without `AUTOINCREMENT` (it made every
///   insert update a row of `sqlite_sequence` too, and every commit write that page: about 10 %
///   of the writer's time). Upgrading moves the captures into the first generation once,
///   keeping their ids.
/// - Version 4 adds `relay_epoch` (a delivery is (channel URL, relay epoch, relay id): a relay's
///   ids start again in a new epoch) and `redelivered` (issue 17) to every generation table,
///   at the end, so the view shows them too. Earlier captures have neither (`NULL`): they never
///   match a delivery that carries an epoch.
/// - Version 5 adds the column `sent` (see the `sent` module).
/// - Version 6 adds the columns `route` and `copy` (see the `route` module).
const SCHEMA_VERSION: i64 = 6;

/// How long a connection waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The columns of a generation table as version 3 made them; version 4 adds [`COLUMNS_V4`].
const COLUMNS: &str = "
        id INTEGER PRIMARY KEY,
        received_at INTEGER NOT NULL,
        channel TEXT,
        channel_url TEXT,
        relay_id INTEGER,
        target TEXT NOT NULL,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        request_headers TEXT NOT NULL,
        request_body BLOB NOT NULL,
        status INTEGER,
        response_headers TEXT,
        response_body BLOB,
        error TEXT,
        duration_us INTEGER NOT NULL,
        signature TEXT,
        event_type TEXT,
        event_id TEXT,
        replay_of INTEGER
";

/// The columns version 4 adds to every generation table, after [`COLUMNS`].
const COLUMNS_V4: [&str; 2] = ["relay_epoch INTEGER", "redelivered INTEGER"];

/// Brings a store of an earlier version (or a new, empty file) to [`SCHEMA_VERSION`], in one
/// transaction that holds the write lock, so two processes starting at once upgrade it once.
fn upgrade(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version >= SCHEMA_VERSION {
            return Ok(());
        }
        if version < 3 {
            upgrade_to_v3(conn)?;
        }
        // The view (`SELECT *` over the tables) shows the new columns by itself.
        if version < 4 {
            for slot in 0..generations::SLOTS {
                for column in COLUMNS_V4 {
                    conn.execute_batch(&format!(
                        "ALTER TABLE {} ADD COLUMN {column}",
                        generations::table(slot)
                    ))?;
                }
            }
        }
        if version < 5 {
            sent::add_column(conn)?;
        }
        if version < 6 {
            route::add_columns(conn)?;
        }
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Makes version 3's generation tables: empty for a new store, or holding the captures of
/// version 1 or 2's single table.
fn upgrade_to_v3(conn: &Connection) -> rusqlite::Result<()> {
    let table = |name: &str| {
        conn.query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |_| Ok(()),
        )
        .optional()
        .map(|found| found.is_some())
    };
    if table("captures")? {
        // Versions 1 and 2: one table, the same columns in the same order, AUTOINCREMENT.
        // Its sequence may be past its largest id (the newest captures deleted): the next
        // id stays past both.
        let largest: i64 =
            conn.query_row("SELECT COALESCE(MAX(id), 0) FROM captures", [], |r| {
                r.get(0)
            })?;
        let sequence: i64 = if table("sqlite_sequence")? {
            conn.query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'captures'",
                [],
                |r| r.get(0),
            )?
        } else {
            0
        };
        // The old table is in the way of the view's name until its rows have moved.
        conn.execute_batch("ALTER TABLE captures RENAME TO captures_before_v3;")?;
        generations::create(conn, COLUMNS, largest.max(sequence) + 1)?;
        conn.execute_batch(&format!(
            "INSERT INTO {} SELECT * FROM captures_before_v3; DROP TABLE captures_before_v3;",
            generations::table(0)
        ))?;
    } else {
        generations::create(conn, COLUMNS, 1)?;
    }
    Ok(())
}

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// There is no store file yet, or it holds no capture.
    #[error("no captures yet: run hooks listen first")]
    NoCaptures,
    /// No capture has this id (never had, or pruned).
    #[error("no capture #{0}")]
    NotFound(CaptureId),
    /// The file is not a SQLite database, or is damaged.
    #[error("the capture store {} is damaged ({cause}); the next hooks listen moves it aside and starts a new one", path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// SQLite's description.
        cause: String,
    },
    /// The disk (or the file system's quota) is full.
    #[error("could not write to the capture store {}: the disk is full", path.display())]
    Full {
        /// The database file.
        path: PathBuf,
    },
    /// The file was written by a newer version of hooks.
    #[error("the capture store {} has schema version {version}, newer than this hooks understands; upgrade hooks", path.display())]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        version: i64,
    },
    /// Neither `HOOKS_DATA_DIR` nor a home directory is set.
    #[error("no data directory: set HOOKS_DATA_DIR or HOME")]
    NoDataDir,
    /// The data directory could not be created.
    #[error("could not create the data directory {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Any other SQLite failure.
    #[error("capture store {}: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A stored header list cannot be read (damaged, or written by something other than hooks).
    #[error("capture #{id} has an unreadable header list: {reason}")]
    BadHeaders {
        /// The capture.
        id: i64,
        /// What is wrong with it.
        reason: String,
    },
    /// A long body's file (see the `bodies` module) is missing, cut short or unreadable.
    #[error("capture #{id}: its body file in {} is missing or damaged", dir.display())]
    BodyFile {
        /// The capture.
        id: i64,
        /// The directory of body files.
        dir: PathBuf,
    },
    /// The writer thread could not be started.
    #[error("could not start the capture store's writer thread: {0}")]
    Thread(std::io::Error),
    /// The writer thread is gone (hooks is shutting down).
    #[error("the capture store is closed")]
    Closed,
    /// The writer thread is too far behind (stalled disk); this capture was dropped.
    #[error("the capture store is too slow to keep up; a capture was dropped")]
    Behind,
}

impl StoreError {
    /// Classifies a SQLite error on the database at `path`.
    fn sqlite(path: &Path, source: rusqlite::Error) -> StoreError {
        let path = path.to_owned();
        match source.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt {
                path,
                cause: source.to_string(),
            },
            Some(ErrorCode::DiskFull) => StoreError::Full { path },
            _ => StoreError::Sqlite { path, source },
        }
    }
}

/// Which capture a command is about: `last` or an id (`12` or `#12`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureRef {
    /// The newest capture.
    Last,
    /// This id.
    Id(CaptureId),
}

impl std::str::FromStr for CaptureRef {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "last" {
            return Ok(CaptureRef::Last);
        }
        match text.strip_prefix('#').unwrap_or(text).parse::<i64>() {
            Ok(id) if id > 0 => Ok(CaptureRef::Id(CaptureId(id))),
            _ => Err(format!(
                "{text:?} is not a capture id: use a number like 12, or last"
            )),
        }
    }
}

/// Where captures are kept: `$HOOKS_DATA_DIR`, else the platform's data directory.
///
/// Linux and other Unix: `$XDG_DATA_HOME/hooks`, else `~/.local/share/hooks`. macOS:
/// `~/Library/Application Support/hooks`. Windows: `%APPDATA%\hooks`.
pub fn data_dir() -> Result<PathBuf, StoreError> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("HOOKS_DATA_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if cfg!(windows) {
        return var("APPDATA")
            .map(|dir| Path::new(&dir).join("hooks"))
            .ok_or(StoreError::NoDataDir);
    }
    let home = var("HOME").map(PathBuf::from);
    if cfg!(target_os = "macos") {
        return home
            .map(|home| home.join("Library/Application Support/hooks"))
            .ok_or(StoreError::NoDataDir);
    }
    var("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| home.map(|home| home.join(".local/share")))
        .map(|dir| dir.join("hooks"))
        .ok_or(StoreError::NoDataDir)
}

/// The database file: [`FILE_NAME`] in [`data_dir`].
pub fn path() -> Result<PathBuf, StoreError> {
    Ok(data_dir()?.join(FILE_NAME))
}

/// Opens (creating it and its directory if needed) the store at `path` for writing. A damaged
/// file is renamed to `<file>.corrupt-<time>` and a new one started; the new name is returned so
/// the caller can say so.
pub fn open_or_replace(path: &Path) -> Result<(Connection, Option<PathBuf>), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
    }
    match connect(path, true) {
        Err(StoreError::Corrupt { .. }) => {
            let moved = move_aside(path)?;
            Ok((connect(path, true)?, Some(moved)))
        }
        other => other.map(|conn| (conn, None)),
    }
}

/// Renames a damaged store (and its WAL and shared-memory files, which must not be applied to
/// the new one, and its body files) to `<file>.corrupt-<UTC time>`.
fn move_aside(path: &Path) -> Result<PathBuf, StoreError> {
    let stamp = rfc3339(now_ms()).replace(':', "-");
    let mut moved = path.as_os_str().to_owned();
    moved.push(format!(".corrupt-{stamp}"));
    let moved = PathBuf::from(moved);
    // The body files go with it: the new store's ids start again.
    for suffix in ["", "-wal", "-shm", "-bodies"] {
        let mut from = path.as_os_str().to_owned();
        from.push(suffix);
        let mut to = moved.as_os_str().to_owned();
        to.push(suffix);
        match std::fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !suffix.is_empty() => {}
            Err(e) => {
                return Err(StoreError::Sqlite {
                    path: path.to_owned(),
                    source: rusqlite::Error::InvalidPath(
                        format!("could not move the damaged store aside: {e}").into(),
                    ),
                })
            }
        }
    }
    Ok(moved)
}

/// Opens the database at `path` (`:memory:` for a private one), sets WAL and the busy timeout,
/// and creates the schema. With `create: false` a missing file is [`StoreError::NoCaptures`].
fn connect(path: &Path, create: bool) -> Result<Connection, StoreError> {
    let in_memory = path == Path::new(":memory:");
    if !create && !in_memory && !path.exists() {
        return Err(StoreError::NoCaptures);
    }
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let fail = |e| StoreError::sqlite(path, e);
    let conn = Connection::open_with_flags(path, flags).map_err(fail)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
    // 16 KiB pages (only a new file takes them): a capture is a kilobyte or more, and a commit
    // writes each page it touched, one system call each, to the WAL and later to the file;
    // bigger pages mean fewer calls for the same rows. WAL: readers never block the writer, nor
    // it them. NORMAL: a commit survives the process being killed; only a power cut can take
    // the last few, which is fine for a debugging log.
    conn.execute_batch(
        "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
    )
    .map_err(fail)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(fail)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            version,
        });
    }
    if version < SCHEMA_VERSION {
        // Creating or upgrading takes the write lock; a store already current needs neither.
        upgrade(&conn).map_err(fail)?;
    }
    Ok(conn)
}

#[cfg(test)]
mod tests;
