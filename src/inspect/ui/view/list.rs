//! The list screen: the status line (URL, connection, counts by status class, the filter), the
//! column headings, and the rows on screen (only those are laid out, so 10,000 rows cost what
//! a screenful does).

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::{clip, fit, fit_right, size, theme};
use crate::exchange::display_path;
use crate::inspect::sanitize;
use crate::inspect::ui::loaded::duration;
use crate::inspect::ui::state::{Connection, Row, Source, State};

/// Widths of the fixed columns.
const TIME: usize = 8;
const METHOD: usize = 7;
const VERDICT: usize = 9;
const STATUS: usize = 3;
const DURATION: usize = 8;
const SIZE: usize = 8;
const ID: usize = 7;

/// Draws the list screen in `area`.
pub fn draw(state: &State, frame: &mut Frame, area: Rect) {
    let width = usize::from(area.width);
    let mut lines = vec![status_line(state, width), headings(width)];
    let height = usize::from(area.height).saturating_sub(lines.len());
    if state.rows.is_empty() {
        lines.push(Line::styled(empty_note(state), theme::DIM));
    }
    let end = (state.offset + height).min(state.rows.len());
    for (at, row) in state.rows[state.offset.min(end)..end].iter().enumerate() {
        let selected = state.offset + at == state.selected;
        let marked = state.mark == Some(row.id);
        lines.push(row_line(row, width, state, selected, marked));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

fn empty_note(state: &State) -> String {
    if state.loading {
        " reading the capture store…".to_owned()
    } else if state.filter.is_some() {
        " no capture matches the filter (/ changes it; an empty filter clears it)".to_owned()
    } else {
        match (&state.source, &state.url) {
            (Source::Listen, Some(url)) => format!(" waiting for webhooks: send one to {url}"),
            (Source::Listen, None) => " waiting for the relay…".to_owned(),
            (Source::Store, _) => {
                " no captures yet: they appear here as a hooks listen records them".to_owned()
            }
        }
    }
}

/// The first line: who, where, how it is going.
fn status_line(state: &State, width: usize) -> Line<'static> {
    let title = match state.source {
        Source::Listen => " hooks listen",
        Source::Store => " hooks inspect",
    };
    let mut spans = vec![Span::styled(title, theme::BOLD)];
    if let Some(url) = &state.url {
        spans.push(Span::raw("  "));
        spans.push(Span::styled(sanitize(url), theme::PATH));
    }
    let (connection, style) = match &state.connection {
        Connection::Connecting => ("connecting".to_owned(), theme::WARNING),
        Connection::Attached => ("attached".to_owned(), theme::OK),
        Connection::Reconnecting(why) => (
            format!("reconnecting ({})", sanitize(why)),
            theme::SERVER_ERROR,
        ),
        Connection::Store => match state.rows.len() {
            1 => ("1 capture".to_owned(), Style::new()),
            n => (format!("{n} captures"), Style::new()),
        },
    };
    spans.push(Span::raw("  "));
    spans.push(Span::styled(connection, style));
    if state.not_shown > 0 {
        let text = format!("  +{} not shown", state.not_shown);
        spans.push(Span::styled(text, theme::WARNING));
    }
    // The filter before the counts: it says what they count.
    if state.filter.is_some() {
        spans.push(Span::raw("  filter: "));
        spans.push(Span::styled(sanitize(&state.filter_text), theme::BOLD));
    }
    spans.push(Span::raw("  "));
    spans.extend(counts(&state.rows));
    if state.follow && !state.rows.is_empty() {
        spans.push(Span::styled("  following", theme::DIM));
    }
    clip(spans, width)
}

/// `2xx 3  4xx 1  5xx 0  err 0`, each in its color.
fn counts(rows: &[Row]) -> Vec<Span<'static>> {
    let mut classes = [0usize; 5];
    for row in rows {
        let class = match row.status {
            Some(200..=299) => 0,
            Some(300..=399) => 1,
            Some(400..=499) => 2,
            Some(_) => 3,
            None => 4,
        };
        classes[class] += 1;
    }
    let names = ["2xx", "3xx", "4xx", "5xx", "err"];
    let styles = [
        theme::OK,
        theme::REDIRECT,
        theme::CLIENT_ERROR,
        theme::SERVER_ERROR,
        theme::SERVER_ERROR,
    ];
    let mut spans = Vec::new();
    for ((name, count), style) in names.iter().zip(classes).zip(styles) {
        // 3xx only when there are some: webhooks rarely redirect.
        if *name == "3xx" && count == 0 {
            continue;
        }
        spans.push(Span::styled(format!("{name} {count}"), style));
        spans.push(Span::raw(" "));
    }
    spans
}

