//! Store tests: a temp file or `:memory:`, with the real writer thread.

use super::*;
use crate::query::Query;

fn header(name: &str, value: &[u8]) -> Header {
    Header {
        name: name.into(),
        value: Bytes::copy_from_slice(value),
    }
}

/// The relay epoch of [`record`]'s deliveries.
const EPOCH: u64 = 5;

/// The columns of a version 3 store, in order.
const V3_NAMES: &str = "id, received_at, channel, channel_url, relay_id, target, method, path, \
    request_headers, request_body, status, response_headers, response_body, error, duration_us, \
    signature, event_type, event_id, replay_of";

fn record(relay_id: Option<u64>, path: &str, status: Option<u16>) -> Record {
    Record {
        received_at_ms: now_ms(),
        channel: Some("ch".into()),
        channel_url: relay_id.map(|_| "http://relay/ch".to_owned()),
        relay_id,
        relay_epoch: relay_id.map(|_| EPOCH),
        redelivered: false,
        target: "http://localhost:3000".into(),
        request: Request {
            method: "POST".into(),
            path: path.into(),
            headers: vec![
                header("x-dup", b"1"),
                header("x-bin", b"\xff\x00\x7f latin"),
                header("x-dup", b"2"),
            ],
            body: Bytes::from_static(b"\x00\x01\xfe\xffbody"),
        },
        outcome: match status {
            Some(status) => Outcome::Answered(Response {
                status,
                headers: vec![header("set-cookie", b"a=1"), header("set-cookie", b"b=2")],
                body: Bytes::from_static(b"\xffanswer"),
            }),
            None => Outcome::Failed("connection refused".into()),
        },
        duration: Duration::from_micros(1234),
        signature: None,
        event_type: None,
        event_id: None,
        replay_of: None,
        sent: false,
    }
}

async fn save(writer: &Writer, record: Record) -> i64 {
    writer.record(record).unwrap().await.unwrap().unwrap()
}

fn writer_at(path: &Path, retention: Retention) -> Writer {
    let (conn, moved) = open_or_replace(path).unwrap();
    assert!(moved.is_none());
    Writer::spawn(conn, path.to_owned(), retention).unwrap()
}

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
    assert_eq!(store.get(first).unwrap().record, answered);
    assert_eq!(store.get(second).unwrap().record, failed);
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
        assert_eq!(&store.get(id).unwrap().record, expected, "capture #{id}");
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
    let err = store.load(CaptureRef::Id(42)).unwrap_err();
    assert_eq!(err.to_string(), "no capture #42");
}

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
        let expected: Vec<i64> = (ids[0]..ids[0] + ids.len() as i64).collect();
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
    assert_eq!((ids.len(), ids[0], ids[63]), (64, newest - 63, newest));
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
    assert_eq!((ids.len(), ids[0]), (64, 4));
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
    assert_eq!(writer.captured_before(url, EPOCH, 9), Some(first + 1));
    assert_eq!(writer.captured_before(url, EPOCH, 8), None);
    assert_eq!(writer.captured_before(url, EPOCH, 10), None);
    assert_eq!(writer.captured_before("http://other/ch", EPOCH, 7), None);
    // Issue 17: a relay back with an empty queue counts from 1 again, in another epoch.
    assert_eq!(writer.captured_before(url, EPOCH + 1, 7), None);
    let store = Store::open(&path).unwrap();
    let capture = store.get(first).unwrap().record;
    assert_eq!(capture.status(), Some(200));
    assert_eq!(
        (capture.relay_epoch, capture.redelivered),
        (Some(EPOCH), false)
    );
}

#[tokio::test]
async fn filters_select_by_status_event_path_and_age() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let writer = writer_at(&path, Retention::default());
    let mut paid = record(None, "/stripe/a", Some(200));
    paid.event_type = Some("invoice.paid".into());
    let mut old = record(None, "stripe?x=1", Some(503));
    old.received_at_ms -= 7_200_000;
    let mut replay = record(None, "/github", Some(404));
    replay.replay_of = Some(1);
    for r in [paid, old, replay, record(None, "/github", None)] {
        save(&writer, r).await;
    }
    let store = Store::open(&path).unwrap();
    let ids = |text: &str| store.ids(Some(&Query::parse(text).unwrap())).unwrap();
    assert_eq!(ids("status:5xx"), [2]);
    assert_eq!(ids("status:200"), [1]);
    assert_eq!(ids("status:4xx"), [3]);
    assert_eq!(ids("status:error"), [4]);
    assert_eq!(ids("NOT status:error"), [1, 2, 3]);
    assert_eq!(ids("event:invoice.paid"), [1]);
    assert_eq!(
        ids("NOT event:invoice.paid"),
        [2, 3, 4],
        "no event is not invoice.paid"
    );
    assert_eq!(
        ids("path:/stripe*"),
        [1, 2],
        "a stored path without '/' matches too"
    );
    assert_eq!(ids("path:/git%*"), Vec::<i64>::new());
    assert_eq!(
        ids("path:/stripe"),
        [2],
        "the query is not part of the path"
    );
    assert_eq!(ids("since:1h replay:false"), [1, 4]);
    assert_eq!(ids("replay:true OR status:503"), [2, 3]);
    assert_eq!(ids("route:*"), Vec::<i64>::new());
    assert_eq!(ids("NOT route:*"), [1, 2, 3, 4]);
    let newest: Vec<i64> = store.list(None, 2).unwrap().iter().map(|s| s.id).collect();
    assert_eq!(newest, [4, 3]);
}

