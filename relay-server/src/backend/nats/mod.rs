//! The cluster backend: this node is one of several over NATS JetStream (`--nats URL`). The
//! layout, created by the first node to start and checked by every other:
//!
//! - Stream [`STREAM`], subjects `hooks.req.<channel>`: each channel an ordered log of request
//!   frames. Work-queue retention (a request the CLI acknowledged is deleted), `max_age` the
//!   retention, at most `--max-queued` messages per subject (the publish is refused beyond: a
//!   global limit). A request's id is its stream sequence, so ids are unique and increasing
//!   across nodes, and the epoch is the stream's (from its creation time).
//! - Key-value buckets [`CHANNELS`] and [`LEASES`] (see `records.rs`).
//! - Object store [`BODIES`]: bodies too large for one message (over about 1 MiB), referenced by
//!   the message (see `replies.rs`).
//! - Core subjects `hooks.reply.<node>.<token>` for the app's answers (see `replies.rs`).
//!
//! The node holding a channel's session reads it through a pull consumer named for the channel,
//! made afresh at every attach (see `subscription.rs`).
//!
//! NATS back without the layout (its store lost) finds the nodes not ready until one of them has
//! made it again; a stream made again brings a new epoch (see `health.rs`).

mod health;
mod layout;
mod records;
mod replies;
mod subscription;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;
use bytes::Bytes;
use tracing::{info, warn};

use super::{Backend, BackendError, Claim, Sent, Upkept, View, STORE_TIMEOUT};
use crate::budget::Budget;
use crate::channel::{Attached, Settings, Stats};
use crate::config::{without_userinfo, Config, NatsSettings};
use crate::queue::now_ms;
use health::Health;
use layout::{check_version, connect, node_name, Layout};
use records::{Leases, Records};
use replies::{Bodies, Replies, REPLY_HEADER};
pub(crate) use subscription::NatsSubscription;

/// The stream of requests.
pub(crate) const STREAM: &str = "HOOKS_REQUESTS";

/// The key-value bucket of channels.
pub(crate) const CHANNELS: &str = "hooks-channels";

/// The key-value bucket of session leases.
pub(crate) const LEASES: &str = "hooks-leases";

/// The object store of large bodies.
pub(crate) const BODIES: &str = "hooks-bodies";

/// How often upkeep reads every channel's record at most: the records are many and shared by
/// every node, so less often than the single node's queue is swept.
const SCAN_EVERY: Duration = Duration::from_secs(600);

/// The subject of channel `name`'s requests.
fn subject(name: &str) -> String {
    format!("hooks.req.{name}")
}

/// The relay's settings that shape the cluster's layout and its sessions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// `--max-queued`: messages per channel's subject.
    pub max_queued: usize,
    /// `--retention`: the stream's and the object store's `max_age`.
    pub retention: Duration,
    /// JetStream replicas of the stream, buckets and store.
    pub replicas: usize,
}

impl Limits {
    /// The limits `config` sets.
    pub fn of(config: &Config) -> Limits {
        Limits {
            max_queued: config.max_queued,
            retention: config.retention,
            replicas: config.nats.as_ref().map_or(1, |nats| nats.replicas),
        }
    }
}

/// A node of the cluster; cheap to share.
pub(crate) struct Nats {
    shared: Arc<Shared>,
}

/// What the node and its sessions share.
struct Shared {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: stream::Stream,
    records: Records,
    leases: Leases,
    bodies: Bodies,
    replies: Arc<Replies>,
    /// This node's name in leases and reply subjects: random per process.
    node: String,
    /// Whether the layout is there, and the stream's epoch.
    health: Arc<Health>,
    limits: Limits,
    budget: Arc<Budget>,
    /// Sessions attached to this node, by channel: answered without asking the buckets.
    sessions: Mutex<HashMap<String, Held>>,
    /// Rate allowances of this node (`--rate` is per node), by channel.
    rates: Mutex<HashMap<String, Allowance>>,
    /// When upkeep last read every record.
    scanned: Mutex<Option<Instant>>,
}

/// A session this node holds.
struct Held {
    settings: Settings,
    attached: Arc<Attached>,
    /// Requests waiting for it, as the stream last said.
    pending: Arc<std::sync::atomic::AtomicU64>,
}

/// A channel's rate allowance on this node: tokens left, and when they were last refilled.
struct Allowance {
    tokens: f64,
    refilled: Instant,
}

