//! Channels: the in-memory mirror of the queue for each channel, the session attached to it, and
//! the senders waiting for the app's reply.
//!
//! The queue (SQLite) is the truth; a channel keeps the ids of its unacknowledged requests in
//! order, and keeps recent frames in memory so live delivery does not read them back from disk.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio::sync::{oneshot, Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::budget::Budget;
use crate::protocol::{Header, Offline, RequestId, Respond, MAX_STREAMS};
use crate::queue::{ChannelRecord, Queue, QueueError, Snapshot};
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

/// Frames waiting for a session's writer, and those the writer is sending, at most a number of
/// bytes: a frame goes in only while the bytes there leave room for it, or, when it is larger
/// than the whole outbox, once the outbox is empty. So a session holds at most its capacity, or
/// one frame when that frame is larger, and a slow or stalled CLI slows its own delivery rather
/// than growing the relay's memory. A plain queue rather than a Tokio channel, which allocates
/// room for 32 messages with every session, and most sessions sit idle.
pub(crate) struct Outbox {
    frames: Mutex<VecDeque<Bytes>>,
    /// Room in bytes, one permit each (fair: a large frame waiting for room is not overtaken).
    room: Semaphore,
    capacity: usize,
    /// Bytes of the frames queued, and of those the writer took and has not written yet.
    held: AtomicUsize,
    ready: Notify,
}

/// Frames the writer took from an [`Outbox`] and has not written yet.
#[derive(Default)]
pub(crate) struct Taken {
    bytes: usize,
    room: usize,
}

impl Outbox {
    /// An empty outbox with room for `capacity` bytes of frames.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, u32::MAX as usize);
        Outbox {
            frames: Mutex::new(VecDeque::new()),
            room: Semaphore::new(capacity),
            capacity,
            held: AtomicUsize::new(0),
            ready: Notify::new(),
        }
    }

    /// The room a frame of `len` bytes takes: all of it when it is larger.
    fn room_for(&self, len: usize) -> u32 {
        u32::try_from(len.min(self.capacity)).expect("the capacity fits in u32")
    }

    fn push(&self, frame: Bytes) {
        self.held.fetch_add(frame.len(), Ordering::Relaxed);
        self.frames
            .lock()
            .expect("outbox lock is never poisoned")
            .push_back(frame);
        self.ready.notify_one();
    }

    /// Queues `frame` if there is room; `false` if not.
    pub fn try_send(&self, frame: Bytes) -> bool {
        match self.room.try_acquire_many(self.room_for(frame.len())) {
            Ok(permit) => {
                permit.forget();
                self.push(frame);
                true
            }
            Err(_) => false,
        }
    }

    /// Queues `frame`, waiting for room.
    pub async fn send(&self, frame: Bytes) {
        if let Ok(permit) = self.room.acquire_many(self.room_for(frame.len())).await {
            permit.forget();
            self.push(frame);
        }
    }

    /// Waits until the outbox has some room, behind the frames already waiting for it.
    pub async fn has_room(&self) {
        let _ = self.room.acquire().await;
    }

    /// Bytes held: queued, or taken by the writer and not yet written.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// The oldest waiting frame, if any, which counts in [`Outbox::held`] until `taken` is
    /// given to [`Outbox::written`].
    pub fn try_recv(&self, taken: &mut Taken) -> Option<Bytes> {
        let frame = self
            .frames
            .lock()
            .expect("outbox lock is never poisoned")
            .pop_front()?;
        taken.bytes += frame.len();
        taken.room += self.room_for(frame.len()) as usize;
        Some(frame)
    }

    /// Waits for the oldest frame (see [`Outbox::try_recv`]).
    pub async fn recv(&self, taken: &mut Taken) -> Bytes {
        loop {
            // A frame pushed after the look below is not missed: with no task waiting,
            // `notify_one` stores a permit that this `notified()` then takes.
            let ready = self.ready.notified();
            if let Some(frame) = self.try_recv(taken) {
                return frame;
            }
            ready.await;
        }
    }

    /// The writer has written what it took: its room is given back.
    pub fn written(&self, taken: Taken) {
        self.held.fetch_sub(taken.bytes, Ordering::Relaxed);
        self.room.add_permits(taken.room);
    }
}

/// The relay's handle on an attached CLI session: where its frames go, and the requests it has
/// been sent and not yet acknowledged.
pub(crate) struct Attached {
    /// Request frames for the session's writer.
    pub outbox: Outbox,
    /// One permit per request the session may still be sent (`--max-in-flight`).
    pub window: Semaphore,
    in_flight: Mutex<HashSet<RequestId>>,
    /// The CLI takes long bodies in pieces (its hello's `stream_bodies`).
    streams: bool,
    /// Streams the session may still be sent at once ([`MAX_STREAMS`]).
    stream_slots: Semaphore,
    /// Cancelled once the session is detached: whoever streams to it stops waiting for room.
    closed: CancellationToken,
}

