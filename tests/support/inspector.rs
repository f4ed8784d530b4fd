//! Fixtures for the inspector's unit and snapshot tests: captures and list rows with pinned
//! ids and times, a state in UTC at a fixed size, key presses, and a screen drawn on ratatui's
//! `TestBackend`.

#![allow(dead_code)] // The unit and snapshot tests use different subsets.

use std::time::Duration;

use bytes::Bytes;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use hooks::exchange::{CaptureId, Exchange, Outcome, Request, Response};
use hooks::inspect::history::Flags;
use hooks::inspect::ui::{self, Effect, Msg, Row, Rows, Source, State};
use hooks::inspect::Redactor;
use relay_server::protocol::Header;

/// 2025-11-26T18:47:42Z: every fixture's time.
pub const AT_MS: i64 = 1_764_182_862_000;

/// A header list from text pairs.
pub fn headers(pairs: &[(&str, &str)]) -> Vec<Header> {
    pairs
        .iter()
        .map(|(name, value)| Header {
            name: name.to_string(),
            value: Bytes::copy_from_slice(value.as_bytes()),
        })
        .collect()
}

/// A Stripe-like JSON body.
pub const INVOICE: &str = r#"{"id":"evt_1","type":"invoice.paid","data":{"object":{"id":"in_1","amount_paid":1500,"lines":[{"id":"il_1","amount":1500},{"id":"il_2","amount":0}],"customer":"cus_42"}},"livemode":false}"#;

/// Capture `id`: a POST of `body` to `path`, answered 200 (or `status`).
pub fn capture(id: i64, path: &str, body: &str, status: u16) -> Exchange {
    let request = Request {
        method: "POST".into(),
        path: path.into(),
        headers: headers(&[
            ("host", "127.0.0.1:4000"),
            ("content-type", "application/json"),
            (
                "stripe-signature",
                "t=1764182862,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd",
            ),
            ("x-repeat", "one"),
            ("x-repeat", "two"),
        ]),
        body: Bytes::from(body.to_owned()),
    };
    let answer = Outcome::Answered(Response {
        status,
        headers: headers(&[("content-type", "application/json")]),
        body: Bytes::from_static(b"{\"ok\":true}"),
    });
    let mut exchange = Exchange::new(
        AT_MS + id * 1000,
        "http://localhost:3000".into(),
        request,
        answer,
        Duration::from_micros(12_400 + id as u64 * 100),
    );
    exchange.id = Some(CaptureId(id));
    exchange.event = hooks::verify::recognize(&exchange.request.headers, &exchange.request.body);
    exchange
}

/// The list row of [`capture`]`(id, …)`.
pub fn row(id: i64, path: &str, status: Option<u16>) -> Row {
    Row {
        id: CaptureId(id),
        received_at_ms: AT_MS + id * 1000,
        method: "POST".into(),
        path: path.into(),
        provider: Some(hooks::verify::Provider::Stripe),
        event_type: Some("invoice.paid".into()),
        event_id: Some(format!("evt_{id}")),
        verdict: Some(hooks::verify::Verdict::Valid),
        status,
        duration: Duration::from_micros(12_400 + id as u64 * 100),
        size: 180,
        replay_of: None,
        sent: false,
        route: None,
        flags: Flags::default(),
    }
}

/// A listen inspector of `columns` × `lines`, in UTC, attached, with rows `1..=count` read.
pub fn state(columns: u16, lines: u16, count: i64) -> State {
    let mut state = State::new(Source::Listen, (columns, lines), jiff::tz::TimeZone::UTC);
    assert!(matches!(ui::start(&mut state), Effect::Load { .. }));
    ui::update(
        &mut state,
        Msg::Feed(hooks::inspect::Event::Ready {
            url: "http://127.0.0.1:4000/ch_test".into(),
            channel: "ch_test".into(),
            forward_to: "http://localhost:3000".into(),
            embedded: true,
        }),
    );
    let rows = (1..=count)
        .map(|id| {
            let status = match id % 7 {
                3 => Some(500),
                5 => Some(404),
                6 => None,
                _ => Some(200),
            };
            row(id, &format!("/webhooks/stripe/{id}"), status)
        })
        .collect();
    read(&mut state, rows, true);
    state
}

/// Hands `rows` to `state` as the store's answer to the current load (or a catch-up).
pub fn read(state: &mut State, rows: Vec<Row>, replace: bool) -> Effect {
    let through = rows.last().map(|r| r.id);
    let generation = state.generation;
    ui::update(
        state,
        Msg::Rows(Rows {
            generation,
            rows,
            through,
            replace,
        }),
    )
}

/// A key press.
pub fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

/// A key press with Ctrl.
pub fn ctrl(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

/// Presses each character of `keys` in turn; the last effect.
pub fn press(state: &mut State, keys: &str) -> Effect {
    let mut effect = Effect::None;
    for c in keys.chars() {
        effect = ui::update(state, key(KeyCode::Char(c)));
    }
    effect
}

/// Opens the selected capture and hands it `exchange` as read from the store.
pub fn open(state: &mut State, exchange: Exchange) {
    let id = exchange.id.expect("a stored capture");
    assert_eq!(ui::update(state, key(KeyCode::Enter)), Effect::Open(id));
    let loaded = ui::load(exchange, &Redactor::default());
    ui::update(state, Msg::Loaded(id, Ok(Box::new(loaded))));
}

/// The screen `state` draws, as text.
pub fn screen(state: &State) -> String {
    let (columns, lines) = state.size;
    let backend = ratatui::backend::TestBackend::new(columns, lines);
    let mut terminal = ratatui::Terminal::new(backend).expect("a test terminal");
    terminal
        .draw(|frame| ui::view(state, frame))
        .expect("draw on the test backend");
    terminal.backend().to_string()
}
