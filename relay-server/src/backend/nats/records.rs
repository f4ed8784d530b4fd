//! The cluster's channels and session leases, in two key-value buckets keyed by channel name.
//!
//! - A channel's [`Record`] (its owner's token digest, its settings, when it was left) is claimed
//!   with compare-and-swap: `create` for a new name, `update` at the revision read for a known
//!   one, so two nodes can never give one name to two tokens.
//! - A [`Lease`] says which node holds the channel's CLI session. The bucket's entries live
//!   [`LEASE_TTL`] unless renewed (the holder renews every [`LEASE_RENEW`] at the revision it
//!   last wrote), so a node killed with `-9` lets go within [`LEASE_TTL`], and a node that lost
//!   its lease learns so at its next renewal. A bucket-wide `max_age`, not per-key TTLs, so NATS
//!   2.10 serves.

use std::time::Duration;

use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tracing::warn;

use crate::channel::{may_claim, Settings};
use crate::tokens::Licence;

/// How long a lease lasts unless renewed: a dead node's sessions move within this.
pub(crate) const LEASE_TTL: Duration = Duration::from_secs(10);

/// How often the holder renews a lease: three tries before it lapses.
pub(crate) const LEASE_RENEW: Duration = Duration::from_secs(3);

/// Tries of a compare-and-swap that others keep winning before giving up.
const CAS_TRIES: usize = 16;

/// A channel as the cluster records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    /// The settings its CLI chose last.
    pub settings: Settings,
    /// The token digest that owns it, on relays with tokens.
    pub owner: Option<String>,
    /// When its last session ended (ms since the Unix epoch); `None` while one is attached.
    pub detached_at: Option<i64>,
    /// The last request (stream sequence) sent to any of its sessions: one at or below it that
    /// comes again is a redelivery.
    #[serde(default)]
    pub delivered: u64,
}

/// A record as the bucket holds it.
pub(crate) struct Stored {
    pub record: Record,
    pub revision: u64,
    /// When it was last written (ms since the Unix epoch, by the NATS server's clock).
    pub written_ms: i64,
}

/// Why a bucket operation failed: a sentence for the log or the refused CLI.
pub(crate) type StoreError = String;

/// The channels' bucket.
#[derive(Clone)]
pub(crate) struct Records {
    pub store: kv::Store,
}

impl Records {
    /// Channel `name`'s record and its revision; `None` when it has none (never claimed, or
    /// forgotten).
    pub async fn get(&self, name: &str) -> Result<Option<(Record, u64)>, StoreError> {
        Ok(self
            .stored(name)
            .await?
            .map(|stored| (stored.record, stored.revision)))
    }

    /// Channel `name`'s record as stored, with its revision and when it was written.
    pub async fn stored(&self, name: &str) -> Result<Option<Stored>, StoreError> {
        let entry = self
            .store
            .entry(name)
            .await
            .map_err(|e| format!("could not read channel {name}: {e}"))?;
        Ok(entry
            .filter(|entry| entry.operation == Operation::Put)
            .and_then(|entry| match serde_json::from_slice(&entry.value) {
                Ok(record) => Some(Stored {
                    record,
                    revision: entry.revision,
                    written_ms: i64::try_from(entry.created.unix_timestamp_nanos() / 1_000_000)
                        .unwrap_or(i64::MAX),
                }),
                Err(e) => {
                    warn!(channel = %name, error = %e, "unreadable channel record; ignoring it");
                    None
                }
            }))
    }

    /// Claims `name` for a session with `settings` and `licence`: creates its record, or
    /// updates it when the licence may claim it (see [`may_claim`]). Returns the record as it
    /// was before (`None` for a new name). `Err` is the sentence refusing the session.
    pub async fn claim(
        &self,
        name: &str,
        settings: Settings,
        licence: Option<&Licence<'_>>,
    ) -> Result<Option<Record>, String> {
        let owner = licence.map(|licence| licence.owner.0.clone());
        for _ in 0..CAS_TRIES {
            let Some((before, revision)) = self.get(name).await? else {
                let record = Record {
                    settings,
                    owner: owner.clone(),
                    detached_at: None,
                    delivered: 0,
                };
                match self.store.create(name, encode(&record)).await {
                    Ok(_) => return Ok(None),
                    Err(e) if e.kind() == CreateErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(format!("could not record channel {name}: {e}")),
                }
            };
            if let Some(licence) = licence {
                may_claim(name, before.owner.as_deref(), false, licence)?;
            }
            let record = Record {
                settings,
                owner: owner.clone().or(before.owner.clone()),
                detached_at: None,
                delivered: before.delivered,
            };
            match self.store.update(name, encode(&record), revision).await {
                Ok(_) => return Ok(Some(before)),
                Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => continue,
                Err(e) => return Err(format!("could not record channel {name}: {e}")),
            }
        }
        Err(format!(
            "channel {name} is being claimed by other sessions at once; try again"
        ))
    }

