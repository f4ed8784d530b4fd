//! The work the loop hands the store worker ([`Job`]) and what comes back ([`Reply`]): reading
//! the list and captures, comparing two, preparing a copy or an export, and sending a capture
//! again (as captured, re-signed, or as edited) through the same forwarder and recorder as
//! `hooks replay`, on the Tokio runtime so the worker never waits for the app.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};

use anyhow::anyhow;
use relay_server::protocol;

use super::feed;
use super::loaded;
use super::update::{Msg, Rows};
use crate::exchange::{display_path, CaptureId, Exchange, Request};
use crate::export;
use crate::forward::Forwarder;
use crate::inspect::sanitize::{group, sanitize};
use crate::inspect::{Palette, Redactor};
use crate::query::diff;
use crate::query::Query;
use crate::replay;
use crate::store::{Retention, Store, Writer};
use crate::target::Target;
use crate::verify::{Provider, Secret};

/// Work for the store worker.
#[derive(Debug)]
pub enum Job {
    /// The list for a filter.
    Load {
        /// Its generation.
        generation: u64,
        /// The filter.
        filter: Option<Query>,
    },
    /// What is new since `after`.
    CatchUp {
        /// The list's generation.
        generation: u64,
        /// The filter.
        filter: Option<Query>,
        /// The newest id read.
        after: Option<CaptureId>,
    },
    /// A capture whole, for the detail view.
    Open(CaptureId),
    /// Two captures compared.
    Diff(CaptureId, CaptureId),
    /// A capture as curl, for the clipboard.
    Copy(CaptureId, Option<Target>),
    /// A capture written to a file.
    Export(CaptureId, PathBuf, Option<Target>),
    /// A capture sent again.
    Replay(CaptureId, bool, Option<Target>),
    /// A capture read for the editor.
    EditLoad(CaptureId, bool, Option<Target>),
    /// A capture sent as edited.
    Send(Box<Exchange>, Request, bool, Option<Target>),
}

/// What the worker (or a replay on the runtime) hands back to the loop.
#[derive(Debug)]
pub enum Reply {
    /// A message for `update`.
    Msg(Msg),
    /// Text for the terminal's clipboard (written by the loop, which owns the terminal).
    Clipboard(CaptureId, String),
    /// A capture to open in the editor (the loop suspends the terminal for it).
    Edit(Box<Exchange>, bool, Option<Target>),
}

/// What sending needs, kept by the worker across jobs.
pub struct Context {
    /// The runtime replays run on.
    pub runtime: tokio::runtime::Handle,
    /// Masks secrets in what is shown.
    pub redactor: Redactor,
    /// The secret `R` and `E` sign with (the first).
    pub secrets: Vec<Secret>,
    /// The provider to sign as (default: recognised from the headers).
    pub provider: Option<Provider>,
    /// The store file, for the recorder.
    pub path: PathBuf,
    /// Where replays report.
    pub replies: mpsc::Sender<Reply>,
    writer: Option<Arc<Writer>>,
    forwarders: HashMap<String, Arc<Forwarder>>,
}

impl Context {
    /// A context for a worker on the store at `path`.
    pub fn new(
        runtime: tokio::runtime::Handle,
        path: PathBuf,
        secrets: Vec<Secret>,
        provider: Option<Provider>,
        replies: mpsc::Sender<Reply>,
    ) -> Context {
        let redactor = Redactor {
            show_secrets: false,
            secrets: secrets.iter().map(|s| s.expose().to_owned()).collect(),
        };
        Context {
            runtime,
            redactor,
            secrets,
            provider,
            path,
            replies,
            writer: None,
            forwarders: HashMap::new(),
        }
    }

    /// The recorder of replays, started on first use.
    fn writer(&mut self) -> anyhow::Result<Arc<Writer>> {
        if let Some(writer) = &self.writer {
            return Ok(Arc::clone(writer));
        }
        // The writer hands out its commits on the runtime.
        let _runtime = self.runtime.enter();
        let conn = Store::open(&self.path)?.into_connection();
        let writer = Arc::new(Writer::spawn(
            conn,
            self.path.clone(),
            Retention::default(),
        )?);
        self.writer = Some(Arc::clone(&writer));
        Ok(writer)
    }