impl Nats {
    /// Connects to NATS, makes (or checks) the layout, and starts taking this node's replies.
    pub async fn connect(
        settings: &NatsSettings,
        limits: Limits,
        budget: Arc<Budget>,
    ) -> anyhow::Result<Nats> {
        let hosts: Vec<&str> = settings.urls.iter().map(|u| without_userinfo(u)).collect();
        let hosts = hosts.join(",");
        let health = Health::new();
        let client = connect(settings, Arc::clone(&health))
            .await
            .with_context(|| format!("could not connect to NATS at {hosts}"))?;
        check_version(&client.server_info().version)
            .with_context(|| format!("NATS at {hosts} cannot carry the relay"))?;
        let js = jetstream::new(client.clone());
        let layout = Layout::make(&js, &limits)
            .await
            .with_context(|| format!("could not set up the relay's streams on NATS at {hosts}"))?;
        health.made(layout.epoch);
        tokio::spawn(Arc::clone(&health).keep(js.clone(), limits));
        let node = node_name();
        let max_payload = client.server_info().max_payload;
        let replies = Replies::new(&node);
        let bodies = Bodies::new(layout.bodies, &node, max_payload);
        tokio::spawn(Arc::clone(&replies).listen(client.clone(), bodies.clone()));
        let shared = Shared {
            bodies,
            js,
            client,
            stream: layout.stream,
            records: Records {
                store: layout.channels,
            },
            leases: Leases {
                store: layout.leases,
            },
            replies,
            node,
            health,
            limits,
            budget,
            sessions: Mutex::new(HashMap::new()),
            rates: Mutex::new(HashMap::new()),
            scanned: Mutex::new(None),
        };
        info!(nats = %hosts, node = %shared.node, replicas = limits.replicas, "relay node of a cluster over NATS JetStream");
        Ok(Nats {
            shared: Arc::new(shared),
        })
    }

    fn connected(&self) -> Result<(), BackendError> {
        self.ready().map_err(BackendError::Unavailable)
    }
}

impl Backend for Nats {
    type Subscription = NatsSubscription;

    fn epoch(&self) -> u64 {
        self.shared.health.epoch()
    }

    fn ready(&self) -> Result<(), String> {
        match self.shared.client.connection_state() {
            async_nats::connection::State::Connected => self.shared.health.ready(),
            _ => Err("this node cannot reach NATS".to_owned()),
        }
    }

    fn stats(&self) -> Stats {
        let sessions = self.shared.lock_sessions();
        let mut stats = Stats {
            channels: sessions.len(),
            attached: sessions.len(),
            ..Stats::default()
        };
        for held in sessions.values() {
            stats.outbox_bytes += held.attached.outbox.held();
            stats.queued += held.pending.load(std::sync::atomic::Ordering::Relaxed) as usize;
        }
        stats
    }

    async fn channel(&self, name: &str) -> Result<Option<View>, BackendError> {
        let here = self
            .shared
            .lock_sessions()
            .get(name)
            .map(|held| held.settings);
        if let Some(settings) = here {
            return Ok(Some(View {
                settings,
                attached: true,
                queued: None,
            }));
        }
        self.connected()?;
        let shared = &self.shared;
        let (record, held) = tokio::join!(shared.records.get(name), shared.leases.held(name));
        let Some((record, _)) = record.map_err(BackendError::Unavailable)? else {
            return Ok(None);
        };
        Ok(Some(View {
            settings: record.settings,
            attached: held.map_err(BackendError::Unavailable)?,
            queued: None,
        }))
    }

