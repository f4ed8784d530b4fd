//! What `hooks listen` records: each forwarded exchange goes to the capture store once the
//! answer is on its way to the relay, and a delivery already captured by an earlier run (the
//! relay redelivers what was not acknowledged) is recognised so the app does not get it twice.
//! Commits are reported in batches, in the order captures were queued (see `listen`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use relay_server::protocol::{Header, RequestId};

use crate::cli::ListenArgs;
use crate::forward::{AppResponse, ForwardError};
use crate::store::{self, Outcome, Record, Request, Response, Retention, StoreError};

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

/// Records `listen`'s exchanges; absent with `--no-capture`.
pub struct Recorder {
    writer: store::Writer,
    /// Where `listen` forwards, recorded with each capture.
    target: String,
    /// The attached channel's name and public URL.
    channel: Mutex<Option<(String, String)>>,
    /// Whether the last write failed, so a failing disk is reported once, not per request.
    failing: AtomicBool,
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
    pub fn seen_before(&self, relay_id: RequestId) -> bool {
        let channel = self.channel.lock().expect("channel lock is never poisoned");
        channel
            .as_ref()
            .is_some_and(|(_, url)| self.writer.captured_before(url, relay_id.0).is_some())
    }

    /// The outcomes of [`Recorder::record`]'s captures, one message per commit, in the order they
    /// were queued; `None` once taken.
    pub fn take_commits(&mut self) -> Option<store::Commits> {
        self.writer.take_commits()
    }

    /// The capture of `forwarded`, for [`Recorder::record`].
    pub fn capture(&self, forwarded: Forwarded<'_>) -> Record {
        let (channel, channel_url) = self.channel();
        let outcome = match forwarded.result {
            Ok(response) => Outcome::Answered(Response {
                status: response.status,
                headers: response.headers.clone(),
                body: response.body.clone(),
            }),
            Err(e) => Outcome::Failed(e.to_string()),
        };
        Record {
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
        }
    }

    /// Queues `record`; its outcome comes on the commits stream ([`Recorder::take_commits`]),
    /// in turn. `false` if it was dropped (reported on stderr).
    pub fn record(&self, record: Record) -> bool {
        match self.writer.record_in_turn(record) {
            Ok(()) => true,
            Err(e) => {
                self.failed(&e);
                false
            }
        }
    }

    /// The capture id from a commit's outcome; a failure is reported on stderr.
    pub fn committed(&self, outcome: Result<i64, StoreError>) -> Option<i64> {
        match outcome {
            Ok(id) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    eprintln!("hooks: captures are being saved again");
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
        if !self.failing.swap(true, Ordering::Relaxed) {
            eprintln!("hooks: error: could not save a capture: {e}; forwarding continues");
        }
    }
}
