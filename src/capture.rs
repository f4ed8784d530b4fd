//! What `hooks listen` records: each forwarded exchange goes to the capture store once the
//! answer is on its way to the relay, and a delivery already captured by an earlier run (the
//! relay redelivers what was not acknowledged) is recognised so the app does not get it twice.
//! Commits are reported in batches, in the order captures were queued (see `listen`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use relay_server::protocol::RequestId;

use crate::cli::ListenArgs;
use crate::inspect::{Answer, Exchange};
use crate::store::{self, Outcome, Record, Request, Response, Retention, StoreError};

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

    /// The capture of `exchange`, for [`Recorder::record`]. Its headers and bodies move into
    /// the record rather than being copied (a dozen allocations and frees per webhook);
    /// [`restore`] puts them back once the record returns from its commit.
    pub fn capture(&self, exchange: &mut Exchange) -> Box<Record> {
        let (channel, channel_url) = self.channel();
        let outcome = match (&mut exchange.answer, &exchange.error) {
            (Some(answer), _) => Outcome::Answered(Response {
                status: answer.status,
                headers: std::mem::take(&mut answer.headers),
                body: std::mem::take(&mut answer.body),
            }),
            (None, error) => Outcome::Failed(error.clone().unwrap_or_default()),
        };
        let event = exchange.event.as_ref();
        Box::new(Record {
            received_at_ms: i64::try_from(exchange.received_at_ms).unwrap_or(i64::MAX),
            channel,
            channel_url,
            relay_id: Some(exchange.relay_id),
            target: self.target.clone(),
            request: Request {
                method: exchange.method.clone(),
                path: exchange.path.clone(),
                headers: std::mem::take(&mut exchange.request_headers),
                body: std::mem::take(&mut exchange.request_body),
            },
            outcome,
            duration: exchange.duration,
            signature: exchange.signature.as_ref().map(signature_json),
            event_type: event.and_then(|e| e.event_type.clone()),
            event_id: event.and_then(|e| e.event_id.clone()),
            replay_of: None,
            sent: false,
        })
    }

    /// Queues `record`; its outcome comes on the commits stream ([`Recorder::take_commits`]),
    /// in turn, with the record. When it cannot be queued (reported on stderr), the record
    /// comes back at once.
    pub fn record(&self, record: Box<Record>) -> Result<(), Box<Record>> {
        self.writer.record_in_turn(record).map_err(|(e, record)| {
            self.failed(&e);
            record
        })
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

/// Moves the headers and bodies that [`Recorder::capture`] took from `exchange` back.
pub fn restore(exchange: &mut Exchange, record: Box<Record>) {
    let Record {
        request, outcome, ..
    } = *record;
    exchange.request_headers = request.headers;
    exchange.request_body = request.body;
    if let (Some(answer), Outcome::Answered(response)) = (&mut exchange.answer, outcome) {
        let Answer { headers, body, .. } = answer;
        *headers = response.headers;
        *body = response.body;
    }
}

/// A signature verdict as the store keeps it: `{"provider","verdict","reason"}`.
fn signature_json(signature: &crate::inspect::Signature) -> String {
    #[derive(serde::Serialize)]
    struct Stored<'a> {
        provider: &'a Option<String>,
        verdict: &'a str,
        reason: &'a Option<String>,
    }
    serde_json::to_string(&Stored {
        provider: &signature.provider,
        verdict: &signature.verdict,
        reason: &signature.reason,
    })
    .expect("a verdict always serializes to JSON")
}