/// Headers and bodies in the rows and in files, read only for rows the columns kept.
#[tokio::test]
async fn headers_and_bodies_are_matched_in_rows_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let writer = writer_at(&path, Retention::default());
    let mut small = record(None, "/a", Some(200));
    small.request.body = Bytes::from_static(br#"{"data":{"customer":"cus_42","amount":2000}}"#);
    small.signature = Some(r#"{"provider":"stripe","verdict":"valid","reason":null}"#.into());
    let mut large = record(None, "/b", Some(500));
    let mut body = br#"{"data":{"customer":"cus_7","amount":99},"pad":""#.to_vec();
    body.resize(bodies::FILE_FROM + 10, b'x');
    body.extend_from_slice(b"\"}");
    large.request.body = Bytes::from(body);
    for r in [small, large] {
        save(&writer, r).await;
    }
    assert!(
        bodies::dir_of(&path).join("2.request").exists(),
        "the large body is a file"
    );
    let store = Store::open(&path).unwrap();
    let ids = |text: &str| store.ids(Some(&Query::parse(text).unwrap())).unwrap();
    assert_eq!(ids("json./data/customer:cus_42"), [1]);
    assert_eq!(ids("json./data/amount:<1000"), [2]);
    assert_eq!(ids("json./data/amount:>0 status:5xx"), [2]);
    assert_eq!(ids("header.x-dup:2 header.x-bin:*latin"), [1, 2]);
    assert_eq!(ids("NOT header.x-dup:3"), [1, 2]);
    assert_eq!(ids(r#"body~"cus_\d{2}""#), [1]);
    assert_eq!(ids("size:>256KiB"), [2]);
    assert_eq!(ids("size:<100"), [1]);
    assert_eq!(ids("provider:Stripe verdict:valid"), [1]);
    assert_eq!(ids("NOT verdict:valid"), [2]);
    assert_eq!(ids("verdict:invalid"), Vec::<i64>::new());
    let listed = store
        .list(Some(&Query::parse("json./data:*").unwrap()), 1)
        .unwrap();
    assert_eq!(
        listed.iter().map(|s| s.id).collect::<Vec<_>>(),
        [2],
        "newest first, limited"
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
        let got = store.get(id as i64).unwrap().record;
        let Outcome::Answered(response) = &got.outcome else {
            panic!("#{id} was answered");
        };
        assert!(got.request.body == long(id), "#{id}'s request body");
        assert!(response.body == long(id + 100), "#{id}'s response body");
    }
    std::fs::remove_file(bodies::dir_of(&path).join("21.request")).unwrap();
    let error = store.get(21).unwrap_err();
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
        let got = store.get(id).unwrap().record;
        assert_eq!(got.request.path, format!("/{i}"));
        assert!(got.request.body == body(i), "#{id}'s body is /{i}'s");
    }
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

#[test]
fn references_parse() {
    assert_eq!("last".parse(), Ok(CaptureRef::Last));
    assert_eq!("#12".parse(), Ok(CaptureRef::Id(12)));
    assert_eq!("12".parse(), Ok(CaptureRef::Id(12)));
    assert!("0".parse::<CaptureRef>().is_err());
    assert!("twelve".parse::<CaptureRef>().is_err());
}

#[test]
fn verdicts_come_from_the_signature_json() {
    assert_eq!(verdict(None), None);
    assert_eq!(verdict(Some(r#""valid""#)), Some("valid".into()));
    assert_eq!(
        verdict(Some(r#"{"verdict":"invalid","reason":"x"}"#)),
        Some("invalid".into())
    );
    assert_eq!(verdict(Some("not json")), None);
}

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
        assert_eq!(store.get(*id).unwrap().record.request.path, format!("/{i}"));
    }
    assert_eq!(store.get(alone).unwrap().record.request.path, "/alone");
    assert!(!ids.contains(&alone));
}

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
    let kept = store.get(first - 1).unwrap().record.request;
    assert_eq!(kept.path, "/kept");
    // Header lists as versions 1 and 2 wrote them (JSON text) still read.
    assert_eq!(
        kept.headers,
        [header("x-old", b"json"), header("x-bin", b"\xff\x00")]
    );
    assert_eq!(store.get(first).unwrap().record.request.path, "/kept too");
    // From before epochs: epoch 0.
    assert_eq!(writer.captured_before("http://relay/ch", 0, 6), Some(first));
    // The same delivery can be recorded again (no unique index left to refuse it), and ids go
    // on past the deleted one: never reused.
    let again = save(&writer, record(Some(6), "/again", Some(200))).await;
    assert_eq!(again, first + 2);
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
    assert_eq!(kept.last(), Some(&40));
    assert!((16..=18 + 14).contains(&kept.len()), "{} kept", kept.len());
    for id in kept {
        assert_eq!(
            store.get(id).unwrap().record.request.path,
            format!("/{}", id - 1)
        );
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
    let expected: Vec<i64> = (ids[0]..ids[0] + ids.len() as i64).collect();
    assert_eq!(ids, expected);
    assert_eq!(ids.last(), Some(&590));
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
                 ALTER TABLE {table} DROP COLUMN sent;"
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
    let old = store.get(first).unwrap().record;
    assert_eq!(
        (old.request.path.as_str(), old.relay_epoch, old.redelivered),
        ("/before", None, false)
    );
    let new = store.get(second).unwrap().record;
    assert_eq!((new.relay_epoch, new.redelivered), (Some(EPOCH), true));
}
