//! What `hooks listen` records: each forwarded exchange goes to the capture store once the
//! answer is on its way to the relay, and a delivery already captured by an earlier run (the
//! relay redelivers what was not acknowledged) is recognised so the app does not get it twice.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use relay_server::protocol::{Header, RequestId};
use tokio::sync::oneshot;

use crate::cli::ListenArgs;
use crate::forward::{AppResponse, ForwardError};
use crate::store::{self, Outcome, Pending, Record, Request, Response, Retention, StoreError};

/// Longest a forward waits to learn whether the store holds its delivery; past it, the request is
/// forwarded (at least once beats never).
const LOOKUP_WAIT: Duration = Duration::from_secs(2);

/// One forwarded request and its outcome, as `listen` hands it over.
pub struct Forwarded<'a> {
    /// The relay's request id.
    pub relay_id: RequestId,
    /// When hooks received it, in ms since the Unix epoch.
    pub received_at_ms: i64,
    /// HTTP method.
    pub method: &'a str,
    /// Path after the channel, with the query.
    pub path: &'a str,
    /// Request headers in order.
    pub headers: &'a [Header],
    /// Request body.
    pub body: &'a Bytes,
    /// The app's answer, or why there was none.
    pub result: &'a Result<AppResponse, ForwardError>,
    /// From forwarding to the whole answer.
    pub duration: Duration,
    /// The provider event recognised in it.
    pub event: Option<&'a crate::inspect::Recognized>,
    /// The signature verdict, as JSON (`{"provider","verdict","reason"}`).
    pub signature: Option<String>,
}

/// A queued capture: its commit, and its turn to be printed.
pub struct Queued {
    /// The capture's id, once committed.
    pub pending: Pending,
    /// Its place among the request lines.
    pub turn: Turn,
}

/// A place in line: request lines are printed in the order their captures were queued, which is
/// the order of their ids, although one commit wakes all the handlers of its batch at once.
pub struct Turn {
    before: Option<oneshot::Receiver<()>>,
    /// Dropped with the turn, once this exchange is printed, which lets the next one go.
    _done: oneshot::Sender<()>,
}

impl Turn {
    /// Waits until the exchange queued before this one is printed (or its handler is gone).
    pub async fn wait(&mut self) {
        if let Some(before) = self.before.take() {
            let _ = before.await;
        }
    }
}

/// Records `listen`'s exchanges; absent with `--no-capture`.
pub struct Recorder {
    writer: store::Writer,
    /// Where `listen` forwards, recorded with each capture.
    target: String,
    /// The attached channel's name and public URL.
    channel: Mutex<Option<(String, String)>>,
    /// Whether the last write failed, so a failing disk is reported once, not per request.
    failing: AtomicBool,
    /// The turn of the capture queued last.
    last_turn: Mutex<Option<oneshot::Receiver<()>>>,
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
        target: args.forward_to.to_string(),
        channel: Mutex::new(None),
        failing: AtomicBool::new(false),
        last_turn: Mutex::new(None),
    }))
}

impl Recorder {
    /// Notes the channel the session is attached to, recorded with each capture.
    pub fn attached(&self, channel: &str, url: &str) {
        *self.channel.lock().expect("channel lock is never poisoned") =
            Some((channel.to_owned(), url.to_owned()));
    }

    fn channel(&self) -> (Option<String>, Option<String>) {
        match &*self.channel.lock().expect("channel lock is never poisoned") {
            Some((name, url)) => (Some(name.clone()), Some(url.clone())),
            None => (None, None),
        }
    }

    /// Whether delivery `relay_id` was captured by an earlier run of hooks on this channel.
    pub async fn seen_before(&self, relay_id: RequestId) -> bool {
        let Some(url) = self.channel().1 else {
            return false;
        };
        let lookup = self.writer.captured_before(&url, relay_id.0);
        matches!(
            tokio::time::timeout(LOOKUP_WAIT, lookup).await,
            Ok(Ok(Some(_)))
        )
    }

    /// Queues the capture of `forwarded`; `None` if it was dropped (reported on stderr).
    pub fn record(&self, forwarded: Forwarded<'_>) -> Option<Queued> {
        let (channel, channel_url) = self.channel();
        let outcome = match forwarded.result {
            Ok(response) => Outcome::Answered(Response {
                status: response.status,
                headers: response.headers.clone(),
                body: response.body.clone(),
            }),
            Err(e) => Outcome::Failed(e.to_string()),
        };
        let record = Record {
            received_at_ms: forwarded.received_at_ms,
            channel,
            channel_url,
            relay_id: Some(forwarded.relay_id.0),
            target: self.target.clone(),
            request: Request {
                method: forwarded.method.to_owned(),
                path: forwarded.path.to_owned(),
                headers: forwarded.headers.to_vec(),
                body: forwarded.body.clone(),
            },
            outcome,
            duration: forwarded.duration,
            signature: forwarded.signature,
            event_type: forwarded.event.and_then(|e| e.event_type.clone()),
            event_id: forwarded.event.and_then(|e| e.event_id.clone()),
            replay_of: None,
        };
        // Queueing and taking a turn under one lock keeps turns in the order of the ids.
        let mut last = self.last_turn.lock().expect("turn lock is never poisoned");
        match self.writer.record(record) {
            Ok(pending) => {
                let (done, next) = oneshot::channel();
                let before = last.replace(next);
                Some(Queued {
                    pending,
                    turn: Turn {
                        before,
                        _done: done,
                    },
                })
            }
            Err(e) => {
                drop(last);
                self.failed(&e);
                None
            }
        }
    }

    /// The capture id from a commit's outcome; a failure is reported on stderr.
    pub fn committed(
        &self,
        outcome: Result<Result<i64, StoreError>, oneshot::error::RecvError>,
    ) -> Option<i64> {
        match outcome {
            Ok(Ok(id)) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    eprintln!("hooks: captures are being saved again");
                }
                Some(id)
            }
            Ok(Err(e)) => {
                self.failed(&e);
                None
            }
            Err(_) => {
                self.failed(&StoreError::Closed);
                None
            }
        }
    }

    /// Reports a failed write, once per run of failures; forwarding goes on regardless.
    fn failed(&self, e: &StoreError) {
        if !self.failing.swap(true, Ordering::Relaxed) {
            eprintln!("hooks: error: could not save a capture: {e}; forwarding continues");
        }
    }
}
