//! Every known channel, by name: restored from the queue at start-up, claimed and left by
//! sessions, forgotten once idle past the retention.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tracing::warn;

use super::{Attached, Channel, Settings};
use crate::protocol::RequestId;
use crate::queue::{now_ms, Queue, QueueError, Snapshot};
use crate::tokens::Licence;

/// The channels' gauges (see [`Channels::stats`]).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub channels: usize,
    pub attached: usize,
    pub queued: usize,
    pub outbox_bytes: usize,
}

/// Every known channel.
pub(crate) struct Channels {
    map: Mutex<HashMap<String, Arc<Channel>>>,
}

impl Channels {
    /// The channels remembered in `snapshot`, with their pending requests.
    pub fn restore(snapshot: &Snapshot, defaults: Settings) -> Self {
        let mut map = HashMap::new();
        for record in &snapshot.channels {
            let settings = serde_json::from_str(&record.settings).unwrap_or_else(|e| {
                warn!(channel = %record.name, error = %e, "unreadable channel settings; using defaults");
                defaults
            });
            let channel = Channel::new(record.name.clone(), settings, record.owner.clone());
            if let Some(at) = record.detached_at {
                channel.left_at(at);
            }
            map.insert(record.name.clone(), Arc::new(channel));
        }
        for (name, id) in &snapshot.pending {
            let channel = map
                .entry(name.clone())
                .or_insert_with(|| Arc::new(Channel::new(name.clone(), defaults, None)));
            channel.pending_at_start(*id);
        }
        Channels {
            map: Mutex::new(map),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Channel>>> {
        self.map.lock().expect("channel map lock is never poisoned")
    }

    /// The channel named `name`, if a CLI ever claimed it.
    pub fn get(&self, name: &str) -> Option<Arc<Channel>> {
        self.lock().get(name).cloned()
    }

    /// Attaches `session` to `name` with `settings`, creating and remembering the channel.
    /// On a relay with tokens (`licence` is the session's), the first token to claim a new
    /// name owns it, and the tokens file may give a name to a token; a channel claimed while
    /// the relay was open belongs to no token until the file gives it to one. Fails with a
    /// sentence for the user when another token owns the channel, another session holds it, or
    /// the queue fails.
    pub async fn attach(
        &self,
        queue: &Queue,
        name: &str,
        settings: Settings,
        licence: Option<&Licence<'_>>,
        session: &Arc<Attached>,
    ) -> Result<Arc<Channel>, String> {
        let channel = {
            let mut map = self.lock();
            let created = !map.contains_key(name);
            let channel = map
                .entry(name.to_owned())
                .or_insert_with(|| Arc::new(Channel::new(name.to_owned(), settings, None)));
            channel.attach(session, settings, licence, created)?;
            Arc::clone(channel)
        };
        if let Err(e) = queue.save_channel(channel.record()).await {
            channel.detach(session);
            return Err(format!("the relay could not record the channel: {e}"));
        }
        // Deliver whatever waited while no session was attached.
        channel.wake.notify_one();
        Ok(channel)
    }

    /// Detaches `session` from `channel` and records when the channel was left, from which
    /// its retention counts.
    pub async fn leave(&self, queue: &Queue, channel: &Channel, session: &Arc<Attached>) {
        if let Some(at) = channel.detach(session) {
            if let Err(e) = queue.channel_left(&channel.name, at).await {
                warn!(channel = %channel.name, error = %e, "could not record that the channel was left");
            }
        }
    }

    /// Forgets the channels no session has been attached to for `retention`, with what they
    /// still queue (its owner may claim the name again, or another token may). Returns how many
    /// requests went with them, by channel; `Err` when the queue could not delete them (they
    /// are forgotten here all the same, and go on the next start).
    pub async fn forget_idle(
        &self,
        queue: &Queue,
        retention: Duration,
    ) -> Result<Vec<(String, usize)>, QueueError> {
        let cutoff =
            now_ms().saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
        let idle: Vec<(String, RequestId, usize)> = {
            let mut map = self.lock();
            let mut idle = Vec::new();
            map.retain(|name, channel| match channel.idle_since(cutoff) {
                Some((last, queued)) => {
                    idle.push((name.clone(), last, queued));
                    false
                }
                None => true,
            });
            idle
        };
        if idle.is_empty() {
            return Ok(Vec::new());
        }
        let names = idle
            .iter()
            .map(|(name, last, _)| (name.clone(), *last))
            .collect();
        queue.forget_channels(names, cutoff).await?;
        Ok(idle
            .into_iter()
            .map(|(name, _, queued)| (name, queued))
            .collect())
    }

    /// The channels that belong to no token (claimed while the relay was open), and how many
    /// requests wait in them.
    pub fn ownerless(&self) -> (Vec<String>, usize) {
        let map = self.lock();
        let mut names = Vec::new();
        let mut queued = 0;
        for channel in map.values() {
            if let Some(pending) = channel.ownerless() {
                names.push(channel.name.clone());
                queued += pending;
            }
        }
        names.sort();
        (names, queued)
    }

    /// Channels known, sessions attached, requests queued and bytes in sessions' outboxes: the
    /// gauges of the metrics page.
    pub fn stats(&self) -> Stats {
        let map = self.lock();
        let mut stats = Stats {
            channels: map.len(),
            ..Stats::default()
        };
        for channel in map.values() {
            let (outbox, queued) = channel.gauges();
            if let Some(bytes) = outbox {
                stats.attached += 1;
                stats.outbox_bytes += bytes;
            }
            stats.queued += queued;
        }
        stats
    }

    /// Forgets expired requests.
    pub fn expired(&self, gone: &[(String, RequestId)]) {
        let map = self.lock();
        for (name, id) in gone {
            if let Some(channel) = map.get(name) {
                channel.forget(*id);
            }
        }
    }
}