impl Attached {
    /// A session handle with an outbox of `outbox_bytes`, allowing `max_in_flight`
    /// unacknowledged requests, which takes long bodies in pieces when `streams`.
    pub fn new(outbox_bytes: usize, max_in_flight: usize, streams: bool) -> Self {
        Attached {
            outbox: Outbox::new(outbox_bytes),
            window: Semaphore::new(max_in_flight),
            in_flight: Mutex::new(HashSet::new()),
            streams,
            stream_slots: Semaphore::new(if streams { MAX_STREAMS } else { 0 }),
            closed: CancellationToken::new(),
        }
    }

    /// Takes a window slot for `id` (waiting for one if the CLI is behind).
    pub async fn reserve(&self, id: RequestId) -> bool {
        match self.window.acquire().await {
            Ok(permit) => {
                permit.forget();
                self.in_flight
                    .lock()
                    .expect("in-flight lock is never poisoned")
                    .insert(id);
                true
            }
            Err(_) => false,
        }
    }

    /// Sends `frame` at once when the window and the outbox have room; `false` leaves it to
    /// the delivery loop. Saves a task hop per webhook on an idle session.
    fn try_send_now(&self, id: RequestId, frame: &Bytes) -> bool {
        let Ok(permit) = self.window.try_acquire() else {
            return false;
        };
        // In flight before the frame leaves, so an early acknowledgement finds it.
        let mut in_flight = self
            .in_flight
            .lock()
            .expect("in-flight lock is never poisoned");
        in_flight.insert(id);
        if self.outbox.try_send(frame.clone()) {
            permit.forget();
            true
        } else {
            in_flight.remove(&id);
            false
        }
    }

    /// Frees `id`'s window slot once the CLI has acknowledged it.
    pub fn release(&self, id: RequestId) {
        let removed = self
            .in_flight
            .lock()
            .expect("in-flight lock is never poisoned")
            .remove(&id);
        if removed {
            self.window.add_permits(1);
        }
    }
}

/// A request whose body is being streamed to one session: it holds the request's window slot
/// and one of the session's [`MAX_STREAMS`] slots.
///
/// It ends with the last piece ([`Stream::finish`]) or an abort ([`Stream::abort`]), and a
/// stream dropped without either (its sender's connection ended while the relay was reading
/// or storing the request) sends the abort itself. Either way that last frame is queued by a
/// task of its own, which nothing cancels, and the stream slot is given back only once it is:
/// the CLI, reading frames in order, then never sees more than [`MAX_STREAMS`] open at once.
pub(crate) struct Stream {
    session: Arc<Attached>,
    id: RequestId,
    ended: bool,
}

impl Stream {
    /// Queues `frame` (a piece of the body) for the session, waiting for room; `false` once
    /// the session is gone, when the rest of the body has nowhere to go.
    pub async fn send(&self, frame: Bytes) -> bool {
        send_to(&self.session, frame).await
    }

    /// Queues the last piece: the request is pending, and the CLI acknowledges it once
    /// handled.
    pub fn finish(mut self, last: Bytes) {
        self.ended = true;
        self.end(last, false);
    }

    /// Tells the CLI to forget the request (not stored: the sender went away, or the queue
    /// failed), and frees its window slot, since the CLI will not acknowledge it.
    pub fn abort(mut self, reason: &str) {
        self.ended = true;
        self.end(abort_frame(self.id, reason), true);
    }

    fn end(&self, frame: Bytes, release: bool) {
        let session = Arc::clone(&self.session);
        let id = self.id;
        let done = move |session: &Attached| {
            if release {
                session.release(id);
            }
            session.stream_slots.add_permits(1);
        };
        // No runtime: it is being torn down, and the session with it.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            done(&session);
            return;
        };
        runtime.spawn(async move {
            send_to(&session, frame).await;
            done(&session);
        });
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        if !self.ended {
            self.end(
                abort_frame(self.id, "the relay stopped reading the request"),
                true,
            );
        }
    }
}

/// Queues `frame` for `session`, waiting for room; `false` once the session is gone.
async fn send_to(session: &Attached, frame: Bytes) -> bool {
    tokio::select! {
        () = session.outbox.send(frame) => !session.closed.is_cancelled(),
        () = session.closed.cancelled() => false,
    }
}

