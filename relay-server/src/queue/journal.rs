//! The durable queue's requests: an append-only journal in `<data dir>/journal/`, written by the
//! store thread once per batch. The channels and the id reserve stay in SQLite (`sqlite.rs`).
//!
//! Why not a table: a request is written and deleted again within moments, and SQLite stored
//! a 1.3 KiB frame by rewriting 4 KiB pages twice (in its WAL, then by the checkpoint), with
//! checksums over every page and an index to keep: a third of the relay's CPU per webhook
//! (issue 24's profile). Here a batch of requests and acknowledgements is one `write` of their
//! records, and nothing is ever rewritten in place.
//!
//! The journal is a row of segment files (`<sequence>.log`, [`SEGMENT_BYTES`] each), each a
//! list of records:
//!
//! ```text
//! u32  length of the rest of the record
//! u8   kind: 1 insert (the frame in the record), 2 insert (the frame in its file, see
//!      `frames.rs`), 3 delete (acknowledged, expired or forgotten)
//! u64  request id
//! insert: i64 received_at (ms since the Unix epoch), u16 channel length, channel,
//!         then the frame (kind 1) or the length of its file (kind 2, u64)
//! u64  check: a hash of the record from its kind on, so that a torn write is not read back
//! ```
//!
//! Opening replays every segment in order into an index of what is pending; the last segment
//! ends at its first record that is cut short or fails its check (a write torn by a power
//! loss), and is truncated there. Like the database (`synchronous = NORMAL`), the journal is
//! not synced at every write: what was written survives the relay being killed, and a power
//! loss may take the last few; a segment is synced when the next one starts.
//!
//! A delete record may refer to an insert in an older segment, so segments go oldest first
//! only: the oldest goes once none of its requests is pending, and when only a few are (a
//! quarter of its bytes or less, say a channel that has been offline for a while), they are
//! written again at the end of the journal first. So that a mostly pending oldest segment does
//! not hold back the spent ones after it forever, its requests are moved too once the journal
//! holds more than four times what is pending plus a segment: the journal thus stays within
//! about that (each move copies what is pending once, at most once per segment written).

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tracing::warn;

use super::frames::FILE_FROM;
use crate::protocol::RequestId;

/// A segment is sealed (synced) and a new one started once it holds this many bytes.
pub const SEGMENT_BYTES: u64 = 32 * 1024 * 1024;

const INSERT: u8 = 1;
const INSERT_FILE: u8 = 2;
const DELETE: u8 = 3;

/// Bytes of a record before an insert's channel: length, kind, id, received_at, channel length.
const INSERT_HEAD: usize = 4 + 1 + 8 + 8 + 2;
/// Bytes of the check that ends every record.
const CHECK: usize = 8;

/// Longest record replay accepts: an insert of the longest frame kept in a record, with the
/// longest channel name. Anything longer is a torn or damaged length.
const MAX_RECORD: usize = INSERT_HEAD + u16::MAX as usize + FILE_FROM + CHECK;

/// A pending request: where its frame is, and what expiry and forgetting need.
#[derive(Debug, Clone)]
struct Entry {
    segment: u64,
    /// Its frame: the record's bytes from this offset, this long; or its file's length.
    frame_at: u64,
    frame_len: u64,
    in_file: bool,
    received_at: i64,
    channel: Arc<str>,
}

/// One segment file.
struct Segment {
    file: File,
    /// Bytes written to the file.
    len: u64,
    /// Pending requests whose insert is in this segment, and their records' bytes.
    live: usize,
    live_bytes: u64,
}

/// What a frame load found.
pub enum Loaded {
    /// The frame, read from its record.
    Frame(Bytes),
    /// The frame is in its file (see `frames.rs`), this long.
    File(u64),
}

/// The journal, as the store thread holds it.
pub struct Journal {
    dir: PathBuf,
    segments: BTreeMap<u64, Segment>,
    /// The segment appended to: the last one.
    active: u64,
    index: BTreeMap<u64, Entry>,
    /// Channel names, shared by their entries.
    names: HashSet<Arc<str>>,
    /// Records appended since the last [`Journal::write`], which puts them at the end of the
    /// active segment.
    unwritten: Vec<u8>,
    /// Requests inserted since the last write: forgotten again if the write fails.
    inserted: Vec<u64>,
    /// The largest request id ever written to the journal (as far as it still shows).
    max_id: u64,
    /// A segment holding this many bytes is sealed ([`SEGMENT_BYTES`]; less in tests).
    segment_bytes: u64,
}

