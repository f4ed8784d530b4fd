//! The queue in SQLite and in memory: durability across reopening, ids, epochs, frame files,
//! acknowledgements and expiry.

use std::collections::HashSet;
use std::path::Path;

use rusqlite::Connection;

use super::ids::ID_RESERVE;
use super::*;

#[tokio::test]
async fn rows_survive_reopening_and_ids_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (queue, snapshot) = Queue::open(Some(dir.path())).unwrap();
        assert_eq!(snapshot.max_id, 0);
        queue
            .save_channel(ChannelRecord {
                name: "ch".into(),
                settings: "{}".into(),
                owner: Some("digest".into()),
                detached_at: None,
            })
            .await
            .unwrap();
        queue
            .insert(RequestId(1), "ch", Bytes::from_static(b"one"))
            .await
            .unwrap();
        queue
            .insert(RequestId(2), "ch", Bytes::from_static(b"two"))
            .await
            .unwrap();
        // Long frames are files (see `frames`).
        queue.insert(RequestId(3), "ch", long()).await.unwrap();
        queue.ack(RequestId(2));
        assert_eq!(queue.load(RequestId(1)).await.unwrap().unwrap(), "one");
        // A load after the ack is committed shows the ack took effect.
        assert_eq!(queue.load(RequestId(2)).await.unwrap(), None);
    }
    let (queue, snapshot) = Queue::open(Some(dir.path())).unwrap();
    assert_eq!(snapshot.channels.len(), 1);
    assert_eq!(snapshot.channels[0].owner.as_deref(), Some("digest"));
    assert_eq!(
        snapshot.pending,
        vec![
            ("ch".to_owned(), RequestId(1)),
            ("ch".to_owned(), RequestId(3))
        ]
    );
    assert!(
        snapshot.max_id >= 3,
        "ids up to 3 must not be handed out again, max_id {}",
        snapshot.max_id
    );
    assert_eq!(queue.load(RequestId(1)).await.unwrap().unwrap(), "one");
    assert_eq!(queue.load(RequestId(3)).await.unwrap().unwrap(), long());
}

fn record(name: &str, detached_at: Option<i64>) -> ChannelRecord {
    ChannelRecord {
        name: name.into(),
        settings: "{}".into(),
        owner: Some("digest".into()),
        detached_at,
    }
}

fn detached_at(snapshot: &Snapshot, name: &str) -> Option<Option<i64>> {
    let record = snapshot.channels.iter().find(|c| c.name == name)?;
    Some(record.detached_at)
}

#[tokio::test]
async fn issue_17_channels_keep_when_they_were_left_and_go_with_their_requests() {
    let dir = tempfile::tempdir().unwrap();
    let started = now_ms();
    {
        let (queue, _) = Queue::open(Some(dir.path())).unwrap();
        for name in ["old", "back", "live"] {
            queue.save_channel(record(name, None)).await.unwrap();
        }
        queue.channel_left("old", 1_000).await.unwrap();
        queue.channel_left("back", 1_000).await.unwrap();
        for (id, channel) in [(1, "old"), (2, "old"), (3, "back"), (4, "old")] {
            let frame = if id == 2 {
                long()
            } else {
                Bytes::from_static(b"x")
            };
            queue.insert(RequestId(id), channel, frame).await.unwrap();
        }
    }
    let (queue, snapshot) = Queue::open(Some(dir.path())).unwrap();
    assert_eq!(detached_at(&snapshot, "old"), Some(Some(1_000)));
    // Recorded with a session attached: the relay stopped without saying it was left.
    let live = detached_at(&snapshot, "live").unwrap().unwrap();
    assert!(live >= started, "left at this start, not never: {live}");
    // "back" was claimed again after the relay decided to forget it: its record stays.
    queue.save_channel(record("back", None)).await.unwrap();
    let forget = vec![("old".into(), RequestId(2)), ("back".into(), RequestId(3))];
    queue.forget_channels(forget, 2_000).await.unwrap();
    assert_eq!(
        files(dir.path()),
        Vec::<String>::new(),
        "a forgotten frame's file goes"
    );
    drop(queue);
    let (_, snapshot) = Queue::open(Some(dir.path())).unwrap();
    assert_eq!(detached_at(&snapshot, "old"), None, "forgotten");
    assert!(
        detached_at(&snapshot, "back").is_some(),
        "claimed again, kept"
    );
    // A request queued after the channel was forgotten is not taken with it.
    assert_eq!(snapshot.pending, vec![("old".to_owned(), RequestId(4))]);
}