/// The frame telling the CLI that `id`'s body will not come, and why.
fn abort_frame(id: RequestId, reason: &str) -> Bytes {
    let message = crate::protocol::RelayMessage::Abort(crate::protocol::Abort {
        id,
        reason: reason.to_owned(),
    });
    crate::protocol::encode(&message, &[])
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
        if !session.streams || !state.ready.is_empty() || state.in_hand {
            return None;
        }
        let slot = session.stream_slots.try_acquire().ok()?;
        if !session.try_send_now(id, head) {
            return None;
        }
        slot.forget();
        Some(Stream {
            session: Arc::clone(session),
            id,
            ended: false,
        })
    }

    /// Records a streamed request just committed to the queue, before its last piece is sent
    /// (so the CLI's acknowledgement finds it pending). `true` if `stream`'s session is still
    /// attached and so gets the last piece; otherwise the request (`frame`, whole) goes to the
    /// session now attached, or waits for one, like any other.
    pub fn streamed(&self, stream: &Stream, frame: Option<Bytes>, budget: &Budget) -> bool {
        let mut state = self.lock();
        state.pending.insert(stream.id);
        // Its first pieces went to the stream's session.
        state.sent.insert(stream.id);
        let same = state
            .session
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, &stream.session));
        if same {
            return true;
        }
        drop(state);
        self.enqueued(stream.id, frame, budget);
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
        session.closed.cancel();
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
    defaults: Settings,
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
                channel.lock().idle_since = at;
            }
            map.insert(record.name.clone(), Arc::new(channel));
        }
        for (name, id) in &snapshot.pending {
            let channel = map
                .entry(name.clone())
                .or_insert_with(|| Arc::new(Channel::new(name.clone(), defaults, None)));
            // It may have been sent to a CLI before the relay stopped.
            let mut state = channel.lock();
            state.pending.insert(*id);
            state.sent.insert(*id);
        }
        Channels {
            map: Mutex::new(map),
            defaults,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Channel>>> {
        self.map.lock().expect("channel map lock is never poisoned")
    }

    /// The relay-wide default settings.
    pub fn defaults(&self) -> Settings {
        self.defaults
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
            let mut state = channel.lock();
            if let Some(licence) = licence {
                may_claim(name, state.owner.as_deref(), created, licence)?;
            }
            if state.session.is_some() {
                return Err(format!(
                    "channel {name} is in use by another hooks session; stop that one or pick another --channel"
                ));
            }
            state.session = Some(Arc::clone(session));
            state.settings = settings;
            state.ready = state.pending.iter().copied().collect();
            state.in_hand = false;
            if let Some(licence) = licence {
                state.owner = Some(licence.owner.0.clone());
            }
            drop(state);
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
            map.retain(|name, channel| {
                let state = channel.lock();
                if state.session.is_some() || state.idle_since > cutoff {
                    return true;
                }
                let last = state.pending.last().copied().unwrap_or(RequestId(0));
                idle.push((name.clone(), last, state.pending.len()));
                false
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
            let state = channel.lock();
            if state.owner.is_none() {
                names.push(channel.name.clone());
                queued += state.pending.len();
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
            let state = channel.lock();
            if let Some(session) = &state.session {
                stats.attached += 1;
                stats.outbox_bytes += session.outbox.held();
            }
            stats.queued += state.pending.len();
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

/// Whether the session holding `licence` may claim channel `name`, owned by `owner` (a token
/// digest) and just `created` or not: its owner may, a new name goes to whoever claims it, and
/// the tokens file may give any name to a token. A channel claimed while the relay was open
/// (no owner) goes to no token by asking first, since what it queued was meant for someone.
fn may_claim(
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

/// Now, in milliseconds since the Unix epoch, as the queue records times.
fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_outbox_keeps_order_bounds_its_bytes_and_wakes_its_reader() {
        let outbox = Arc::new(Outbox::new(4));
        let mut taken = Taken::default();
        assert!(outbox.try_send(Bytes::from_static(b"1")));
        assert!(outbox.try_send(Bytes::from_static(b"22")));
        assert!(
            !outbox.try_send(Bytes::from_static(b"33")),
            "3 of 4 bytes held"
        );
        assert_eq!(outbox.held(), 3);
        // A frame larger than the outbox waits until it is empty, and is not overtaken.
        let large = tokio::spawn({
            let outbox = Arc::clone(&outbox);
            async move { outbox.send(Bytes::from_static(b"55555")).await }
        });
        tokio::task::yield_now().await;
        assert!(
            !outbox.try_send(Bytes::from_static(b"4")),
            "behind the large one"
        );
        assert_eq!(outbox.recv(&mut taken).await, "1");
        assert_eq!(outbox.try_recv(&mut taken).unwrap(), "22");
        assert_eq!(outbox.held(), 3, "taken and not yet written");
        assert!(!large.is_finished());
        outbox.written(std::mem::take(&mut taken));
        large.await.unwrap();
        assert_eq!(outbox.held(), 5);
        assert_eq!(outbox.recv(&mut taken).await, "55555");
        assert_eq!(outbox.try_recv(&mut taken), None);
        outbox.written(std::mem::take(&mut taken));
        assert_eq!(outbox.held(), 0);
        // A reader waiting on an empty outbox wakes for the next frame.
        let reader = tokio::spawn({
            let outbox = Arc::clone(&outbox);
            async move { outbox.recv(&mut Taken::default()).await }
        });
        tokio::task::yield_now().await;
        assert!(outbox.try_send(Bytes::from_static(b"4")));
        assert_eq!(reader.await.unwrap(), "4");
    }

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
