//! The diff screen: `hooks diff`'s text for the marked and the selected capture, scrolled, each
//! line colored by what it says (`-` the marked one, `+` the selected one, `~` changed).

use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::theme;
use crate::inspect::sanitize::truncate;
use crate::inspect::ui::state::DiffView;

/// Draws `diff` in `area`.
pub fn draw(diff: &DiffView, frame: &mut Frame, area: Rect) {
    let width = usize::from(area.width);
    let title = format!(" diff #{} (marked) → #{}", diff.a, diff.b);
    let mut lines = vec![
        Line::styled(truncate(&title, width), theme::BOLD),
        Line::raw(""),
    ];
    let height = usize::from(area.height).saturating_sub(lines.len());
    match &diff.lines {
        None => lines.push(Line::styled(" comparing…", theme::DIM)),
        Some(text) => {
            for line in text.iter().skip(diff.top).take(height) {
                let style = match line.trim_start().chars().next() {
                    _ if line.starts_with("---") => theme::SERVER_ERROR,
                    _ if line.starts_with("+++") => theme::OK,
                    Some('-') => theme::SERVER_ERROR,
                    Some('+') => theme::OK,
                    Some('~') => theme::WARNING,
                    _ if !line.starts_with(' ') => theme::BOLD,
                    _ => theme::DIM,
                };
                lines.push(Line::styled(truncate(&format!(" {line}"), width), style));
            }
        }
    }
    frame.render_widget(Paragraph::new(lines), area);
}