impl Journal {
    /// Opens (creating it if need be) the journal in `dir` and replays it.
    pub fn open(dir: &Path) -> io::Result<Journal> {
        Journal::open_with(dir, SEGMENT_BYTES)
    }

    /// [`Journal::open`] with segments of `segment_bytes`.
    fn open_with(dir: &Path, segment_bytes: u64) -> io::Result<Journal> {
        std::fs::create_dir_all(dir)?;
        let mut journal = Journal {
            dir: dir.to_path_buf(),
            segments: BTreeMap::new(),
            active: 0,
            index: BTreeMap::new(),
            names: HashSet::new(),
            unwritten: Vec::new(),
            inserted: Vec::new(),
            max_id: 0,
            segment_bytes,
        };
        let mut max_id = 0;
        let sequences = segment_files(dir)?;
        let last = sequences.last().copied();
        for seq in sequences {
            let segment = journal.replay(seq, Some(seq) == last, &mut max_id)?;
            journal.segments.insert(seq, segment);
        }
        journal.recount();
        journal.max_id = max_id;
        match last {
            Some(seq) => journal.active = seq,
            None => journal.start_segment(1)?,
        }
        Ok(journal)
    }

    /// The pending requests, oldest id first: their channel and id.
    pub fn pending(&self) -> Vec<(String, RequestId)> {
        self.index
            .iter()
            .map(|(&id, e)| (e.channel.to_string(), RequestId(id)))
            .collect()
    }

    /// The largest request id the journal has held.
    pub fn max_id(&self) -> u64 {
        self.max_id
    }

    /// Syncs the active segment: what was written survives a power loss too.
    pub fn sync(&self) -> io::Result<()> {
        self.segments[&self.active].file.sync_data()
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.log"))
    }

