//! Captures read back byte for byte, ids and references, and the errors a reader meets:
//! a missing or damaged store, a full disk, a redelivery recognised after a restart.

use super::*;

#[tokio::test]
async fn captures_round_trip_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join(FILE_NAME);
    let writer = writer_at(&path, Retention::default());
    let answered = record(Some(1), "/a?b=1", Some(201));
    let failed = record(Some(2), "?x", None);
    let first = save(&writer, answered.clone()).await;
    let second = save(&writer, failed.clone()).await;
    // A reader in its own connection sees what the writer committed while it is still open.
    let store = Store::open(&path).unwrap();
    assert_eq!(stored(&store, first), answered);
    assert_eq!(stored(&store, second), failed);
    assert_eq!(store.resolve(CaptureRef::Last).unwrap(), second);
}

#[tokio::test]
async fn long_bodies_round_trip_byte_for_byte() {
    // Bodies in SQLite's overflow pages, several in one batch, and a failed delivery's.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let writer = writer_at(&path, Retention::default());
    let long = |len: usize, seed: usize| -> Bytes {
        (0..len)
            .map(|i| ((i * 7 + seed) % 251) as u8)
            .collect::<Vec<u8>>()
            .into()
    };
    let mut records = Vec::new();
    for (request_len, response_len) in [(3 << 20, 5), (4, 200 << 10), (64 << 10, 64 << 10)] {
        let mut r = record(Some(records.len() as u64 + 1), "/big", Some(200));
        r.request.body = long(request_len, 1);
        if let Outcome::Answered(response) = &mut r.outcome {
            response.body = long(response_len, 2);
        }
        records.push(r);
    }
    let mut failed = record(Some(9), "/big-failed", None);
    failed.request.body = long(1 << 20, 3);
    records.push(failed);
    // Queued together, so that they share a batch (and its prepared insert).
    let pending: Vec<_> = records
        .iter()
        .map(|r| writer.record(r.clone()).unwrap())
        .collect();
    let store = Store::open(&path).unwrap();
    for (pending, expected) in pending.into_iter().zip(&records) {
        let id = pending.await.unwrap().unwrap();
        assert_eq!(&stored(&store, id), expected, "capture #{id}");
    }
}

#[test]
fn a_missing_store_and_unknown_ids_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let err = Store::open(&path).err().unwrap();
    assert_eq!(err.to_string(), "no captures yet: run hooks listen first");
    drop(open_or_replace(&path).unwrap());
    let store = Store::open(&path).unwrap();
    let err = store.load(CaptureRef::Last).unwrap_err();
    assert_eq!(err.to_string(), "no captures yet: run hooks listen first");
    let err = store.load(CaptureRef::Id(CaptureId(42))).unwrap_err();
    assert_eq!(err.to_string(), "no capture #42");
}

#[test]
fn references_parse() {
    assert_eq!("last".parse(), Ok(CaptureRef::Last));
    assert_eq!("#12".parse(), Ok(CaptureRef::Id(CaptureId(12))));
    assert_eq!("12".parse(), Ok(CaptureRef::Id(CaptureId(12))));
    assert!("0".parse::<CaptureRef>().is_err());
    assert!("twelve".parse::<CaptureRef>().is_err());
}

#[tokio::test]
async fn a_redelivery_is_recognised_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let url = "http://relay/ch";
    let first = {
        let writer = writer_at(&path, Retention::default());
        let id = save(&writer, record(Some(7), "/", Some(200))).await;
        save(&writer, record(Some(9), "/", Some(200))).await;
        // Only deliveries captured before the writer started count.
        assert_eq!(writer.captured_before(url, EPOCH, 7), None);
        id
    };
    let writer = writer_at(&path, Retention::default());
    assert_eq!(writer.captured_before(url, EPOCH, 7), Some(first));
    assert_eq!(
        writer.captured_before(url, EPOCH, 9),
        Some(CaptureId(first.0 + 1))
    );
    assert_eq!(writer.captured_before(url, EPOCH, 8), None);
    assert_eq!(writer.captured_before(url, EPOCH, 10), None);
    assert_eq!(writer.captured_before("http://other/ch", EPOCH, 7), None);
    // Issue 17: a relay back with an empty queue counts from 1 again, in another epoch.
    assert_eq!(writer.captured_before(url, EPOCH + 1, 7), None);
    let store = Store::open(&path).unwrap();
    let capture = stored(&store, first);
    assert_eq!(capture.outcome.status(), Some(200));
    assert_eq!(
        (capture.relay_epoch, capture.redelivered),
        (Some(EPOCH), false)
    );
}

#[test]
fn a_damaged_store_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    std::fs::write(
        &path,
        b"this is not a database, just text long enough to be read",
    )
    .unwrap();
    let reader_error = Store::open(&path).err().unwrap();
    assert!(
        matches!(reader_error, StoreError::Corrupt { .. }),
        "{reader_error}"
    );
    std::fs::create_dir(bodies::dir_of(&path)).unwrap();
    std::fs::write(bodies::dir_of(&path).join("1.request"), b"old").unwrap();
    let (conn, moved) = open_or_replace(&path).unwrap();
    let moved = moved.expect("the damaged file was moved");
    // Its body files go with it: the new store's ids start again.
    assert!(!bodies::dir_of(&path).exists());
    assert_eq!(
        std::fs::read(bodies::dir_of(&moved).join("1.request")).unwrap(),
        b"old"
    );
    assert!(moved
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("captures.db.corrupt-"));
    assert_eq!(std::fs::read(&moved).unwrap()[..8], *b"this is ");
    let count: i64 = conn
        .query_row("SELECT COUNT(*) FROM captures", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn a_full_disk_is_an_error_not_a_panic() {
    let conn = Store::in_memory().unwrap().into_connection();
    // SQLite reports a database at its page limit exactly as it reports a full disk.
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    conn.pragma_update(None, "max_page_count", pages + 2)
        .unwrap();
    let writer = Writer::spawn(conn, "/data/captures.db".into(), Retention::default()).unwrap();
    let mut big = record(None, "/", Some(200));
    big.request.body = Bytes::from(vec![7u8; 1 << 20]);
    let err = writer.record(big).unwrap().await.unwrap().unwrap_err();
    assert!(matches!(err, StoreError::Full { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "could not write to the capture store /data/captures.db: the disk is full"
    );
    // Small captures still fit after the failed one.
    let small = record(None, "/", Some(200));
    assert!(writer.record(small).unwrap().await.unwrap().is_ok());
}

/// The bundled SQLite is built without memory statistics (`.cargo/config.toml`), which cost the
/// writer a global mutex per allocation.
#[test]
fn sqlite_is_built_without_memory_statistics() {
    let conn = Connection::open_in_memory().unwrap();
    let mut stmt = conn.prepare("PRAGMA compile_options").unwrap();
    let options: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
        "LIBSQLITE3_FLAGS from .cargo/config.toml did not reach the SQLite build (run cargo \
         from the checkout): {options:?}"
    );
}
