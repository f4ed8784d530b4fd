//! A session's outbox: the request frames waiting for its writer, bounded in bytes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::{Notify, Semaphore};

/// Frames waiting for a session's writer, and those the writer is sending, at most a number of
/// bytes: a frame goes in only while the bytes there leave room for it, or, when it is larger
/// than the whole outbox, once the outbox is empty. So a session holds at most its capacity, or
/// one frame when that frame is larger, and a slow or stalled CLI slows its own delivery rather
/// than growing the relay's memory. A plain queue rather than a Tokio channel, which allocates
/// room for 32 messages with every session, and most sessions sit idle.
pub(crate) struct Outbox {
    frames: Mutex<VecDeque<Bytes>>,
    /// Room in bytes, one permit each (fair: a large frame waiting for room is not overtaken).
    room: Semaphore,
    capacity: usize,
    /// Bytes of the frames queued, and of those the writer took and has not written yet.
    held: AtomicUsize,
    ready: Notify,
}

/// Frames the writer took from an [`Outbox`] and has not written yet.
#[derive(Default)]
pub(crate) struct Taken {
    bytes: usize,
    room: usize,
}

impl Outbox {
    /// An empty outbox with room for `capacity` bytes of frames.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, u32::MAX as usize);
        Outbox {
            frames: Mutex::new(VecDeque::new()),
            room: Semaphore::new(capacity),
            capacity,
            held: AtomicUsize::new(0),
            ready: Notify::new(),
        }
    }

    /// The room a frame of `len` bytes takes: all of it when it is larger.
    fn room_for(&self, len: usize) -> u32 {
        u32::try_from(len.min(self.capacity)).expect("the capacity fits in u32")
    }

    fn push(&self, frame: Bytes) {
        self.held.fetch_add(frame.len(), Ordering::Relaxed);
        self.frames
            .lock()
            .expect("outbox lock is never poisoned")
            .push_back(frame);
        self.ready.notify_one();
    }

    /// Queues `frame` if there is room; `false` if not.
    pub fn try_send(&self, frame: Bytes) -> bool {
        match self.room.try_acquire_many(self.room_for(frame.len())) {
            Ok(permit) => {
                permit.forget();
                self.push(frame);
                true
            }
            Err(_) => false,
        }
    }

    /// Queues `frame`, waiting for room.
    pub async fn send(&self, frame: Bytes) {
        if let Ok(permit) = self.room.acquire_many(self.room_for(frame.len())).await {
            permit.forget();
            self.push(frame);
        }
    }

    /// Waits until the outbox has some room, behind the frames already waiting for it.
    pub async fn has_room(&self) {
        let _ = self.room.acquire().await;
    }

    /// Bytes held: queued, or taken by the writer and not yet written.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// The oldest waiting frame, if any, which counts in [`Outbox::held`] until `taken` is
    /// given to [`Outbox::written`].
    pub fn try_recv(&self, taken: &mut Taken) -> Option<Bytes> {
        let frame = self
            .frames
            .lock()
            .expect("outbox lock is never poisoned")
            .pop_front()?;
        taken.bytes += frame.len();
        taken.room += self.room_for(frame.len()) as usize;
        Some(frame)
    }

    /// Waits for the oldest frame (see [`Outbox::try_recv`]).
    pub async fn recv(&self, taken: &mut Taken) -> Bytes {
        loop {
            // A frame pushed after the look below is not missed: with no task waiting,
            // `notify_one` stores a permit that this `notified()` then takes.
            let ready = self.ready.notified();
            if let Some(frame) = self.try_recv(taken) {
                return frame;
            }
            ready.await;
        }
    }

    /// The writer has written what it took: its room is given back.
    pub fn written(&self, taken: Taken) {
        self.held.fetch_sub(taken.bytes, Ordering::Relaxed);
        self.room.add_permits(taken.room);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn the_outbox_keeps_order_bounds_its_bytes_and_wakes_its_reader() {
        let outbox = Arc::new(Outbox::new(4));
        let mut taken = Taken::default();
        assert!(outbox.try_send(Bytes::from_static(b"1")));
        assert!(outbox.try_send(Bytes::from_static(b"22")));
        assert!(
            !outbox.try_send(Bytes::from_static(b"33")),
            "3 of 4 bytes held"
        );
        assert_eq!(outbox.held(), 3);
        // A frame larger than the outbox waits until it is empty, and is not overtaken.
        let large = tokio::spawn({
            let outbox = Arc::clone(&outbox);
            async move { outbox.send(Bytes::from_static(b"55555")).await }
        });
        tokio::task::yield_now().await;
        assert!(
            !outbox.try_send(Bytes::from_static(b"4")),
            "behind the large one"
        );
        assert_eq!(outbox.recv(&mut taken).await, "1");
        assert_eq!(outbox.try_recv(&mut taken).unwrap(), "22");
        assert_eq!(outbox.held(), 3, "taken and not yet written");
        assert!(!large.is_finished());
        outbox.written(std::mem::take(&mut taken));
        large.await.unwrap();
        assert_eq!(outbox.held(), 5);
        assert_eq!(outbox.recv(&mut taken).await, "55555");
        assert_eq!(outbox.try_recv(&mut taken), None);
        outbox.written(std::mem::take(&mut taken));
        assert_eq!(outbox.held(), 0);
        // A reader waiting on an empty outbox wakes for the next frame.
        let reader = tokio::spawn({
            let outbox = Arc::clone(&outbox);
            async move { outbox.recv(&mut Taken::default()).await }
        });
        tokio::task::yield_now().await;
        assert!(outbox.try_send(Bytes::from_static(b"4")));
        assert_eq!(reader.await.unwrap(), "4");
    }
}