    /// A forwarder to `target`, made once per target.
    fn forwarder(&mut self, target: &Target) -> anyhow::Result<Arc<Forwarder>> {
        let key = target.to_string();
        if let Some(forwarder) = self.forwarders.get(&key) {
            return Ok(Arc::clone(forwarder));
        }
        let forwarder = Arc::new(Forwarder::new(target.clone(), protocol::DEFAULT_MAX_BODY)?);
        self.forwarders.insert(key, Arc::clone(&forwarder));
        Ok(forwarder)
    }
}

/// Does `job` with `store`; what to tell the loop.
pub fn work(job: Job, store: &Store, context: &mut Context) -> Vec<Reply> {
    let failure = Failure::of(&job);
    match run(job, store, context) {
        Ok(replies) => replies,
        Err(e) => failure.replies(&format!("{e:#}")),
    }
}

/// What to tell the loop when `job` could not be done at all (no store): `why`.
pub fn failed(job: Job, why: &str) -> Vec<Reply> {
    Failure::of(&job).replies(why)
}

/// How a job's failure is reported: in the message its screen waits for, else as a message.
enum Failure {
    Load(u64),
    CatchUp(u64),
    Open(CaptureId),
    Diff(CaptureId, CaptureId),
    Other(String),
}

impl Failure {
    fn of(job: &Job) -> Failure {
        match job {
            Job::Load { generation, .. } => Failure::Load(*generation),
            Job::CatchUp { generation, .. } => Failure::CatchUp(*generation),
            Job::Open(id) => Failure::Open(*id),
            Job::Diff(a, b) => Failure::Diff(*a, *b),
            Job::Copy(id, _) => Failure::Other(format!("could not copy #{id}")),
            Job::Export(id, ..) => Failure::Other(format!("could not export #{id}")),
            Job::Replay(id, ..) | Job::EditLoad(id, ..) => {
                Failure::Other(format!("could not replay #{id}"))
            }
            Job::Send(original, ..) => {
                Failure::Other(format!("could not send the edited #{}", original.number()))
            }
        }
    }

    fn replies(self, why: &str) -> Vec<Reply> {
        let why = sanitize(why);
        let rows = |generation, replace| {
            Reply::Msg(Msg::Rows(Rows {
                generation,
                rows: Vec::new(),
                through: None,
                replace,
            }))
        };
        let say = |text: String| {
            Reply::Msg(Msg::Done {
                text,
                error: true,
                changed: false,
            })
        };
        match self {
            Failure::Load(generation) => vec![rows(generation, true), say(why)],
            Failure::CatchUp(generation) => vec![rows(generation, false), say(why)],
            Failure::Open(id) => vec![Reply::Msg(Msg::Loaded(id, Err(why)))],
            Failure::Diff(a, b) => vec![Reply::Msg(Msg::Diffed(a, b, Err(why)))],
            Failure::Other(what) => vec![say(format!("{what}: {why}"))],
        }
    }
}

fn run(job: Job, store: &Store, context: &mut Context) -> anyhow::Result<Vec<Reply>> {
    let msg = |msg| Ok(vec![Reply::Msg(msg)]);
    match job {
        Job::Load { generation, filter } => {
            msg(Msg::Rows(feed::load(store, generation, filter.as_ref())?))
        }
        Job::CatchUp {
            generation,
            filter,
            after,
        } => msg(Msg::Rows(feed::catch_up(
            store,
            generation,
            filter.as_ref(),
            after,
        )?)),
        Job::Open(id) => {
            let loaded = loaded::load(store.get(id)?, &context.redactor);
            msg(Msg::Loaded(id, Ok(Box::new(loaded))))
        }
        Job::Diff(a, b) => msg(Msg::Diffed(a, b, Ok(compare(store, a, b)?))),
        Job::Copy(id, target) => {
            let capture = store.get(id)?;
            let target = target_of(&capture, target)?;
            let text = export::curl(&capture.request, &target);
            Ok(vec![Reply::Clipboard(id, text)])
        }
        Job::Export(id, path, target) => {
            let capture = store.get(id)?;
            let target = target_of(&capture, target)?;
            msg(done(export_to(&capture, &target, &path)?, false, false))
        }
        Job::Replay(id, resign, target) => {
            let capture = store.get(id)?;
            let what = if resign {
                "replayed re-signed"
            } else {
                "replayed"
            };
            send(context, capture, resign, target, what)?;
            Ok(Vec::new())
        }
        Job::EditLoad(id, resign, target) => {
            Ok(vec![Reply::Edit(Box::new(store.get(id)?), resign, target)])
        }
        Job::Send(original, request, resign, target) => {
            let edited = Exchange {
                request,
                ..*original
            };
            send(context, edited, resign, target, "sent the edited")?;
            Ok(Vec::new())
        }
    }
}

