//! The relay's backend: where webhooks wait for their CLI session, and what knows which channels
//! exist, who owns them and where their session is. Two implementations behind one seam:
//!
//! - [`Local`] (`local.rs`): one node. The queue in SQLite in `--data-dir` (or in memory for the
//!   relay `hooks listen` embeds) and the channels in this process's memory.
//! - [`Nats`] (`nats/`): one node of a cluster over NATS JetStream (`--nats URL`). A stream with a
//!   subject per channel, key-value buckets for channels and session leases, the object store for
//!   large bodies, and core request-reply for the app's answers. Any node takes any webhook and
//!   any CLI session.
//!
//! The seam is split as Svix splits its task queue: the webhook side ([`Backend::channel`],
//! [`Backend::admit`], [`Backend::send`]) and the session side ([`Backend::attach`], then the
//! [`Subscription`]'s `deliver`, `ack`, `reply` and `detach`), plus upkeep and health. Both
//! implementations pass one conformance suite (`conformance.rs`), written against the trait.
//!
//! The single-node relay's webhook path goes further than the trait (it streams a long body to the
//! session while it arrives, and into a frame file); see `webhook/`.

#[cfg(test)]
mod conformance;
pub(crate) mod local;
pub(crate) mod nats;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

pub(crate) use local::Local;
pub(crate) use nats::Nats;

use crate::channel::{Attached, Reply, Settings, Stats};
use crate::protocol::RequestId;
use crate::tokens::Licence;

/// A channel as a webhook for it sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View {
    /// The settings its CLI chose.
    pub settings: Settings,
    /// A CLI session is attached to it, on this node or another.
    pub attached: bool,
    /// Undelivered requests, when the backend counts them before a send; `None` when the send
    /// itself refuses a channel that is full ([`BackendError::Full`]).
    pub queued: Option<usize>,
}

/// A request stored by [`Backend::send`].
pub(crate) struct Sent {
    /// Its id, unique and increasing within the backend's epoch.
    pub id: RequestId,
    /// The app's reply to come, when the send asked to wait for it.
    pub reply: Option<ReplyWait>,
}

/// A sender's wait for the app's reply; dropping it withdraws the interest.
pub(crate) struct ReplyWait {
    reply: oneshot::Receiver<Reply>,
    _guard: Box<dyn Send + Sync>,
}

impl ReplyWait {
    /// A wait on `reply`, withdrawn when `guard` is dropped.
    pub fn new(reply: oneshot::Receiver<Reply>, guard: impl Send + Sync + 'static) -> Self {
        ReplyWait {
            reply,
            _guard: Box::new(guard),
        }
    }

    /// The reply, or `None` when it will never come (the backend is going away).
    pub async fn recv(self) -> Option<Reply> {
        let ReplyWait { reply, _guard } = self;
        reply.await.ok()
    }
}

/// Why a backend could not take a webhook.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BackendError {
    /// No CLI ever claimed the channel.
    #[error("unknown channel")]
    Unknown,
    /// The channel holds its limit of undelivered requests (`--max-queued`).
    #[error("the channel holds {limit} undelivered requests, its limit")]
    Full {
        /// The limit.
        limit: usize,
    },
    /// The store cannot take it now (unreachable, failing, shutting down); the sender should
    /// retry later.
    #[error("{0}")]
    Unavailable(String),
}

/// A CLI session's claim on a channel (see [`Backend::attach`]).
pub(crate) struct Claim<'a> {
    /// The channel asked for.
    pub name: &'a str,
    /// Its settings, from the CLI's hello.
    pub settings: Settings,
    /// The session's token, on a relay with tokens.
    pub licence: Option<&'a Licence<'a>>,
    /// The CLI takes long bodies in pieces (only the single-node relay streams them).
    pub stream_bodies: bool,
    /// Most requests in flight to the session (`--max-in-flight`).
    pub max_in_flight: usize,
    /// Bytes its outbox holds.
    pub outbox_bytes: usize,
}

/// What upkeep did, for the log.
#[derive(Debug, Default)]
pub(crate) struct Upkept {
    /// Requests deleted for being older than the retention.
    pub expired: usize,
    /// Channels forgotten, each with the requests it still held.
    pub forgotten: Vec<(String, usize)>,
}

/// The relay's backend; see the module's documentation.
pub(crate) trait Backend: Send + Sync {
    /// What [`Backend::attach`] gives a session.
    type Subscription: Subscription;

    /// The epoch request ids belong to: a CLI keys what it handled on (epoch, id).
    fn epoch(&self) -> u64;

    /// `Ok` when it can take webhooks now; `Err` says why not (the health endpoint's answer).
    fn ready(&self) -> Result<(), String>;

    /// The gauges of this node's metrics page.
    fn stats(&self) -> Stats;

