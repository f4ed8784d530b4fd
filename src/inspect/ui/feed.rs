//! Where rows come from besides the live feed: the store worker, a thread with its own reading
//! connection that answers the loop's jobs (the list for a filter, what is new since the last
//! read, a capture whole) and watches the store for commits made by other connections (SQLite's
//! `data_version`), so `hooks inspect` sees what a running `hooks listen` writes within a
//! second, and a UI that fell behind the live feed catches up.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::effects::{self, Job, Reply};
use super::state::{Row, MAX_ROWS};
use super::update::{Msg, Rows};
use crate::exchange::CaptureId;
use crate::query::value::{Compare, Op};
use crate::query::{Query, Term};
use crate::store::{CaptureRef, Store, StoreError};

/// How often the worker looks for commits by other processes when the store is all it has
/// (`hooks inspect`): well under the second within which new captures must appear.
pub const POLL_STORE: Duration = Duration::from_millis(250);

/// How often it looks when a live feed brings this process's captures (`listen --ui`): for
/// replays other processes record.
pub const POLL_BESIDE_FEED: Duration = Duration::from_secs(1);

/// The store worker's side: its connection (opened when the store exists) and what it reports
/// to.
pub struct Worker {
    path: PathBuf,
    store: Option<Store>,
    replies: mpsc::Sender<Reply>,
    version: Option<i64>,
    poll: Duration,
}

impl Worker {
    /// Starts the worker thread on the store at `path`, polling it every `poll`; jobs go in
    /// through the returned sender, replies come out through `replies`. The thread ends when
    /// the sender is dropped.
    pub fn spawn(
        path: PathBuf,
        poll: Duration,
        context: effects::Context,
        replies: mpsc::Sender<Reply>,
    ) -> std::io::Result<mpsc::Sender<Job>> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let mut worker = Worker {
            path,
            store: None,
            replies,
            version: None,
            poll,
        };
        std::thread::Builder::new()
            .name("hooks-inspect-store".into())
            .spawn(move || worker.run(inbox, context))?;
        Ok(jobs)
    }

    fn run(&mut self, inbox: mpsc::Receiver<Job>, mut context: effects::Context) {
        let mut next_poll = Instant::now() + self.poll;
        loop {
            let wait = next_poll.saturating_duration_since(Instant::now());
            match inbox.recv_timeout(wait) {
                Ok(job) => {
                    let reply = match self.store() {
                        Ok(store) => effects::work(job, store, &mut context),
                        Err(e) => effects::failed(job, &e.to_string()),
                    };
                    for reply in reply {
                        if self.replies.send(reply).is_err() {
                            return;
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    next_poll = Instant::now() + self.poll;
                    if self.changed() && self.replies.send(Reply::Msg(Msg::StoreChanged)).is_err() {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// The reading connection, opened on first use (`hooks inspect` may start before any
    /// `hooks listen` made the store).
    fn store(&mut self) -> Result<&Store, StoreError> {
        if self.store.is_none() {
            let store = Store::open(&self.path)?;
            // The version to compare with is taken before anything is read, so a commit made
            // while the first rows are read is noticed at the next look.
            self.version = store.data_version().ok();
            self.store = Some(store);
        }
        Ok(self.store.as_ref().expect("opened above"))
    }

    /// Whether another connection committed since the last look (a store that appeared
    /// counts).
    fn changed(&mut self) -> bool {
        let had_store = self.store.is_some();
        let Ok(store) = self.store() else {
            return false;
        };
        let version = store.data_version().ok();
        let before = std::mem::replace(&mut self.version, version);
        !had_store || before != version
    }
}

/// The newest captures matching `filter`, oldest first, to replace the list.
pub fn load(store: &Store, generation: u64, filter: Option<&Query>) -> Result<Rows, StoreError> {
    let through = newest(store)?;
    let rows = match through {
        None => Vec::new(),
        Some(through) => select(store, filter, None, through)?,
    };
    Ok(Rows {
        generation,
        rows,
        through,
        replace: true,
    })
}

/// The captures after `after` matching `filter`, oldest first, to join the list.
pub fn catch_up(
    store: &Store,
    generation: u64,
    filter: Option<&Query>,
    after: Option<CaptureId>,
) -> Result<Rows, StoreError> {
    let through = newest(store)?;
    let rows = match through {
        Some(through) if Some(through) > after => select(store, filter, after, through)?,
        _ => Vec::new(),
    };
    Ok(Rows {
        generation,
        rows,
        through: through.max(after),
        replace: false,
    })
}

/// The newest capture id, `None` for an empty store.
fn newest(store: &Store) -> Result<Option<CaptureId>, StoreError> {
    match store.resolve(CaptureRef::Last) {
        Ok(id) => Ok(Some(id)),
        Err(StoreError::NoCaptures) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The newest [`MAX_ROWS`] captures in `(after, through]` matching `filter`, oldest first.
fn select(
    store: &Store,
    filter: Option<&Query>,
    after: Option<CaptureId>,
    through: CaptureId,
) -> Result<Vec<Row>, StoreError> {
    let id = |op, value: CaptureId| Query::term(Term::Id(Compare { op, value: value.0 }));
    let mut query = id(Op::Le, through);
    if let Some(after) = after {
        query = query.and(id(Op::Gt, after));
    }
    if let Some(filter) = filter {
        query = query.and(filter.clone());
    }
    let mut rows: Vec<Row> = store
        .list(Some(&query), MAX_ROWS)?
        .into_iter()
        .map(Row::from_summary)
        .collect();
    rows.reverse();
    Ok(rows)
}
