//! The single-node backend: the queue (SQLite in `--data-dir`, or memory) and the channels in
//! this process's memory (`channel/`), which mirror the queue for delivery.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tracing::warn;

use super::{Backend, BackendError, Claim, ReplyWait, Sent, Subscription, Upkept, View};
use crate::budget::Budget;
use crate::channel::{Attached, Channel, Channels, Reply, Settings, Stats};
use crate::protocol::{self, RequestId};
use crate::queue::{Committing, Frame, Queue, QueueError, Snapshot};

/// The single-node backend; see the module's documentation.
pub(crate) struct Local {
    /// The durable queue (or the one in memory).
    pub queue: Queue,
    /// Every known channel, with its pending requests and attached session.
    pub channels: Arc<Channels>,
    /// The relay's memory budget, which frames read back from the queue count against.
    pub budget: Arc<Budget>,
    /// `--max-queued`.
    max_queued: usize,
}

impl Local {
    /// Opens the queue in `dir` (in memory without one) and restores its channels; returns the
    /// backend and what the queue held.
    pub fn open(
        dir: Option<&std::path::Path>,
        defaults: Settings,
        budget: Arc<Budget>,
        max_queued: usize,
    ) -> Result<(Local, Snapshot), QueueError> {
        let (queue, snapshot) = Queue::open(dir)?;
        let channels = Arc::new(Channels::restore(&snapshot, defaults));
        let local = Local {
            queue,
            channels,
            budget,
            max_queued,
        };
        Ok((local, snapshot))
    }
}

impl Backend for Local {
    type Subscription = LocalSubscription;

    fn epoch(&self) -> u64 {
        self.queue.epoch()
    }

    fn ready(&self) -> Result<(), String> {
        Ok(())
    }

    fn stats(&self) -> Stats {
        self.channels.stats()
    }

    async fn channel(&self, name: &str) -> Result<Option<View>, BackendError> {
        Ok(self.channels.get(name).map(|channel| {
            let status = channel.status();
            View {
                settings: status.settings,
                attached: status.attached,
                queued: Some(status.queued),
            }
        }))
    }

    fn admit(&self, name: &str, rate: Option<u32>) -> bool {
        self.channels
            .get(name)
            .is_none_or(|channel| channel.admit(rate))
    }

    async fn send(&self, name: &str, frame: Bytes, wait: bool) -> Result<Sent, BackendError> {
        let channel = self.channels.get(name).ok_or(BackendError::Unknown)?;
        if channel.status().queued >= self.max_queued {
            return Err(BackendError::Full {
                limit: self.max_queued,
            });
        }
        let id = self.queue.next_id().await.map_err(unavailable)?;
        let frame = protocol::with_id(&frame, id, false)
            .ok_or_else(|| BackendError::Unavailable("not a request frame".into()))?;
        // Registered before the request can reach the CLI, which may answer at once.
        let reply = wait.then(|| {
            let (reply, guard) = channel.wait_for(id);
            ReplyWait::new(reply, guard)
        });
        let committing = self
            .queue
            .submit(id, name, Frame::Whole(frame.clone()))
            .await;
        if let Committing::Done(Err(e)) = committing {
            return Err(unavailable(e));
        }
        channel.enqueued(id, Some(frame), &self.budget);
        committing.committed().await.map_err(unavailable)?;
        Ok(Sent { id, reply })
    }

    async fn attach(&self, claim: Claim<'_>) -> Result<LocalSubscription, String> {
        let attached = Arc::new(Attached::new(
            claim.outbox_bytes,
            claim.max_in_flight,
            claim.stream_bodies,
        ));
        let channel = self
            .channels
            .attach(
                &self.queue,
                claim.name,
                claim.settings,
                claim.licence,
                &attached,
            )
            .await?;
        Ok(LocalSubscription {
            queue: self.queue.clone(),
            channels: Arc::clone(&self.channels),
            budget: Arc::clone(&self.budget),
            channel,
            attached,
        })
    }

