//! Drawing the state: [`view`] lays out the screen (list, detail or diff, the bottom line, the
//! help over them) and draws only what is on screen. It reads the state and changes nothing,
//! so the same state always draws the same screen (what the snapshot tests rely on).

mod body;
mod detail;
mod diff;
mod help;
mod list;

use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::state::{Ask, Screen, State, BOTTOM};
use crate::inspect::sanitize::{sanitize, truncate};

/// The styles of the screen.
mod theme {
    use super::*;

    pub const DIM: Style = Style::new().add_modifier(Modifier::DIM);
    pub const BOLD: Style = Style::new().add_modifier(Modifier::BOLD);
    pub const SELECTED: Style = Style::new().add_modifier(Modifier::REVERSED);
    pub const OK: Style = Style::new().fg(Color::Green);
    pub const REDIRECT: Style = Style::new().fg(Color::Cyan);
    pub const CLIENT_ERROR: Style = Style::new().fg(Color::Yellow);
    pub const SERVER_ERROR: Style = Style::new().fg(Color::Red);
    pub const WARNING: Style = Style::new().fg(Color::Yellow);
    pub const PATH: Style = Style::new().fg(Color::Cyan);
    pub const EVENT: Style = Style::new().fg(Color::Magenta);
    pub const KEY: Style = Style::new().fg(Color::Blue);
    pub const STRING: Style = Style::new().fg(Color::Green);
    pub const NUMBER: Style = Style::new().fg(Color::Cyan);
    pub const LITERAL: Style = Style::new().fg(Color::Magenta);

    /// The style of a status, by class; `None` (no answer) is an error.
    pub fn status(status: Option<u16>) -> Style {
        match status {
            Some(200..=299) => OK,
            Some(300..=399) => REDIRECT,
            Some(400..=499) => CLIENT_ERROR,
            _ => SERVER_ERROR,
        }
    }
}

/// Draws `state` on `frame`.
pub fn view(state: &State, frame: &mut Frame) {
    let area = frame.area();
    let bottom = BOTTOM + state.prompt_lines();
    let main = Rect {
        height: area.height.saturating_sub(bottom),
        ..area
    };
    match &state.screen {
        Screen::List => list::draw(state, frame, main),
        Screen::Detail(detail) => detail::draw(state, detail, frame, main),
        Screen::Diff(diff) => diff::draw(diff, frame, main),
    }
    let bottom_area = Rect {
        y: area.y + main.height,
        height: area.height - main.height,
        ..area
    };
    draw_bottom(state, frame, bottom_area);
    if state.help {
        help::draw(frame, area);
    }
}

/// The bottom line: the prompt being typed (with its error above it), else the last message,
/// else the keys.
fn draw_bottom(state: &State, frame: &mut Frame, area: Rect) {
    let width = usize::from(area.width);
    let mut lines = Vec::new();
    if let Some(prompt) = &state.prompt {
        if let Some(error) = &prompt.error {
            for text in error.lines().take(3) {
                let text = truncate(&sanitize(text), width);
                lines.push(Line::styled(text, theme::SERVER_ERROR));
            }
        }
        let label = match prompt.ask {
            Ask::Filter => "/".to_owned(),
            Ask::Target => "replay target: ".to_owned(),
            Ask::Export(id) => format!("export #{id} to (.har, .sh for curl, else raw HTTP): "),
        };
        let label_width = label.chars().count();
        // The text scrolls so the cursor stays on screen.
        let room = width.saturating_sub(label_width + 1).max(1);
        let skip = prompt.cursor.saturating_sub(room);
        let shown: String = prompt.text.chars().skip(skip).take(room).collect();
        lines.push(Line::from(vec![
            Span::styled(label, theme::BOLD),
            Span::raw(sanitize(&shown)),
        ]));
        let x = area.x + (label_width + prompt.cursor - skip).min(width.saturating_sub(1)) as u16;
        let y = area.y + area.height.saturating_sub(1);
        frame.set_cursor_position(Position { x, y });
    } else if let Some(message) = &state.message {
        let style = if message.error {
            theme::SERVER_ERROR
        } else {
            Style::new()
        };
        // Messages quote what peers and files said (a store error, a refusal).
        lines.push(Line::styled(
            truncate(&sanitize(&message.text), width),
            style,
        ));
    } else {
        lines.push(Line::styled(truncate(hints(state), width), theme::DIM));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

/// The keys worth a reminder on this screen.
fn hints(state: &State) -> &'static str {
    match state.screen {
        Screen::List => {
            "↑↓ move  ⏎ open  / filter  r replay  R re-sign  e edit  m mark  = diff  c copy  x export  t target  ? help  q quit"
        }
        Screen::Detail(_) => {
            "esc back  tab next tab  ↑↓ move  space fold  v tree/raw/hex  r replay  R re-sign  e edit  c copy  ? help  q quit"
        }
        Screen::Diff(_) => "esc back  ↑↓ scroll  ? help  q quit",
    }
}

/// Spans cut to `width` characters.
pub(super) fn clip(spans: Vec<Span<'static>>, width: usize) -> Line<'static> {
    let mut left = width;
    let mut kept = Vec::new();
    for span in spans {
        let len = span.content.chars().count();
        if len > left {
            kept.push(Span::styled(truncate(&span.content, left), span.style));
            break;
        }
        left -= len;
        kept.push(span);
    }
    Line::from(kept)
}

/// `text` cut or padded to exactly `width` characters.
fn fit(text: &str, width: usize) -> String {
    let cut = truncate(text, width);
    let len = cut.chars().count();
    format!("{cut}{}", " ".repeat(width - len.min(width)))
}

/// `text` right-aligned in `width` characters (cut when longer).
fn fit_right(text: &str, width: usize) -> String {
    let cut = truncate(text, width);
    let len = cut.chars().count();
    format!("{}{cut}", " ".repeat(width - len.min(width)))
}

/// A byte count in a few characters: `512 B`, `1.2 KiB`, `25 MiB`.
pub fn size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let n = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} B")
    } else if n < KIB * 10.0 {
        format!("{:.1} KiB", n / KIB)
    } else if n < KIB * KIB {
        format!("{:.0} KiB", n / KIB)
    } else if n < KIB * KIB * 10.0 {
        format!("{:.1} MiB", n / KIB / KIB)
    } else {
        format!("{:.0} MiB", n / KIB / KIB)
    }
}