    fn start_segment(&mut self, seq: u64) -> io::Result<()> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(self.path(seq))?;
        let segment = Segment {
            file,
            len: 0,
            live: 0,
            live_bytes: 0,
        };
        self.segments.insert(seq, segment);
        self.active = seq;
        Ok(())
    }

    /// Reads segment `seq` into the index. The `last` one is cut at its first bad record.
    fn replay(&mut self, seq: u64, last: bool, max_id: &mut u64) -> io::Result<Segment> {
        let path = self.path(seq);
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        let size = file.metadata()?.len();
        let mut segment = Segment {
            file,
            len: 0,
            live: 0,
            live_bytes: 0,
        };
        let mut reader = BufReader::with_capacity(256 * 1024, segment.file.try_clone()?);
        let mut record = Vec::new();
        let mut at = 0u64;
        while let Some(len) = next_record(&mut reader, &mut record)? {
            *max_id = (*max_id).max(record_id(&record));
            self.apply(seq, at, &record);
            at += len as u64;
        }
        if at < size {
            if last {
                warn!(path = %path.display(), at, size, "the relay's journal ends in a torn record; dropping it");
                segment.file.set_len(at)?;
            } else {
                warn!(path = %path.display(), at, size, "a segment of the relay's journal is damaged; the requests after the damage are lost");
            }
        }
        segment.len = at;
        Ok(segment)
    }

    /// Applies one replayed record (`record` from its kind on, found at `at` in segment `seq`).
    /// Segments' counts are made afterwards ([`Journal::recount`]).
    fn apply(&mut self, seq: u64, at: u64, record: &[u8]) {
        let id = record_id(record);
        if record[0] == DELETE {
            self.index.remove(&id);
            return;
        }
        let received_at = i64::from_be_bytes(record[9..17].try_into().expect("8 bytes"));
        let channel_len = u16::from_be_bytes([record[17], record[18]]) as usize;
        let channel = String::from_utf8_lossy(&record[19..19 + channel_len]);
        let rest = &record[19 + channel_len..record.len() - CHECK];
        let (frame_at, frame_len, in_file) = match record[0] {
            INSERT => (
                at + (INSERT_HEAD + channel_len) as u64,
                rest.len() as u64,
                false,
            ),
            _ => (
                0,
                u64::from_be_bytes(rest.try_into().expect("8 bytes")),
                true,
            ),
        };
        let entry = Entry {
            segment: seq,
            frame_at,
            frame_len,
            in_file,
            received_at,
            channel: self.name(&channel),
        };
        // A request written again by a compaction: the later copy stands.
        self.index.insert(id, entry);
    }

    fn name(&mut self, channel: &str) -> Arc<str> {
        if let Some(name) = self.names.get(channel) {
            return Arc::clone(name);
        }
        let name: Arc<str> = Arc::from(channel);
        self.names.insert(Arc::clone(&name));
        name
    }

    /// Rebuilds every segment's counts from the index (after replay).
    fn recount(&mut self) {
        for segment in self.segments.values_mut() {
            segment.live = 0;
            segment.live_bytes = 0;
        }
        for entry in self.index.values() {
            if let Some(segment) = self.segments.get_mut(&entry.segment) {
                segment.live += 1;
                segment.live_bytes += record_len(entry);
            }
        }
    }

    /// Adds `entry` (inserted as `id`) to the index and its segment's counts.
    fn add(&mut self, id: u64, entry: Entry) {
        if let Some(segment) = self.segments.get_mut(&entry.segment) {
            segment.live += 1;
            segment.live_bytes += record_len(&entry);
        }
        if let Some(old) = self.index.insert(id, entry) {
            self.uncount(&old);
        }
    }

    /// Takes `id` out of the index and its segment's counts.
    fn take(&mut self, id: u64) -> Option<Entry> {
        let entry = self.index.remove(&id)?;
        self.uncount(&entry);
        Some(entry)
    }

    fn uncount(&mut self, entry: &Entry) {
        if let Some(segment) = self.segments.get_mut(&entry.segment) {
            segment.live -= 1;
            segment.live_bytes -= record_len(entry);
        }
    }

    /// Where the next appended record starts in the active segment.
    fn append_at(&self) -> u64 {
        self.segments[&self.active].len + self.unwritten.len() as u64
    }

    /// Appends an insert record of request `id` (`frame` kept in the record, or `file_len`
    /// bytes in its file) to what the next write writes, and indexes it.
    fn append_insert(&mut self, id: u64, channel: &str, received_at: i64, frame: Frame<'_>) {
        let channel = &channel.as_bytes()[..channel.len().min(u16::MAX as usize)];
        let at = self.append_at();
        let start = self.unwritten.len();
        let (kind, frame_len, in_file) = match frame {
            Frame::Bytes(bytes) => (INSERT, bytes.len() as u64, false),
            Frame::File(len) => (INSERT_FILE, len, true),
        };
        let body_len = 1 + 8 + 8 + 2 + channel.len() + if in_file { 8 } else { frame_len as usize };
        let buf = &mut self.unwritten;
        buf.extend_from_slice(&(len32(body_len + CHECK)).to_be_bytes());
        buf.push(kind);
        buf.extend_from_slice(&id.to_be_bytes());
        buf.extend_from_slice(&received_at.to_be_bytes());
        buf.extend_from_slice(&(channel.len() as u16).to_be_bytes());
        buf.extend_from_slice(channel);
        match frame {
            Frame::Bytes(bytes) => buf.extend_from_slice(bytes),
            Frame::File(len) => buf.extend_from_slice(&len.to_be_bytes()),
        }
        let check = checksum(&buf[start + 4..]);
        buf.extend_from_slice(&check.to_be_bytes());
        let channel = self.name(&String::from_utf8_lossy(channel));
        let entry = Entry {
            segment: self.active,
            frame_at: if in_file {
                0
            } else {
                at + (INSERT_HEAD + channel.len()) as u64
            },
            frame_len,
            in_file,
            received_at,
            channel,
        };
        self.add(id, entry);
        self.inserted.push(id);
        self.max_id = self.max_id.max(id);
    }

    /// Queues request `id`'s frame, kept in its record, for the next write.
    pub fn insert(&mut self, id: RequestId, channel: &str, received_at: i64, frame: &[u8]) {
        self.append_insert(id.0, channel, received_at, Frame::Bytes(frame));
    }

    /// Queues request `id`, whose frame is in its file, `len` bytes long, for the next write.
    pub fn insert_file(&mut self, id: RequestId, channel: &str, received_at: i64, len: u64) {
        self.append_insert(id.0, channel, received_at, Frame::File(len));
    }

    /// Deletes pending request `id` (a delete record goes with the next write); `Some` with
    /// whether its frame is in a file if it was pending.
    pub fn delete(&mut self, id: RequestId) -> Option<bool> {
        let entry = self.take(id.0)?;
        let buf = &mut self.unwritten;
        let start = buf.len();
        buf.extend_from_slice(&len32(1 + 8 + CHECK).to_be_bytes());
        buf.push(DELETE);
        buf.extend_from_slice(&id.0.to_be_bytes());
        let check = checksum(&buf[start + 4..]);
        buf.extend_from_slice(&check.to_be_bytes());
        Some(entry.in_file)
    }

    /// Reads pending request `id`'s frame back (from what the next write will write, when it
    /// is there still); `None` if it is not pending.
    pub fn load(&self, id: RequestId) -> io::Result<Option<Loaded>> {
        let Some(entry) = self.index.get(&id.0) else {
            return Ok(None);
        };
        if entry.in_file {
            return Ok(Some(Loaded::File(entry.frame_len)));
        }
        let segment = &self.segments[&entry.segment];
        let len = entry.frame_len as usize;
        if entry.segment == self.active && entry.frame_at >= segment.len {
            let start = (entry.frame_at - segment.len) as usize;
            let frame = &self.unwritten[start..start + len];
            return Ok(Some(Loaded::Frame(Bytes::copy_from_slice(frame))));
        }
        let mut frame = vec![0u8; len];
        segment.file.read_exact_at(&mut frame, entry.frame_at)?;
        Ok(Some(Loaded::Frame(Bytes::from(frame))))
    }

    /// The pending requests received at `cutoff` or earlier: their channel, id, and whether
    /// their frame is in a file.
    pub fn received_by(&self, cutoff: i64) -> Vec<(String, RequestId, bool)> {
        self.index
            .iter()
            .filter(|(_, e)| e.received_at <= cutoff)
            .map(|(&id, e)| (e.channel.to_string(), RequestId(id), e.in_file))
            .collect()
    }

    /// The pending requests of `channel` up to id `last`.
    pub fn of_channel(&self, channel: &str, last: RequestId) -> Vec<RequestId> {
        self.index
            .range(..=last.0)
            .filter(|(_, e)| &*e.channel == channel)
            .map(|(&id, _)| RequestId(id))
            .collect()
    }

    /// Writes what was appended since the last write at the end of the active segment, in
    /// one system call, then starts a new segment when this one is full and lets old ones go.
    /// If the write fails, the requests inserted since the last write are not pending (their
    /// callers are told), and the segment is cut back to what was written before.
    pub fn write(&mut self) -> io::Result<()> {
        if self.unwritten.is_empty() {
            return Ok(());
        }
        let written = self.write_unwritten();
        if let Err(e) = written {
            for id in std::mem::take(&mut self.inserted) {
                self.take(id);
            }
            self.unwritten.clear();
            return Err(e);
        }
        if self.segments[&self.active].len >= self.segment_bytes {
            if let Err(e) = self.next_segment() {
                warn!(error = %e, dir = %self.dir.display(), "could not start a new segment of the relay's journal");
            }
        }
        Ok(())
    }

    fn write_unwritten(&mut self) -> io::Result<()> {
        let segment = self
            .segments
            .get_mut(&self.active)
            .expect("the active segment");
        let result = segment.file.write_all_at(&self.unwritten, segment.len);
        if result.is_err() {
            // Whatever part of it reached the file is not a record to replay.
            let _ = segment.file.set_len(segment.len);
            return result;
        }
        segment.len += self.unwritten.len() as u64;
        self.unwritten.clear();
        self.inserted.clear();
        Ok(())
    }

    /// Seals the active segment (synced, so that no power loss takes it once a later one
    /// holds records) and starts the next; then drops the oldest segments no longer needed.
    fn next_segment(&mut self) -> io::Result<()> {
        self.segments[&self.active].file.sync_data()?;
        self.start_segment(self.active + 1)?;
        self.let_go()
    }

    /// Removes the oldest segments while none of their requests is pending, writing the few
    /// still pending in a mostly spent one again at the end of the journal first.
    fn let_go(&mut self) -> io::Result<()> {
        loop {
            let Some((&oldest, segment)) = self.segments.first_key_value() else {
                return Ok(());
            };
            if oldest == self.active {
                return Ok(());
            }
            let (live, live_bytes, len) = (segment.live, segment.live_bytes, segment.len);
            if live > 0 {
                if live_bytes * 4 > len && !self.too_large() {
                    return Ok(());
                }
                self.compact(oldest)?;
            }
            self.segments.remove(&oldest);
            std::fs::remove_file(self.path(oldest))?;
        }
    }

    /// Whether the journal's segments hold more than four times the records still pending,
    /// plus a segment (see the module's doc).
    fn too_large(&self) -> bool {
        let (total, live) = self.segments.values().fold((0, 0), |(total, live), s| {
            (total + s.len, live + s.live_bytes)
        });
        total > 4 * live + self.segment_bytes
    }

    /// Writes the pending requests of segment `seq` again at the end of the journal, and
    /// syncs them there before the segment goes. If that fails, they stay where they were.
    fn compact(&mut self, seq: u64) -> io::Result<()> {
        let moving: Vec<(u64, Entry)> = self
            .index
            .iter()
            .filter(|(_, e)| e.segment == seq)
            .map(|(&id, e)| (id, e.clone()))
            .collect();
        let moved = self.copy_forward(seq, &moving);
        if moved.is_err() {
            self.unwritten.clear();
            self.inserted.clear();
            for (id, entry) in moving {
                self.add(id, entry);
            }
        }
        moved
    }

    fn copy_forward(&mut self, seq: u64, moving: &[(u64, Entry)]) -> io::Result<()> {
        let mut bytes = Vec::new();
        for (id, entry) in moving {
            let frame = match entry.in_file {
                true => Frame::File(entry.frame_len),
                false => {
                    bytes.resize(entry.frame_len as usize, 0);
                    self.segments[&seq]
                        .file
                        .read_exact_at(&mut bytes, entry.frame_at)?;
                    Frame::Bytes(&bytes)
                }
            };
            self.append_insert(*id, &entry.channel, entry.received_at, frame);
        }
        self.write_unwritten()?;
        self.segments[&self.active].file.sync_data()
    }
}

