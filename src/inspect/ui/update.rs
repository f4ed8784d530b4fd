//! The inspector's one way to change: [`update`] takes the state and a message (a key, a
//! resize, a capture from the feed, rows from the store, a loaded capture, the outcome of a
//! replay) and returns what the loop must do next as an [`Effect`] value. Pure: no terminal,
//! store or network, so key sequences are tested as plain function calls.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::navigate;
use super::prompt;
use super::state::{
    Ask, Connection, Content, DiffView, Loaded, Message, Prompt, Row, Screen, State,
};
use super::state::{Detail, Pane, MAX_ROWS};
use crate::exchange::CaptureId;
use crate::inspect::Event;
use crate::query::{Cost, Query};
use crate::target::Target;

/// Something that happened.
#[derive(Debug)]
pub enum Msg {
    /// A key was pressed.
    Key(KeyEvent),
    /// The terminal's new size (columns, rows).
    Resize(u16, u16),
    /// The live feed of `hooks listen --ui`: a capture, a session event, a gap.
    Feed(Event),
    /// Another process committed to the store (`hooks inspect`).
    StoreChanged,
    /// Rows read from the store.
    Rows(Rows),
    /// A capture read whole, or why it could not be.
    Loaded(CaptureId, Result<Box<Loaded>, String>),
    /// Two captures compared: `hooks diff`'s lines, or why not.
    Diffed(CaptureId, CaptureId, Result<Vec<String>, String>),
    /// An effect finished: what to say, whether it went wrong, and whether it wrote a capture
    /// (a replay), so the list catches up.
    Done {
        /// The message.
        text: String,
        /// Whether it failed.
        error: bool,
        /// Whether the store has a new capture.
        changed: bool,
    },
}

/// Rows read from the store for one list load or catch-up.
#[derive(Debug)]
pub struct Rows {
    /// The load they answer (stale ones are dropped).
    pub generation: u64,
    /// Matching captures, oldest first.
    pub rows: Vec<Row>,
    /// The newest capture in the store when they were read.
    pub through: Option<CaptureId>,
    /// Whether they replace the list (a new filter) or join it (a catch-up).
    pub replace: bool,
}

/// What the loop must do after an update.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Nothing.
    None,
    /// Give the terminal back and stop.
    Quit,
    /// Draw the whole screen again (after a program wrote over it).
    Redraw,
    /// Read the newest captures matching `filter`, to replace the list.
    Load {
        /// Answered with this generation.
        generation: u64,
        /// The filter.
        filter: Option<Query>,
    },
    /// Read the captures after `after` matching `filter`, to join the list.
    CatchUp {
        /// Answered with this generation.
        generation: u64,
        /// The filter.
        filter: Option<Query>,
        /// The newest capture already read.
        after: Option<CaptureId>,
    },
    /// Read capture `0` whole for the detail view.
    Open(CaptureId),
    /// Send a capture again, as captured (`r`) or re-signed (`R`).
    Replay {
        /// Which.
        id: CaptureId,
        /// Whether to sign it afresh.
        resign: bool,
        /// Where to (default: where it was forwarded).
        target: Option<Target>,
    },
    /// Open a capture's raw request in the editor, then send what was saved.
    Edit {
        /// Which.
        id: CaptureId,
        /// Whether to sign the edited request afresh.
        resign: bool,
        /// Where to (default: where it was forwarded).
        target: Option<Target>,
    },
    /// Compare two captures, as `hooks diff a b` does.
    Diff {
        /// The marked one.
        a: CaptureId,
        /// The selected one.
        b: CaptureId,
    },
    /// Copy a capture as a curl command to the terminal's clipboard (OSC 52).
    Copy(CaptureId),
    /// Write a capture to a file (its extension says how: `.har`, `.sh` or raw HTTP).
    Export {
        /// Which.
        id: CaptureId,
        /// The file.
        path: PathBuf,
    },
}

