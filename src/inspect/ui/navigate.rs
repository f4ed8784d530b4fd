//! Moving around: the list's selection and follow mode, a detail's tabs, cursor, folds and body
//! modes, the diff's scroll. Each `*_key` returns `None` for a key it leaves to the keys every
//! screen shares.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::document::{Lines, Mode, Pos, Rows};
use super::json_index::Kind;
use super::state::{Content, Detail, Screen, State, Tab};
use super::update::{open, Effect};

/// Where a movement key goes.
enum Move {
    Up(usize),
    Down(usize),
    First,
    Last,
}

/// The movement `key` asks for on a screen `page` lines high.
fn movement(key: KeyEvent, page: usize) -> Option<Move> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    Some(match key.code {
        KeyCode::Up | KeyCode::Char('k') => Move::Up(1),
        KeyCode::Down | KeyCode::Char('j') => Move::Down(1),
        KeyCode::PageUp => Move::Up(page),
        KeyCode::PageDown => Move::Down(page),
        KeyCode::Char('b') if ctrl => Move::Up(page),
        KeyCode::Char('f') if ctrl => Move::Down(page),
        KeyCode::Char('u') if ctrl => Move::Up(page / 2),
        KeyCode::Char('d') if ctrl => Move::Down(page / 2),
        KeyCode::Home | KeyCode::Char('g') => Move::First,
        KeyCode::End | KeyCode::Char('G') => Move::Last,
        _ => return None,
    })
}

/// Keys of the list.
pub fn list_key(state: &mut State, key: KeyEvent) -> Option<Effect> {
    if let Some(movement) = movement(key, state.list_height()) {
        let last = state.rows.len().saturating_sub(1);
        state.selected = match movement {
            Move::Up(n) => state.selected.saturating_sub(n),
            Move::Down(n) => (state.selected + n).min(last),
            Move::First => 0,
            Move::Last => last,
        };
        // Moving pauses follow mode; the end resumes it.
        state.follow = matches!(movement, Move::Last);
        keep_selection_in_view(state);
        return Some(Effect::None);
    }
    match key.code {
        KeyCode::Enter => Some(match state.selected_row() {
            Some(row) => open(state, row.id),
            None => Effect::None,
        }),
        KeyCode::Esc => {
            state.message = None;
            Some(Effect::None)
        }
        _ => None,
    }
}

/// Scrolls the list so the selected row is on screen.
pub fn keep_selection_in_view(state: &mut State) {
    let height = state.list_height();
    if state.selected < state.offset {
        state.offset = state.selected;
    } else if state.selected >= state.offset + height {
        state.offset = state.selected + 1 - height;
    }
    let last_page = state.rows.len().saturating_sub(height);
    state.offset = state.offset.min(last_page);
}

/// Keys of the detail view.
pub fn detail_key(state: &mut State, key: KeyEvent) -> Option<Effect> {
    let page = state.pane_height();
    let Screen::Detail(detail) = &mut state.screen else {
        return None;
    };
    let tab = detail.tab.index();
    match key.code {
        KeyCode::Esc | KeyCode::Backspace => {
            state.screen = Screen::List;
            return Some(Effect::None);
        }
        KeyCode::Tab | KeyCode::Right | KeyCode::Char('l') => {
            detail.tab = Tab::ALL[(tab + 1) % 3];
        }
        KeyCode::BackTab | KeyCode::Left | KeyCode::Char('h') => {
            detail.tab = Tab::ALL[(tab + 2) % 3];
        }
        KeyCode::Char(c @ '1'..='3') => detail.tab = Tab::ALL[usize::from(c as u8 - b'1')],
        KeyCode::Char('v') if detail.tab != Tab::Overview => cycle_mode(detail),
        KeyCode::Char(' ') | KeyCode::Enter => toggle_fold(detail),
        KeyCode::Char('f') => fold_all(detail, true),
        KeyCode::Char('F') => fold_all(detail, false),
        _ => match movement(key, page) {
            Some(movement) => move_cursor(detail, movement, page),
            None => return None,
        },
    }
    Some(Effect::None)
}

/// The lines of `detail`'s current tab, once loaded.
fn lines(detail: &Detail) -> Option<Lines<'_>> {
    let Content::Ready(loaded) = &detail.content else {
        return None;
    };
    let pane = &detail.panes[detail.tab.index()];
    let (head, body) = loaded.pane(detail.tab);
    Some(Lines {
        head: head.len(),
        rows: body.map_or(Rows::Empty, |b| b.rows(pane.mode)),
        folds: &pane.folds,
    })
}

