//! What a developer's idempotency code must handle, flagged as it happens: the same event
//! delivered again, an event older than one already seen for the same object, and an app slower
//! than the provider's delivery timeout (so the provider would retry).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::exchange::{Provider, Recognized};

/// Events remembered for duplicate and ordering checks.
const MEMORY: usize = 50_000;

/// Flags for one exchange.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// The capture that first carried this event id.
    pub duplicate_of: Option<u64>,
    /// A capture of an event about the same object that happened later than this one.
    pub out_of_order_after: Option<u64>,
    /// The provider's delivery timeout, when the app took longer.
    pub slower_than: Option<Duration>,
}

/// Events seen in this session.
#[derive(Debug, Default)]
pub struct History {
    first: HashMap<(Provider, String), u64>,
    /// Per object, the latest event time seen and the capture that carried it.
    latest: HashMap<(Provider, String), (i64, u64)>,
    order: VecDeque<(Provider, String)>,
}

impl History {
    /// Checks exchange `id` (event `event`, app time `took`) against what came before, and
    /// remembers it.
    pub fn check(&mut self, id: u64, event: Option<&Recognized>, took: Duration) -> Flags {
        let Some(event) = event else {
            return Flags::default();
        };
        let mut flags = Flags {
            slower_than: event
                .provider
                .delivery_timeout()
                .filter(|limit| took > *limit),
            ..Flags::default()
        };
        if let Some(event_id) = &event.event_id {
            let key = (event.provider, event_id.clone());
            match self.first.get(&key) {
                Some(first) => flags.duplicate_of = Some(*first),
                None => {
                    self.first.insert(key.clone(), id);
                    self.order.push_back(key);
                    self.forget_oldest();
                }
            }
        }
        if flags.duplicate_of.is_none() {
            if let (Some(object), Some(at)) = (&event.object_id, event.occurred_at) {
                let key = (event.provider, object.clone());
                match self.latest.get(&key) {
                    Some(&(latest, by)) if latest > at => flags.out_of_order_after = Some(by),
                    _ => {
                        self.latest.insert(key, (at, id));
                    }
                }
            }
        }
        flags
    }

    fn forget_oldest(&mut self) {
        while self.order.len() > MEMORY {
            if let Some(old) = self.order.pop_front() {
                self.first.remove(&old);
            }
        }
        if self.latest.len() > MEMORY {
            self.latest.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, object: &str, at: i64) -> Recognized {
        Recognized {
            provider: Provider::Stripe,
            event_type: Some("customer.subscription.updated".into()),
            event_id: Some(id.into()),
            occurred_at: Some(at),
            object_id: Some(object.into()),
        }
    }

    #[test]
    fn duplicates_and_out_of_order_events_are_flagged() {
        let mut history = History::default();
        let fast = Duration::from_millis(5);
        assert_eq!(
            history.check(1, Some(&event("evt_a", "sub_1", 200)), fast),
            Flags::default()
        );
        let again = history.check(2, Some(&event("evt_a", "sub_1", 200)), fast);
        assert_eq!(again.duplicate_of, Some(1));
        let older = history.check(3, Some(&event("evt_b", "sub_1", 100)), fast);
        assert_eq!(older.out_of_order_after, Some(1));
        let newer = history.check(4, Some(&event("evt_c", "sub_1", 300)), fast);
        assert_eq!(newer, Flags::default());
    }

    #[test]
    fn slow_handlers_are_flagged_per_provider() {
        let mut history = History::default();
        let flags = history.check(1, Some(&event("evt_a", "o", 1)), Duration::from_secs(21));
        assert_eq!(flags.slower_than, Some(Duration::from_secs(20)));
        assert_eq!(
            Provider::Shopify.delivery_timeout(),
            Some(Duration::from_secs(5))
        );
        assert_eq!(Provider::Mailgun.delivery_timeout(), None);
    }
}
