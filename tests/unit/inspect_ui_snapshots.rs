//! The inspector's screens drawn on ratatui's `TestBackend` at 80×24 and 120×40, with the clock
//! pinned (fixtures at 2025-11-26T18:47:42Z, shown in UTC) and fixed ids: the live list, the
//! detail with a JSON body unfolded and folded, a filter error, a diff, the help.

use crossterm::event::KeyCode;
use hooks::exchange::CaptureId;
use hooks::inspect::ui::{self, Msg};
use hooks::inspect::Palette;
use hooks::query::diff;

use crate::inspector::{capture, key, open, press, screen, state, INVOICE};

const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

/// Snapshots the screen of `state`, named for the screen and its size.
macro_rules! assert_screen {
    ($name:expr, $state:expr) => {
        let (columns, lines) = $state.size;
        insta::assert_snapshot!(format!("{}_{columns}x{lines}", $name), screen(&$state));
    };
}

#[test]
fn the_live_list() {
    for (columns, lines) in SIZES {
        let mut state = state(columns, lines, 30);
        press(&mut state, "kkkkm");
        assert_screen!("list", state);
    }
}

#[test]
fn the_detail_with_a_json_body_unfolded_and_folded() {
    for (columns, lines) in SIZES {
        let mut state = state(columns, lines, 3);
        open(&mut state, capture(3, "/webhooks/stripe/3", INVOICE, 500));
        assert_screen!("detail_overview", state);
        press(&mut state, "2");
        assert_screen!("detail_request_unfolded", state);
        // To `"data": {` (request line, 5 headers, blank, body note, then 4 body lines).
        press(&mut state, &"j".repeat(11));
        press(&mut state, " ");
        assert_screen!("detail_request_folded", state);
    }
}

#[test]
fn a_filter_error() {
    for (columns, lines) in SIZES {
        let mut state = state(columns, lines, 10);
        press(&mut state, "/status:5xx");
        ui::update(&mut state, key(KeyCode::Enter));
        crate::inspector::read(
            &mut state,
            vec![crate::inspector::row(3, "/webhooks/stripe/3", Some(500))],
            true,
        );
        press(&mut state, "/");
        press(&mut state, " AND duration:>fast");
        assert_screen!("filter_error", state);
    }
}

#[test]
fn a_diff() {
    let a = capture(2, "/webhooks/stripe/2", INVOICE, 200);
    let changed = INVOICE.replace("1500", "2500").replace("cus_42", "cus_43");
    let b = capture(5, "/webhooks/stripe/5", &changed, 500);
    let found = diff::diff(&a, &b, &diff::Options::default());
    let mut text = Vec::new();
    diff::render(&found, ["#2", "#5"], &Palette::default(), &mut text).unwrap();
    let lines: Vec<String> = String::from_utf8(text)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    for (columns, lines_high) in SIZES {
        let mut state = state(columns, lines_high, 5);
        press(&mut state, "kkkm");
        press(&mut state, "G=");
        let msg = Msg::Diffed(CaptureId(2), CaptureId(5), Ok(lines.clone()));
        ui::update(&mut state, msg);
        assert_screen!("diff", state);
    }
}

#[test]
fn the_help() {
    for (columns, lines) in SIZES {
        let mut state = state(columns, lines, 8);
        press(&mut state, "?");
        assert_screen!("help", state);
    }
}