/// Changes `state` for `msg` and says what to do next.
pub fn update(state: &mut State, msg: Msg) -> Effect {
    match msg {
        Msg::Key(key) => key_pressed(state, key),
        Msg::Resize(columns, rows) => {
            state.size = (columns, rows);
            navigate::keep_selection_in_view(state);
            navigate::keep_cursor_in_view(state);
            Effect::None
        }
        Msg::Feed(event) => fed(state, event),
        Msg::StoreChanged => catch_up(state),
        Msg::Rows(rows) => rows_read(state, rows),
        Msg::Loaded(id, result) => {
            loaded(state, id, result);
            Effect::None
        }
        Msg::Diffed(a, b, result) => {
            diffed(state, a, b, result);
            Effect::None
        }
        Msg::Done {
            text,
            error,
            changed,
        } => {
            state.message = Some(Message { text, error });
            if changed {
                catch_up(state)
            } else {
                Effect::None
            }
        }
    }
}

/// The first effect: read the list.
pub fn start(state: &mut State) -> Effect {
    state.loading = true;
    Effect::Load {
        generation: state.generation,
        filter: state.filter.clone(),
    }
}

fn key_pressed(state: &mut State, key: KeyEvent) -> Effect {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && key.code == KeyCode::Char('c') {
        return Effect::Quit;
    }
    if state.help {
        state.help = false;
        return Effect::None;
    }
    if state.prompt.is_some() {
        return prompt::key(state, key);
    }
    if ctrl && key.code == KeyCode::Char('l') {
        return Effect::Redraw;
    }
    let handled = match &state.screen {
        Screen::List => navigate::list_key(state, key),
        Screen::Detail(_) => navigate::detail_key(state, key),
        Screen::Diff(_) => navigate::diff_key(state, key),
    };
    match handled {
        Some(effect) => effect,
        None => common_key(state, key),
    }
}

/// Keys that do the same on every screen.
fn common_key(state: &mut State, key: KeyEvent) -> Effect {
    let KeyCode::Char(c) = key.code else {
        return Effect::None;
    };
    match c {
        'q' => Effect::Quit,
        '?' => {
            state.help = true;
            Effect::None
        }
        '/' => {
            state.prompt = Some(Prompt::new(Ask::Filter, state.filter_text.clone()));
            Effect::None
        }
        't' => {
            let text = state.target.as_ref().map(|t| t.to_string());
            state.prompt = Some(Prompt::new(Ask::Target, text.unwrap_or_default()));
            Effect::None
        }
        _ => match state.current() {
            Some(id) => capture_key(state, c, id),
            None => {
                if "rReEm=cx".contains(c) {
                    say(state, "no capture selected", true);
                }
                Effect::None
            }
        },
    }
}

/// Keys that act on the open or selected capture `id`.
fn capture_key(state: &mut State, c: char, id: CaptureId) -> Effect {
    let target = state.target.clone();
    match c {
        'r' => {
            say(state, &format!("replaying #{id}…"), false);
            Effect::Replay {
                id,
                resign: false,
                target,
            }
        }
        'R' | 'E' if !state.can_resign => {
            let text = "re-signing needs the secret: start with --secret or HOOKS_SECRET";
            say(state, text, true);
            Effect::None
        }
        'R' => {
            say(state, &format!("replaying #{id}, re-signed…"), false);
            Effect::Replay {
                id,
                resign: true,
                target,
            }
        }
        'e' | 'E' => Effect::Edit {
            id,
            resign: c == 'E',
            target,
        },
        'm' => {
            if state.mark == Some(id) {
                state.mark = None;
                say(state, &format!("#{id} unmarked"), false);
            } else {
                state.mark = Some(id);
                let text = format!("#{id} marked: select another and press = to compare");
                say(state, &text, false);
            }
            Effect::None
        }
        '=' => diff(state, id),
        'c' => Effect::Copy(id),
        'x' => {
            let text = format!("hooks-{id}.http");
            state.prompt = Some(Prompt::new(Ask::Export(id), text));
            Effect::None
        }
        _ => Effect::None,
    }
}

