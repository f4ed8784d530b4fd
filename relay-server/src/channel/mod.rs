//! Channels of the single-node backend (`backend/local.rs`): the in-memory mirror of the queue
//! for each channel, the session attached to it, and the senders waiting for the app's reply.
//! The session's [`Attached`] (outbox and window) serves the cluster's sessions too.
//!
//! The queue is the truth; a [`Channel`] keeps the ids of its unacknowledged requests in order,
//! and keeps recent frames in memory so live delivery does not read them back from disk.
//! [`Channels`] (`channels.rs`) holds them all by name. The session attached to a channel is an
//! [`Attached`] (`attached.rs`), with its [`Outbox`] (`outbox.rs`) and the [`Stream`]s of long
//! bodies sent to it in pieces.
//!
//! [`Outbox`]: outbox::Outbox

mod attached;
mod channels;
mod outbox;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio::sync::{oneshot, Notify};

pub(crate) use attached::{Attached, Stream};
pub(crate) use channels::{Channels, Stats};
pub(crate) use outbox::Taken;

use crate::budget::Budget;
use crate::protocol::{Header, Offline, RequestId, Respond};
use crate::queue::{now_ms, ChannelRecord};
use crate::tokens::{self, Licence};

/// Most bytes of request frames a channel keeps in memory for its attached session; beyond this,
/// frames are read back from the queue when their turn comes. They count against the relay's
/// memory budget, and are kept only while it is less than half spent ([`Channel::enqueued`]):
/// they spare a read from the queue, and must not crowd out new webhooks.
const HOT_BYTES: usize = 16 * 1024 * 1024;

/// What the CLI answered for one request.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The app's response.
    Response {
        status: u16,
        headers: Vec<Header>,
        body: Bytes,
    },
    /// The CLI could not reach the app; `reason` is one line for the sender.
    Failed { reason: String },
}

/// A channel's settings, chosen by its CLI and remembered across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Settings {
    pub respond: Respond,
    pub timeout: Duration,
    pub offline: Offline,
}

/// One channel.
pub(crate) struct Channel {
    pub name: String,
    state: Mutex<State>,
    /// Wakes the attached session's delivery loop when a request is queued.
    pub wake: Notify,
}

struct State {
    settings: Settings,
    /// The token digest that owns the channel, on relays with tokens.
    owner: Option<String>,
    /// When the channel last had no session (ms since the Unix epoch): since its last session
    /// ended, or since it was made. Channels idle for the retention are forgotten.
    idle_since: i64,
    /// Rate limiting: tokens left and when they were last refilled.
    allowance: f64,
    refilled: Instant,
    /// Unacknowledged requests, oldest first; each is in the queue.
    pending: BTreeSet<RequestId>,
    /// Pending requests sent to a session (the attached one or an earlier one), or pending
    /// when the relay started (they may have been): sending one again is a redelivery, and the
    /// CLI is told so.
    sent: HashSet<RequestId>,
    /// Pending requests not yet sent to the attached session, in delivery order. Filled with
    /// every pending request (oldest first) when a session attaches, then as requests are queued.
    ready: VecDeque<RequestId>,
    /// The delivery loop holds a request taken from `ready` and not yet sent; new requests must
    /// not overtake it.
    in_hand: bool,
    /// Frames of pending requests not yet sent to the attached session.
    hot: HashMap<RequestId, Bytes>,
    hot_bytes: usize,
    session: Option<Arc<Attached>>,
    /// Senders waiting for the app's reply, by request.
    waiters: HashMap<RequestId, oneshot::Sender<Reply>>,
}

/// What the router needs to know to answer a sender.
pub(crate) struct Status {
    pub settings: Settings,
    pub attached: bool,
    pub queued: usize,
}

