//! Deliveries: what tells one request from the relay from every other, across sessions and
//! restarts of either side, and what this process remembers having handled, so that a request
//! the relay sends again reaches the app once.
//!
//! A relay's request ids are unique within its queue's epoch (see the relay's `ids` module), so
//! a delivery is (relay URL, epoch, id). One `hooks listen` talks to one relay URL, so what it
//! remembers in memory is keyed on (epoch, id); the capture store, which outlives it, keys on
//! the channel's URL too.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use relay_server::protocol::RequestId;

/// One request from the relay: the epoch of the relay's queue and the id within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Delivery {
    /// The relay queue's epoch, from its hello (`0` for a relay that sends none).
    pub epoch: u64,
    /// The request id within that epoch.
    pub id: RequestId,
}

/// Most deliveries remembered for dropping redeliveries.
const HANDLED_MEMORY: usize = 100_000;

/// What this process knows about a delivery.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// Never seen: forward it.
    New,
    /// At the app now; its handler answers and acknowledges it.
    InProgress,
    /// Handled: acknowledge it again, don't forward it again.
    Done,
}

/// The deliveries this process has handled, so a redelivered request reaches the app only once.
#[derive(Default)]
pub struct Handled {
    done: IdMap<Delivery, bool>,
    order: VecDeque<Delivery>,
}

impl Handled {
    /// Records that `delivery` arrived and says whether it was seen before.
    pub fn start(&mut self, delivery: Delivery) -> Seen {
        match self.done.get(&delivery) {
            Some(true) => return Seen::Done,
            Some(false) => return Seen::InProgress,
            None => {}
        }
        self.done.insert(delivery, false);
        self.order.push_back(delivery);
        while self.order.len() > HANDLED_MEMORY {
            if let Some(old) = self.order.pop_front() {
                self.done.remove(&old);
            }
        }
        Seen::New
    }

    /// Records that `delivery` was handled.
    pub fn finish(&mut self, delivery: Delivery) {
        if let Some(done) = self.done.get_mut(&delivery) {
            *done = true;
        }
    }

    /// Forgets `delivery`, which was not handled after all: when it comes again it is new. (Its
    /// place in `order` stays, and ends the newer entry's memory a little early.)
    pub fn forget(&mut self, delivery: Delivery) {
        self.done.remove(&delivery);
    }
}

/// A map keyed on request ids (and deliveries: an epoch and an id), hashed with [`IdHasher`].
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// A hasher for keys made of a few integers: the relay's ids and epochs. SipHash, the
/// standard map's default, guards against keys chosen to collide, which these are not (the
/// relay numbers its requests); it cost the CLI about 5,000 instructions per webhook (issue
/// 24's profile). This is FxHash's step: a rotate, an xor and a multiply per integer.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(K);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(epoch: u64, id: u64) -> Delivery {
        Delivery {
            epoch,
            id: RequestId(id),
        }
    }

    #[test]
    fn redeliveries_are_recognised() {
        let mut handled = Handled::default();
        assert_eq!(handled.start(delivery(1, 1)), Seen::New);
        assert_eq!(handled.start(delivery(1, 1)), Seen::InProgress);
        handled.finish(delivery(1, 1));
        assert_eq!(handled.start(delivery(1, 1)), Seen::Done);
        assert_eq!(handled.start(delivery(1, 2)), Seen::New);
    }

    #[test]
    fn the_same_id_in_another_epoch_is_another_request() {
        let mut handled = Handled::default();
        assert_eq!(handled.start(delivery(1, 1)), Seen::New);
        handled.finish(delivery(1, 1));
        assert_eq!(handled.start(delivery(2, 1)), Seen::New);
    }

    /// Deliveries that differ in the epoch or the id alone hash apart (a map of them would
    /// still be right if they did not, only slower).
    #[test]
    fn id_hashes_tell_epochs_and_ids_apart() {
        use std::hash::BuildHasher as _;
        let hash = |d: Delivery| BuildHasherDefault::<IdHasher>::default().hash_one(d);
        let mut seen = std::collections::HashSet::new();
        for epoch in 0..50 {
            for id in 0..200 {
                assert!(seen.insert(hash(delivery(epoch, id))), "{epoch} {id}");
            }
        }
    }

    #[test]
    fn a_forgotten_request_is_new_again() {
        let mut handled = Handled::default();
        assert_eq!(handled.start(delivery(1, 1)), Seen::New);
        handled.forget(delivery(1, 1));
        assert_eq!(handled.start(delivery(1, 1)), Seen::New);
    }
}