fn move_cursor(detail: &mut Detail, movement: Move, page: usize) {
    let Some(lines) = lines(detail) else {
        return;
    };
    let pane = &detail.panes[detail.tab.index()];
    let (mut cursor, mut top) = (pane.cursor, pane.top);
    match movement {
        Move::Up(n) => {
            cursor = lines.back(cursor, n);
            if n > 1 {
                top = lines.back(top, n);
            }
        }
        Move::Down(n) => {
            cursor = lines.forward(cursor, n);
            if n > 1 {
                top = lines.forward(top, n);
            }
        }
        Move::First => cursor = lines.first().unwrap_or(Pos::Head(0)),
        Move::Last => {
            cursor = lines.last().unwrap_or(Pos::Head(0));
            top = lines.back(cursor, page.saturating_sub(1));
        }
    }
    let top = visible_top(&lines, cursor, top, page);
    let pane = &mut detail.panes[detail.tab.index()];
    (pane.cursor, pane.top) = (cursor, top);
}

/// `top`, moved as little as needed for `cursor` to be among the `page` lines from it.
fn visible_top(lines: &Lines<'_>, cursor: Pos, top: Pos, page: usize) -> Pos {
    if cursor < top {
        return cursor;
    }
    if lines.distance(top, cursor, page) >= page {
        return lines.back(cursor, page.saturating_sub(1));
    }
    top
}

/// Keeps the open detail's cursor on screen (after a resize).
pub fn keep_cursor_in_view(state: &mut State) {
    let page = state.pane_height();
    if let Screen::Detail(detail) = &mut state.screen {
        move_cursor(detail, Move::Down(0), page);
    }
}

fn cycle_mode(detail: &mut Detail) {
    let pane = &mut detail.panes[detail.tab.index()];
    pane.mode = match pane.mode {
        Mode::Tree => Mode::Raw,
        Mode::Raw => Mode::Hex,
        Mode::Hex => Mode::Tree,
    };
    // Body positions mean other lines in another mode: back to the top of the body.
    if let Pos::Body(_) = pane.cursor {
        pane.cursor = Pos::Body(0);
        pane.top = Pos::Body(0);
    }
}

/// Folds or unfolds the object or array on the cursor's line (from its closing line too).
fn toggle_fold(detail: &mut Detail) {
    let Content::Ready(loaded) = &detail.content else {
        return;
    };
    let (_, body) = loaded.pane(detail.tab);
    let pane = &mut detail.panes[detail.tab.index()];
    let (Some(body), Pos::Body(n)) = (body, pane.cursor) else {
        return;
    };
    let Rows::Json(json) = body.rows(pane.mode) else {
        return;
    };
    let Some(line) = json.lines.get(n) else {
        return;
    };
    let open = match line.kind {
        Kind::Open { .. } => n as u32,
        Kind::Close => line.partner,
        Kind::Scalar | Kind::Empty { .. } => return,
    };
    if !pane.folds.remove(&open) {
        pane.folds.insert(open);
    }
    pane.cursor = Pos::Body(open as usize);
    pane.top = pane.top.min(pane.cursor);
}

/// Folds every object and array below the top level (`f`), or unfolds everything (`F`).
fn fold_all(detail: &mut Detail, fold: bool) {
    let Content::Ready(loaded) = &detail.content else {
        return;
    };
    let (_, body) = loaded.pane(detail.tab);
    let pane = &mut detail.panes[detail.tab.index()];
    pane.folds.clear();
    if !fold {
        return;
    }
    let Some(Rows::Json(json)) = body.map(|b| b.rows(pane.mode)) else {
        return;
    };
    for (n, line) in json.lines.iter().enumerate() {
        if line.depth >= 1 && matches!(line.kind, Kind::Open { .. }) {
            pane.folds.insert(n as u32);
        }
    }
    if let Pos::Body(_) = pane.cursor {
        pane.cursor = Pos::Body(0);
        pane.top = pane.top.min(pane.cursor);
    }
}

/// Keys of the diff view.
pub fn diff_key(state: &mut State, key: KeyEvent) -> Option<Effect> {
    let page = state.pane_height();
    let Screen::Diff(diff) = &mut state.screen else {
        return None;
    };
    if key.code == KeyCode::Esc || key.code == KeyCode::Backspace {
        state.screen = Screen::List;
        return Some(Effect::None);
    }
    let total = diff.lines.as_ref().map_or(0, Vec::len);
    let last = total.saturating_sub(page);
    diff.top = match movement(key, page)? {
        Move::Up(n) => diff.top.saturating_sub(n),
        Move::Down(n) => (diff.top + n).min(last),
        Move::First => 0,
        Move::Last => last,
    };
    Some(Effect::None)
}
