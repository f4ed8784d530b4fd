//! The writer thread: commits reported in queueing order, the WAL bounded under a sustained
//! stream, and two writers on one store.

use super::*;

#[tokio::test]
async fn captures_queued_in_turn_are_reported_per_commit_in_queueing_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let mut writer = writer_at(&path, Retention::default());
    let mut commits = writer.take_commits().unwrap();
    assert!(writer.take_commits().is_none());
    for i in 0..40u64 {
        writer
            .record_in_turn(Box::new(record(Some(i), &format!("/{i}"), Some(200))))
            .unwrap();
    }
    // A capture with its own reply, between the others, does not appear on the stream.
    let alone = writer.record(record(None, "/alone", Some(200))).unwrap();
    writer
        .record_in_turn(Box::new(record(Some(40), "/40", Some(200))))
        .unwrap();
    let mut ids = Vec::new();
    while ids.len() < 41 {
        let batch = commits.recv().await.unwrap();
        assert!(!batch.is_empty());
        for (outcome, returned) in batch {
            // Each record comes back with its own outcome, whole.
            let i = ids.len();
            let mut expected = record(Some(i as u64), &format!("/{i}"), Some(200));
            expected.received_at_ms = returned.received_at_ms;
            assert_eq!(*returned, expected);
            ids.push(outcome.unwrap());
        }
    }
    let alone = alone.await.unwrap().unwrap();
    let store = Store::open(&path).unwrap();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(stored(&store, *id).request.path, format!("/{i}"));
    }
    assert_eq!(stored(&store, alone).request.path, "/alone");
    assert!(!ids.contains(&alone));
}

#[tokio::test]
async fn the_wal_stays_bounded_while_checkpoints_run_beside_a_sustained_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let wal = dir.path().join(format!("{FILE_NAME}-wal"));
    let writer = writer_at(&path, Retention::default());
    let mut big = record(None, "/big", Some(200));
    big.request.body = Bytes::from(vec![b'x'; 64 * 1024]);
    let written_limit = 64 * writer::WAL_BYTES;
    let (mut written, mut largest, mut restarted) = (0u64, 0u64, false);
    // Back to back, never idle for long: checkpoints run on their own thread while commits go
    // on, and the writer must still bring the WAL back to its start now and then.
    while written < written_limit && !(restarted && written > 8 * writer::WAL_BYTES) {
        let mut last = None;
        for _ in 0..8 {
            last = Some(writer.record(big.clone()).unwrap());
            written += big.size();
        }
        last.unwrap().await.unwrap().unwrap();
        let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        restarted |= size < largest;
        largest = largest.max(size);
    }
    assert!(
        restarted,
        "the WAL never restarted in {written} bytes of captures"
    );
    // Bounded by how long a checkpoint takes, not by how much was written (loosely: a loaded
    // machine's fsyncs are slow).
    assert!(
        largest <= 24 * writer::WAL_BYTES,
        "the WAL grew to {largest} bytes"
    );
    let store = Store::open(&path).unwrap();
    let count = store.ids(None).unwrap().len() as u64;
    assert_eq!(count, written / big.size(), "every capture was kept");
}

#[tokio::test]
async fn two_writers_on_one_store_never_share_an_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let keep = Retention {
        keep: Some(16),
        max_age: None,
    };
    // `hooks listen` and a `hooks replay` (or a second listen) in other processes.
    let listen = writer_at(&path, keep);
    let replay = writer_at(&path, Retention::default());
    let mut ids = Vec::new();
    for i in 0..40u64 {
        let writer = if i % 3 == 0 { &replay } else { &listen };
        ids.push(save(writer, record(Some(i), &format!("/{i}"), Some(200))).await);
    }
    let expected: Vec<i64> = (1..=40).collect();
    assert_eq!(
        ids, expected,
        "each capture the next id, whichever wrote it"
    );
    let store = Store::open(&path).unwrap();
    let kept = store.ids(None).unwrap();
    assert_eq!(kept.last().map(|id| id.0), Some(40));
    assert!((16..=18 + 14).contains(&kept.len()), "{} kept", kept.len());
    for id in kept {
        assert_eq!(stored(&store, id).request.path, format!("/{}", id.0 - 1));
    }
}
