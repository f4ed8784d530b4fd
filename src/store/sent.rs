//! Schema version 5: the `sent` column, which marks the captures `hooks send` made (its own
//! requests, not ones a provider sent through the relay).
//!
//! Every generation table gets the column, `0` for the captures already there; the view over
//! them (`SELECT *` from each) picks it up, since SQLite expands a view's `*` when a statement
//! reads it. New stores are made at version 3 and brought here the same way (through version 4), so there is one
//! path to this schema.

use rusqlite::Connection;

use super::generations;

/// Adds `sent` to every generation table; part of the caller's upgrade transaction.
pub(super) fn add_column(conn: &Connection) -> rusqlite::Result<()> {
    let mut sql = String::new();
    for slot in 0..generations::SLOTS {
        sql.push_str(&format!(
            "ALTER TABLE {} ADD COLUMN sent INTEGER NOT NULL DEFAULT 0;",
            generations::table(slot)
        ));
    }
    conn.execute_batch(&sql)
}

#[cfg(test)]
mod tests {
    use super::super::*;

    /// A version 3 store keeps its captures, reads them as not sent, and records sent ones.
    #[tokio::test]
    async fn a_version_3_store_gets_the_sent_column_through_version_4() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        {
            let conn = Connection::open(&path).unwrap();
            generations::create(&conn, COLUMNS, 1).unwrap();
            conn.execute_batch(
                "INSERT INTO captures_0 (id, received_at, target, method, path, request_headers,
                     request_body, duration_us)
                 VALUES (1, 5, 'http://localhost:3000', 'POST', '/old', '[]', x'', 7);
                 PRAGMA user_version = 3;",
            )
            .unwrap();
        }
        let (conn, moved) = open_or_replace(&path).unwrap();
        assert_eq!(moved, None);
        let writer = Writer::spawn(conn, path.clone(), Retention::default()).unwrap();
        let store = Store::open(&path).unwrap();
        let old = store.get(CaptureId(1)).unwrap();
        assert_eq!(old.request.path, "/old");
        assert!(!old.sent);

        let mut sent = old.clone();
        sent.sent = true;
        let id = writer.record(sent).unwrap().await.unwrap().unwrap();
        assert_eq!(id, 2);
        assert!(store.get(CaptureId(2)).unwrap().sent);
        let rows = store.list(None, 10).unwrap();
        let flags: Vec<(i64, bool)> = rows.iter().map(|r| (r.id.0, r.sent)).collect();
        assert_eq!(flags, [(2, true), (1, false)]);
        let version: i64 = store
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }
}