    /// Records that `name`'s session ended `at` (ms since the Unix epoch), having been sent
    /// requests up to `delivered`.
    pub async fn left(&self, name: &str, at: i64, delivered: u64) -> Result<(), StoreError> {
        for _ in 0..CAS_TRIES {
            let Some((mut record, revision)) = self.get(name).await? else {
                return Ok(());
            };
            record.detached_at = Some(at);
            record.delivered = record.delivered.max(delivered);
            match self.store.update(name, encode(&record), revision).await {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => continue,
                Err(e) => return Err(format!("could not record that {name} was left: {e}")),
            }
        }
        Err(format!(
            "could not record that {name} was left: too many writers"
        ))
    }

    /// Forgets `name` if its record is still at `revision` (no session claimed it since).
    pub async fn forget(&self, name: &str, revision: u64) -> Result<bool, StoreError> {
        match self
            .store
            .delete_expect_revision(name, Some(revision))
            .await
        {
            Ok(()) => Ok(true),
            Err(e) if e.to_string().contains("wrong last sequence") => Ok(false),
            Err(e) => Err(format!("could not forget channel {name}: {e}")),
        }
    }
}

fn encode(record: &Record) -> Bytes {
    Bytes::from(serde_json::to_vec(record).expect("records serialize"))
}

/// What a lease says: which node holds the session.
#[derive(Debug, Serialize, Deserialize)]
struct Holder {
    node: String,
}

/// The leases' bucket.
#[derive(Clone)]
pub(crate) struct Leases {
    pub store: kv::Store,
}

impl Leases {
    /// Whether a session holds `name` now, on any node.
    pub async fn held(&self, name: &str) -> Result<bool, StoreError> {
        match self.store.get(name).await {
            Ok(value) => Ok(value.is_some()),
            Err(e) => Err(format!("could not read the lease of {name}: {e}")),
        }
    }

    /// Takes `name`'s lease for `node`; `Err` is the sentence refusing the session: another
    /// session holds it (maybe on a node that died, whose lease lapses within [`LEASE_TTL`]).
    pub async fn take(&self, name: &str, node: &str) -> Result<Lease, String> {
        let value = Bytes::from(
            serde_json::to_vec(&Holder {
                node: node.to_owned(),
            })
            .expect("holders serialize"),
        );
        match self.store.create(name, value.clone()).await {
            Ok(revision) => Ok(Lease {
                leases: self.clone(),
                name: name.to_owned(),
                value,
                revision: Mutex::new(Some(revision)),
            }),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Err(format!(
                "channel {name} is in use by another hooks session; stop that one or pick another --channel"
            )),
            Err(e) => Err(format!(
                "the relay cannot reach its cluster's store: {e}; retry later"
            )),
        }
    }
}

/// A node's hold on a channel's session.
pub(crate) struct Lease {
    leases: Leases,
    name: String,
    value: Bytes,
    /// The revision last written; `None` once the lease is lost or given back.
    revision: Mutex<Option<u64>>,
}

impl Lease {
    /// Renews the lease at the revision last written; `false` once it is lost (it lapsed and
    /// another node took it, or the store cannot be reached).
    pub async fn renew(&self) -> bool {
        let mut revision = self.revision.lock().await;
        let Some(current) = *revision else {
            return false;
        };
        match self
            .leases
            .store
            .update(&self.name, self.value.clone(), current)
            .await
        {
            Ok(next) => {
                *revision = Some(next);
                true
            }
            Err(e) => {
                warn!(channel = %self.name, error = %e, "lost the channel's session lease");
                *revision = None;
                false
            }
        }
    }

    /// Gives the lease back, if it is still held.
    pub async fn release(&self) {
        let mut revision = self.revision.lock().await;
        if let Some(current) = revision.take() {
            let deleted = self
                .leases
                .store
                .delete_expect_revision(&self.name, Some(current))
                .await;
            if let Err(e) = deleted {
                warn!(channel = %self.name, error = %e, "could not give the session lease back; it lapses by itself");
            }
        }
    }
}