#[test]
fn a_queue_from_before_channels_kept_when_they_were_left_opens() {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("relay.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE channels (name TEXT PRIMARY KEY, settings TEXT NOT NULL, owner TEXT,
             updated_at INTEGER NOT NULL);
         INSERT INTO channels VALUES ('ch', '{}', 'digest', 1);",
    )
    .unwrap();
    drop(conn);
    let started = now_ms();
    let (_queue, snapshot) = Queue::open(Some(dir.path())).unwrap();
    assert_eq!(snapshot.channels.len(), 1);
    assert_eq!(snapshot.channels[0].owner.as_deref(), Some("digest"));
    let left = snapshot.channels[0].detached_at.unwrap();
    assert!(
        left >= started,
        "its retention counts from the upgrade: {left}"
    );
}

#[tokio::test]
async fn ids_stay_used_once_every_row_is_gone_and_are_recorded_once_per_reserve() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (queue, _) = Queue::open(Some(dir.path())).unwrap();
        for want in 1..=3 {
            let id = queue.next_id().await.unwrap();
            assert_eq!(id, RequestId(want));
            queue
                .insert(id, "ch", Bytes::from_static(b"x"))
                .await
                .unwrap();
            queue.ack(id);
        }
        // A load commits the waiting acknowledgements first.
        assert_eq!(queue.load(RequestId(3)).await.unwrap(), None);
    }
    let (queue, snapshot) = Queue::open(Some(dir.path())).unwrap();
    assert!(snapshot.pending.is_empty());
    // The reserve committed at open, not written again by the inserts below it.
    assert_eq!(snapshot.max_id, ID_RESERVE);
    let id = queue.next_id().await.unwrap();
    assert_eq!(
        id,
        RequestId(ID_RESERVE + 1),
        "the rest of the reserve is skipped"
    );
    queue
        .insert(id, "ch", Bytes::from_static(b"y"))
        .await
        .unwrap();
    drop(queue);
    let (_queue, snapshot) = Queue::open(Some(dir.path())).unwrap();
    assert_eq!(snapshot.pending, vec![("ch".to_owned(), id)]);
    assert_eq!(snapshot.max_id, 2 * ID_RESERVE);
}

/// Issue 17: requests go to the CLI before their insert is committed, so a relay killed
/// right after handing out ids (its first commit not done) must not hand them out again,
/// nor ids past a reserve it extended meanwhile.
#[tokio::test]
async fn issue_17_ids_handed_out_before_a_crash_are_never_handed_out_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut handed = HashSet::new();
    let mut epochs = HashSet::new();
    for life in 0..4 {
        let (queue, _) = Queue::open(Some(dir.path())).unwrap();
        epochs.insert(queue.epoch());
        // Handed out and delivered; the process dies before any insert is committed
        // (nothing reaches the store thread). One life goes past its first reserve.
        let count = if life == 1 { ID_RESERVE + 5 } else { 3 };
        for _ in 0..count {
            let id = queue.next_id().await.unwrap().0;
            assert!(handed.insert(id), "life {life}: id {id} handed out again");
        }
        drop(queue);
    }
    assert_eq!(epochs.len(), 1, "the epoch is kept with the queue");
}

#[tokio::test]
async fn every_queue_has_its_own_epoch_and_the_memory_queue_a_new_one_each_time() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (first, _) = Queue::open(Some(a.path())).unwrap();
    let (second, _) = Queue::open(Some(b.path())).unwrap();
    assert_ne!(first.epoch(), second.epoch());
    let (memory, _) = Queue::open(None).unwrap();
    let (again, _) = Queue::open(None).unwrap();
    assert_ne!(memory.epoch(), again.epoch());
    assert_eq!(memory.next_id().await.unwrap(), RequestId(1));
    assert_eq!(again.next_id().await.unwrap(), RequestId(1));
}

