//! Whether this node's layout on NATS is there, and making it again when NATS comes back
//! without it (a server restarted on an empty store, a JetStream reset, the stream deleted by
//! hand).
//!
//! The layout is checked again after every reconnect, at every upkeep, and whenever an
//! operation on it fails; until the check finds (or makes) it whole the node says not ready and
//! refuses webhooks and sessions. A stream made again numbers its requests from 1 again under a
//! new epoch (its creation time): the node takes it, and ends the sessions attached under the
//! old one, whose consumers and leases went with the old layout, so their CLIs attach again
//! and learn the new epoch from the hello.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use tokio::sync::{watch, Notify};
use tracing::{info, warn};

use super::layout::{ensure, Ensured};
use super::Limits;

/// The pause after a failed check grows by this, up to [`RETRY_CAP`].
const RETRY_STEP: Duration = Duration::from_millis(250);

/// The longest pause between checks of a layout that cannot be made yet.
const RETRY_CAP: Duration = Duration::from_secs(2);

/// The layout's state, shared by the node, its sessions and the NATS client's events.
pub(super) struct Health {
    /// The layout was found whole since the last disconnection.
    whole: AtomicBool,
    /// Disconnections so far: a check that began before the last one proves nothing.
    disconnections: AtomicU64,
    /// Why the last check failed, while it has not succeeded since.
    failure: Mutex<Option<String>>,
    /// Asks for a check.
    wake: Notify,
    /// The stream's epoch; changes when the stream was made again.
    epoch: watch::Sender<u64>,
}

impl Health {
    /// A layout not yet made.
    pub fn new() -> Arc<Health> {
        Arc::new(Health {
            whole: AtomicBool::new(false),
            disconnections: AtomicU64::new(0),
            failure: Mutex::new(None),
            wake: Notify::new(),
            epoch: watch::Sender::new(0),
        })
    }

    /// The layout was made at startup, under `epoch`.
    pub fn made(&self, epoch: u64) {
        self.epoch.send_replace(epoch);
        self.whole.store(true, Ordering::Release);
    }

    /// The connection to NATS was lost: what is there once it is back is checked first.
    pub fn disconnected(&self) {
        self.disconnections.fetch_add(1, Ordering::AcqRel);
        self.whole.store(false, Ordering::Release);
    }

    /// Asks for a check of the layout (after a reconnect, or an operation on it that failed).
    pub fn check(&self) {
        self.wake.notify_one();
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        *self.epoch.borrow()
    }

    /// Resolves once the epoch is other than `epoch`.
    pub async fn epoch_changed(&self, epoch: u64) {
        let mut epochs = self.epoch.subscribe();
        // The sender lives as long as `self`: an error cannot happen while this is borrowed.
        let _ = epochs.wait_for(|now| *now != epoch).await;
    }

    /// `Err` saying why the node cannot take webhooks for want of its layout.
    pub fn ready(&self) -> Result<(), String> {
        if self.whole.load(Ordering::Acquire) {
            return Ok(());
        }
        match &*self.lock_failure() {
            Some(e) => Err(format!(
                "NATS lacks the relay's stream or buckets, and they could not be made again: {e}"
            )),
            None => Err("checking the relay's stream and buckets on NATS".to_owned()),
        }
    }

    /// Takes the stream's `epoch`, if it changed: the node's sessions under the old one end.
    pub fn take_epoch(&self, epoch: u64) {
        let before = self.epoch.send_replace(epoch);
        if before != epoch {
            warn!(
                before,
                epoch, "the requests' stream was made again: new epoch; sessions attach again"
            );
        }
    }

    /// Checks the layout whenever asked to, making again what is missing, until the process ends.
    pub async fn keep(self: Arc<Health>, js: jetstream::Context, limits: Limits) {
        loop {
            self.wake.notified().await;
            let mut failures = 0u32;
            loop {
                let since = self.disconnections.load(Ordering::Acquire);
                match ensure(&js, &limits).await {
                    Ok(ensured) => {
                        self.take_epoch(ensured.epoch);
                        if self.disconnections.load(Ordering::Acquire) == since {
                            self.found(&ensured);
                        }
                        // Else the reconnection asks for another check.
                        break;
                    }
                    Err(e) => {
                        self.whole.store(false, Ordering::Release);
                        if failures == 0 {
                            warn!(error = %e, "the relay's stream or buckets are missing on NATS and could not be made again; webhooks get 503 until they are");
                        }
                        *self.lock_failure() = Some(e);
                        failures += 1;
                        tokio::time::sleep((RETRY_STEP * failures).min(RETRY_CAP)).await;
                    }
                }
            }
        }
    }

    fn found(&self, ensured: &Ensured) {
        if !ensured.made.is_empty() {
            warn!(made = ?ensured.made, "NATS had lost part of the relay's layout; made it again (what it held is gone)");
        }
        *self.lock_failure() = None;
        if !self.whole.swap(true, Ordering::AcqRel) {
            info!("the relay's stream and buckets are on NATS; ready");
        }
    }

    fn lock_failure(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.failure.lock().expect("failure lock is never poisoned")
    }
}
