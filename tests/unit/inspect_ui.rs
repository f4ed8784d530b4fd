//! The inspector's state, driven by key sequences and feed events through the pure `update`:
//! each test presses keys as a person would and checks the state and the effect asked for.

use crossterm::event::KeyCode;
use hooks::exchange::CaptureId;
use hooks::inspect::ui::{self, Ask, Content, Effect, Mode, Msg, Pos, Screen, Tab, MAX_ROWS};
use hooks::inspect::Event;

use crate::inspector::{capture, ctrl, key, open, press, read, row, state, INVOICE};

fn detail(state: &ui::State) -> &ui::Detail {
    match &state.screen {
        Screen::Detail(detail) => detail,
        other => panic!("expected the detail, got {other:?}"),
    }
}

#[test]
fn follow_mode_keeps_the_newest_selected_until_the_user_moves_and_end_resumes_it() {
    let mut state = state(80, 24, 30);
    assert_eq!(state.selected, 29, "the newest is selected");
    assert!(state.follow);
    read(&mut state, vec![row(31, "/a", Some(200))], false);
    assert_eq!(state.selected, 30, "follows the new row");
    press(&mut state, "kk");
    assert!(!state.follow, "moving pauses follow mode");
    assert_eq!(state.selected, 28);
    read(&mut state, vec![row(32, "/b", Some(200))], false);
    assert_eq!(state.selected, 28, "paused: the selection stays");
    assert_eq!(state.selected_row().map(|r| r.id), Some(CaptureId(29)));
    press(&mut state, "G");
    assert!(state.follow);
    assert_eq!(state.selected, 31);
    ui::update(&mut state, key(KeyCode::Home));
    assert_eq!((state.selected, state.offset), (0, 0));
    ui::update(&mut state, key(KeyCode::PageDown));
    assert_eq!(state.selected, state.list_height());
    ui::update(&mut state, key(KeyCode::End));
    assert!(state.follow);
    assert!(
        state.offset + state.list_height() > state.selected,
        "the selection is on screen"
    );
}

#[test]
fn the_filter_is_checked_as_typed_and_the_last_valid_one_stays_in_force() {
    let mut state = state(80, 24, 5);
    press(&mut state, "/status:5xx");
    assert_eq!(state.prompt.as_ref().map(|p| p.ask), Some(Ask::Filter));
    let effect = ui::update(&mut state, key(KeyCode::Enter));
    let Effect::Load { generation, filter } = effect else {
        panic!("a new filter reads the list again: {effect:?}");
    };
    assert_eq!(generation, 1);
    assert_eq!(filter.map(|q| q.to_string()), Some("status:5xx".to_owned()));
    assert!(state.prompt.is_none());
    press(&mut state, "/");
    assert_eq!(
        state.prompt.as_ref().map(|p| p.text.as_str()),
        Some("status:5xx")
    );
    ui::update(&mut state, ctrl('u'));
    press(&mut state, "status:>>2");
    let error = state.prompt.as_ref().and_then(|p| p.error.clone());
    assert!(
        error.is_some_and(|e| e.contains("^ expected a status")),
        "shown as typed"
    );
    assert_eq!(ui::update(&mut state, key(KeyCode::Enter)), Effect::None);
    assert!(state.prompt.is_some(), "an invalid filter is not applied");
    assert_eq!(
        state.filter_text, "status:5xx",
        "the last valid filter stays"
    );
    ui::update(&mut state, key(KeyCode::Esc));
    assert!(state.prompt.is_none());
    press(&mut state, "/");
    ui::update(&mut state, ctrl('u'));
    let cleared = ui::update(&mut state, key(KeyCode::Enter));
    assert!(matches!(
        cleared,
        Effect::Load {
            filter: None,
            generation: 2
        }
    ));
    assert!(state.filter.is_none());
}

#[test]
fn rows_of_an_earlier_filter_are_dropped() {
    let mut state = state(80, 24, 3);
    press(&mut state, "/method:GET");
    ui::update(&mut state, key(KeyCode::Enter));
    let stale = ui::update(
        &mut state,
        Msg::Rows(ui::Rows {
            generation: 0,
            rows: vec![row(9, "/stale", Some(200))],
            through: Some(CaptureId(9)),
            replace: true,
        }),
    );
    assert_eq!(stale, Effect::None);
    assert!(state.row(CaptureId(9)).is_none());
    read(&mut state, vec![row(2, "/get", Some(200))], true);
    assert_eq!(state.rows.len(), 1);
    assert!(!state.loading);
}

