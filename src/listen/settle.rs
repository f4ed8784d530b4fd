//! Settling: a request is acknowledged to the relay, and its line printed, once its capture is
//! committed, in the order captures were queued, so that the printed line can show the capture
//! id and an acknowledged request is always in the store. A commit that takes longer than
//! [`ACK_WAIT`] does not hold the acknowledgement (a stalled disk must not hold the relay's window
//! of unacknowledged requests); the line still waits for it.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::delivery::Delivery;
use super::record::Recorder;
use super::session::Outbox;
use crate::exchange::Exchange;
use crate::inspect::Printer;
use crate::store;

/// Longest the acknowledgement of a request waits for its capture to be committed.
const ACK_WAIT: Duration = Duration::from_secs(1);

/// Exchanges whose captures are queued and not yet committed, and the task that acknowledges
/// and prints them as commits come ([`Settle::run`]).
#[derive(Default)]
pub(super) struct Settle {
    queue: Mutex<Queue>,
    /// Signalled when the queue gains an entry that `run` must time (no other unacknowledged
    /// entry was waiting).
    added: Notify,
    /// Signalled each time `run` has finished with a commit's exchanges.
    settled: Notify,
}

/// What waits, in queueing order (the order commits are reported in).
#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiting>,
    /// Entries of `waiting` not acknowledged yet.
    unacked: usize,
    /// Taken from `waiting` by `run` and not yet acknowledged.
    settling: usize,
    /// `run` has ended: handlers acknowledge and print their own exchanges.
    closed: bool,
}

/// An exchange waiting for its capture's commit (the exchange itself is with the store's
/// writer, which hands it back with the commit).
struct Waiting {
    /// What to acknowledge once it is committed; `None` for a copy route's capture, which the
    /// relay knows nothing of (its request's own capture is acknowledged).
    delivery: Option<Delivery>,
    queued_at: Instant,
    /// Acknowledged already, because the commit took longer than [`ACK_WAIT`].
    acked: bool,
}

impl Settle {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().expect("settle lock is never poisoned")
    }

    /// Records `exchange` and queues it to be acknowledged and printed once committed. When it
    /// cannot wait for that (hooks is stopping, or the store refused it), it comes back: the
    /// caller acknowledges and prints it.
    pub fn record(
        &self,
        recorder: &Recorder,
        delivery: Option<Delivery>,
        exchange: Box<Exchange>,
    ) -> Option<Box<Exchange>> {
        // Queued and remembered under one lock, so the queue is in the order of the commits.
        let mut queue = self.queue();
        if queue.closed {
            let _ = recorder.record(exchange.clone());
            return Some(exchange);
        }
        if let Err(exchange) = recorder.record(exchange) {
            return Some(exchange);
        }
        let acked = delivery.is_none();
        if !acked {
            if queue.unacked == 0 {
                // The oldest unacknowledged entry now: `run` times it.
                self.added.notify_one();
            }
            queue.unacked += 1;
        }
        queue.waiting.push_back(Waiting {
            delivery,
            queued_at: Instant::now(),
            acked,
        });
        None
    }

    /// Acknowledges and prints exchanges as their captures are committed; acknowledges those
    /// whose commit takes longer than [`ACK_WAIT`] without waiting for it. Ends when `stop` is
    /// cancelled and nothing waits, or when the store closes; then it acknowledges what is left
    /// (whose exchanges went with the store), and handlers do their own from then on.
    pub async fn run(
        &self,
        outbox: &Outbox,
        recorder: &Recorder,
        printer: &Printer,
        mut commits: store::Commits,
        stop: CancellationToken,
    ) {
        loop {
            let (overdue_at, empty) = self.due();
            let outcomes = tokio::select! {
                biased;
                outcomes = commits.recv() => match outcomes {
                    Some(outcomes) => outcomes,
                    None => break,
                },
                _ = tokio::time::sleep_until(overdue_at.unwrap_or_else(Instant::now).into()),
                    if overdue_at.is_some() => {
                    self.ack_overdue(outbox).await;
                    continue;
                }
                _ = self.added.notified(), if overdue_at.is_none() => continue,
                _ = stop.cancelled(), if empty => break,
            };
            let settled = self.take(outcomes.len());
            let count = settled.len();
            let mut acks = Vec::with_capacity(count);
            let mut printed = Vec::with_capacity(count);
            for (waiting, (outcome, mut exchange)) in settled.into_iter().zip(outcomes) {
                exchange.id = recorder.committed(outcome);
                if let (false, Some(delivery)) = (waiting.acked, waiting.delivery) {
                    acks.push(delivery);
                }
                printed.push(exchange);
            }
            outbox.ack_all(&acks).await;
            for exchange in printed {
                printer.offer(exchange);
            }
            self.queue().settling -= count;
            self.settled.notify_waiters();
        }
        // The store is gone, or hooks is stopping (with nothing waiting).
        let left = self.close();
        let acks: Vec<Delivery> = left
            .iter()
            .filter(|w| !w.acked)
            .filter_map(|w| w.delivery)
            .collect();
        outbox.ack_all(&acks).await;
        self.settled.notify_waiters();
    }

    /// When the oldest unacknowledged entry is due to be acknowledged anyway, and whether
    /// nothing waits.
    fn due(&self) -> (Option<Instant>, bool) {
        let queue = self.queue();
        let oldest = queue.waiting.iter().find(|w| !w.acked);
        (
            oldest.map(|w| w.queued_at + ACK_WAIT),
            queue.waiting.is_empty(),
        )
    }

    /// Takes the `n` oldest entries (or all there are), which a commit settled.
    fn take(&self, n: usize) -> Vec<Waiting> {
        let mut queue = self.queue();
        let n = n.min(queue.waiting.len());
        let settled: Vec<Waiting> = queue.waiting.drain(..n).collect();
        queue.unacked -= settled.iter().filter(|w| !w.acked).count();
        queue.settling += settled.len();
        settled
    }

    /// Ends queueing and takes what is left.
    fn close(&self) -> Vec<Waiting> {
        let mut queue = self.queue();
        queue.closed = true;
        queue.unacked = 0;
        queue.waiting.drain(..).collect()
    }

    /// Acknowledges the waiting exchanges queued [`ACK_WAIT`] ago or earlier.
    async fn ack_overdue(&self, outbox: &Outbox) {
        let now = Instant::now();
        let overdue: Vec<Delivery> = {
            let mut queue = self.queue();
            let overdue: Vec<Delivery> = queue
                .waiting
                .iter_mut()
                .filter(|w| !w.acked && w.queued_at + ACK_WAIT <= now)
                .filter_map(|w| {
                    w.acked = true;
                    w.delivery
                })
                .collect();
            queue.unacked -= overdue.len();
            overdue
        };
        debug!(
            count = overdue.len(),
            "acknowledging before the capture is committed"
        );
        outbox.ack_all(&overdue).await;
    }

    /// Waits until every queued capture is committed and acknowledged.
    pub async fn wait(&self) {
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            {
                let queue = self.queue();
                if queue.closed || (queue.waiting.is_empty() && queue.settling == 0) {
                    return;
                }
            }
            settled.await;
        }
    }
}
