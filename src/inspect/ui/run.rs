//! The loop: draw the state when it changed, gather what happened (keys, the store worker's
//! replies, the live feed), pass each through `update`, and perform the effects. It runs on a
//! thread of its own and never waits on anything but the terminal's keys, for at most a tick.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use crossterm::event::{self, Event as TermEvent, KeyEventKind};
use tokio_util::sync::CancellationToken;

use super::editor::{self, Edited};
use super::effects::{self, Job, Reply};
use super::feed::{Worker, POLL_BESIDE_FEED, POLL_STORE};
use super::state::{Masking, Source, State};
use super::terminal::{self, Guard};
use super::update::{start, update, Effect, Msg};
use super::view::view;
use crate::inspect::sanitize::group;
use crate::inspect::Feed;
use crate::query::Query;
use crate::target::Target;
use crate::verify::{Provider, Secret};
use crate::UsageError;

/// Longest wait for a key before the loop looks at the feed and the worker again.
const TICK: Duration = Duration::from_millis(40);

/// Most feed events taken per turn of the loop, so keys are read between batches even while
/// webhooks pour in.
const FEED_BATCH: usize = 2048;

/// Most bytes of curl text copied through OSC 52: terminals drop longer sequences (xterm and
/// tmux accept about 100 KB), so a larger capture is exported to a file instead.
const MAX_CLIPBOARD: usize = 74 * 1024;

/// How the inspector starts.
pub struct Options {
    /// Where captures come from.
    pub source: Source,
    /// The capture store's file.
    pub store: PathBuf,
    /// Secrets to mask, and to re-sign with (`R`, `E`).
    pub secrets: Vec<Secret>,
    /// The provider to re-sign as (default: recognised from the headers).
    pub provider: Option<Provider>,
    /// Where replays go (default: where each capture was forwarded).
    pub target: Option<Target>,
    /// The filter in force at start, and its text.
    pub filter: Option<(Query, String)>,
}

/// Runs the inspector until `q`, Ctrl-C, SIGTERM or SIGHUP (which cancel `shutdown`), reading
/// the live `feed` of `hooks listen --ui` when there is one. Cancels `shutdown` when it quits,
/// so a `listen` under it stops too.
pub async fn run(
    options: Options,
    feed: Option<Feed>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    terminal::stop_on_hangup(shutdown.clone())?;
    let runtime = tokio::runtime::Handle::current();
    let stop = shutdown.clone();
    let result =
        tokio::task::spawn_blocking(move || run_blocking(options, feed, &stop, runtime)).await;
    shutdown.cancel();
    result.map_err(|e| anyhow!("the inspector's thread failed: {e}"))?
}

/// Runs `hooks inspect`: the inspector over the capture store, live. Without a terminal it is a
/// usage error (exit 2).
pub async fn inspect(
    args: crate::cli::InspectArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if !terminal::is_terminal() {
        return Err(UsageError(
            "hooks inspect needs a terminal (its stdin and stdout are not one); hooks list and hooks show print captures without one".into(),
        )
        .into());
    }
    let filter = match args.r#where {
        Some(text) => {
            let query = Query::parse(&text)
                .map_err(|e| UsageError(format!("invalid --where expression\n{e}")))?;
            Some((query, text))
        }
        None => None,
    };
    let options = Options {
        source: Source::Store,
        store: crate::store::path()?,
        secrets: args.secrets,
        provider: args.provider,
        target: args.to,
        filter,
    };
    run(options, None, shutdown).await
}

/// What the loop owns.
struct Loop {
    guard: Guard,
    state: State,
    jobs: mpsc::Sender<Job>,
    replies: mpsc::Receiver<Reply>,
    feed: Option<Feed>,
}

fn run_blocking(
    options: Options,
    feed: Option<Feed>,
    shutdown: &CancellationToken,
    runtime: tokio::runtime::Handle,
) -> anyhow::Result<()> {
    let (replies_tx, replies) = mpsc::channel();
    let context = effects::Context::new(
        runtime,
        options.store.clone(),
        options.secrets.clone(),
        options.provider,
        replies_tx.clone(),
    );
    let masking = Masking(context.redactor.clone());
    let poll = if feed.is_some() {
        POLL_BESIDE_FEED
    } else {
        POLL_STORE
    };
    let jobs = Worker::spawn(options.store.clone(), poll, context, replies_tx)
        .context("could not start the inspector's store thread")?;
    let guard = Guard::enter().context("could not take the terminal")?;
    let size = guard.terminal.size()?;
    let tz = jiff::tz::TimeZone::system();
    let mut state = State::new(options.source, (size.width, size.height), tz);
    state.can_resign = !options.secrets.is_empty();
    state.target = options.target;
    state.masking = masking;
    if let Some((query, text)) = options.filter {
        state.filter = Some(query);
        state.filter_text = text;
    }
    let mut looping = Loop {
        guard,
        state,
        jobs,
        replies,
        feed,
    };
    let first = start(&mut looping.state);
    if looping.perform(first)? {
        looping.turns(shutdown)?;
    }
    Ok(())
}