    fn admit(&self, name: &str, rate: Option<u32>) -> bool {
        let Some(rate) = rate else {
            return true;
        };
        let rate = f64::from(rate.max(1));
        let now = Instant::now();
        let mut rates = self
            .shared
            .rates
            .lock()
            .expect("rate lock is never poisoned");
        if rates.len() > 100_000 {
            // Full allowances are the default: forgetting them changes nothing.
            rates.retain(|_, a| now.duration_since(a.refilled).as_secs_f64() * rate < rate);
        }
        let allowance = rates.entry(name.to_owned()).or_insert(Allowance {
            tokens: rate,
            refilled: now,
        });
        let elapsed = now.duration_since(allowance.refilled).as_secs_f64();
        allowance.tokens = (allowance.tokens + elapsed * rate).min(rate);
        allowance.refilled = now;
        if allowance.tokens >= 1.0 {
            allowance.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    async fn send(&self, name: &str, frame: Bytes, wait: bool) -> Result<Sent, BackendError> {
        self.connected()?;
        let shared = &self.shared;
        let mut headers = HeaderMap::new();
        let reply = wait.then(|| {
            let (to, reply) = shared.replies.register();
            headers.insert(REPLY_HEADER, to.as_str());
            reply
        });
        let publishing = async {
            let payload = shared.bodies.pack(frame, &mut headers).await?;
            let ack = shared
                .js
                .publish_with_headers(subject(name), headers.clone(), payload)
                .await
                .map_err(|e| e.to_string())?;
            ack.await.map_err(|e| e.to_string())
        };
        let published = tokio::time::timeout(STORE_TIMEOUT, publishing).await;
        match published {
            Ok(Ok(ack)) => Ok(Sent {
                id: crate::protocol::RequestId(ack.sequence),
                reply,
            }),
            Ok(Err(e)) => {
                shared.bodies.discard(&headers).await;
                if e.contains("maximum messages per subject") {
                    return Err(BackendError::Full {
                        limit: shared.limits.max_queued,
                    });
                }
                // The stream may be gone (NATS lost its store).
                shared.health.check();
                Err(BackendError::Unavailable(format!("NATS refused it: {e}")))
            }
            Err(_) => {
                shared.health.check();
                Err(BackendError::Unavailable(format!(
                    "NATS did not store it within {STORE_TIMEOUT:?}"
                )))
            }
        }
    }

    async fn attach(&self, claim: Claim<'_>) -> Result<NatsSubscription, String> {
        self.connected().map_err(|e| format!("{e}; retry later"))?;
        let attached = NatsSubscription::attach(Arc::clone(&self.shared), claim).await;
        if attached.is_err() {
            // Refused for a reason of its own, or the layout is gone: the check tells.
            self.shared.health.check();
        }
        attached
    }

    async fn upkeep(&self, retention: Duration) -> Upkept {
        // Requests expire by themselves: the stream's max_age is the retention.
        let mut upkept = Upkept::default();
        // The layout may have gone without an error here to show it (deleted by hand).
        self.shared.health.check();
        let due = {
            let mut scanned = self
                .shared
                .scanned
                .lock()
                .expect("scan lock is never poisoned");
            let every = (retention / 4).min(SCAN_EVERY);
            let due = scanned.is_none_or(|at| at.elapsed() >= every);
            if due {
                *scanned = Some(Instant::now());
            }
            due
        };
        if due && self.ready().is_ok() {
            match self.shared.forget_idle(retention).await {
                Ok(forgotten) => upkept.forgotten = forgotten,
                Err(e) => warn!(error = %e, "could not forget idle channels"),
            }
        }
        upkept
    }

    async fn close(&self) {
        if let Err(e) = self.shared.client.flush().await {
            warn!(error = %e, "could not flush the last acknowledgements to NATS; their requests will be delivered again");
        }
    }
}

impl Shared {
    fn lock_sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.sessions
            .lock()
            .expect("session lock is never poisoned")
    }

    /// Forgets the channels no session attached to within `retention`, with their requests.
    async fn forget_idle(&self, retention: Duration) -> Result<Vec<(String, usize)>, String> {
        use futures_util::StreamExt as _;
        let cutoff =
            now_ms().saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
        let mut keys = match self.records.store.keys().await {
            Ok(keys) => keys,
            Err(e) => return Err(format!("could not list channels: {e}")),
        };
        let mut forgotten = Vec::new();
        while let Some(key) = keys.next().await {
            let name = key.map_err(|e| format!("could not list channels: {e}"))?;
            let Some(stored) = self.records.stored(&name).await? else {
                continue;
            };
            // A record that says a session is attached, with no lease, is one whose node died
            // with it: left when the record was last written, at the latest.
            let left = stored.record.detached_at.unwrap_or(stored.written_ms);
            let (idle, revision) = (left <= cutoff, stored.revision);
            if !idle || self.leases.held(&name).await? {
                continue;
            }
            if !self.records.forget(&name, revision).await? {
                continue;
            }
            let purged = self
                .stream
                .purge()
                .filter(subject(&name))
                .await
                .map(|purged| purged.purged as usize)
                .unwrap_or_else(|e| {
                    warn!(channel = %name, error = %e, "could not delete a forgotten channel's requests; they expire with the retention");
                    0
                });
            forgotten.push((name, purged));
        }
        Ok(forgotten)
    }
}
