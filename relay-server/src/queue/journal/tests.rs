//! The journal alone: replay, torn tails, segments that go, requests written again.

use super::*;

fn frame(id: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u64 * 7 + id) as u8).collect()
}

fn pending_ids(journal: &Journal) -> Vec<u64> {
    journal.pending().iter().map(|(_, id)| id.0).collect()
}

fn loaded(journal: &Journal, id: u64) -> Vec<u8> {
    match journal.load(RequestId(id)).unwrap() {
        Some(Loaded::Frame(frame)) => frame.to_vec(),
        Some(Loaded::File(len)) => panic!("request {id} is in a file of {len} bytes"),
        None => panic!("request {id} is not pending"),
    }
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.log"))
}

#[test]
fn requests_survive_reopening_and_deleted_ones_stay_deleted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut journal = Journal::open(dir.path()).unwrap();
        journal.insert(RequestId(1), "a", 10, &frame(1, 100));
        journal.insert(RequestId(2), "b", 20, &frame(2, 0));
        journal.insert_file(RequestId(3), "a", 30, 1 << 20);
        // Readable before it is written, from what waits for the write.
        assert_eq!(loaded(&journal, 1), frame(1, 100));
        journal.write().unwrap();
        assert_eq!(journal.delete(RequestId(2)), Some(false));
        assert_eq!(journal.delete(RequestId(2)), None, "deleted once");
        journal.write().unwrap();
    }
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(
        journal.pending(),
        [
            ("a".to_owned(), RequestId(1)),
            ("a".to_owned(), RequestId(3))
        ]
    );
    assert_eq!(journal.max_id(), 3);
    assert_eq!(
        loaded(&journal, 1),
        frame(1, 100),
        "read back from the file"
    );
    assert!(matches!(
        journal.load(RequestId(3)).unwrap(),
        Some(Loaded::File(len)) if len == 1 << 20
    ));
    assert!(journal.load(RequestId(2)).unwrap().is_none());
    assert_eq!(
        journal.received_by(15),
        [("a".to_owned(), RequestId(1), false)]
    );
    assert_eq!(journal.of_channel("a", RequestId(2)), [RequestId(1)]);
}

#[test]
fn a_torn_record_at_the_end_is_dropped_and_writing_goes_on_after_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let first_len;
    {
        let mut journal = Journal::open(dir.path()).unwrap();
        journal.insert(RequestId(1), "a", 1, &frame(1, 300));
        journal.write().unwrap();
        first_len = std::fs::metadata(segment_path(dir.path(), 1))
            .unwrap()
            .len();
        journal.insert(RequestId(2), "a", 2, &frame(2, 300));
        journal.write().unwrap();
    }
    // A power loss tore the last write: its record is cut short.
    let path = segment_path(dir.path(), 1);
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(std::fs::metadata(&path).unwrap().len() - 5)
        .unwrap();
    drop(file);
    {
        let mut journal = Journal::open(dir.path()).unwrap();
        assert_eq!(pending_ids(&journal), [1]);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            first_len,
            "cut back"
        );
        journal.insert(RequestId(3), "a", 3, &frame(3, 10));
        journal.write().unwrap();
    }
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(pending_ids(&journal), [1, 3]);
    assert_eq!(loaded(&journal, 3), frame(3, 10));
}

#[test]
fn a_record_whose_bytes_were_zeroed_fails_its_check() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut journal = Journal::open(dir.path()).unwrap();
        journal.insert(RequestId(1), "a", 1, &frame(1, 300));
        journal.insert(RequestId(2), "a", 2, &frame(2, 300));
        journal.write().unwrap();
    }
    // The last page of a write lost to a power loss reads back as zeros.
    let path = segment_path(dir.path(), 1);
    let len = std::fs::metadata(&path).unwrap().len();
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&[0u8; 40], len - 48).unwrap();
    drop(file);
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(pending_ids(&journal), [1], "never a damaged frame");
}

