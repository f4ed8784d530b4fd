//! The queue in memory, for a relay without a data directory (the one `hooks listen` embeds,
//! which lives and dies with its CLI): nothing to survive, so no thread hop and no SQL per
//! webhook. A map from request id to its frame.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;

use super::now_ms;
use crate::protocol::RequestId;

/// The requests held, by id; cheap to clone.
#[derive(Clone, Default)]
pub(super) struct Memory(Arc<Mutex<HashMap<RequestId, Stored>>>);

/// A request held by the in-memory queue.
struct Stored {
    channel: String,
    received_at: i64,
    frame: Bytes,
}

impl Memory {
    fn map(&self) -> MutexGuard<'_, HashMap<RequestId, Stored>> {
        self.0.lock().expect("memory queue lock is never poisoned")
    }

    /// Holds request `id`'s frame.
    pub(super) fn insert(&self, id: RequestId, channel: String, frame: Bytes) {
        let stored = Stored {
            channel,
            received_at: now_ms(),
            frame,
        };
        self.map().insert(id, stored);
    }

    /// Request `id`'s frame, if it is held.
    pub(super) fn load(&self, id: RequestId) -> Option<Bytes> {
        self.map().get(&id).map(|s| s.frame.clone())
    }

    /// Forgets request `id`.
    pub(super) fn ack(&self, id: RequestId) {
        self.map().remove(&id);
    }

    /// Forgets each channel's requests up to the id given.
    pub(super) fn forget_channels(&self, channels: &[(String, RequestId)]) {
        let mut map = self.map();
        for (name, last) in channels {
            map.retain(|id, stored| !(stored.channel == *name && id <= last));
        }
    }

    /// Forgets the requests received `older_than` ago or earlier; returns them.
    pub(super) fn expire(&self, older_than: Duration) -> Vec<(String, RequestId)> {
        let cutoff = now_ms() - i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
        let mut map = self.map();
        let gone: Vec<(String, RequestId)> = map
            .iter()
            .filter(|(_, s)| s.received_at <= cutoff)
            .map(|(id, s)| (s.channel.clone(), *id))
            .collect();
        for (_, id) in &gone {
            map.remove(id);
        }
        gone
    }
}
