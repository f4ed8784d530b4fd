//! What `hooks listen` records: each forwarded exchange goes to the capture store once the
//! answer is on its way to the relay, and a delivery already captured by an earlier run (the
//! relay redelivers what was not acknowledged) is recognised so the app does not get it twice.
//! Commits are reported in batches, in the order captures were queued (see `settle`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::delivery::Delivery;
use crate::cli::ListenArgs;
use crate::exchange::{CaptureId, Exchange};
use crate::store::{self, Retention, StoreError};

/// Records `listen`'s exchanges; absent with `--no-capture`.
pub struct Recorder {
    writer: store::Writer,
    /// Whether captures are being saved, so a failing disk is reported once, not per request.
    health: Mutex<SaveHealth>,
}

/// Opens the capture store for `listen` (in a blocking task: SQLite blocks), unless
/// `--no-capture`. A damaged store is moved aside and a new one started, with a message on stderr.
pub async fn open(args: &ListenArgs) -> anyhow::Result<Option<Recorder>> {
    if args.no_capture {
        return Ok(None);
    }
    let retention = Retention {
        keep: Some(args.keep),
        max_age: args
            .keep_days
            .map(|days| Duration::from_secs(u64::from(days) * 86_400)),
    };
    let path = store::path()?;
    let (writer, moved) = tokio::task::spawn_blocking(move || {
        let (conn, moved) = store::open_or_replace(&path)?;
        let writer = store::Writer::spawn(conn, path.clone(), retention)?;
        Ok::<_, StoreError>((writer, moved.map(|moved| (path, moved))))
    })
    .await
    .context("the capture store's opening task failed")?
    .context("could not open the capture store")?;
    if let Some((path, moved)) = moved {
        eprintln!(
            "hooks: warning: the capture store {} was damaged; moved it to {} and started a new one",
            path.display(),
            moved.display()
        );
    }
    Ok(Some(Recorder {
        writer,
        health: Mutex::new(SaveHealth::default()),
    }))
}

impl Recorder {
    /// Whether `delivery`, on the channel at `channel_url`, was captured by an earlier run of
    /// hooks.
    pub fn seen_before(&self, channel_url: &str, delivery: Delivery) -> bool {
        self.writer
            .captured_before(channel_url, delivery.epoch, delivery.id.0)
            .is_some()
    }

    /// The outcomes of [`Recorder::record`]'s captures, one message per commit, in the order they
    /// were queued; `None` once taken.
    pub fn take_commits(&mut self) -> Option<store::Commits> {
        self.writer.take_commits()
    }

    /// Queues `exchange`; its outcome comes on the commits stream
    /// ([`Recorder::take_commits`]), in turn, with the exchange. When it cannot be queued
    /// (reported on stderr), the exchange comes back at once.
    pub fn record(&self, exchange: Box<Exchange>) -> Result<(), Box<Exchange>> {
        self.writer
            .record_in_turn(exchange)
            .map_err(|(e, exchange)| {
                self.failed(&e);
                exchange
            })
    }

    /// The capture id from a commit's outcome; a failure is reported on stderr.
    pub fn committed(&self, outcome: Result<CaptureId, StoreError>) -> Option<CaptureId> {
        match outcome {
            Ok(id) => {
                if let Some(message) = self.health().saved(Instant::now()) {
                    eprintln!("{message}");
                }
                Some(id)
            }
            Err(e) => {
                self.failed(&e);
                None
            }
        }
    }

