//! Retention: `--keep` and `--keep-days` prune the oldest captures (a generation at a time
//! under load, exactly when idle), their body files go with them, and ids are never reused.

use super::*;

#[tokio::test]
async fn keep_prunes_the_oldest_and_ids_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let keep = Retention {
        keep: Some(3),
        max_age: None,
    };
    {
        let writer = writer_at(&path, keep);
        for i in 0..5 {
            save(&writer, record(Some(i), "/", Some(200))).await;
        }
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.ids(None).unwrap(), [3, 4, 5]);
    let writer = writer_at(&path, keep);
    assert_eq!(save(&writer, record(None, "/", Some(200))).await, 6);
    assert_eq!(store.ids(None).unwrap(), [4, 5, 6]);
}

#[tokio::test]
async fn large_limits_prune_a_generation_at_a_time_in_few_generations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    // 64 / 8: generations of eight captures, eight captures of slack while busy.
    let writer = writer_at(
        &path,
        Retention {
            keep: Some(64),
            max_age: None,
        },
    );
    let store = Store::open(&path).unwrap();
    let conn = Connection::open(&path).unwrap();
    let generations = || -> i64 {
        conn.query_row("SELECT COUNT(*) FROM generations", [], |r| r.get(0))
            .unwrap()
    };
    let mut most_generations = 0;
    for round in 0..25u64 {
        let mut pending = Vec::new();
        for i in 0..(round % 7 + 1) * 3 {
            pending.push(writer.record(record(Some(i), "/", Some(200))).unwrap());
        }
        for p in pending {
            p.await.unwrap().unwrap();
        }
        let ids = store.ids(None).unwrap();
        if ids.len() >= 64 {
            // Busy: the newest 64, and at most the slack more.
            assert!(ids.len() <= 72, "{} captures kept", ids.len());
        }
        // Consecutive ids, oldest first, through the view over every generation.
        let expected: Vec<i64> = (ids[0].0..ids[0].0 + ids.len() as i64).collect();
        assert_eq!(ids, expected);
        most_generations = most_generations.max(generations());
    }
    assert!(
        (3..=10).contains(&most_generations),
        "{most_generations} generations"
    );
    // Idle, it trims to the limit exactly, oldest first.
    let newest = save(&writer, record(None, "/", Some(200))).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let ids = loop {
        let ids = store.ids(None).unwrap();
        if ids.len() == 64 || std::time::Instant::now() > deadline {
            break ids;
        }
        tokio::task::yield_now().await;
        std::thread::yield_now();
    };
    assert_eq!((ids.len(), ids[0].0, ids[63]), (64, newest.0 - 63, newest));
}

#[tokio::test]
async fn an_idle_writer_prunes_to_the_exact_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let writer = writer_at(
        &path,
        Retention {
            keep: Some(64),
            max_age: None,
        },
    );
    let mut pending = Vec::new();
    for i in 0..67 {
        pending.push(writer.record(record(Some(i), "/", Some(200))).unwrap());
    }
    for p in pending {
        p.await.unwrap().unwrap();
    }
    let store = Store::open(&path).unwrap();
    // Within the slack, so only the idle writer's tidying removes the oldest three.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let ids = loop {
        let ids = store.ids(None).unwrap();
        if ids.len() == 64 || std::time::Instant::now() > deadline {
            break ids;
        }
        tokio::task::yield_now().await;
        std::thread::yield_now();
    };
    assert_eq!((ids.len(), ids[0].0), (64, 4));
    drop(writer);
}

#[tokio::test]
async fn keep_days_prunes_old_captures_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    {
        let writer = writer_at(&path, Retention::default());
        let mut old = record(None, "/old", Some(200));
        old.received_at_ms -= 3 * 86_400_000;
        save(&writer, old).await;
        save(&writer, record(None, "/new", Some(200))).await;
    }
    let two_days = Retention {
        keep: None,
        max_age: Some(Duration::from_secs(2 * 86_400)),
    };
    let writer = writer_at(&path, two_days);
    // The writer prunes before its first batch; a save is a barrier for that.
    save(&writer, record(None, "/newer", Some(200))).await;
    let store = Store::open(&path).unwrap();
    assert_eq!(store.ids(None).unwrap(), [2, 3]);
}

#[tokio::test]
async fn keep_days_keeps_the_newest_capture_so_ids_never_start_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    {
        let writer = writer_at(&path, Retention::default());
        for _ in 0..3 {
            let mut old = record(None, "/old", Some(200));
            old.received_at_ms -= 3 * 86_400_000;
            save(&writer, old).await;
        }
    }
    let two_days = Retention {
        keep: None,
        max_age: Some(Duration::from_secs(2 * 86_400)),
    };
    let writer = writer_at(&path, two_days);
    // Every capture is too old, but the newest stays: without it SQLite would give id 1 again.
    let next = save(&writer, record(None, "/new", Some(200))).await;
    assert_eq!(next, 4);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.ids(None).unwrap(), [3, 4]);
}