fn diff(state: &mut State, b: CaptureId) -> Effect {
    match state.mark {
        None => {
            say(
                state,
                "mark a capture with m first, then press = on another",
                true,
            );
            Effect::None
        }
        Some(a) if a == b => {
            say(state, "select another capture than the marked one", true);
            Effect::None
        }
        Some(a) => {
            state.screen = Screen::Diff(Box::new(DiffView {
                a,
                b,
                lines: None,
                top: 0,
            }));
            Effect::Diff { a, b }
        }
    }
}

/// Sets the message.
pub(super) fn say(state: &mut State, text: &str, error: bool) {
    state.message = Some(Message {
        text: text.to_owned(),
        error,
    });
}

/// A new filter is in force: read the list again.
pub(super) fn set_filter(state: &mut State, filter: Option<Query>, text: String) -> Effect {
    state.filter = filter;
    state.filter_text = text;
    state.generation += 1;
    // The rows of the old filter go; those the feed brings while the store is read stay.
    state.rows.clear();
    state.first_of_event.clear();
    (state.selected, state.offset) = (0, 0);
    state.catching_up = false;
    state.catch_up_again = false;
    start(state)
}

fn fed(state: &mut State, event: Event) -> Effect {
    match event {
        Event::Ready { url, .. } => {
            state.url = Some(url);
            state.connection = Connection::Attached;
            Effect::None
        }
        Event::Reconnected { url } => {
            state.url = Some(url);
            state.connection = Connection::Attached;
            Effect::None
        }
        Event::Disconnected { reason } => {
            state.connection = Connection::Reconnecting(reason);
            Effect::None
        }
        Event::Skipped { count, .. } => {
            state.not_shown += count;
            catch_up(state)
        }
        Event::Request(exchange) => {
            let flags = state.history.check(
                exchange.number(),
                exchange.event.as_ref(),
                exchange.duration,
            );
            let Some(row) = Row::from_exchange(&exchange, flags) else {
                return Effect::None;
            };
            let local = state.filter.as_ref().map_or(Cost::Row, Query::cost) == Cost::Row;
            if state.loading || !local {
                // The filter needs the headers or body (the feed carries neither): the store
                // has them.
                return catch_up(state);
            }
            if state.filter.as_ref().is_none_or(|q| q.matches(&row)) {
                insert(state, row);
            }
            Effect::None
        }
    }
}

/// Reads what the store has after the rows already read, unless a read is under way (then once
/// it is done).
pub(super) fn catch_up(state: &mut State) -> Effect {
    if state.loading || state.catching_up {
        state.catch_up_again = true;
        return Effect::None;
    }
    state.catching_up = true;
    Effect::CatchUp {
        generation: state.generation,
        filter: state.filter.clone(),
        after: state.seen,
    }
}

fn rows_read(state: &mut State, read: Rows) -> Effect {
    if read.generation != state.generation {
        return Effect::None;
    }
    let selected = state.selected_row().map(|row| row.id);
    if read.replace {
        state.loading = false;
        // Rows the feed added after the store was read stay.
        let newer: Vec<Row> = std::mem::take(&mut state.rows)
            .into_iter()
            .filter(|row| Some(row.id) > read.through)
            .collect();
        state.first_of_event.clear();
        state.rows = Vec::with_capacity(read.rows.len() + newer.len());
        state.selected = 0;
        state.offset = 0;
        for row in read.rows.into_iter().chain(newer) {
            insert(state, row);
        }
        if let Some(at) = selected.and_then(|id| state.rows.iter().position(|r| r.id == id)) {
            state.selected = at;
        }
    } else {
        state.catching_up = false;
        let count = read.rows.len();
        for row in read.rows {
            insert(state, row);
        }
        if state.not_shown > 0 {
            let text = format!(
                "{} not shown by the live feed (it fell behind); {count} read from the store",
                state.not_shown
            );
            say(state, &text, false);
            state.not_shown = 0;
        }
    }
    state.seen = state.seen.max(read.through);
    if state.follow {
        state.selected = state.rows.len().saturating_sub(1);
    }
    navigate::keep_selection_in_view(state);
    if std::mem::take(&mut state.catch_up_again) {
        return catch_up(state);
    }
    Effect::None
}

