//! The detail screen: a title with the capture's summary, the tabs (overview, request,
//! response) with the body's mode, and the lines of the current tab from its top, the cursor's
//! line highlighted.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::{body, clip, theme};
use crate::exchange::display_path;
use crate::inspect::sanitize::{sanitize, truncate};
use crate::inspect::ui::document::{Lines, Pos, Rows};
use crate::inspect::ui::loaded::{duration, LABEL_WIDTH};
use crate::inspect::ui::state::{Content, Detail, HeadKind, HeadLine, State, Tab};

/// Draws `detail` in `area`.
pub fn draw(state: &State, detail: &Detail, frame: &mut Frame, area: Rect) {
    let width = usize::from(area.width);
    let mut lines = vec![title(state, detail, width), tabs(detail, width)];
    let height = usize::from(area.height).saturating_sub(lines.len());
    match &detail.content {
        Content::Loading => lines.push(Line::styled(" reading the capture…", theme::DIM)),
        Content::Failed(why) => lines.push(Line::styled(
            truncate(&format!(" could not read it: {}", sanitize(why)), width),
            theme::SERVER_ERROR,
        )),
        Content::Ready(loaded) => {
            let pane = &detail.panes[detail.tab.index()];
            let (head, body) = loaded.pane(detail.tab);
            let rows = body.map_or(Rows::Empty, |b| b.rows(pane.mode));
            let walk = Lines {
                head: head.len(),
                rows,
                folds: &pane.folds,
            };
            let mut at = Some(pane.top);
            while let (Some(pos), true) = (at, lines.len() < height + 2) {
                let mut line = match pos {
                    Pos::Head(n) => head_line(&head[n], width),
                    Pos::Body(n) => {
                        let body = body.expect("body lines only where there is a body");
                        body::line(body, rows, n, &pane.folds, width, &state.masking.0)
                    }
                };
                if pos == pane.cursor {
                    line = line.style(theme::SELECTED);
                }
                lines.push(line);
                at = walk.next(pos);
            }
        }
    }
    frame.render_widget(Paragraph::new(lines), area);
}

/// `#12 POST /path → 200  12 ms  stripe invoice.paid`, from the list's row (the capture may
/// still be loading).
fn title(state: &State, detail: &Detail, width: usize) -> Line<'static> {
    let mut spans = vec![Span::styled(format!(" #{}", detail.id), theme::BOLD)];
    if let Some(row) = state.row(detail.id) {
        let status = row.status.map_or("error".to_owned(), |s| s.to_string());
        spans.extend([
            Span::raw(" "),
            Span::styled(sanitize(&row.method), theme::BOLD),
            Span::raw(" "),
            Span::styled(sanitize(&display_path(&row.path)), theme::PATH),
            Span::raw(" → "),
            Span::styled(status, theme::status(row.status)),
            Span::raw(format!("  {}", duration(row.duration))),
        ]);
        if let Some(kind) = &row.event_type {
            spans.push(Span::styled(format!("  {}", sanitize(kind)), theme::EVENT));
        }
    }
    if state.mark == Some(detail.id) {
        spans.push(Span::styled("  (marked)", theme::WARNING));
    }
    clip(spans, width)
}

fn tabs(detail: &Detail, width: usize) -> Line<'static> {
    let mut spans = vec![Span::raw(" ")];
    for tab in Tab::ALL {
        let text = format!(" {} {} ", tab.index() + 1, tab.title());
        let style = if tab == detail.tab {
            theme::SELECTED
        } else {
            theme::DIM
        };
        spans.push(Span::styled(text, style));
        spans.push(Span::raw(" "));
    }
    if detail.tab != Tab::Overview {
        let mode = detail.panes[detail.tab.index()].mode;
        spans.push(Span::styled(
            format!("  body: {} (v)", mode.name()),
            theme::DIM,
        ));
    }
    clip(spans, width)
}

fn head_line(line: &HeadLine, width: usize) -> Line<'static> {
    let text = truncate(&format!(" {}", line.text), width);
    match line.kind {
        HeadKind::Start => Line::styled(text, theme::BOLD),
        HeadKind::Warning => Line::styled(text, theme::WARNING),
        HeadKind::Text => Line::styled(text, theme::DIM),
        HeadKind::Header => match text.split_once(": ") {
            Some((name, value)) => Line::from(vec![
                Span::styled(name.to_owned(), theme::KEY),
                Span::raw(format!(": {value}")),
            ]),
            None => Line::raw(text),
        },
        HeadKind::Field => {
            let split = (LABEL_WIDTH + 1).min(text.len());
            match (text.get(..split), text.get(split..)) {
                (Some(label), Some(value)) => Line::from(vec![
                    Span::styled(label.to_owned(), theme::DIM),
                    Span::raw(value.to_owned()),
                ]),
                _ => Line::raw(text),
            }
        }
    }
}