impl Channel {
    /// A channel with no session attached, idle since now.
    fn new(name: String, settings: Settings, owner: Option<String>) -> Self {
        Channel {
            name,
            state: Mutex::new(State {
                settings,
                owner,
                idle_since: now_ms(),
                allowance: f64::MAX,
                refilled: Instant::now(),
                pending: BTreeSet::new(),
                sent: HashSet::new(),
                ready: VecDeque::new(),
                in_hand: false,
                hot: HashMap::new(),
                hot_bytes: 0,
                session: None,
                waiters: HashMap::new(),
            }),
            wake: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("channel lock is never poisoned")
    }

    /// Settings, whether a session is attached, and the queue depth.
    pub fn status(&self) -> Status {
        let state = self.lock();
        Status {
            settings: state.settings,
            attached: state.session.is_some(),
            queued: state.pending.len(),
        }
    }

    /// Takes one webhook from the channel's rate allowance (`rate` per second, bursts up to
    /// `rate`); `false` when the channel is over its rate.
    pub fn admit(&self, rate: Option<u32>) -> bool {
        let Some(rate) = rate else {
            return true;
        };
        let rate = f64::from(rate.max(1));
        let mut state = self.lock();
        let now = Instant::now();
        let elapsed = now.duration_since(state.refilled).as_secs_f64();
        state.allowance = (state.allowance.min(rate) + elapsed * rate).min(rate);
        state.refilled = now;
        if state.allowance >= 1.0 {
            state.allowance -= 1.0;
            true
        } else {
            false
        }
    }

    /// Registers interest in the reply to `id`; dropping the guard withdraws it.
    pub fn wait_for(self: &Arc<Self>, id: RequestId) -> (oneshot::Receiver<Reply>, WaiterGuard) {
        let (tx, rx) = oneshot::channel();
        self.lock().waiters.insert(id, tx);
        let guard = WaiterGuard {
            channel: Arc::clone(self),
            id,
        };
        (rx, guard)
    }

    /// Records a request just committed to the queue and wakes the delivery loop; `frame` is
    /// its frame when it is in memory (a frame written to its file is read back from there),
    /// kept for the session while `budget` is less than half spent.
    pub fn enqueued(&self, id: RequestId, frame: Option<Bytes>, budget: &Budget) {
        let mut state = self.lock();
        state.pending.insert(id);
        if let Some(session) = &state.session {
            // Nothing ahead of it: skip the delivery loop. (A stream's request that went to
            // an earlier session takes the loop, which marks it redelivered.)
            let first = state.ready.is_empty() && !state.in_hand && !state.sent.contains(&id);
            if let Some(frame) = frame.as_ref().filter(|_| first) {
                if session.try_send_now(id, frame) {
                    state.sent.insert(id);
                    return;
                }
            }
            state.ready.push_back(id);
            if let Some(frame) = frame {
                if state.hot_bytes + frame.len() <= HOT_BYTES && budget.used() <= budget.limit() / 2
                {
                    state.hot_bytes += frame.len();
                    state.hot.insert(id, frame);
                }
            }
        }
        drop(state);
        self.wake.notify_one();
    }

    /// Starts streaming request `id` to the attached session by sending `head` (its request
    /// message announcing `body_len`): only when the session takes streams and has a stream
    /// slot, window room and outbox room, and nothing is waiting ahead of the request. `None`
    /// leaves the request to go whole, once its body is in, through [`Channel::enqueued`].
    pub fn start_stream(&self, id: RequestId, head: &Bytes) -> Option<Stream> {
        let state = self.lock();
        let session = state.session.as_ref()?;
        if !state.ready.is_empty() || state.in_hand {
            return None;
        }
        session.start_stream(id, head)
    }

    /// Records a streamed request just committed to the queue, before its last piece is sent
    /// (so the CLI's acknowledgement finds it pending). `true` if `stream`'s session is still
    /// attached and so gets the last piece; otherwise the request (`frame`, whole) goes to the
    /// session now attached, or waits for one, like any other.
    pub fn streamed(&self, stream: &Stream, frame: Option<Bytes>, budget: &Budget) -> bool {
        let mut state = self.lock();
        state.pending.insert(stream.id());
        // Its first pieces went to the stream's session.
        state.sent.insert(stream.id());
        let same = state.session.as_ref().is_some_and(|s| stream.goes_to(s));
        if same {
            return true;
        }
        drop(state);
        self.enqueued(stream.id(), frame, budget);
        false
    }

    /// The next request for the attached session, in the order requests were queued (ids are
    /// given before the queue commits, so concurrent requests commit out of id order), with its
    /// frame when it is still in memory.
    pub fn next_ready(&self) -> Option<(RequestId, Option<Bytes>)> {
        let mut state = self.lock();
        while let Some(id) = state.ready.pop_front() {
            // Acknowledged or expired since it was queued for delivery.
            if !state.pending.contains(&id) {
                continue;
            }
            let frame = state.hot.remove(&id);
            if let Some(frame) = &frame {
                state.hot_bytes -= frame.len();
            }
            state.in_hand = true;
            return Some((id, frame));
        }
        None
    }

    /// Notes that `id` is being sent to the attached session; `true` if it was sent to a
    /// session before (or may have been, before the relay started): a redelivery.
    pub fn sending(&self, id: RequestId) -> bool {
        let mut state = self.lock();
        // One acknowledged or expired meanwhile is not remembered.
        state.pending.contains(&id) && !state.sent.insert(id)
    }

    /// The delivery loop has sent (or dropped) what [`Channel::next_ready`] gave it.
    pub fn delivered(&self) {
        self.lock().in_hand = false;
    }

    /// Hands a reply to the sender waiting for it, if any is still waiting.
    pub fn complete(&self, id: RequestId, reply: Reply) {
        if let Some(waiter) = self.lock().waiters.remove(&id) {
            let _ = waiter.send(reply);
        }
    }

    /// Forgets an acknowledged or expired request; `true` if it was pending on this channel.
    pub fn forget(&self, id: RequestId) -> bool {
        let mut state = self.lock();
        if let Some(frame) = state.hot.remove(&id) {
            state.hot_bytes -= frame.len();
        }
        state.sent.remove(&id);
        state.pending.remove(&id)
    }

    /// Notes that the channel's last session left `at` (ms since the Unix epoch), as the queue
    /// recorded it: its retention counts from there.
    fn left_at(&self, at: i64) {
        self.lock().idle_since = at;
    }

    /// Notes request `id`, pending in the queue when the relay started: it may have been sent
    /// to a CLI before the relay stopped, so sending it is a redelivery.
    fn pending_at_start(&self, id: RequestId) {
        let mut state = self.lock();
        state.pending.insert(id);
        state.sent.insert(id);
    }

    /// Attaches `session` with `settings`, when `licence` (on a relay with tokens) may claim
    /// the channel (just `created` or not; see [`may_claim`]) and no other session holds it;
    /// `Err` is the sentence refusing the session. Every pending request is ready for it.
    fn attach(
        &self,
        session: &Arc<Attached>,
        settings: Settings,
        licence: Option<&Licence<'_>>,
        created: bool,
    ) -> Result<(), String> {
        let mut state = self.lock();
        if let Some(licence) = licence {
            may_claim(&self.name, state.owner.as_deref(), created, licence)?;
        }
        if state.session.is_some() {
            return Err(format!(
                "channel {} is in use by another hooks session; stop that one or pick another --channel",
                self.name
            ));
        }
        state.session = Some(Arc::clone(session));
        state.settings = settings;
        state.ready = state.pending.iter().copied().collect();
        state.in_hand = false;
        if let Some(licence) = licence {
            state.owner = Some(licence.owner.0.clone());
        }
        Ok(())
    }

    /// When no session is attached and none has been since `cutoff` (ms since the Unix
    /// epoch) or earlier: its last pending request's id (0 for none) and how many are pending.
    fn idle_since(&self, cutoff: i64) -> Option<(RequestId, usize)> {
        let state = self.lock();
        if state.session.is_some() || state.idle_since > cutoff {
            return None;
        }
        let last = state.pending.last().copied().unwrap_or(RequestId(0));
        Some((last, state.pending.len()))
    }

    /// How many requests are pending, when the channel belongs to no token.
    fn ownerless(&self) -> Option<usize> {
        let state = self.lock();
        state.owner.is_none().then_some(state.pending.len())
    }

    /// Its share of the metrics page's gauges: the bytes held in its session's outbox, when one
    /// is attached, and how many requests are pending.
    fn gauges(&self) -> (Option<usize>, usize) {
        let state = self.lock();
        let outbox = state.session.as_ref().map(|s| s.outbox.held());
        (outbox, state.pending.len())
    }

    /// The channel as the queue records it.
    fn record(&self) -> ChannelRecord {
        let state = self.lock();
        ChannelRecord {
            name: self.name.clone(),
            settings: serde_json::to_string(&state.settings).expect("settings serialize"),
            owner: state.owner.clone(),
            detached_at: state.session.is_none().then_some(state.idle_since),
        }
    }

    /// Detaches `session` if it is still the attached one, and then returns when (ms since the
    /// Unix epoch); either way nothing more is sent to it.
    pub fn detach(&self, session: &Arc<Attached>) -> Option<i64> {
        session.close();
        let mut state = self.lock();
        if state
            .session
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, session))
        {
            state.session = None;
            // Under the same lock as the detach: a channel never looks idle since an older time.
            state.idle_since = now_ms();
            state.ready.clear();
            state.hot.clear();
            state.hot_bytes = 0;
            return Some(state.idle_since);
        }
        None
    }
}

