//! A CLI session attached to a channel on this node of the cluster: its lease, and the pull
//! consumer that reads the channel's requests in order.
//!
//! At every attach the channel's consumer is made afresh (the one before deleted, whichever node
//! made it): the stream holds exactly the requests no CLI acknowledged (work-queue retention), so
//! a new consumer delivers all of them, in order, at once, rather than after an ack wait. What
//! the old consumer had sent (and the record's `delivered`) tells which are redeliveries.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, Consumer, DeliverPolicy};
use async_nats::jetstream::stream::ConsumerErrorKind;
use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::layout::epoch_of;
use super::records::{Lease, LEASE_RENEW};
use super::replies::{encode_reply, unpack, Unpacked, REPLY_HEADER};
use super::{subject, Held, Shared, STREAM};
use crate::backend::{Claim, Subscription, STORE_TIMEOUT};
use crate::channel::{may_claim, Attached, Reply};
use crate::protocol::RequestId;
use crate::queue::now_ms;

/// How long a request sent to a session may go unacknowledged before JetStream sends it again:
/// long, since the session's own acknowledgement (or its end, and a fresh consumer at the next
/// attach) is what moves a request on. An app may take this long at most before the same session
/// is sent the request a second time (its CLI drops the repeat).
const ACK_WAIT: Duration = Duration::from_secs(3600);

/// How long a channel's consumer outlives its last session when no node deletes it (its node
/// died and no session came back): the server then cleans it up.
const INACTIVE: Duration = Duration::from_secs(3600);

/// Most bytes of requests one pull asks for: a few messages of up to 1 MiB each.
const PULL_BYTES: usize = 4 * 1024 * 1024;

/// A session attached on this node; see the module's documentation.
pub(crate) struct NatsSubscription {
    shared: Arc<Shared>,
    name: String,
    lease: Lease,
    consumer: Consumer<pull::Config>,
    attached: Arc<Attached>,
    /// Requests sent to the session and not acknowledged.
    in_flight: Mutex<HashMap<RequestId, InFlight>>,
    /// Requests at or below this were sent to an earlier session: sent again, they say so.
    delivered_before: u64,
    /// The last request sent to this session.
    sent_up_to: AtomicU64,
    /// Requests waiting when the session attached.
    queued: usize,
    /// Requests waiting, as the stream last said (the metrics page's queue depth).
    pending: Arc<AtomicU64>,
    /// Acknowledgements under way.
    acks: TaskTracker,
    /// The epoch it attached under: the session ends when the node takes another.
    epoch: u64,
}

/// A request sent to the session: how to acknowledge it, and its message's headers (where its
/// sender waits, which object holds its body).
struct InFlight {
    ack: Option<async_nats::Subject>,
    headers: HeaderMap,
}

impl NatsSubscription {
    /// Takes channel `claim.name`'s lease for this node, claims its record, and makes its
    /// consumer; `Err` is the sentence refusing the session.
    pub(super) async fn attach(
        shared: Arc<Shared>,
        claim: Claim<'_>,
    ) -> Result<NatsSubscription, String> {
        let name = claim.name;
        // A token that may not have the channel is refused before the lease is touched.
        if let Some(licence) = claim.licence {
            if let Some((record, _)) = shared.records.get(name).await? {
                may_claim(name, record.owner.as_deref(), false, licence)?;
            }
        }
        let lease = shared.leases.take(name, &shared.node).await?;
        match Self::claimed(&shared, &claim).await {
            Ok((consumer, delivered_before, queued, epoch)) => {
                let attached = Arc::new(Attached::new(
                    claim.outbox_bytes,
                    claim.max_in_flight,
                    false,
                ));
                let pending = Arc::new(AtomicU64::new(queued as u64));
                let held = Held {
                    settings: claim.settings,
                    attached: Arc::clone(&attached),
                    pending: Arc::clone(&pending),
                };
                shared.lock_sessions().insert(name.to_owned(), held);
                Ok(NatsSubscription {
                    shared,
                    name: name.to_owned(),
                    lease,
                    consumer,
                    attached,
                    in_flight: Mutex::new(HashMap::new()),
                    delivered_before,
                    sent_up_to: AtomicU64::new(0),
                    queued,
                    pending,
                    acks: TaskTracker::new(),
                    epoch,
                })
            }
            Err(message) => {
                lease.release().await;
                Err(message)
            }
        }
    }