fn done(text: String, error: bool, changed: bool) -> Msg {
    Msg::Done {
        text,
        error,
        changed,
    }
}

/// Where to send `capture`: `target`, else where it was forwarded.
fn target_of(capture: &Exchange, target: Option<Target>) -> anyhow::Result<Target> {
    match target {
        Some(target) => Ok(target),
        None => export::original_target(capture),
    }
}

/// `hooks diff a b` as text, line by line.
fn compare(store: &Store, a: CaptureId, b: CaptureId) -> anyhow::Result<Vec<String>> {
    let (first, second) = (store.get(a)?, store.get(b)?);
    let found = diff::diff(&first, &second, &diff::Options::default());
    let mut out = Vec::new();
    let labels = [format!("#{a}"), format!("#{b}")];
    diff::render(
        &found,
        [&labels[0], &labels[1]],
        &Palette::default(),
        &mut out,
    )?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .map(str::to_owned)
        .collect())
}

/// Writes `capture` to a new file at `path`, as its extension says: `.har`, `.sh` or `.curl`
/// for a curl command, anything else raw HTTP. What to say.
fn export_to(capture: &Exchange, target: &Target, path: &Path) -> anyhow::Result<String> {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let (format, bytes) = match extension.to_ascii_lowercase().as_str() {
        "har" => {
            let mut text = serde_json::to_vec_pretty(&export::har(capture, target))?;
            text.push(b'\n');
            ("HAR", text)
        }
        "sh" | "curl" => (
            "a curl command",
            export::curl(&capture.request, target).into_bytes(),
        ),
        _ => ("raw HTTP", export::raw(&capture.request, target)),
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    std::io::Write::write_all(&mut file, &bytes).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(format!(
        "exported #{} to {} ({format}, {} bytes)",
        capture.number(),
        sanitize(&path.display().to_string()),
        group(bytes.len())
    ))
}

/// Sends `capture` (re-signed when asked) to `target` or where it was forwarded, on the
/// runtime; records it as a replay of the capture and says how it went.
fn send(
    context: &mut Context,
    mut capture: Exchange,
    resign: bool,
    target: Option<Target>,
    what: &'static str,
) -> anyhow::Result<()> {
    let target = target_of(&capture, target)?;
    if resign {
        let secret = context
            .secrets
            .first()
            .ok_or_else(|| anyhow!("re-signing needs --secret or HOOKS_SECRET"))?;
        let url = replay::public_url(&capture, &target);
        replay::resign_with(&mut capture.request, &url, secret, context.provider)?;
    }
    let forwarder = context.forwarder(&target)?;
    let writer = context.writer()?;
    let replies = context.replies.clone();
    let id = capture.number();
    context.runtime.spawn(async move {
        let msg = match replay::replay_one(&capture, &forwarder, &writer).await {
            Ok((new, None)) => {
                let status = new.outcome.status().map_or(0, |s| s);
                let text = format!(
                    "{what} #{id} → #{}: {} {} {} in {}",
                    new.number(),
                    sanitize(&new.request.method),
                    sanitize(&display_path(&new.request.path)),
                    status,
                    loaded::duration(new.duration)
                );
                done(text, false, true)
            }
            Ok((new, Some(why))) => {
                let text = format!("{what} #{id} → #{}: {}", new.number(), sanitize(&why));
                done(text, true, true)
            }
            Err(e) => done(
                format!("could not record the replay of #{id}: {e:#}"),
                true,
                false,
            ),
        };
        let _ = replies.send(Reply::Msg(msg));
    });
    Ok(())
}