    async fn upkeep(&self, retention: Duration) -> Upkept {
        let mut upkept = Upkept::default();
        match self.queue.expire(retention).await {
            Ok(gone) => {
                upkept.expired = gone.len();
                self.channels.expired(&gone);
            }
            Err(e) => warn!(error = %e, "could not expire old requests"),
        }
        match self.channels.forget_idle(&self.queue, retention).await {
            Ok(forgotten) => upkept.forgotten = forgotten,
            Err(e) => warn!(error = %e, "could not forget idle channels"),
        }
        upkept
    }

    async fn close(&self) {
        // Acknowledgements the queue holds back are committed before the process goes.
        if let Err(e) = self.queue.flush().await {
            warn!(error = %e, "could not commit the last acknowledgements; their requests will be delivered again");
        }
    }
}

fn unavailable(e: QueueError) -> BackendError {
    warn!(error = %e, "could not queue a request");
    BackendError::Unavailable(e.to_string())
}

/// A session attached to a channel of the single-node backend.
pub(crate) struct LocalSubscription {
    queue: Queue,
    channels: Arc<Channels>,
    budget: Arc<Budget>,
    /// The channel, which the webhook path also reaches by name.
    pub channel: Arc<Channel>,
    attached: Arc<Attached>,
}

impl Subscription for LocalSubscription {
    fn attached(&self) -> &Arc<Attached> {
        &self.attached
    }

    fn queued(&self) -> usize {
        self.channel.status().queued
    }

    /// First what waited while no session was attached, then each new request as it is queued.
    async fn deliver(&self) {
        loop {
            let Some((id, frame)) = self.channel.next_ready() else {
                self.channel.wake.notified().await;
                continue;
            };
            let sent = self.send_one(id, frame).await;
            self.channel.delivered();
            if !sent {
                return;
            }
        }
    }

    fn ack(&self, id: RequestId) {
        self.attached.release(id);
        // Only this channel's own requests: a CLI cannot acknowledge another channel's.
        if self.channel.forget(id) {
            self.queue.ack(id);
        }
    }

    fn reply(&self, id: RequestId, reply: Reply) {
        self.channel.complete(id, reply);
    }

    async fn detach(self) {
        self.channels
            .leave(&self.queue, &self.channel, &self.attached)
            .await;
    }
}

impl LocalSubscription {
    /// Sends one request to the session once its window has room; `false` ends the session.
    async fn send_one(&self, id: RequestId, frame: Option<Bytes>) -> bool {
        // Wait for room in the session's window: a CLI that is behind is not flooded.
        if !self.attached.reserve(id).await {
            return false;
        }
        let frame = match frame {
            Some(frame) => frame,
            // Boxed: frames come from the queue only for a backlog, and the session's future
            // would otherwise carry this call's state all its life.
            None => match Box::pin(self.load(id)).await {
                Ok(Some(frame)) => frame,
                // Acknowledged or expired meanwhile, or its frame file was lost (see
                // `queue/frames.rs`): no longer pending either way.
                Ok(None) => {
                    self.attached.release(id);
                    self.channel.forget(id);
                    return true;
                }
                Err(e) => {
                    warn!(error = %e, %id, "could not read a queued request; ending session");
                    return false;
                }
            },
        };
        // A request an earlier session had (or may have had) tells the CLI so.
        let frame = if self.channel.sending(id) {
            protocol::mark_redelivered(frame)
        } else {
            frame
        };
        self.attached.outbox.send(frame).await;
        true
    }

    /// Reads a queued request's frame back for the session, once its outbox has room (a stalled
    /// session does not make the relay read frames it cannot send), and counts it against the
    /// relay's memory budget, waiting for room there too. The in-memory queue's frames carry
    /// their charge already.
    async fn load(&self, id: RequestId) -> Result<Option<Bytes>, QueueError> {
        self.attached.outbox.has_room().await;
        let frame = self.queue.load(id).await?;
        if !self.queue.is_durable() {
            return Ok(frame);
        }
        let Some(frame) = frame else {
            return Ok(None);
        };
        if let Some(charge) = self.budget.try_charge(frame.len()) {
            return Ok(Some(charge.attach(frame)));
        }
        // Not held while waiting for room: read again once there is some.
        let len = frame.len();
        drop(frame);
        let charge = self.budget.charge(len).await;
        Ok(self.queue.load(id).await?.map(|frame| charge.attach(frame)))
    }
}