impl Loop {
    /// Turns until quit or `shutdown`.
    fn turns(&mut self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let mut dirty = true;
        while !shutdown.is_cancelled() {
            if dirty {
                let state = &self.state;
                self.guard.terminal.draw(|frame| view(state, frame))?;
                dirty = false;
            }
            for msg in self.gather()? {
                dirty = true;
                let effect = update(&mut self.state, msg);
                if !self.perform(effect)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// What happened since the last turn: keys (waiting up to a tick for one), the worker's
    /// replies, the feed's events.
    fn gather(&mut self) -> anyhow::Result<Vec<Msg>> {
        let mut msgs = Vec::new();
        let mut wait = TICK;
        while event::poll(wait)? {
            wait = Duration::ZERO;
            match event::read()? {
                TermEvent::Key(key) if key.kind != KeyEventKind::Release => {
                    msgs.push(Msg::Key(key))
                }
                TermEvent::Resize(columns, rows) => msgs.push(Msg::Resize(columns, rows)),
                _ => {}
            }
        }
        while let Ok(reply) = self.replies.try_recv() {
            match reply {
                Reply::Msg(msg) => msgs.push(msg),
                Reply::Clipboard(id, text) => msgs.push(self.copy(id, &text)),
                Reply::Edit(capture, resign, target) => {
                    msgs.push(self.edit(capture, resign, target)?)
                }
            }
        }
        if let Some(feed) = &mut self.feed {
            for _ in 0..FEED_BATCH {
                match feed.try_next() {
                    Ok(event) => msgs.push(Msg::Feed(event)),
                    Err(closed) => {
                        if closed {
                            self.feed = None;
                        }
                        break;
                    }
                }
            }
        }
        Ok(msgs)
    }

    /// Performs `effect`; `false` to quit.
    fn perform(&mut self, effect: Effect) -> anyhow::Result<bool> {
        let target = self.state.target.clone();
        let job = match effect {
            Effect::None => return Ok(true),
            Effect::Quit => return Ok(false),
            Effect::Redraw => {
                self.guard.terminal.clear()?;
                return Ok(true);
            }
            Effect::Load { generation, filter } => Job::Load { generation, filter },
            Effect::CatchUp {
                generation,
                filter,
                after,
            } => Job::CatchUp {
                generation,
                filter,
                after,
            },
            Effect::Open(id) => Job::Open(id),
            Effect::Replay { id, resign, target } => Job::Replay(id, resign, target),
            Effect::Edit { id, resign, target } => Job::EditLoad(id, resign, target),
            Effect::Diff { a, b } => Job::Diff(a, b),
            Effect::Copy(id) => Job::Copy(id, target),
            Effect::Export { id, path } => Job::Export(id, path, target),
        };
        self.jobs
            .send(job)
            .map_err(|_| anyhow!("the inspector's store thread stopped"))?;
        Ok(true)
    }

    /// Writes `text` to the terminal's clipboard with OSC 52 (which works over SSH and in
    /// tmux with `set-clipboard on`), unless it is too long for terminals to take.
    fn copy(&mut self, id: crate::exchange::CaptureId, text: &str) -> Msg {
        let (text, error) = if text.len() > MAX_CLIPBOARD {
            let text = format!(
                "#{id} as curl is {} bytes, more than a terminal's clipboard takes: x exports it to a file",
                group(text.len())
            );
            (text, true)
        } else {
            let sequence = format!("\x1b]52;c;{}\x07", BASE64.encode(text));
            match self.guard.write_raw(sequence.as_bytes()) {
                Ok(()) => (
                    format!(
                        "copied #{id} as curl ({} bytes) to the clipboard",
                        group(text.len())
                    ),
                    false,
                ),
                Err(e) => (format!("could not copy #{id}: {e}"), true),
            }
        };
        Msg::Done {
            text,
            error,
            changed: false,
        }
    }

    /// Opens `capture` in the editor and hands what was saved to the worker to send.
    fn edit(
        &mut self,
        capture: Box<crate::exchange::Exchange>,
        resign: bool,
        target: Option<Target>,
    ) -> anyhow::Result<Msg> {
        let id = capture.number();
        let (text, error) = match editor::edit(&mut self.guard, &capture) {
            Ok(Edited::Request(request)) => {
                self.jobs
                    .send(Job::Send(capture, request, resign, target))
                    .map_err(|_| anyhow!("the inspector's store thread stopped"))?;
                (format!("sending the edited #{id}…"), false)
            }
            Ok(Edited::Unchanged) => (format!("#{id} was not changed: nothing sent"), false),
            Err(why) => (why, true),
        };
        Ok(Msg::Done {
            text,
            error,
            changed: false,
        })
    }
}