#[test]
fn enter_opens_the_capture_and_the_keys_move_through_its_tabs_and_folds() {
    let mut state = state(80, 24, 3);
    open(&mut state, capture(3, "/webhooks/stripe/3", INVOICE, 500));
    let shown = detail(&state);
    assert_eq!(shown.id, CaptureId(3));
    assert_eq!(shown.tab, Tab::Overview);
    assert!(matches!(shown.content, Content::Ready(_)));
    ui::update(&mut state, key(KeyCode::Tab));
    assert_eq!(detail(&state).tab, Tab::Request);
    assert_eq!(
        detail(&state).panes[1].mode,
        Mode::Tree,
        "JSON opens as a tree"
    );
    // Down past the request line, 5 headers, a blank and the body note, to `"data": {`.
    press(&mut state, &"j".repeat(8 + 3));
    assert_eq!(detail(&state).panes[1].cursor, Pos::Body(3));
    press(&mut state, " ");
    assert!(detail(&state).panes[1].folds.contains(&3));
    press(&mut state, "j");
    assert_eq!(
        detail(&state).panes[1].cursor,
        Pos::Body(20),
        "past the folded object"
    );
    press(&mut state, "k ");
    assert!(detail(&state).panes[1].folds.is_empty(), "unfolded");
    press(&mut state, "f");
    assert!(!detail(&state).panes[1].folds.is_empty());
    press(&mut state, "F");
    assert!(detail(&state).panes[1].folds.is_empty());
    press(&mut state, "v");
    assert_eq!(detail(&state).panes[1].mode, Mode::Raw);
    press(&mut state, "v");
    assert_eq!(detail(&state).panes[1].mode, Mode::Hex);
    press(&mut state, "3");
    assert_eq!(detail(&state).tab, Tab::Response);
    ui::update(&mut state, key(KeyCode::Esc));
    assert!(matches!(state.screen, Screen::List));
}

#[test]
fn a_large_json_body_pages_and_ends_without_laying_out_the_rest() {
    let items: Vec<String> = (0..50_000)
        .map(|i| format!("{{\"n\":{i},\"s\":\"x\"}}"))
        .collect();
    let body = format!("{{\"items\":[{}]}}", items.join(","));
    let mut state = state(120, 40, 1);
    open(&mut state, capture(1, "/big", &body, 200));
    press(&mut state, "2");
    ui::update(&mut state, key(KeyCode::End));
    let pane = &detail(&state).panes[1];
    let Content::Ready(loaded) = &detail(&state).content else {
        panic!("loaded");
    };
    let ui::Body { json, .. } = &loaded.request;
    let last = json.as_ref().map(|j| j.len() - 1).unwrap();
    assert_eq!(
        pane.cursor,
        Pos::Body(last),
        "End reaches the closing brace"
    );
    ui::update(&mut state, key(KeyCode::PageUp));
    assert_eq!(
        detail(&state).panes[1].cursor,
        Pos::Body(last - state.pane_height())
    );
    let screen = crate::inspector::screen(&state);
    assert!(screen.contains("\"n\": 49990,"), "{screen}");
}

#[test]
fn replay_keys_ask_for_replays_and_resigning_needs_a_secret() {
    let mut state = state(80, 24, 4);
    let replay = press(&mut state, "r");
    assert_eq!(
        replay,
        Effect::Replay {
            id: CaptureId(4),
            resign: false,
            target: None
        }
    );
    assert_eq!(press(&mut state, "R"), Effect::None);
    let message = state.message.clone().expect("a message");
    assert!(
        message.error && message.text.contains("--secret"),
        "{message:?}"
    );
    state.can_resign = true;
    assert!(matches!(
        press(&mut state, "R"),
        Effect::Replay { resign: true, .. }
    ));
    assert!(matches!(
        press(&mut state, "e"),
        Effect::Edit { resign: false, .. }
    ));
    assert!(matches!(
        press(&mut state, "E"),
        Effect::Edit { resign: true, .. }
    ));
    press(&mut state, "t");
    ui::update(&mut state, ctrl('u'));
    press(&mut state, "localhost:4100/base");
    ui::update(&mut state, key(KeyCode::Enter));
    let Effect::Replay { target, .. } = press(&mut state, "r") else {
        panic!("a replay");
    };
    assert_eq!(
        target.map(|t| t.to_string()),
        Some("http://localhost:4100/base".into())
    );
}

#[test]
fn mark_then_equals_compares_and_needs_two_captures() {
    let mut state = state(80, 24, 5);
    assert_eq!(press(&mut state, "="), Effect::None);
    assert!(state.message.as_ref().is_some_and(|m| m.error));
    press(&mut state, "m");
    assert_eq!(state.mark, Some(CaptureId(5)));
    assert_eq!(press(&mut state, "="), Effect::None, "not against itself");
    press(&mut state, "kk");
    assert_eq!(
        press(&mut state, "="),
        Effect::Diff {
            a: CaptureId(5),
            b: CaptureId(3)
        }
    );
    assert!(matches!(state.screen, Screen::Diff(_)));
    ui::update(
        &mut state,
        Msg::Diffed(CaptureId(5), CaptureId(3), Err("gone".into())),
    );
    assert!(
        matches!(state.screen, Screen::List),
        "a failed diff says why"
    );
}