    /// Channel `name` as a webhook sees it; `None` when no CLI ever claimed it.
    fn channel(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<View>, BackendError>> + Send;

    /// Takes one webhook from `name`'s rate allowance (`rate` per second on this node); `false`
    /// when it is over its rate.
    fn admit(&self, name: &str, rate: Option<u32>) -> bool;

    /// Stores `frame` (a request frame whose id, 0 in it, the backend gives) for channel `name`;
    /// returns once it is durable, with its id and, when `wait`, the app's reply to come.
    fn send(
        &self,
        name: &str,
        frame: Bytes,
        wait: bool,
    ) -> impl Future<Output = Result<Sent, BackendError>> + Send;

    /// Attaches a CLI session to a channel, claiming it for the session's token (the first token
    /// to claim a name owns it) when no other session holds it; `Err` is the sentence refusing
    /// the session.
    fn attach(
        &self,
        claim: Claim<'_>,
    ) -> impl Future<Output = Result<Self::Subscription, String>> + Send;

    /// Deletes requests older than `retention` and forgets the channels no session attached to
    /// for as long.
    fn upkeep(&self, retention: Duration) -> impl Future<Output = Upkept> + Send;

    /// Commits what is held back, for a relay about to stop.
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// A CLI session attached to its channel: the requests for it, in order, and what it answers.
pub(crate) trait Subscription: Send + Sync {
    /// The session's outbox (frames for its writer) and window.
    fn attached(&self) -> &Arc<Attached>;

    /// Requests waiting for it when it attached.
    fn queued(&self) -> usize;

    /// Sends the channel's requests to the session's outbox, oldest first, redeliveries marked;
    /// returns when the session must end (its outbox closed, its claim lost, the store failed).
    fn deliver(&self) -> impl Future<Output = ()> + Send;

    /// The CLI handled request `id`: it is deleted (a lost acknowledgement means one
    /// redelivery).
    fn ack(&self, id: RequestId);

    /// The app's reply to request `id`, for the sender waiting for it, if one still is.
    fn reply(&self, id: RequestId, reply: Reply);

    /// Detaches the session: nothing more is sent to it, and the channel's retention counts
    /// from now.
    fn detach(self) -> impl Future<Output = ()> + Send;
}

/// The backend a relay runs on.
pub(crate) enum Backends {
    /// One node.
    Local(Local),
    /// A node of a cluster over NATS JetStream.
    Nats(Nats),
}

/// A session attached through [`Backends`].
pub(crate) enum AnySubscription {
    /// On the single-node backend.
    Local(local::LocalSubscription),
    /// On the cluster backend (boxed: its consumer's description is large, and an idle session
    /// of the single-node relay should not pay for it).
    Nats(Box<nats::NatsSubscription>),
}

/// Calls `$method` on whichever backend `$self` is.
macro_rules! either {
    ($self:expr, $b:ident => $call:expr) => {
        match $self {
            Backends::Local($b) => $call,
            Backends::Nats($b) => $call,
        }
    };
}

impl Backends {
    /// The single-node backend, whose webhook path streams bodies (see `webhook/`).
    pub fn local(&self) -> Option<&Local> {
        match self {
            Backends::Local(local) => Some(local),
            Backends::Nats(_) => None,
        }
    }
}

impl Backend for Backends {
    type Subscription = AnySubscription;

    fn epoch(&self) -> u64 {
        either!(self, b => b.epoch())
    }

    fn ready(&self) -> Result<(), String> {
        either!(self, b => b.ready())
    }

    fn stats(&self) -> Stats {
        either!(self, b => b.stats())
    }

    async fn channel(&self, name: &str) -> Result<Option<View>, BackendError> {
        either!(self, b => b.channel(name).await)
    }

    fn admit(&self, name: &str, rate: Option<u32>) -> bool {
        either!(self, b => b.admit(name, rate))
    }

    async fn send(&self, name: &str, frame: Bytes, wait: bool) -> Result<Sent, BackendError> {
        either!(self, b => b.send(name, frame, wait).await)
    }

    async fn attach(&self, claim: Claim<'_>) -> Result<AnySubscription, String> {
        match self {
            Backends::Local(b) => b.attach(claim).await.map(AnySubscription::Local),
            Backends::Nats(b) => b
                .attach(claim)
                .await
                .map(|s| AnySubscription::Nats(Box::new(s))),
        }
    }

    async fn upkeep(&self, retention: Duration) -> Upkept {
        either!(self, b => b.upkeep(retention).await)
    }

    async fn close(&self) {
        either!(self, b => b.close().await)
    }
}

/// Calls `$method` on whichever subscription `$self` is.
macro_rules! either_sub {
    ($self:expr, $s:ident => $call:expr) => {
        match $self {
            AnySubscription::Local($s) => $call,
            AnySubscription::Nats($s) => $call,
        }
    };
}

impl Subscription for AnySubscription {
    fn attached(&self) -> &Arc<Attached> {
        either_sub!(self, s => s.attached())
    }

    fn queued(&self) -> usize {
        either_sub!(self, s => s.queued())
    }

    async fn deliver(&self) {
        // The cluster's futures are boxed: awaited inline, they would make every session's
        // future, single-node ones included, as large as theirs for as long as it lives.
        match self {
            AnySubscription::Local(s) => s.deliver().await,
            AnySubscription::Nats(s) => Box::pin(s.deliver()).await,
        }
    }

    fn ack(&self, id: RequestId) {
        either_sub!(self, s => s.ack(id))
    }

    fn reply(&self, id: RequestId, reply: Reply) {
        either_sub!(self, s => s.reply(id, reply))
    }

    async fn detach(self) {
        match self {
            AnySubscription::Local(s) => s.detach().await,
            AnySubscription::Nats(s) => Box::pin(s.detach()).await,
        }
    }
}

/// How long a sender waits at most for the store to take a webhook before it is answered `503`.
pub(crate) const STORE_TIMEOUT: Duration = Duration::from_secs(5);
