//! The relay's memory budget (`--max-memory`): the bytes of webhook requests it holds in memory,
//! relay-wide, whoever holds them.
//!
//! A [`Charge`] is taken before memory is: while a body is read, for what is read so far (or for
//! its declared length), and a frame built from it carries its charge along
//! ([`Charge::attach`]), so the bytes stay counted for as long as any clone of the frame lives:
//! in the in-memory queue, a channel's hot frames, a session's outbox, or the writer sending it.
//! When a charge cannot be taken the caller refuses the webhook (`503`) instead of growing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Notify;

/// The bytes counted and their limit.
pub(crate) struct Budget {
    used: AtomicUsize,
    limit: usize,
    /// Tasks waiting in [`Budget::charge`]; 0 spares every release a
    /// notification.
    waiting: AtomicUsize,
    released: Notify,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            used: AtomicUsize::new(0),
            limit,
            waiting: AtomicUsize::new(0),
            released: Notify::new(),
        })
    }

    /// Bytes counted now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The most bytes that may be counted at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Counts `bytes` if they fit; `None` if not.
    pub fn try_charge(self: &Arc<Self>, bytes: usize) -> Option<Charge> {
        self.take(bytes).then(|| Charge {
            budget: Arc::clone(self),
            bytes,
        })
    }

    fn take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|&after| after <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
        if bytes > 0 && self.waiting.load(Ordering::Acquire) > 0 {
            self.released.notify_waiters();
        }
    }

    /// Counts `bytes`, waiting for them to fit. An empty budget takes any amount, so a frame
    /// larger than the whole budget waits for the rest to be given back rather than forever.
    pub async fn charge(self: &Arc<Self>, bytes: usize) -> Charge {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            // Registered before the look below, so a release in between is not missed.
            released.as_mut().enable();
            self.waiting.fetch_add(1, Ordering::AcqRel);
            let _waiting = Waiting(&self.waiting);
            let fits = self
                .used
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                    let after = used.checked_add(bytes)?;
                    (after <= self.limit || used == 0).then_some(after)
                });
            if fits.is_ok() {
                return Charge {
                    budget: Arc::clone(self),
                    bytes,
                };
            }
            released.await;
        }
    }
}

/// Takes a waiter off the count however its wait ends.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Bytes counted against the [`Budget`]; given back when dropped.
pub(crate) struct Charge {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Charge {
    /// Bytes this charge counts.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Counts as many more bytes as fit, up to `at_most`, if at least `at_least` do; the bytes
    /// added, or `None`.
    pub fn try_grow_between(&mut self, at_least: usize, at_most: usize) -> Option<usize> {
        let limit = self.budget.limit;
        let before = self
            .budget
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                let room = limit.saturating_sub(used);
                (room >= at_least).then(|| used + room.min(at_most))
            })
            .ok()?;
        let added = limit.saturating_sub(before).min(at_most);
        self.bytes += added;
        Some(added)
    }

    /// Counts exactly `bytes`, even past the limit: for an allocation that has already happened
    /// and was a little larger than asked for.
    pub fn set(&mut self, bytes: usize) {
        if bytes > self.bytes {
            self.budget
                .used
                .fetch_add(bytes - self.bytes, Ordering::Relaxed);
        } else {
            self.budget.give_back(self.bytes - bytes);
        }
        self.bytes = bytes;
    }

    /// `frame`, carrying this charge: it is given back once the last clone of the returned
    /// bytes (or of a slice of them) is dropped.
    pub fn attach(self, frame: Bytes) -> Bytes {
        Bytes::from_owner(Charged {
            frame,
            _charge: self,
        })
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

/// A frame and the charge for its memory.
struct Charged {
    frame: Bytes,
    _charge: Charge,
}

impl AsRef<[u8]> for Charged {
    fn as_ref(&self) -> &[u8] {
        &self.frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_fit_the_limit_and_are_given_back_with_the_last_clone_of_their_frame() {
        let budget = Budget::new(100);
        let mut first = budget.try_charge(60).unwrap();
        assert!(budget.try_charge(41).is_none(), "over the limit");
        assert_eq!(first.try_grow_between(41, 41), None);
        assert_eq!(first.try_grow_between(40, 40), Some(40));
        assert_eq!(budget.used(), 100);
        first.set(50);
        assert_eq!(budget.used(), 50);
        assert_eq!(first.try_grow_between(60, 70), None, "only 50 left");
        assert_eq!(first.try_grow_between(10, 20), Some(20));
        assert_eq!(first.try_grow_between(10, 40), Some(30), "all that is left");
        assert_eq!(budget.used(), 100);
        first.set(50);
        let frame = first.attach(Bytes::from_static(b"frame"));
        let slice = frame.slice(1..3);
        drop(frame);
        assert_eq!(budget.used(), 50, "a slice keeps the frame's charge");
        assert_eq!(slice, "ra");
        drop(slice);
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn a_waiting_charge_is_taken_once_bytes_are_given_back() {
        let budget = Budget::new(10);
        let charge = budget.try_charge(6).unwrap();
        let waiter = tokio::spawn({
            let budget = Arc::clone(&budget);
            // Larger than the whole budget: it waits until the budget is empty.
            async move { budget.charge(12).await.bytes() }
        });
        while budget.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(!waiter.is_finished());
        drop(charge);
        assert_eq!(waiter.await.unwrap(), 12);
        assert_eq!(budget.used(), 0);
    }
}
