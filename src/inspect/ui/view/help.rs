//! The help (`?`): every key, in a box over the screen. The list of keys is the contract
//! README's "Inspector" section documents.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::theme;

/// Every key and what it does, by screen.
pub const KEYS: &[(&str, &str)] = &[
    ("↑ ↓  j k", "move (pauses follow mode)"),
    ("PgUp PgDn", "move a page"),
    (
        "g G  Home End",
        "first, last (G and End resume follow mode)",
    ),
    ("Enter", "open the capture"),
    ("Esc", "back to the list"),
    ("/", "filter (the --where language; empty clears)"),
    ("r", "replay as captured"),
    ("R", "replay re-signed (needs --secret)"),
    (
        "e  E",
        "edit the raw request in $VISUAL/$EDITOR, then send it (E re-signs)",
    ),
    (
        "m  =",
        "mark a capture; diff the marked one against this one",
    ),
    ("c", "copy as curl to the clipboard (OSC 52)"),
    ("x", "export to a file (.har, .sh for curl, else raw HTTP)"),
    (
        "t",
        "set the replay target (empty: where each was forwarded)",
    ),
    ("Tab  1 2 3", "detail: overview, request, response"),
    ("v", "detail: body as tree, raw or hex"),
    ("Space  f  F", "detail: fold here, fold all, unfold all"),
    ("Ctrl-L", "draw the screen again"),
    ("?", "this help (any key closes it)"),
    ("q  Ctrl-C", "quit"),
];

/// Draws the help box centered in `area`.
pub fn draw(frame: &mut Frame, area: Rect) {
    let width = 78.min(area.width);
    let height = (KEYS.len() as u16 + 2).min(area.height);
    let box_area = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|(keys, what)| {
            Line::from(vec![
                Span::styled(format!(" {keys:<14}"), theme::BOLD),
                Span::raw(*what),
            ])
        })
        .collect();
    frame.render_widget(Clear, box_area);
    let block = Block::default().borders(Borders::ALL).title(" keys ");
    frame.render_widget(Paragraph::new(lines).block(block), box_area);
}