/// How the path and event columns share what the fixed ones leave.
fn flexible(width: usize) -> (usize, usize) {
    let fixed = 1 + TIME + 1 + METHOD + 1 + VERDICT + 1 + STATUS + 1 + DURATION + 1 + SIZE + 1 + ID;
    let room = width.saturating_sub(fixed + 2);
    if room < 36 {
        return (room, 0);
    }
    let path = (room * 3 / 5).max(24);
    (path, room - path)
}

fn headings(width: usize) -> Line<'static> {
    let (path, event) = flexible(width);
    let mut text = format!(
        " {} {} {}",
        fit("TIME", TIME),
        fit("METHOD", METHOD),
        fit("PATH", path)
    );
    if event > 0 {
        text.push(' ');
        text.push_str(&fit("EVENT", event));
    }
    text.push_str(&format!(
        " {} {} {} {} {}",
        fit("VERDICT", VERDICT),
        fit("STA", STATUS),
        fit_right("DURATION", DURATION),
        fit_right("SIZE", SIZE),
        fit_right("ID", ID)
    ));
    Line::styled(fit(&text, width), theme::BOLD)
}

fn row_line(row: &Row, width: usize, state: &State, selected: bool, marked: bool) -> Line<'static> {
    let (path_width, event_width) = flexible(width);
    let time = local_time(row.received_at_ms, &state.tz);
    let mut path = sanitize(&display_path(&row.path));
    if row.replay_of.is_some() {
        path = format!("↻ {path}");
    }
    let event = match (&row.provider, &row.event_type) {
        (Some(provider), Some(kind)) => format!("{} {}", provider.name(), sanitize(kind)),
        (Some(provider), None) => provider.name().to_owned(),
        (None, Some(kind)) => sanitize(kind),
        (None, None) => String::new(),
    };
    let verdict = row.verdict.map_or("", |v| v.as_str());
    let verdict_style = match verdict {
        "valid" => theme::OK,
        "invalid" | "expired" => theme::SERVER_ERROR,
        _ => theme::DIM,
    };
    let status = row.status.map_or("err".to_owned(), |s| s.to_string());
    let flagged = row.flags.duplicate_of.is_some() || row.flags.out_of_order_after.is_some();
    let gutter = match (marked, flagged) {
        (true, _) => "*",
        (false, true) => "!",
        _ => " ",
    };
    let mut spans = vec![
        Span::styled(gutter, theme::WARNING),
        Span::styled(fit(&time, TIME), theme::DIM),
        Span::raw(" "),
        Span::styled(fit(&sanitize(&row.method), METHOD), theme::BOLD),
        Span::raw(" "),
        Span::styled(fit(&path, path_width), theme::PATH),
    ];
    if event_width > 0 {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(fit(&event, event_width), theme::EVENT));
    }
    spans.extend([
        Span::raw(" "),
        Span::styled(fit(verdict, VERDICT), verdict_style),
        Span::raw(" "),
        Span::styled(fit(&status, STATUS), theme::status(row.status)),
        Span::raw(" "),
        Span::raw(fit_right(&duration(row.duration), DURATION)),
        Span::raw(" "),
        Span::styled(fit_right(&size(row.size), SIZE), theme::DIM),
        Span::raw(" "),
        Span::styled(fit_right(&format!("#{}", row.id), ID), theme::DIM),
    ]);
    let line = clip(spans, width);
    if selected {
        line.style(theme::SELECTED)
    } else {
        line
    }
}

/// `HH:MM:SS` in `tz`.
fn local_time(unix_ms: i64, tz: &jiff::tz::TimeZone) -> String {
    match jiff::Timestamp::from_millisecond(unix_ms) {
        Ok(at) => at.to_zoned(tz.clone()).strftime("%H:%M:%S").to_string(),
        Err(_) => "--:--:--".to_owned(),
    }
}
