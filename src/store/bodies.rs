//! Long bodies of the capture store, kept as files beside the database
//! (`captures.db-bodies/<id>.request`, `<id>.response`) rather than in it.
//!
//! In SQLite a 10 MiB body cost the store's threads about 23 ms of CPU per capture (the bound
//! copy, the page copies, the WAL write and its checksums, the checkpoint's copy), two thirds of
//! all the CPU `hooks listen` spent on such a webhook, on the cores the relay and the app need
//! too. A file is written once. SQLite's own notes on large BLOBs point the same way for
//! anything past about 100 KB.
//!
//! The row holds the body's length, an INTEGER where a BLOB would be (the column's affinity
//! keeps either as given): a row whose body is a file says so, and a file cut short is noticed.
//! A file is written before its row is inserted; files of captures no longer in the store
//! (pruned, or left by a crash) are removed by [`Bodies::sweep`].

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, Value, ValueRef};
use rusqlite::Connection;

use super::generations;

/// Bodies at least this long are kept in files.
pub(super) const FILE_FROM: usize = 256 * 1024;

/// Which body of a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Which {
    Request,
    Response,
}

impl Which {
    fn suffix(self) -> &'static str {
        match self {
            Which::Request => "request",
            Which::Response => "response",
        }
    }
}

/// The file of capture `id`'s `which` body in `dir`.
fn file(dir: &Path, id: i64, which: Which) -> PathBuf {
    dir.join(format!("{id}.{}", which.suffix()))
}

/// The directory of body files of the store at `db`: `<db>-bodies`.
pub(super) fn dir_of(db: &Path) -> PathBuf {
    let mut dir = db.as_os_str().to_owned();
    dir.push("-bodies");
    PathBuf::from(dir)
}

/// A body column's value: the body, or the length of the file it is in.
pub(super) enum Stored {
    Inline(Vec<u8>),
    File(u64),
}

impl FromSql for Stored {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value {
            ValueRef::Blob(bytes) => Ok(Stored::Inline(bytes.to_vec())),
            ValueRef::Integer(len) => u64::try_from(len)
                .map(Stored::File)
                .map_err(|_| FromSqlError::OutOfRange(len)),
            _ => Err(FromSqlError::InvalidType),
        }
    }
}

/// A store's body files.
pub(super) struct Bodies {
    /// `None` for a database in memory (tests), which keeps every body in its rows.
    dir: Option<PathBuf>,
    /// Files written since the last sweep.
    pub unswept: usize,
}

impl Bodies {
    /// The body files of the database `conn` has open.
    pub fn of(conn: &Connection) -> Bodies {
        let dir = conn
            .path()
            .filter(|path| !path.is_empty())
            .map(|path| dir_of(Path::new(path)));
        Bodies { dir, unswept: 0 }
    }

    /// What to bind for capture `id`'s `which` body: the body itself, or, when it is long, its
    /// length, once the body is written to its file.
    pub fn param<'a>(
        &mut self,
        id: i64,
        which: Which,
        body: &'a [u8],
    ) -> io::Result<ToSqlOutput<'a>> {
        let dir = match &self.dir {
            Some(dir) if body.len() >= FILE_FROM => dir,
            _ => return Ok(ToSqlOutput::Borrowed(ValueRef::Blob(body))),
        };
        let path = file(dir, id, which);
        if let Err(e) = std::fs::write(&path, body) {
            if e.kind() != io::ErrorKind::NotFound {
                return Err(e);
            }
            std::fs::create_dir_all(dir)?;
            std::fs::write(&path, body)?;
        }
        self.unswept += 1;
        Ok(ToSqlOutput::Owned(Value::Integer(body.len() as i64)))
    }

    /// Removes capture `id`'s files (its insert did not commit).
    pub fn remove(&self, id: i64) {
        let Some(dir) = &self.dir else { return };
        for which in [Which::Request, Which::Response] {
            let _ = std::fs::remove_file(file(dir, id, which));
        }
    }

    /// Removes the files of captures older than the oldest one the store holds: ids only grow,
    /// and retention takes the oldest first.
    pub fn sweep(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        self.unswept = 0;
        let Some(dir) = &self.dir else { return Ok(()) };
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, dir = %dir.display(), "could not list the capture store's body files");
                return Ok(());
            }
        };
        let oldest = oldest_id(conn)?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let id = name
                .to_str()
                .and_then(|n| n.split_once('.'))
                .and_then(|(id, _)| id.parse::<i64>().ok());
            // An empty store removes nothing: another process's writer may have written a
            // file for a row it has not committed yet.
            if id.is_some_and(|id| oldest.is_some_and(|oldest| id < oldest)) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }
}

/// The smallest id in the store, table by table (each an index lookup; the view's would read
/// every row).
fn oldest_id(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    let mut oldest: Option<i64> = None;
    for slot in 0..generations::SLOTS {
        let sql = format!("SELECT MIN(id) FROM {}", generations::table(slot));
        let min: Option<i64> = conn.prepare_cached(&sql)?.query_row([], |r| r.get(0))?;
        oldest = oldest.into_iter().chain(min).min();
    }
    Ok(oldest)
}

/// Reads capture `id`'s `which` body back from where `stored` says it is, in the store whose
/// body files are in `dir`; `None` when its file is missing or cut short.
pub(super) fn load(dir: &Path, id: i64, which: Which, stored: Stored) -> io::Result<Option<Bytes>> {
    let len = match stored {
        Stored::Inline(body) => return Ok(Some(Bytes::from(body))),
        Stored::File(len) => len,
    };
    match std::fs::read(file(dir, id, which)) {
        Ok(body) if body.len() as u64 == len => Ok(Some(Bytes::from(body))),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
