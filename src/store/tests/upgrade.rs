//! Stores of earlier schema versions, upgraded in place.

use super::*;

/// The columns of a version 3 store, in order.
const V3_NAMES: &str = "id, received_at, channel, channel_url, relay_id, target, method, path, \
    request_headers, request_body, status, response_headers, response_body, error, duration_us, \
    signature, event_type, event_id, replay_of";

#[tokio::test]
async fn a_version_1_store_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let first = {
        let writer = writer_at(&path, Retention::default());
        save(&writer, record(Some(5), "/kept", Some(200))).await;
        let first = save(&writer, record(Some(6), "/kept too", Some(200))).await;
        save(&writer, record(None, "/deleted", Some(200))).await;
        first
    };
    // Make it what hooks wrote before version 2: one table with AUTOINCREMENT, the unique
    // index, user_version 1; its newest capture deleted, so the sequence is past the largest id.
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE old ({});
             INSERT INTO old SELECT {V3_NAMES} FROM captures;
             DROP VIEW captures;
             DROP TABLE captures_0; DROP TABLE captures_1; DROP TABLE captures_2;
             DROP TABLE captures_3; DROP TABLE captures_4; DROP TABLE captures_5;
             DROP TABLE captures_6; DROP TABLE captures_7; DROP TABLE captures_8;
             DROP TABLE captures_9; DROP TABLE generations;
             ALTER TABLE old RENAME TO captures;
             DELETE FROM captures WHERE path = '/deleted';
             UPDATE captures SET request_headers = '[[\"x-old\",\"json\"],[\"x-bin\",[255,0]]]'
                 WHERE path = '/kept';
             CREATE UNIQUE INDEX captures_relay_id ON captures (channel_url, relay_id);
             PRAGMA user_version = 1;",
            COLUMNS.replace("PRIMARY KEY", "PRIMARY KEY AUTOINCREMENT"),
        ))
        .unwrap();
    }
    let writer = writer_at(&path, Retention::default());
    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let tables: Vec<String> = conn
        .prepare(
            "SELECT type || ' ' || name FROM sqlite_master WHERE name LIKE 'captures%' ORDER BY 1",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut expected: Vec<String> = (0..10).map(|n| format!("table captures_{n}")).collect();
    expected.push("view captures".into());
    assert_eq!(tables, expected, "no unique index left");
    // The old captures are intact, under their ids, and still recognised as earlier deliveries.
    let store = Store::open(&path).unwrap();
    let kept = stored(&store, CaptureId(first.0 - 1)).request;
    assert_eq!(kept.path, "/kept");
    // Header lists as versions 1 and 2 wrote them (JSON text) still read.
    assert_eq!(
        kept.headers,
        [header("x-old", b"json"), header("x-bin", b"\xff\x00")]
    );
    assert_eq!(stored(&store, first).request.path, "/kept too");
    // From before epochs: epoch 0.
    assert_eq!(writer.captured_before("http://relay/ch", 0, 6), Some(first));
    // The same delivery can be recorded again (no unique index left to refuse it), and ids go
    // on past the deleted one: never reused.
    let again = save(&writer, record(Some(6), "/again", Some(200))).await;
    assert_eq!(again, first.0 + 2);
}

/// Issue 17: a version 3 store (no `relay_epoch`, no `redelivered`) gains both; its captures
/// stay readable and count as deliveries without an epoch.
#[tokio::test]
async fn a_version_3_store_gains_the_epoch_and_redelivered_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let first = {
        let writer = writer_at(&path, Retention::default());
        save(&writer, record(Some(6), "/before", Some(200))).await
    };
    {
        // The view is in the way while the tables differ.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("DROP VIEW captures").unwrap();
        let mut arms = Vec::new();
        for slot in 0..generations::SLOTS {
            let table = generations::table(slot);
            conn.execute_batch(&format!(
                "ALTER TABLE {table} DROP COLUMN relay_epoch;
                 ALTER TABLE {table} DROP COLUMN redelivered;
                 ALTER TABLE {table} DROP COLUMN sent;
                 ALTER TABLE {table} DROP COLUMN route;
                 ALTER TABLE {table} DROP COLUMN copy;"
            ))
            .unwrap();
            arms.push(format!("SELECT * FROM {table}"));
        }
        let view = format!("CREATE VIEW captures AS {}", arms.join(" UNION ALL "));
        conn.execute_batch(&view).unwrap();
        conn.pragma_update(None, "user_version", 3).unwrap();
    }
    let writer = writer_at(&path, Retention::default());
    assert_eq!(writer.captured_before("http://relay/ch", 0, 6), Some(first));
    assert_eq!(writer.captured_before("http://relay/ch", EPOCH, 6), None);
    let mut redelivered = record(Some(6), "/after", Some(200));
    redelivered.redelivered = true;
    let second = save(&writer, redelivered).await;
    let store = Store::open(&path).unwrap();
    let old = stored(&store, first);
    assert_eq!(
        (old.request.path.as_str(), old.relay_epoch, old.redelivered),
        ("/before", None, false)
    );
    let new = stored(&store, second);
    assert_eq!((new.relay_epoch, new.redelivered), (Some(EPOCH), true));
}

/// Takes `columns` out of every generation table (and the view, which is in the way while the
/// tables differ), and marks the store as `version`.
pub(in crate::store) fn downgrade(path: &Path, columns: &[&str], version: i64) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("DROP VIEW captures").unwrap();
    let mut arms = Vec::new();
    for slot in 0..generations::SLOTS {
        let table = generations::table(slot);
        for column in columns {
            conn.execute_batch(&format!("ALTER TABLE {table} DROP COLUMN {column}"))
                .unwrap();
        }
        arms.push(format!("SELECT * FROM {table}"));
    }
    let view = format!("CREATE VIEW captures AS {}", arms.join(" UNION ALL "));
    conn.execute_batch(&view).unwrap();
    conn.pragma_update(None, "user_version", version).unwrap();
}

/// A version 4 store already has `relay_epoch` and `redelivered`: upgrading it adds only what
/// came later. (Found with issue 22: every upgrade added version 4's columns again, so a store
/// written by a hooks of version 4 could not be opened: "duplicate column name".)
#[tokio::test]
async fn issue_22_a_version_4_store_is_upgraded_without_adding_its_columns_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let first = {
        let writer = writer_at(&path, Retention::default());
        save(&writer, record(Some(6), "/before", Some(200))).await
    };
    downgrade(&path, &["sent", "route", "copy"], 4);
    let writer = writer_at(&path, Retention::default());
    assert_eq!(
        writer.captured_before("http://relay/ch", EPOCH, 6),
        Some(first)
    );
    let store = Store::open(&path).unwrap();
    let old = stored(&store, first);
    assert_eq!(
        (old.request.path.as_str(), old.relay_epoch, old.sent),
        ("/before", Some(EPOCH), false)
    );
}