/// Adds `row` in id order (once), with its duplicate and slow notes, keeping the selection on
/// the same row (or the newest, when following) and at most [`MAX_ROWS`].
pub(super) fn insert(state: &mut State, mut row: Row) {
    let at = match state.rows.binary_search_by_key(&row.id, |r| r.id) {
        Ok(_) => return,
        Err(at) => at,
    };
    note_flags(state, &mut row);
    state.seen = state.seen.max(Some(row.id));
    state.rows.insert(at, row);
    if at <= state.selected && state.rows.len() > 1 {
        state.selected += 1;
    }
    if state.rows.len() > MAX_ROWS {
        let extra = state.rows.len() - MAX_ROWS;
        state.rows.drain(..extra);
        state.selected = state.selected.saturating_sub(extra);
        state.offset = state.offset.saturating_sub(extra);
    }
    if state.follow {
        state.selected = state.rows.len() - 1;
    }
    state.selected = state.selected.min(state.rows.len() - 1);
    navigate::keep_selection_in_view(state);
}

/// Duplicate and slow notes from the rows seen so far (live rows have theirs already).
fn note_flags(state: &mut State, row: &mut Row) {
    if let Some(event_id) = &row.event_id {
        let key = format!("{}:{event_id}", row.provider.map_or("", |p| p.name()));
        if state.first_of_event.len() >= MAX_ROWS * 2 {
            state.first_of_event.clear();
        }
        match state.first_of_event.get(&key) {
            Some(&first) if first < row.id && row.replay_of.is_none() => {
                row.flags.duplicate_of.get_or_insert(first.0.unsigned_abs());
            }
            Some(_) => {}
            None => {
                state.first_of_event.insert(key, row.id);
            }
        }
    }
    let timeout = row.provider.and_then(|p| p.delivery_timeout());
    if let Some(limit) = timeout.filter(|limit| row.duration > *limit) {
        row.flags.slower_than.get_or_insert(limit);
    }
}

fn loaded(state: &mut State, id: CaptureId, result: Result<Box<Loaded>, String>) {
    let flags = state
        .row(id)
        .map(|row| row.flags.clone())
        .unwrap_or_default();
    let Screen::Detail(detail) = &mut state.screen else {
        return;
    };
    if detail.id != id {
        return;
    }
    detail.content = match result {
        Ok(mut loaded) => {
            loaded.overview.extend(super::loaded::notes(&flags));
            detail.panes[1].mode = loaded.request.default_mode();
            detail.panes[2].mode = loaded.response.default_mode();
            Content::Ready(loaded)
        }
        Err(why) => Content::Failed(why),
    };
}

fn diffed(state: &mut State, a: CaptureId, b: CaptureId, result: Result<Vec<String>, String>) {
    let failed = match (&mut state.screen, result) {
        (Screen::Diff(diff), Ok(lines)) if diff.a == a && diff.b == b => {
            diff.lines = Some(lines);
            None
        }
        (Screen::Diff(diff), Err(why)) if diff.a == a && diff.b == b => Some(why),
        _ => None,
    };
    if let Some(why) = failed {
        state.screen = Screen::List;
        say(
            state,
            &format!("could not compare #{a} and #{b}: {why}"),
            true,
        );
    }
}

/// Opens the detail of `id`.
pub(super) fn open(state: &mut State, id: CaptureId) -> Effect {
    state.screen = Screen::Detail(Box::new(Detail {
        id,
        tab: super::state::Tab::Overview,
        content: Content::Loading,
        panes: [Pane::default(), Pane::default(), Pane::default()],
    }));
    Effect::Open(id)
}