#[tokio::test]
async fn acknowledgements_waiting_for_a_write_are_committed_when_the_queue_closes() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, _) = Queue::open(Some(dir.path())).unwrap();
    queue
        .insert(RequestId(1), "ch", Bytes::from_static(b"x"))
        .await
        .unwrap();
    // Nothing else comes before the queue closes: the acknowledgement is still waiting
    // for a transaction to share, and closing commits it.
    queue.ack(RequestId(1));
    drop(queue);
    let (_queue, snapshot) = Queue::open(Some(dir.path())).unwrap();
    assert!(snapshot.pending.is_empty(), "{:?}", snapshot.pending);
}

#[tokio::test]
async fn a_flush_commits_the_acknowledgements_held_back() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, _) = Queue::open(Some(dir.path())).unwrap();
    // A long frame has a file, unlinked once its row's deletion is committed.
    queue.insert(RequestId(1), "ch", long()).await.unwrap();
    assert_eq!(files(dir.path()), ["1"]);
    queue.ack(RequestId(1));
    queue.flush().await.unwrap();
    assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
}

#[tokio::test]
async fn a_second_relay_on_the_same_queue_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_queue, _) = Queue::open(Some(dir.path())).unwrap();
    match Queue::open(Some(dir.path())) {
        Err(e @ QueueError::Locked(_)) => {
            assert!(e.to_string().contains("another relay"), "{e}")
        }
        Err(e) => panic!("expected the queue to be locked, got {e}"),
        Ok(_) => panic!("a second queue opened while the first holds it"),
    }
}

/// The frame files in the queue at `dir`.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("frames"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn long_frames_are_files_that_go_with_their_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, _) = Queue::open(Some(dir.path())).unwrap();
    queue.insert(RequestId(1), "ch", long()).await.unwrap();
    queue.insert(RequestId(2), "ch", long()).await.unwrap();
    queue
        .insert(RequestId(3), "ch", Bytes::from_static(b"short"))
        .await
        .unwrap();
    assert_eq!(
        files(dir.path()),
        ["1", "2"],
        "short frames stay in their rows"
    );
    let in_db = std::fs::metadata(dir.path().join("relay.db"))
        .unwrap()
        .len()
        + std::fs::metadata(dir.path().join("relay.db-wal")).map_or(0, |m| m.len());
    assert!(
        in_db < long().len() as u64,
        "the database holds {in_db} bytes"
    );
    queue.ack(RequestId(1));
    assert_eq!(queue.load(RequestId(1)).await.unwrap(), None);
    // Files go once their rows' deletion is committed, before the commit's writers hear
    // back: an insert after it is a barrier.
    let barrier = |id| queue.insert(RequestId(id), "ch", Bytes::from_static(b"x"));
    barrier(4).await.unwrap();
    assert_eq!(
        files(dir.path()),
        ["2"],
        "an acknowledged frame's file is gone"
    );
    let gone = queue.expire(Duration::ZERO).await.unwrap();
    assert_eq!(gone.len(), 3);
    barrier(5).await.unwrap();
    assert!(
        files(dir.path()).is_empty(),
        "an expired frame's file is gone"
    );
}

#[tokio::test]
async fn a_frame_written_as_it_arrives_is_stored_and_a_dropped_one_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, _) = Queue::open(Some(dir.path())).unwrap();
    let frame = long();
    let mut file = queue.frame_file(RequestId(1)).await.unwrap();
    for piece in frame.chunks(100_000) {
        file.write(piece).await.unwrap();
    }
    queue
        .submit(RequestId(1), "ch", Frame::File(file))
        .await
        .committed()
        .await
        .unwrap();
    assert_eq!(files(dir.path()), ["1"]);
    assert_eq!(queue.load(RequestId(1)).await.unwrap().unwrap(), frame);
    let mut dropped = queue.frame_file(RequestId(2)).await.unwrap();
    dropped.write(b"part of a frame").await.unwrap();
    assert_eq!(files(dir.path()), ["1", "2.part"]);
    drop(dropped);
    assert_eq!(
        files(dir.path()),
        ["1"],
        "an abandoned frame's file is removed"
    );
    let (memory, _) = Queue::open(None).unwrap();
    assert!(memory.frame_file(RequestId(3)).await.is_none());
}

