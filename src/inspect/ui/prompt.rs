//! The line typed at the bottom of the screen: the `/` filter (checked as it is typed, applied
//! on Enter only when valid, so the last valid filter stays in force), the `t` replay target
//! and the `x` export file. Enter submits, Esc cancels; the usual line-editing keys work.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::state::{Ask, Prompt, State};
use super::update::{say, set_filter, Effect};
use crate::query::Query;
use crate::target::Target;

/// Keys while a prompt is open.
pub fn key(state: &mut State, key: KeyEvent) -> Effect {
    let Some(prompt) = state.prompt.as_mut() else {
        return Effect::None;
    };
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Esc => {
            state.prompt = None;
            return Effect::None;
        }
        KeyCode::Enter => return submit(state),
        KeyCode::Char('a') if ctrl => prompt.cursor = 0,
        KeyCode::Char('e') if ctrl => prompt.cursor = prompt.text.chars().count(),
        KeyCode::Char('u') if ctrl => {
            let at = byte_at(&prompt.text, prompt.cursor);
            prompt.text.replace_range(..at, "");
            prompt.cursor = 0;
        }
        KeyCode::Char('w') if ctrl => delete_word(prompt),
        KeyCode::Char(c) if !ctrl => {
            let at = byte_at(&prompt.text, prompt.cursor);
            prompt.text.insert(at, c);
            prompt.cursor += 1;
        }
        KeyCode::Backspace if prompt.cursor > 0 => {
            prompt.cursor -= 1;
            let at = byte_at(&prompt.text, prompt.cursor);
            prompt.text.remove(at);
        }
        KeyCode::Delete if prompt.cursor < prompt.text.chars().count() => {
            let at = byte_at(&prompt.text, prompt.cursor);
            prompt.text.remove(at);
        }
        KeyCode::Left => prompt.cursor = prompt.cursor.saturating_sub(1),
        KeyCode::Right => prompt.cursor = (prompt.cursor + 1).min(prompt.text.chars().count()),
        KeyCode::Home => prompt.cursor = 0,
        KeyCode::End => prompt.cursor = prompt.text.chars().count(),
        _ => return Effect::None,
    }
    check(prompt);
    Effect::None
}

/// The byte offset of character `n` of `text`.
fn byte_at(text: &str, n: usize) -> usize {
    text.char_indices().nth(n).map_or(text.len(), |(at, _)| at)
}

/// Deletes the word before the cursor (and the blanks after it).
fn delete_word(prompt: &mut Prompt) {
    let chars: Vec<char> = prompt.text.chars().collect();
    let mut start = prompt.cursor;
    while start > 0 && chars[start - 1] == ' ' {
        start -= 1;
    }
    while start > 0 && chars[start - 1] != ' ' {
        start -= 1;
    }
    let (from, to) = (
        byte_at(&prompt.text, start),
        byte_at(&prompt.text, prompt.cursor),
    );
    prompt.text.replace_range(from..to, "");
    prompt.cursor = start;
}

/// Checks the text as typed: a filter's syntax error is shown under it at once.
fn check(prompt: &mut Prompt) {
    prompt.error = match prompt.ask {
        Ask::Filter if !prompt.text.trim().is_empty() => {
            Query::parse(&prompt.text).err().map(|e| e.to_string())
        }
        _ => None,
    };
}

fn submit(state: &mut State) -> Effect {
    let Some(prompt) = state.prompt.as_mut() else {
        return Effect::None;
    };
    let text = prompt.text.trim().to_owned();
    match prompt.ask {
        Ask::Filter if text.is_empty() => {
            state.prompt = None;
            say(state, "filter cleared", false);
            set_filter(state, None, String::new())
        }
        Ask::Filter => match Query::parse(&text) {
            Ok(query) => {
                state.prompt = None;
                state.message = None;
                set_filter(state, Some(query), text)
            }
            Err(e) => {
                // The last valid filter stays in force.
                prompt.error = Some(e.to_string());
                Effect::None
            }
        },
        Ask::Target if text.is_empty() => {
            state.prompt = None;
            state.target = None;
            say(state, "replays go where each capture was forwarded", false);
            Effect::None
        }
        Ask::Target => match text.parse::<Target>() {
            Ok(target) => {
                state.prompt = None;
                say(state, &format!("replays go to {target}"), false);
                state.target = Some(target);
                Effect::None
            }
            Err(e) => {
                prompt.error = Some(e);
                Effect::None
            }
        },
        Ask::Export(_) if text.is_empty() => {
            prompt.error = Some("type a file name, e.g. hooks-12.http".into());
            Effect::None
        }
        Ask::Export(id) => {
            state.prompt = None;
            Effect::Export {
                id,
                path: text.into(),
            }
        }
    }
}