/// Withdraws a sender's interest in a reply when it stops waiting.
pub(crate) struct WaiterGuard {
    channel: Arc<Channel>,
    id: RequestId,
}

impl Drop for WaiterGuard {
    fn drop(&mut self) {
        self.channel.lock().waiters.remove(&self.id);
    }
}

/// Whether the session holding `licence` may claim channel `name`, owned by `owner` (a token
/// digest) and just `created` or not: its owner may, a new name goes to whoever claims it, and
/// the tokens file may give any name to a token. A channel claimed while the relay was open
/// (no owner) goes to no token by asking first, since what it queued was meant for someone.
pub(crate) fn may_claim(
    name: &str,
    owner: Option<&str>,
    created: bool,
    licence: &Licence<'_>,
) -> Result<(), String> {
    match owner {
        _ if licence.assigned => Ok(()),
        Some(holder) if bool::from(licence.owner.0.as_bytes().ct_eq(holder.as_bytes())) => Ok(()),
        Some(_) => Err(tokens::reserved(name)),
        None if created => Ok(()),
        None => Err(tokens::ownerless(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Snapshot;

    /// Issue 17: a request goes to a CLI as a redelivery when a session had it before, or when
    /// it was pending when the relay started (it may have been sent then).
    #[tokio::test]
    async fn redeliveries_are_known_from_earlier_sessions_and_from_before_a_start() {
        let defaults = Settings {
            respond: Respond::App,
            timeout: Duration::from_secs(1),
            offline: Offline::Queue,
        };
        let snapshot = Snapshot {
            pending: vec![("ch".to_owned(), RequestId(1))],
            ..Snapshot::default()
        };
        let channels = Channels::restore(&snapshot, defaults);
        let channel = channels.get("ch").unwrap();
        assert!(channel.sending(RequestId(1)), "pending at start");
        channel.enqueued(RequestId(2), None, &crate::budget::Budget::new(1 << 20));
        assert!(!channel.sending(RequestId(2)), "sent for the first time");
        assert!(channel.sending(RequestId(2)), "sent again");
        assert!(channel.forget(RequestId(2)));
        assert!(
            !channel.sending(RequestId(2)),
            "forgotten with its acknowledgement"
        );
        assert!(
            !channel.lock().sent.contains(&RequestId(2)),
            "nothing kept for what is not pending"
        );
    }
}