    /// With the lease held: claims the record, replaces the channel's consumer. Returns the
    /// consumer, the last request an earlier session was sent, how many wait, and the epoch of
    /// the stream the consumer reads.
    async fn claimed(
        shared: &Shared,
        claim: &Claim<'_>,
    ) -> Result<(Consumer<pull::Config>, u64, usize, u64), String> {
        let name = claim.name;
        let before = shared
            .records
            .claim(name, claim.settings, claim.licence)
            .await?;
        let mut delivered_before = before.map_or(0, |record| record.delivered);
        let unreachable = |e: &dyn std::fmt::Display| {
            format!("the relay cannot reach its cluster's store: {e}; retry later")
        };
        match shared.stream.consumer_info(name).await {
            Ok(info) => {
                delivered_before = delivered_before.max(info.delivered.stream_sequence);
                match shared.stream.delete_consumer(name).await {
                    Ok(_) => {}
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(unreachable(&e)),
                }
            }
            Err(e) if e.to_string().contains("consumer not found") => {}
            Err(e) => return Err(unreachable(&e)),
        }
        let config = pull::Config {
            durable_name: Some(name.to_owned()),
            filter_subject: subject(name),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            max_ack_pending: i64::try_from(claim.max_in_flight).unwrap_or(i64::MAX),
            inactive_threshold: INACTIVE,
            ..Default::default()
        };
        let mut consumer = shared
            .stream
            .create_consumer(config)
            .await
            .map_err(|e| unreachable(&e))?;
        let queued = match consumer.info().await {
            Ok(info) => info.num_pending as usize,
            Err(_) => 0,
        };
        // The stream may have been made again by another node since this one last looked: its
        // ids start again under a new epoch, which the session's hello must say.
        let stream = shared
            .js
            .get_stream(STREAM)
            .await
            .map_err(|e| unreachable(&e))?;
        let epoch = epoch_of(stream.cached_info().created.unix_timestamp_nanos());
        shared.health.take_epoch(epoch);
        Ok((consumer, delivered_before, queued, epoch))
    }

    /// Renews the lease until it is lost.
    async fn keep_lease(&self) {
        let mut tick = tokio::time::interval(LEASE_RENEW);
        tick.tick().await;
        loop {
            tick.tick().await;
            if !self.lease.renew().await {
                return;
            }
        }
    }

    /// Sends the consumer's requests to the session until either fails.
    async fn pull(&self) {
        let messages = self
            .consumer
            .stream()
            .max_messages_per_batch(64)
            .max_bytes_per_batch(PULL_BYTES)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await;
        let mut messages = match messages {
            Ok(messages) => messages,
            Err(e) => {
                warn!(channel = %self.name, error = %e, "could not read the channel's requests; ending session");
                return;
            }
        };
        while let Some(next) = messages.next().await {
            let sent = match next {
                Ok(message) => Box::pin(self.send_one(message)).await,
                Err(e) => {
                    warn!(channel = %self.name, error = %e, "lost the channel's requests; ending session");
                    false
                }
            };
            if !sent {
                return;
            }
        }
    }

    /// Sends one request to the session once its window has room; `false` ends the session.
    async fn send_one(&self, message: async_nats::jetstream::Message) -> bool {
        let (seq, delivered, pending) = match message.info() {
            Ok(info) => (info.stream_sequence, info.delivered, info.pending),
            Err(e) => {
                warn!(error = %e, "a request without its delivery facts; ending session");
                return false;
            }
        };
        self.pending.store(pending + 1, Ordering::Relaxed);
        let id = RequestId(seq);
        if !self.attached.reserve(id).await {
            return false;
        }
        let headers = message.headers.clone().unwrap_or_default();
        let in_flight = InFlight {
            ack: message.reply.clone(),
            headers,
        };
        let frame = match unpack(
            &self.shared.bodies.store,
            &in_flight.headers,
            message.payload.clone(),
        )
        .await
        {
            Ok(frame) => frame,
            Err(Unpacked::Failed(e)) => {
                warn!(%id, error = %e, "could not read a request's body; ending session");
                self.attached.release(id);
                return false;
            }
            // Expired meanwhile: no longer pending.
            Err(Unpacked::Gone) => return self.drop_one(id, in_flight),
        };
        let redelivered = delivered > 1 || seq <= self.delivered_before;
        let Some(frame) = crate::protocol::with_id(&frame, id, redelivered) else {
            warn!(%id, "a message in the requests' stream is no request; dropping it");
            return self.drop_one(id, in_flight);
        };
        let frame = match self.shared.budget.try_charge(frame.len()) {
            Some(charge) => charge.attach(frame),
            None => self.shared.budget.charge(frame.len()).await.attach(frame),
        };
        // In flight before the frame leaves, so an early acknowledgement finds it.
        self.lock().insert(id, in_flight);
        self.sent_up_to.fetch_max(seq, Ordering::Relaxed);
        self.attached.outbox.send(frame).await;
        true
    }

