//! Deliveries: what tells one request from the relay from every other, across sessions and
//! restarts of either side, and what this process remembers having handled, so that a request
//! the relay sends again reaches the app once.
//!
//! A relay's request ids are unique within its queue's epoch (see the relay's `ids` module), so
//! a delivery is (relay URL, epoch, id). One `hooks listen` talks to one relay URL, so what it
//! remembers in memory is keyed on (epoch, id); the capture store, which outlives it, keys on
//! the channel's URL too.

use std::collections::{HashMap, VecDeque};

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
    done: HashMap<Delivery, bool>,
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

    #[test]
    fn a_forgotten_request_is_new_again() {
        let mut handled = Handled::default();
        assert_eq!(handled.start(delivery(1, 1)), Seen::New);
        handled.forget(delivery(1, 1));
        assert_eq!(handled.start(delivery(1, 1)), Seen::New);
    }
}