#[tokio::test]
async fn stray_and_damaged_frame_files_are_dealt_with() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (queue, _) = Queue::open(Some(dir.path())).unwrap();
        queue.insert(RequestId(1), "ch", long()).await.unwrap();
        queue.insert(RequestId(2), "ch", long()).await.unwrap();
    }
    // A crash between writing a file and committing its row leaves a file without a row.
    std::fs::write(dir.path().join("frames/9"), b"stray").unwrap();
    std::fs::write(dir.path().join("frames/junk"), b"stray").unwrap();
    // A power loss may cut a file short.
    let cut = &long()[..1000];
    std::fs::write(dir.path().join("frames/2"), cut).unwrap();
    let (queue, snapshot) = Queue::open(Some(dir.path())).unwrap();
    assert_eq!(files(dir.path()), ["1", "2"], "strays removed at start");
    assert_eq!(snapshot.pending.len(), 2);
    assert_eq!(queue.load(RequestId(1)).await.unwrap().unwrap(), long());
    assert_eq!(
        queue.load(RequestId(2)).await.unwrap(),
        None,
        "never a cut frame"
    );
    // Committed with (or before) the next insert: the cut request is gone for good.
    queue
        .insert(RequestId(3), "ch", Bytes::from_static(b"short"))
        .await
        .unwrap();
    drop(queue);
    let (_, snapshot) = Queue::open(Some(dir.path())).unwrap();
    let ids: Vec<RequestId> = snapshot.pending.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids, [RequestId(1), RequestId(3)]);
    assert_eq!(files(dir.path()), ["1"]);
}

#[tokio::test]
async fn a_long_frame_whose_file_cannot_be_written_is_an_error_and_leaves_no_row() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, _) = Queue::open(Some(dir.path())).unwrap();
    // Where the file should go is a directory: writing it fails, even for root.
    std::fs::create_dir(dir.path().join("frames/1")).unwrap();
    let error = queue.insert(RequestId(1), "ch", long()).await.unwrap_err();
    assert!(matches!(error, QueueError::File(_)), "{error}");
    queue
        .insert(RequestId(2), "ch", Bytes::from_static(b"short"))
        .await
        .unwrap();
    drop(queue);
    std::fs::remove_dir(dir.path().join("frames/1")).unwrap();
    let (_, snapshot) = Queue::open(Some(dir.path())).unwrap();
    assert_eq!(snapshot.pending, vec![("ch".to_owned(), RequestId(2))]);
}

#[test]
fn a_queue_from_before_frame_files_opens_and_keeps_its_frames() {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("relay.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE queue (id INTEGER PRIMARY KEY, channel TEXT NOT NULL,
             received_at INTEGER NOT NULL, frame BLOB NOT NULL);
         INSERT INTO queue VALUES (4, 'ch', 1, x'0102');",
    )
    .unwrap();
    drop(conn);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (queue, snapshot) = Queue::open(Some(dir.path())).unwrap();
    assert_eq!(snapshot.pending, vec![("ch".to_owned(), RequestId(4))]);
    let frame = runtime.block_on(queue.load(RequestId(4))).unwrap().unwrap();
    assert_eq!(frame.as_ref(), b"\x01\x02");
}

/// A frame longer than `frames::FILE_FROM`.
fn long() -> Bytes {
    (0..(1usize << 20) + 3)
        .map(|i| (i % 241) as u8)
        .collect::<Vec<u8>>()
        .into()
}

#[tokio::test]
async fn expire_deletes_old_rows_only() {
    let dir = tempfile::tempdir().unwrap();
    for place in [None, Some(dir.path())] {
        expire_in(place).await;
    }
}

async fn expire_in(place: Option<&Path>) {
    let (queue, _) = Queue::open(place).unwrap();
    queue
        .insert(RequestId(5), "ch", Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert!(queue
        .expire(Duration::from_secs(60))
        .await
        .unwrap()
        .is_empty());
    let gone = queue.expire(Duration::ZERO).await.unwrap();
    assert_eq!(gone, vec![("ch".to_owned(), RequestId(5))]);
    assert_eq!(queue.load(RequestId(5)).await.unwrap(), None);
}