    /// Acknowledges a request that cannot be delivered, so it does not come back.
    fn drop_one(&self, id: RequestId, in_flight: InFlight) -> bool {
        self.attached.release(id);
        self.settle(in_flight);
        true
    }

    /// Acknowledges a request to JetStream (which deletes it) and deletes its body's object, in
    /// the background. The acknowledgement waits for the server's confirmation, so that
    /// [`Subscription::detach`] can wait for those under way before it deletes the consumer,
    /// which would drop them.
    fn settle(&self, in_flight: InFlight) {
        let shared = Arc::clone(&self.shared);
        self.acks.spawn(async move {
            if let Some(ack) = in_flight.ack {
                let confirmed = shared.client.request(ack, Bytes::from_static(b"+ACK"));
                match tokio::time::timeout(STORE_TIMEOUT, confirmed).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        debug!(error = %e, "could not acknowledge a request; it will be delivered again")
                    }
                    Err(_) => debug!("no confirmation of an acknowledgement; its request may be delivered again"),
                }
            }
            shared.bodies.discard(&in_flight.headers).await;
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RequestId, InFlight>> {
        self.in_flight
            .lock()
            .expect("in-flight lock is never poisoned")
    }
}

/// Whether a consumer operation failed because the consumer does not exist.
fn is_not_found(e: &async_nats::jetstream::stream::ConsumerError) -> bool {
    matches!(e.kind(), ConsumerErrorKind::JetStream(error) if error.code() == 404)
}

impl Subscription for NatsSubscription {
    fn attached(&self) -> &Arc<Attached> {
        &self.attached
    }

    fn queued(&self) -> usize {
        self.queued
    }

    async fn deliver(&self) {
        tokio::select! {
            () = self.keep_lease() => {}
            () = self.pull() => {}
            // Its consumer and lease went with the old stream; its CLI must learn the new epoch.
            () = self.shared.health.epoch_changed(self.epoch) => {}
        }
    }

    fn ack(&self, id: RequestId) {
        self.attached.release(id);
        let in_flight = self.lock().remove(&id);
        if let Some(in_flight) = in_flight {
            self.settle(in_flight);
        }
    }

    fn reply(&self, id: RequestId, reply: Reply) {
        let to = self.lock().get(&id).and_then(|in_flight| {
            let to = in_flight.headers.get(REPLY_HEADER)?;
            Some(to.to_string())
        });
        let Some(to) = to else {
            return;
        };
        let Some(reply) = self.shared.replies.complete_here(&to, reply) else {
            return;
        };
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            let mut headers = HeaderMap::new();
            let payload = match shared
                .bodies
                .pack(encode_reply(id, reply), &mut headers)
                .await
            {
                Ok(payload) => payload,
                Err(e) => {
                    warn!(%id, error = %e, "could not pass the app's reply on; its sender times out");
                    return;
                }
            };
            if let Err(e) = shared
                .client
                .publish_with_headers(to, headers, payload)
                .await
            {
                warn!(%id, error = %e, "could not pass the app's reply on; its sender times out");
            }
        });
    }

    async fn detach(self) {
        self.attached.close();
        self.acks.close();
        if tokio::time::timeout(STORE_TIMEOUT, self.acks.wait())
            .await
            .is_err()
        {
            debug!(channel = %self.name, "acknowledgements still under way at the end of a session");
        }
        // Only while the lease is ours: a node that lost it must not touch what the session
        // that holds the channel now has made.
        if self.lease.renew().await {
            if let Err(e) = self.shared.stream.delete_consumer(&self.name).await {
                if !is_not_found(&e) {
                    warn!(channel = %self.name, error = %e, "could not delete the channel's consumer; the next session replaces it");
                }
            }
            let sent = self.sent_up_to.load(Ordering::Relaxed);
            if let Err(e) = self.shared.records.left(&self.name, now_ms(), sent).await {
                warn!(channel = %self.name, error = %e, "could not record that the channel was left");
            }
            self.lease.release().await;
        }
        // Last: once this node's gauge says the session is gone, so does the lease.
        let mut sessions = self.shared.lock_sessions();
        let ours = sessions
            .get(&self.name)
            .is_some_and(|held| Arc::ptr_eq(&held.attached, &self.attached));
        if ours {
            sessions.remove(&self.name);
        }
    }
}