    /// Reports a failed write, once per run of failures; forwarding goes on regardless.
    fn failed(&self, e: &StoreError) {
        if let Some(message) = self.health().failed(Instant::now(), e) {
            eprintln!("{message}");
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, SaveHealth> {
        self.health.lock().expect("health lock is never poisoned")
    }
}

/// How long captures must be saved without a failure before hooks says they are saved again. A
/// nearly full disk takes small captures and refuses large ones: saying so at each turn flooded
/// the terminal with "could not save" and "saved again" (issue 17).
const RECOVERED_AFTER: Duration = Duration::from_secs(30);

/// Whether captures are being saved, and what to say when that changes: once when they start
/// failing, once when they have been saved again for [`RECOVERED_AFTER`].
#[derive(Debug, Default)]
struct SaveHealth {
    /// Set while captures fail.
    failing: Option<Failing>,
}

#[derive(Debug)]
struct Failing {
    /// When the latest capture could not be saved.
    last: Instant,
    /// Captures not saved since the first failure.
    lost: u64,
}

impl SaveHealth {
    /// A capture could not be saved: the message to print, for the first of a run of failures.
    fn failed(&mut self, now: Instant, e: &StoreError) -> Option<String> {
        match &mut self.failing {
            Some(failing) => {
                failing.last = now;
                failing.lost += 1;
                None
            }
            None => {
                self.failing = Some(Failing { last: now, lost: 1 });
                Some(format!(
                    "hooks: error: could not save a capture: {e}; forwarding continues (hooks \
                     says when captures are saved again)"
                ))
            }
        }
    }

    /// A capture was saved: the message to print, once no capture has failed for
    /// [`RECOVERED_AFTER`].
    fn saved(&mut self, now: Instant) -> Option<String> {
        let failing = self.failing.as_ref()?;
        if now.saturating_duration_since(failing.last) < RECOVERED_AFTER {
            return None;
        }
        let lost = failing.lost;
        self.failing = None;
        Some(format!(
            "hooks: captures are being saved again ({lost} could not be saved)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{Outcome, Request};
    use crate::store::{Retention, Store, Writer};
    use bytes::Bytes;

    fn exchange(body_len: usize) -> Box<Exchange> {
        let request = Request {
            method: "POST".into(),
            path: "/".into(),
            headers: Vec::new(),
            body: Bytes::from(vec![7u8; body_len]),
        };
        let refused = Outcome::Failed("refused".into());
        let target = "http://localhost:3000".into();
        Box::new(Exchange::new(0, target, request, refused, Duration::ZERO))
    }

    const FULL: &str = "hooks: error: could not save a capture: could not write to the capture \
        store /data/captures.db: the disk is full; forwarding continues (hooks says when \
        captures are saved again)";

    /// Issue 17: a nearly full disk takes small captures and refuses large ones; each turn was
    /// reported ("could not save", "saved again", "could not save", …). Real store errors: a
    /// database at its page limit fails exactly as on a full disk.
    #[tokio::test]
    async fn issue_17_a_nearly_full_disk_is_reported_once_not_back_and_forth() {
        let conn = Store::in_memory().unwrap().into_connection();
        let pages: i64 = conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        conn.pragma_update(None, "max_page_count", pages + 8)
            .unwrap();
        let mut writer =
            Writer::spawn(conn, "/data/captures.db".into(), Retention::default()).unwrap();
        let mut commits = writer.take_commits().unwrap();
        let mut health = SaveHealth::default();
        let start = Instant::now();
        let mut printed = Vec::new();
        let mut outcomes = Vec::new();
        for second in 0..4 {
            let now = start + Duration::from_secs(second);
            for size in [1 << 20, 16] {
                writer.record_in_turn(exchange(size)).unwrap();
                for (outcome, _) in commits.recv().await.unwrap() {
                    outcomes.push(outcome.is_ok());
                    printed.extend(match outcome {
                        Ok(_) => health.saved(now),
                        Err(e) => health.failed(now, &e),
                    });
                }
            }
        }
        assert_eq!(outcomes, [false, true].repeat(4), "the store takes turns");
        assert_eq!(printed, [FULL]);
        // Saved for RECOVERED_AFTER without a failure: said once.
        let later = start + Duration::from_secs(3) + RECOVERED_AFTER;
        assert_eq!(
            health.saved(later).as_deref(),
            Some("hooks: captures are being saved again (4 could not be saved)")
        );
        assert_eq!(health.saved(later), None);
    }

    #[test]
    fn a_failure_after_recovery_is_reported_again() {
        let mut health = SaveHealth::default();
        let start = Instant::now();
        let e = || StoreError::Behind;
        assert!(health.saved(start).is_none(), "healthy: nothing to say");
        assert!(health.failed(start, &e()).is_some());
        assert!(health.failed(start + RECOVERED_AFTER, &e()).is_none());
        let quiet = start + RECOVERED_AFTER * 2;
        assert!(health.saved(quiet - Duration::from_secs(1)).is_none());
        assert!(health.saved(quiet).is_some(), "a run of failures is over");
        assert!(
            health.failed(quiet, &e()).is_some(),
            "a new run of failures"
        );
    }
}