/// A frame on its way into a record.
enum Frame<'a> {
    Bytes(&'a [u8]),
    /// In its file, this long.
    File(u64),
}

fn len32(len: usize) -> u32 {
    u32::try_from(len).expect("a journal record is far below 4 GiB")
}

/// The length of `entry`'s record, for the counts of its segment.
fn record_len(entry: &Entry) -> u64 {
    let channel = entry.channel.len() as u64;
    let frame = if entry.in_file { 8 } else { entry.frame_len };
    (INSERT_HEAD + CHECK) as u64 + channel + frame
}

/// The sequence numbers of the segment files in `dir`, in order.
fn segment_files(dir: &Path) -> io::Result<Vec<u64>> {
    let mut sequences = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let seq = name
            .to_str()
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok());
        match seq {
            Some(seq) => sequences.push(seq),
            None => {
                warn!(name = %name.to_string_lossy(), "ignoring a file that is no segment of the relay's journal")
            }
        }
    }
    sequences.sort_unstable();
    Ok(sequences)
}

/// The id of a record (from its kind on).
fn record_id(record: &[u8]) -> u64 {
    u64::from_be_bytes(record[1..9].try_into().expect("8 bytes"))
}

/// Reads the next record into `record` (from its kind on); `None` at the end of the segment or
/// at a record that is cut short, too long, malformed or fails its check. Returns the bytes it
/// took, its length prefix included.
fn next_record(reader: &mut impl Read, record: &mut Vec<u8>) -> io::Result<Option<usize>> {
    let mut prefix = [0u8; 4];
    if !read_full(reader, &mut prefix)? {
        return Ok(None);
    }
    let len = u32::from_be_bytes(prefix) as usize;
    if !(1 + 8 + CHECK..=MAX_RECORD).contains(&len) {
        return Ok(None);
    }
    record.resize(len, 0);
    if !read_full(reader, record)? {
        return Ok(None);
    }
    let (body, check) = record.split_at(len - CHECK);
    if u64::from_be_bytes(check.try_into().expect("8 bytes")) != checksum(body) {
        return Ok(None);
    }
    let well_formed = match body[0] {
        DELETE => body.len() == 9,
        INSERT | INSERT_FILE if body.len() >= INSERT_HEAD - 4 => {
            let channel_len = u16::from_be_bytes([body[17], body[18]]) as usize;
            let rest = body.len().checked_sub(19 + channel_len);
            match body[0] {
                INSERT => rest.is_some(),
                _ => rest == Some(8),
            }
        }
        _ => false,
    };
    Ok(well_formed.then_some(4 + len))
}

/// Fills `buf`; `false` if the reader ends first.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    match reader.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// A record's check: a 64-bit multiply-rotate hash over its bytes, eight at a time. Not a
/// defence against anyone, only against a record torn or zeroed by a power loss.
fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut hash = bytes.len() as u64 ^ K;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        hash = (hash ^ word).wrapping_mul(K).rotate_left(31);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    hash = (hash ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    hash ^ (hash >> 29)
}

#[cfg(test)]
mod tests;