/// The ids whose body files are in the store at `path`, each once.
fn body_files(path: &Path) -> Vec<i64> {
    let mut ids: Vec<i64> = std::fs::read_dir(bodies::dir_of(path))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter_map(|name| name.split_once('.').and_then(|(id, _)| id.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    ids.sort_unstable();
    ids.dedup();
    ids
}

#[tokio::test]
async fn long_bodies_are_files_that_retention_removes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let keep = Retention {
        keep: Some(3),
        max_age: None,
    };
    let long = |id: u64| Bytes::from(vec![id as u8; bodies::FILE_FROM + id as usize]);
    let with_long_body = |id: u64| {
        let mut r = record(Some(id), "/long", Some(200));
        r.request.body = long(id);
        if let Outcome::Answered(response) = &mut r.outcome {
            response.body = long(id + 100);
        }
        r
    };
    {
        let writer = writer_at(&path, keep);
        for id in 1..=20 {
            assert_eq!(save(&writer, with_long_body(id)).await, id as i64);
        }
        // Swept once 16 files were written: those of the captures pruned by then are gone.
        let files = body_files(&path);
        assert!(files.iter().all(|&id| id >= 14), "{files:?}");
    }
    let in_db: u64 = ["", "-wal"]
        .iter()
        .map(|suffix| {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            std::fs::metadata(file).map_or(0, |m| m.len())
        })
        .sum();
    // 40 long bodies went by, 6 of them still kept: in the rows, their pages alone (and the
    // WAL's copies of them) would be several MiB.
    assert!(
        in_db < 4 * bodies::FILE_FROM as u64,
        "the database holds {in_db} bytes"
    );
    // A writer sweeps when it starts; the capture it then takes prunes #18, whose files wait
    // for the next sweep (the first writer's last one, or an idle moment, may be it).
    let writer = writer_at(&path, keep);
    assert_eq!(save(&writer, with_long_body(21)).await, 21);
    let files = body_files(&path);
    assert!(
        files == [18, 19, 20, 21] || files == [19, 20, 21],
        "{files:?}"
    );
    let store = Store::open(&path).unwrap();
    for id in 19..=21 {
        let got = stored(&store, CaptureId(id as i64));
        let Outcome::Answered(response) = &got.outcome else {
            panic!("#{id} was answered");
        };
        assert!(got.request.body == long(id), "#{id}'s request body");
        assert!(response.body == long(id + 100), "#{id}'s response body");
    }
    std::fs::remove_file(bodies::dir_of(&path).join("21.request")).unwrap();
    let error = store.get(CaptureId(21)).unwrap_err();
    assert!(
        matches!(error, StoreError::BodyFile { id: 21, .. }),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .starts_with("capture #21: its body file in "),
        "{error}"
    );
}

#[tokio::test]
async fn two_writers_at_once_keep_each_others_long_bodies() {
    // `hooks listen` and a `hooks replay` of long captures, writing at the same moment.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let writers = [
        writer_at(&path, Retention::default()),
        writer_at(&path, Retention::default()),
    ];
    let body = |i: u64| Bytes::from(vec![i as u8; bodies::FILE_FROM + i as usize]);
    let mut pending = Vec::new();
    for i in 0..24u64 {
        let mut r = record(Some(i), &format!("/{i}"), Some(200));
        r.request.body = body(i);
        pending.push((i, writers[(i % 2) as usize].record(r).unwrap()));
    }
    let store = Store::open(&path).unwrap();
    for (i, pending) in pending {
        let id = pending.await.unwrap().unwrap();
        let got = stored(&store, id);
        assert_eq!(got.request.path, format!("/{i}"));
        assert!(got.request.body == body(i), "#{id}'s body is /{i}'s");
    }
}

#[tokio::test]
async fn a_larger_keep_than_last_time_fills_every_slot_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let keep = |n| Retention {
        keep: Some(n),
        max_age: None,
    };
    {
        // Generations of 10.
        let writer = writer_at(&path, keep(80));
        for i in 0..90u64 {
            save(&writer, record(Some(i), "/", Some(200))).await;
        }
    }
    // Generations of 125 now: the small ones hold slots until the store is past 1000, so the
    // slots run out and the newest grows past its share instead.
    let writer = writer_at(&path, keep(1000));
    let mut pending = Vec::new();
    for i in 0..500u64 {
        pending.push(writer.record(record(Some(i), "/", Some(200))).unwrap());
    }
    for p in pending {
        p.await.unwrap().unwrap();
    }
    let store = Store::open(&path).unwrap();
    let ids = store.ids(None).unwrap();
    let expected: Vec<i64> = (ids[0].0..ids[0].0 + ids.len() as i64).collect();
    assert_eq!(ids, expected);
    assert_eq!(ids.last().map(|id| id.0), Some(590));
    assert!(ids.len() >= 500, "{} kept, under --keep 1000", ids.len());
    let conn = Connection::open(&path).unwrap();
    let generations: i64 = conn
        .query_row("SELECT COUNT(*) FROM generations", [], |r| r.get(0))
        .unwrap();
    assert!(generations <= 10, "{generations}");
    let largest = (0..10)
        .map(|slot| -> i64 {
            conn.query_row(&format!("SELECT COUNT(*) FROM captures_{slot}"), [], |r| {
                r.get(0)
            })
            .unwrap()
        })
        .max();
    assert!(
        largest > Some(125),
        "no generation grew past its share: {largest:?}"
    );
}