/// Requests 2.. are each written and deleted; request 1 stays pending: the spent segments go,
/// oldest first, and request 1 is written again at the end once its segment is mostly spent.
#[test]
fn spent_segments_go_and_the_few_pending_requests_in_them_move_forward() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut journal = Journal::open_with(dir.path(), 4096).unwrap();
        journal.insert(RequestId(1), "offline", 1, &frame(1, 500));
        journal.write().unwrap();
        for id in 2..60 {
            journal.insert(RequestId(id), "live", 2, &frame(id, 500));
            journal.write().unwrap();
            journal.delete(RequestId(id));
            journal.write().unwrap();
        }
        let left = segment_files(dir.path()).unwrap();
        assert!(left.len() <= 2, "segments left: {left:?}");
        assert!(!left.contains(&1), "the first segment went");
        assert_eq!(loaded(&journal, 1), frame(1, 500), "moved, still readable");
    }
    let journal = Journal::open_with(dir.path(), 4096).unwrap();
    assert_eq!(pending_ids(&journal), [1], "nothing deleted comes back");
    assert_eq!(loaded(&journal, 1), frame(1, 500));
    assert_eq!(journal.max_id(), 59);
}

/// A segment whose requests are mostly pending stays, and so do the later ones, even when they
/// are spent: their delete records keep deleted requests of the earlier one deleted. Once the
/// journal holds more than four times what is pending (plus a segment), its requests move
/// forward all the same, and the spent segments go: the journal's size stays bounded.
#[test]
fn a_mostly_pending_segment_keeps_the_later_ones_until_the_journal_grows_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let cycle = |journal: &mut Journal, id| {
        journal.insert(RequestId(id), "live", 2, &frame(id, 900));
        journal.write().unwrap();
        journal.delete(RequestId(id));
        journal.write().unwrap();
    };
    {
        let mut journal = Journal::open_with(dir.path(), 4096).unwrap();
        for id in 1..=4 {
            journal.insert(RequestId(id), "offline", 1, &frame(id, 900));
        }
        journal.write().unwrap();
        // The next write fills the first segment: a second one starts.
        journal.insert(RequestId(5), "live", 2, &frame(5, 900));
        journal.write().unwrap();
        assert_eq!(journal.active, 2);
        // Delete one of the first segment's requests from the second, then fill more.
        journal.delete(RequestId(2));
        journal.delete(RequestId(5));
        journal.write().unwrap();
        for id in 6..10 {
            cycle(&mut journal, id);
        }
        assert!(segment_files(dir.path()).unwrap().contains(&1));
    }
    {
        let mut journal = Journal::open_with(dir.path(), 4096).unwrap();
        assert_eq!(pending_ids(&journal), [1, 3, 4]);
        assert_eq!(loaded(&journal, 4), frame(4, 900));
        for id in 10..200 {
            cycle(&mut journal, id);
        }
        let segments = segment_files(dir.path()).unwrap();
        assert!(!segments.contains(&1), "moved forward: {segments:?}");
        let bytes: u64 = segments
            .iter()
            .map(|&seq| {
                std::fs::metadata(segment_path(dir.path(), seq))
                    .unwrap()
                    .len()
            })
            .sum();
        // Three requests of about 940 bytes pending: four times that, a segment, and the
        // active one.
        assert!(
            bytes <= 4 * 3 * 940 + 2 * 4096 + 4096,
            "{bytes} bytes in {segments:?}"
        );
    }
    let journal = Journal::open_with(dir.path(), 4096).unwrap();
    assert_eq!(pending_ids(&journal), [1, 3, 4]);
    for id in [1, 3, 4] {
        assert_eq!(loaded(&journal, id), frame(id, 900));
    }
}

#[test]
fn a_failed_write_forgets_what_it_would_have_inserted() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(dir.path()).unwrap();
    journal.insert(RequestId(1), "a", 1, &frame(1, 10));
    journal.write().unwrap();
    // The segment cannot be written any more (its file handle is read-only now).
    let path = segment_path(dir.path(), 1);
    let active = journal.segments.get_mut(&1).unwrap();
    active.file = File::open(&path).unwrap();
    journal.insert(RequestId(2), "a", 1, &frame(2, 10));
    assert!(journal.write().is_err());
    assert_eq!(pending_ids(&journal), [1]);
    assert!(journal.load(RequestId(2)).unwrap().is_none());
}