#[test]
fn copy_and_export_act_on_the_selected_capture() {
    let mut state = state(80, 24, 2);
    assert_eq!(press(&mut state, "c"), Effect::Copy(CaptureId(2)));
    press(&mut state, "x");
    assert_eq!(
        state.prompt.as_ref().map(|p| (p.ask, p.text.clone())),
        Some((Ask::Export(CaptureId(2)), "hooks-2.http".into()))
    );
    for _ in 0..4 {
        ui::update(&mut state, key(KeyCode::Backspace));
    }
    press(&mut state, "har");
    assert_eq!(
        ui::update(&mut state, key(KeyCode::Enter)),
        Effect::Export {
            id: CaptureId(2),
            path: "hooks-2.har".into()
        }
    );
}

#[test]
fn q_and_ctrl_c_quit_and_ctrl_c_even_while_typing() {
    let mut state = state(80, 24, 1);
    press(&mut state, "/q");
    assert_eq!(state.prompt.as_ref().map(|p| p.text.as_str()), Some("q"));
    assert_eq!(ui::update(&mut state, ctrl('c')), Effect::Quit);
    let mut state = crate::inspector::state(80, 24, 1);
    assert_eq!(press(&mut state, "q"), Effect::Quit);
    press(&mut state, "?");
    assert!(state.help);
    assert_eq!(
        press(&mut state, "q"),
        Effect::None,
        "a key closes the help first"
    );
    assert!(!state.help);
}

#[test]
fn a_gap_in_the_live_feed_is_shown_and_caught_up_from_the_store() {
    let mut state = state(80, 24, 2);
    let gap = ui::update(
        &mut state,
        Msg::Feed(Event::Skipped {
            count: 40,
            stored: true,
        }),
    );
    assert_eq!(
        gap,
        Effect::CatchUp {
            generation: 0,
            filter: None,
            after: Some(CaptureId(2))
        }
    );
    assert_eq!(state.not_shown, 40);
    assert!(crate::inspector::screen(&state).contains("+40 not shown"));
    // Another gap while the catch-up runs waits for it.
    let again = Msg::Feed(Event::Skipped {
        count: 2,
        stored: true,
    });
    assert_eq!(ui::update(&mut state, again), Effect::None);
    let caught: Vec<_> = (3..=44).map(|id| row(id, "/x", Some(200))).collect();
    let next = read(&mut state, caught, false);
    assert!(matches!(
        next,
        Effect::CatchUp {
            after: Some(CaptureId(44)),
            ..
        }
    ));
    assert_eq!(state.not_shown, 0);
    assert_eq!(state.rows.len(), 44);
    assert!(state
        .message
        .as_ref()
        .is_some_and(|m| m.text.contains("42 not shown")));
}

#[test]
fn live_captures_join_the_list_once_in_id_order_and_the_list_is_bounded() {
    let mut state = state(80, 24, 0);
    let live = |id| Msg::Feed(Event::Request(Box::new(capture(id, "/live", INVOICE, 200))));
    ui::update(&mut state, live(2));
    ui::update(&mut state, live(1));
    ui::update(&mut state, live(2));
    let ids: Vec<i64> = state.rows.iter().map(|r| r.id.0).collect();
    assert_eq!(ids, [1, 2]);
    let many: Vec<_> = (3..(MAX_ROWS as i64 + 10))
        .map(|id| row(id, "/m", Some(200)))
        .collect();
    read(&mut state, many, false);
    assert_eq!(state.rows.len(), MAX_ROWS);
    assert_eq!(state.selected, MAX_ROWS - 1);
}

#[test]
fn duplicates_of_an_event_are_flagged() {
    let mut state = state(80, 24, 0);
    let mut first = row(1, "/a", Some(200));
    first.event_id = Some("evt_same".into());
    let mut again = row(2, "/a", Some(200));
    again.event_id = Some("evt_same".into());
    read(&mut state, vec![first, again], false);
    assert_eq!(state.rows[1].flags.duplicate_of, Some(1));
    assert_eq!(state.rows[0].flags.duplicate_of, None);
}

#[test]
fn untrusted_text_reaches_the_screen_escaped() {
    let mut state = state(80, 24, 0);
    let mut hostile = row(1, "/x\u{1b}]52;c;aGk=\u{7}", Some(200));
    hostile.method = "PO\u{1b}[2JST".into();
    read(&mut state, vec![hostile], false);
    ui::update(
        &mut state,
        Msg::Done {
            text: "refused: \u{1b}[31mred\u{202e}".into(),
            error: true,
            changed: false,
        },
    );
    let screen = crate::inspector::screen(&state);
    assert!(
        !screen.contains('\u{1b}') && !screen.contains('\u{202e}'),
        "{screen}"
    );
    assert!(screen.contains("\\u{1b}]52;c;aGk="), "{screen}");
    assert!(
        screen.contains("refused: \\u{1b}[31mred\\u{202e}"),
        "{screen}"
    );
}

#[test]
fn issue_22_a_live_row_answers_the_filters_route_field() {
    let filter = hooks::query::Query::parse("route:billing").expect("a valid filter");
    let mut billing = row(1, "/stripe/hook", Some(200));
    billing.route = Some("billing".into());
    let unrouted = row(2, "/stripe/hook", Some(200));
    assert!(filter.matches(&billing), "the row's route is the filter's");
    assert!(
        !filter.matches(&unrouted),
        "a row without a route is not billing's"
    );
}
