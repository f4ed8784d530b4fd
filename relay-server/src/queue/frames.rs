//! Long request frames of the durable queue, kept as files beside the database
//! (`<data dir>/frames/<id>`) rather than in it.
//!
//! In SQLite a 10 MiB frame cost the relay's queue thread about 27 ms of CPU, for a request
//! usually acknowledged moments later: written once to the WAL (checksummed), copied again by
//! the checkpoint, and read back whole when its row was deleted, because SQLite walks a
//! deleted row's overflow pages one by one to free them. A file is written once and unlinked.
//! SQLite's own notes on large BLOBs point the same way for anything past about 100 KB.
//!
//! A file is written before the row that names it is inserted and unlinked after the row's
//! deletion is committed, so a committed row always has its file; a crash in between leaves a
//! file without a row, which [`Frames::open`] removes. Files are not synced, as the database's
//! commits are not (`synchronous = NORMAL`): both survive the process being killed, and a power
//! loss may take the last few. The row keeps the frame's length, so a file cut short by one is
//! noticed rather than delivered.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::protocol::RequestId;

/// Frames at least this long are kept in files.
pub const FILE_FROM: usize = 256 * 1024;

/// The directory of frame files.
pub struct Frames {
    dir: PathBuf,
}

impl Frames {
    /// Opens (creating it if need be) `dir`, and removes the files of requests not in `queued`,
    /// left by a crash between writing a file and committing its row, or between committing a
    /// deletion and unlinking.
    pub fn open(dir: PathBuf, queued: &HashSet<u64>) -> io::Result<Frames> {
        std::fs::create_dir_all(&dir)?;
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let id = name.to_str().and_then(|n| n.parse::<u64>().ok());
            if !id.is_some_and(|id| queued.contains(&id)) {
                if let Err(e) = std::fs::remove_file(entry.path()) {
                    tracing::warn!(error = %e, path = %entry.path().display(), "could not remove a stray file among the queue's frames");
                }
            }
        }
        Ok(Frames { dir })
    }

    fn path(&self, id: RequestId) -> PathBuf {
        self.dir.join(id.0.to_string())
    }

    /// Writes `id`'s frame.
    pub fn write(&self, id: RequestId, frame: &[u8]) -> io::Result<()> {
        std::fs::write(self.path(id), frame)
    }

    /// Renames `<id>.part` (a [`FrameFile`]'s) to `id`'s frame file.
    pub fn adopt(&self, id: RequestId) -> io::Result<()> {
        std::fs::rename(part_path(&self.dir, id), self.path(id))
    }

    /// Removes `<id>.part`, if there is one.
    pub fn remove_part(&self, id: RequestId) {
        let _ = std::fs::remove_file(part_path(&self.dir, id));
    }

    /// Reads `id`'s frame back; `None` when the file is missing or not `len` bytes long.
    pub fn read(&self, id: RequestId, len: u64) -> io::Result<Option<Bytes>> {
        match std::fs::read(self.path(id)) {
            Ok(frame) if frame.len() as u64 == len => Ok(Some(frame.into())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes `id`'s frame file, if there is one.
    pub fn remove(&self, id: RequestId) {
        match std::fs::remove_file(self.path(id)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(error = %e, %id, "could not remove a request's frame file"),
        }
    }

    /// Where the files are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Where a frame is written as it arrives, until its row is inserted: `<dir>/<id>.part`, which
/// [`Frames::open`] removes as a stray.
fn part_path(dir: &Path, id: RequestId) -> PathBuf {
    dir.join(format!("{}.part", id.0))
}

/// A long frame written to its file as it arrives (see `Queue::frame_file`), then handed to
/// `Queue::submit` (as a `Frame::File`), after which the queue's thread renames it
/// ([`Frames::adopt`]).
/// Dropped before that, its file is removed.
pub struct FrameFile {
    file: Option<tokio::fs::File>,
    /// `None` once handed over.
    path: Option<PathBuf>,
    len: u64,
}

impl FrameFile {
    /// Creates request `id`'s file in `dir`.
    pub async fn create(dir: &Path, id: RequestId) -> io::Result<FrameFile> {
        let path = part_path(dir, id);
        let file = tokio::fs::File::create(&path).await?;
        Ok(FrameFile {
            file: Some(file),
            path: Some(path),
            len: 0,
        })
    }

    /// Appends `bytes` to the frame.
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        use tokio::io::AsyncWriteExt as _;
        let file = self.file.as_mut().ok_or(io::ErrorKind::BrokenPipe)?;
        file.write_all(bytes).await?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Writes out what is buffered and closes the file; from then on the file is the caller's
    /// to rename or remove. Returns the frame's length.
    pub async fn hand_over(mut self) -> io::Result<u64> {
        use tokio::io::AsyncWriteExt as _;
        if let Some(mut file) = self.file.take() {
            file.flush().await?;
        }
        self.path = None;
        Ok(self.len)
    }
}

impl Drop for FrameFile {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}
