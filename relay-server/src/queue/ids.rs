//! Request ids: unique over a queue's lifetimes and across queues, so that a CLI that remembers
//! the requests it handled never takes a new one for one of them.
//!
//! - Across queues: every queue has an *epoch*, a random number made with it and kept in it (the
//!   queue in memory gets a fresh one per process). The relay sends it in its hello and a CLI
//!   keys what it remembers on (relay URL, epoch, id), so a relay that comes back on the same URL
//!   with an empty queue, whose ids start at 1 again, is a new epoch.
//! - Across one queue's lifetimes: ids are handed out to senders, and so to CLIs, before the
//!   insert that stores them is committed. So the largest id that may be handed out (the
//!   *reserve*) is committed first, [`ID_RESERVE`] ahead: at open, before the relay serves, and
//!   again by the store thread once half of it is used, ahead of time so the hot path does not
//!   wait. An id past the committed reserve waits for the commit; it is never handed out before.
//!   A restart skips the unused rest of the reserve.
//!
//! A cluster (issue 23) needs the same uniqueness across nodes: it is the queue's (its
//! `Backend`'s) property, not the HTTP layer's.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::Notify;

/// Ids committed as used ahead of those handed out: the reserve is written once per this many
/// requests rather than with every insert. A restart skips at most this many ids (plus the half
/// asked for ahead of time).
pub(crate) const ID_RESERVE: u64 = 4096;

/// A fresh epoch: 53 random bits, so that it is exact as a JSON number in any reader and fits
/// SQLite's signed integers; never 0, which stands for "a relay that sends none".
pub(crate) fn new_epoch() -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
    (u64::from_le_bytes(bytes) & ((1 << 53) - 1)).max(1)
}

/// Why an id could not be handed out: the reserve it needs could not be committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotReserved;

/// Asks the store thread to commit a larger reserve ([`Ids::wanted`], then [`Ids::committed`]
/// or [`Ids::failed`]); `false` when it cannot be asked (the queue is closed).
pub(crate) type Ask = Box<dyn Fn() -> bool + Send + Sync>;

/// The ids of one queue: its epoch, the next id, and the committed reserve.
pub(crate) struct Ids {
    epoch: u64,
    next: AtomicU64,
    /// The largest id that may be handed out: committed as used.
    reserved: AtomicU64,
    /// A larger reserve was asked for and is not settled yet.
    asked: AtomicBool,
    ask: Ask,
    /// Reserves that could not be committed, so far; a waiter that sees this grow gives up.
    failures: AtomicU64,
    /// Signalled when `reserved` or `failures` changes.
    changed: Notify,
}

