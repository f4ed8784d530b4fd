//! Large blobs written into SQLite rows without SQLite's own copies, for the queue's request
//! frames.
//!
//! A blob bound to a statement is copied by SQLite twice before it reaches the database pages:
//! once into the statement (rusqlite binds with `SQLITE_TRANSIENT`) and once into the row's
//! record. For a 10 MiB body that is 20 MiB more memory at the peak, and 20 MiB more copying.
//! A long blob is instead bound as a `zeroblob` of its length, which SQLite writes as zeroed pages
//! without building it in memory, and then written over in place with the incremental blob I/O
//! API, straight from the caller's buffer into the pages.
//!
//! With 10 MiB POSTs this took the relay's peak RSS from about 82 to 60 MiB at the same time per
//! request; the CLI's capture store tried it and did not keep it (see BENCHMARKS.md).

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, MAIN_DB};

/// Dirty pages a writing connection keeps in memory within one transaction before it spills
/// them to the WAL: more than the largest body (`DEFAULT_MAX_BODY`, 25 MiB) with its headers.
/// A zeroblob's pages, spilled before [`fill`] overwrites them, would be written twice; SQLite
/// spills past its cache size (2 MiB by default) otherwise. These pages are the row's, which
/// SQLite has to build anyway; they are released at the commit. A transaction holding several
/// large frames still spills past this, and then writes some zeroed pages twice.
pub const UNSPILLED_BYTES: i64 = 32 << 20;

/// Sets `conn`'s `cache_spill` to [`UNSPILLED_BYTES`]; for connections that write with
/// [`param`] and [`fill`]. Given in KiB (a negative value), because a page count that is a
/// multiple of 256, as 32 MiB is in pages of any size, turns spilling off altogether: SQLite
/// reads the same argument as a boolean through a `u8`.
pub fn keep_transactions_unspilled(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "cache_spill", -(UNSPILLED_BYTES / 1024))
}

/// Blobs at least this long are written after their row ([`fill`]) instead of bound to it.
/// Below it, the second statement costs more than the copies it saves.
pub const WRITTEN_AFTER: usize = 64 * 1024;

/// Whether `blob` is bound as a zeroblob by [`param`] and must then be written with [`fill`].
pub fn is_long(blob: &[u8]) -> bool {
    blob.len() >= WRITTEN_AFTER
}

/// What to bind for `blob` in an insert: the bytes themselves when short, else a zeroblob of
/// the same length, to be overwritten with [`fill`] once the row exists.
pub fn param(blob: &[u8]) -> ToSqlOutput<'_> {
    match i32::try_from(blob.len()) {
        Ok(len) if is_long(blob) => ToSqlOutput::ZeroBlob(len),
        // Blobs over 2 GiB cannot be zeroblobs, and are far beyond every body limit anyway.
        _ => ToSqlOutput::Borrowed(ValueRef::Blob(blob)),
    }
}

/// Writes `blob` over the zeroblob [`param`] bound in `column` of the row `rowid` of `table`.
pub fn fill(
    conn: &Connection,
    table: &str,
    column: &str,
    rowid: i64,
    blob: &[u8],
) -> rusqlite::Result<()> {
    let mut written = conn.blob_open(MAIN_DB, table, column, rowid, false)?;
    written.write_at(blob, 0)?;
    written.close()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_and_short_blobs_read_back_exactly() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, a BLOB, b BLOB)")
            .unwrap();
        let long: Vec<u8> = (0..3 * WRITTEN_AFTER + 5)
            .map(|i| (i % 253) as u8)
            .collect();
        let short = b"\x00short\xff".to_vec();
        let exact: Vec<u8> = vec![7; WRITTEN_AFTER];
        for (id, blob) in [(1, &long), (2, &short), (3, &exact)] {
            conn.execute(
                "INSERT INTO t (id, a, b) VALUES (?1, ?2, ?3)",
                rusqlite::params![id, param(blob), param(&short)],
            )
            .unwrap();
            if is_long(blob) {
                fill(&conn, "t", "a", id, blob).unwrap();
            }
            let (a, b): (Vec<u8>, Vec<u8>) = conn
                .query_row("SELECT a, b FROM t WHERE id = ?1", [id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .unwrap();
            assert_eq!(&a, blob, "row {id}");
            assert_eq!(b, short, "row {id}");
        }
        // Spilling stays on, at about UNSPILLED_BYTES (SQLite counts pages with their headers).
        keep_transactions_unspilled(&conn).unwrap();
        let page_size: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        let spill: i64 = conn
            .query_row("PRAGMA cache_spill", [], |r| r.get(0))
            .unwrap();
        assert!(
            (UNSPILLED_BYTES * 9 / 10..=UNSPILLED_BYTES).contains(&(spill * page_size)),
            "cache_spill {spill} pages of {page_size} bytes"
        );
        // Which ones were zeroblobs, written after the insert.
        assert!(matches!(param(&long), ToSqlOutput::ZeroBlob(_)));
        assert!(matches!(param(&exact), ToSqlOutput::ZeroBlob(_)));
        assert!(matches!(param(&short), ToSqlOutput::Borrowed(_)));
    }
}