impl Ids {
    /// Ids of `epoch` from `first` on, those up to `reserved` committed as used; `ask` asks for
    /// more.
    pub fn new(epoch: u64, first: u64, reserved: u64, ask: Ask) -> Ids {
        Ids {
            epoch,
            next: AtomicU64::new(first),
            reserved: AtomicU64::new(reserved),
            asked: AtomicBool::new(false),
            ask,
            failures: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    /// Ids that never run out and need no commit: the queue in memory's.
    pub fn unbounded(epoch: u64) -> Ids {
        Ids::new(epoch, 1, u64::MAX, Box::new(|| true))
    }

    /// The queue's epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The next id, once it is within the committed reserve.
    pub async fn next(&self) -> Result<u64, NotReserved> {
        // Read first: a failure after this one concerns this id.
        let failures = self.failures.load(Ordering::Acquire);
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if self.covered(id) {
            return Ok(id);
        }
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            // Looked at again once registered, so a commit in between is not missed; and a
            // commit that came too early for this id (its reserve was taken before the id was)
            // leaves `asked` clear, so this asks again.
            if self.covered(id) {
                return Ok(id);
            }
            if self.failures.load(Ordering::Acquire) > failures {
                return Err(NotReserved);
            }
            changed.await;
        }
    }

    /// Whether `id` is within the committed reserve; asks for more once the reserve's last
    /// half is reached, ahead of time, so the ids after it need not wait.
    fn covered(&self, id: u64) -> bool {
        let reserved = self.reserved.load(Ordering::Acquire);
        let low = reserved.saturating_sub(id) < ID_RESERVE / 2;
        if low && !self.asked.swap(true, Ordering::AcqRel) && !(self.ask)() {
            self.failed();
        }
        id <= reserved
    }

    /// For the store thread: the reserve to commit, [`ID_RESERVE`] past every id handed out.
    pub fn wanted(&self) -> u64 {
        let handed = self.next.load(Ordering::Acquire).saturating_sub(1);
        handed.saturating_add(ID_RESERVE)
    }

    /// For the store thread: `reserve` is committed.
    pub fn committed(&self, reserve: u64) {
        self.reserved.fetch_max(reserve, Ordering::AcqRel);
        self.asked.store(false, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// For the store thread: the reserve asked for could not be committed (or never will be:
    /// the queue is closing). Those waiting for it give up; the next id asks again.
    pub fn failed(&self) {
        self.failures.fetch_add(1, Ordering::AcqRel);
        self.asked.store(false, Ordering::Release);
        self.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn epochs_are_random_nonzero_and_exact_in_json() {
        let (a, b) = (new_epoch(), new_epoch());
        assert_ne!(a, b);
        for epoch in [a, b] {
            assert!(epoch > 0 && epoch < 1 << 53, "{epoch}");
        }
    }

    /// Ids whose asks are counted, and answered by the test.
    fn counted(first: u64, reserved: u64) -> (Arc<Ids>, Arc<AtomicU64>) {
        let asks = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&asks);
        let ask: Ask = Box::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            true
        });
        (Arc::new(Ids::new(7, first, reserved, ask)), asks)
    }

    #[tokio::test]
    async fn ids_past_the_reserve_wait_for_its_commit_and_more_is_asked_ahead_of_time() {
        let (ids, asks) = counted(1, ID_RESERVE);
        for want in 1..=ID_RESERVE {
            assert_eq!(ids.next().await.unwrap(), want);
        }
        assert_eq!(asks.load(Ordering::SeqCst), 1, "asked once, half-way");
        let waiting = tokio::spawn({
            let ids = Arc::clone(&ids);
            async move { ids.next().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "an id past the reserve waits");
        assert_eq!(ids.wanted(), 2 * ID_RESERVE + 1);
        ids.committed(ids.wanted());
        assert_eq!(waiting.await.unwrap(), Ok(ID_RESERVE + 1));
        assert_eq!(
            asks.load(Ordering::SeqCst),
            1,
            "the rest is far from the new reserve"
        );
    }

    #[tokio::test]
    async fn a_reserve_that_cannot_be_committed_fails_its_waiters_and_is_asked_again() {
        let (ids, asks) = counted(10, 9);
        let waiting = tokio::spawn({
            let ids = Arc::clone(&ids);
            async move { ids.next().await }
        });
        tokio::task::yield_now().await;
        assert_eq!(asks.load(Ordering::SeqCst), 1);
        ids.failed();
        assert_eq!(waiting.await.unwrap(), Err(NotReserved));
        let again = tokio::spawn({
            let ids = Arc::clone(&ids);
            async move { ids.next().await }
        });
        tokio::task::yield_now().await;
        assert_eq!(asks.load(Ordering::SeqCst), 2, "the next id asks again");
        ids.committed(ids.wanted());
        assert_eq!(again.await.unwrap(), Ok(11));
    }

    #[tokio::test]
    async fn the_memory_queues_ids_never_wait() {
        let ids = Ids::unbounded(3);
        assert_eq!(ids.epoch(), 3);
        assert_eq!(ids.next().await, Ok(1));
        assert_eq!(ids.next().await, Ok(2));
    }
}
